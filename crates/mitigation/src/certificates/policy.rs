//! `attach-policy`: the quarantine policy attached to the certificates only the thing uses. A
//! policy attached to a certificate binds every connection made with it, whatever its client
//! id, where the thing group's policy binds only the connection whose client id is the thing
//! name. The certificates are recorded (CERTIFICATE_POLICY_ATTRIBUTE) before the policy is
//! attached, and a release detaches it from the recorded ones only, and only while they are
//! still attached to the thing (a record someone else wrote cannot free another thing's
//! certificate).
//!
//! Calls on quarantine, for a thing with `k` certificates that no other thing uses and that do
//! not carry the policy yet: ListThingPrincipalsV2, DescribeThing, then per certificate
//! ListPrincipalThingsV2 and ListAttachedPolicies, UpdateThing (the record), and per
//! certificate AttachPolicy: 3 + 3k (6 for one certificate). A shared certificate costs its
//! ListPrincipalThingsV2 only. A delivery again finds everything recorded and attached: 2 + 2k,
//! nothing written. On release: DescribeThing, ListThingPrincipalsV2, DetachPolicy per recorded
//! certificate, UpdateThing: 3 + k.

use std::collections::HashMap;

use violation_core::{CertificateId, ThingName};

use super::plan::{Assessment, plan_quarantine, policy_standing};
use super::quarantine::{CertificateQuarantine, PolicyRecord};
use super::registry::{AttachedCertificate, CertificateRegistry};
use crate::action::{ActionError, Applied};

impl<R: CertificateRegistry> CertificateQuarantine<R> {
    /// One attached certificate's standing: the other things it is attached to, then (for one
    /// no other thing uses) whether it carries the policy already.
    async fn assess_for_policy(
        &self,
        thing: &ThingName,
        cert: &AttachedCertificate,
        policy: &str,
        recorded: &[CertificateId],
    ) -> Result<Assessment, ActionError> {
        let others = self.registry.other_things(cert, thing).await?;
        let has_policy = if others.is_empty() {
            let attached = self.registry.attached_policies(cert).await?;
            attached.iter().any(|p| p == policy)
        } else {
            false
        };
        Ok(Assessment {
            id: cert.id.clone(),
            standing: policy_standing(others, has_policy, recorded.contains(&cert.id)),
        })
    }

    pub(super) async fn attach_policy(
        &self,
        thing: &ThingName,
        policy: &PolicyRecord,
        attached: &[AttachedCertificate],
        attributes: &HashMap<String, String>,
    ) -> Result<Applied, ActionError> {
        let recorded = Self::recorded(thing, attributes, &policy.attribute).unwrap_or_default();
        let mut assessed = Vec::with_capacity(attached.len());
        for cert in attached {
            assessed.push(
                self.assess_for_policy(thing, cert, &policy.policy, &recorded)
                    .await?,
            );
        }
        let plan = plan_quarantine(thing, &policy.attribute, &recorded, &assessed)?;
        self.write_record(thing, &policy.attribute, &plan).await?;
        for id in &plan.contain {
            let Some(cert) = attached.iter().find(|c| &c.id == id) else {
                continue;
            };
            self.registry.attach_policy(&policy.policy, cert).await?;
            tracing::info!(thing = %thing, certificate = %id, policy = %policy.policy,
                attribute = %policy.attribute,
                "quarantine policy attached to the certificate (recorded for the release)");
        }
        Self::log_shared(thing, &plan);
        Ok(plan.applied)
    }

    pub(super) async fn detach_policy(
        &self,
        thing: &ThingName,
        policy: &PolicyRecord,
        recorded: &[CertificateId],
    ) -> Result<(), ActionError> {
        let attached = if recorded.is_empty() {
            Vec::new()
        } else {
            self.registry.thing_certificates(thing).await?
        };
        for id in recorded {
            let Some(cert) = attached.iter().find(|c| &c.id == id) else {
                tracing::warn!(thing = %thing, certificate = %id, policy = %policy.policy,
                    "recorded certificate no longer attached to the thing: the quarantine policy is left on it (aws iot detach-policy --policy-name POLICY --target CERTIFICATE_ARN frees it)");
                continue;
            };
            if self.registry.detach_policy(&policy.policy, cert).await? {
                tracing::info!(thing = %thing, certificate = %id, policy = %policy.policy,
                    "quarantine policy detached from the certificate");
            }
        }
        self.registry
            .set_attribute(thing, &policy.attribute, "")
            .await
    }
}
