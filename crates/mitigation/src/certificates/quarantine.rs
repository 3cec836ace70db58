//! The certificate mitigation: reads the thing's certificates through a
//! [`CertificateRegistry`], assesses each ([`super::plan`]), then records and contains
//! (deactivates, or attaches the quarantine policy to; [`super::policy`]) as the plan says. A
//! release undoes whatever is recorded, whichever action recorded it.

use std::collections::HashMap;

use futures::future::BoxFuture;
use violation_core::{Action, CertificateId, ThingName};

use super::plan::{Assessment, ReleaseStep, Standing, plan_quarantine, reads_other_things};
use super::plan::{QuarantinePlan, release_step, standing};
use super::record::parse_record;
use super::registry::{AttachedCertificate, CertificateRegistry};
use crate::action::{ActionError, Applied, MitigationAction, MitigationKind};
use crate::config::CertificateAction;

/// The quarantine policy `attach-policy` attaches, and the attribute that records where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// `QUARANTINE_POLICY`.
    pub policy: String,
    /// `CERTIFICATE_POLICY_ATTRIBUTE`.
    pub attribute: String,
}

/// Quarantine = contain the thing's own certificates (recorded first): deactivate them, or
/// attach the quarantine policy to them; release = undo what is recorded and remove the record.
pub struct CertificateQuarantine<R> {
    pub(super) registry: R,
    /// `CERTIFICATE_RECORD_ATTRIBUTE`: the record of deactivated certificates.
    pub(super) attribute: String,
    /// Known whenever QUARANTINE_POLICY is set, so that a release detaches what an
    /// `attach-policy` quarantine recorded even after a switch to `deactivate`.
    pub(super) policy: Option<PolicyRecord>,
    action: CertificateAction,
}

impl<R: CertificateRegistry> CertificateQuarantine<R> {
    /// `deactivate`, recording in `attribute`.
    pub fn new(registry: R, attribute: impl Into<String>) -> Self {
        CertificateQuarantine {
            registry,
            attribute: attribute.into(),
            policy: None,
            action: CertificateAction::Deactivate,
        }
    }

    /// `attach-policy` with this policy and record.
    pub fn attaching(self, policy: PolicyRecord) -> Self {
        CertificateQuarantine {
            policy: Some(policy),
            action: CertificateAction::AttachPolicy,
            ..self
        }
    }

    /// Still `deactivate`, but a release also detaches the policy where it is recorded.
    pub fn knowing(self, policy: PolicyRecord) -> Self {
        CertificateQuarantine {
            policy: Some(policy),
            ..self
        }
    }

    pub fn action(&self) -> CertificateAction {
        self.action
    }

    /// The ids recorded in `attribute` (`None`: no record). Values that are not certificate
    /// ids are logged and ignored.
    pub(super) fn recorded(
        thing: &ThingName,
        attributes: &HashMap<String, String>,
        attribute: &str,
    ) -> Option<Vec<CertificateId>> {
        let (ids, odd) = parse_record(attributes.get(attribute)?);
        if !odd.is_empty() {
            tracing::warn!(thing = %thing, attribute = %attribute, odd = %odd.join(","),
                "the record holds values that are not certificate ids: ignored");
        }
        Some(ids)
    }

    /// One attached certificate's standing: its status, and for an ACTIVE one, the other
    /// things it is attached to.
    async fn assess(
        &self,
        thing: &ThingName,
        cert: &AttachedCertificate,
        recorded: &[CertificateId],
    ) -> Result<Assessment, ActionError> {
        let status = self.registry.status(&cert.id).await?;
        let others = if reads_other_things(status.as_ref()) {
            self.registry.other_things(cert, thing).await?
        } else {
            Vec::new()
        };
        let standing = standing(status, recorded.contains(&cert.id), others);
        match &standing {
            Standing::NotOurs(status) => {
                tracing::info!(thing = %thing, certificate = %cert.id, %status,
                "certificate not active and not deactivated by the quarantine: left as it is, not recorded")
            }
            Standing::Missing => tracing::warn!(thing = %thing, certificate = %cert.id,
                "attached certificate not found by DescribeCertificate: skipped"),
            _ => {}
        }
        Ok(Assessment {
            id: cert.id.clone(),
            standing,
        })
    }

    async fn quarantine(&self, thing: &ThingName) -> Result<Applied, ActionError> {
        let attached = self.registry.thing_certificates(thing).await?;
        if attached.is_empty() {
            tracing::info!(thing = %thing, "no certificate attached to the thing: nothing to contain");
            return Ok(Applied::Done);
        }
        let attributes = self.registry.attributes(thing).await?;
        match (&self.action, &self.policy) {
            (CertificateAction::AttachPolicy, Some(policy)) => {
                self.attach_policy(thing, policy, &attached, &attributes)
                    .await
            }
            _ => self.deactivate(thing, &attached, &attributes).await,
        }
    }

    async fn deactivate(
        &self,
        thing: &ThingName,
        attached: &[AttachedCertificate],
        attributes: &HashMap<String, String>,
    ) -> Result<Applied, ActionError> {
        let recorded = Self::recorded(thing, attributes, &self.attribute).unwrap_or_default();
        let mut assessed = Vec::with_capacity(attached.len());
        for cert in attached {
            assessed.push(self.assess(thing, cert, &recorded).await?);
        }
        let plan = plan_quarantine(thing, &self.attribute, &recorded, &assessed)?;
        self.write_record(thing, &self.attribute, &plan).await?;
        for id in &plan.contain {
            self.registry.set_active(id, false).await?;
            tracing::info!(thing = %thing, certificate = %id, attribute = %self.attribute,
                "certificate deactivated (recorded for the release)");
        }
        Self::log_shared(thing, &plan);
        Ok(plan.applied)
    }

    pub(super) async fn write_record(
        &self,
        thing: &ThingName,
        attribute: &str,
        plan: &QuarantinePlan,
    ) -> Result<(), ActionError> {
        match &plan.record {
            Some(value) => self.registry.set_attribute(thing, attribute, value).await,
            None => Ok(()),
        }
    }

    pub(super) fn log_shared(thing: &ThingName, plan: &QuarantinePlan) {
        for shared in &plan.shared {
            tracing::warn!(thing = %thing, certificate = %shared.id, shared_with = %shared.others.join(","),
                "certificate also used by other things: left as it is");
        }
    }

    async fn release(&self, thing: &ThingName) -> Result<Applied, ActionError> {
        let attributes = self.registry.attributes(thing).await?;
        let deactivated = Self::recorded(thing, &attributes, &self.attribute);
        let attached = self
            .policy
            .as_ref()
            .and_then(|p| Some((p, Self::recorded(thing, &attributes, &p.attribute)?)));
        if deactivated.is_none() && attached.is_none() {
            tracing::info!(thing = %thing, attribute = %self.attribute,
                "no certificate recorded as contained by the quarantine: nothing to undo");
            return Ok(Applied::Done);
        }
        if let Some(recorded) = deactivated {
            self.reactivate(thing, &recorded).await?;
        }
        if let Some((policy, recorded)) = attached {
            self.detach_policy(thing, policy, &recorded).await?;
        }
        Ok(Applied::Done)
    }

    async fn reactivate(
        &self,
        thing: &ThingName,
        recorded: &[CertificateId],
    ) -> Result<(), ActionError> {
        for id in recorded {
            match release_step(self.registry.status(id).await?) {
                ReleaseStep::Reactivate => {
                    self.registry.set_active(id, true).await?;
                    tracing::info!(thing = %thing, certificate = %id, "certificate reactivated");
                }
                ReleaseStep::AlreadyActive => {}
                ReleaseStep::Changed(status) => {
                    tracing::warn!(thing = %thing, certificate = %id, %status,
                    "recorded certificate is neither ACTIVE nor INACTIVE (changed since the quarantine): left as it is")
                }
                ReleaseStep::Gone => tracing::warn!(thing = %thing, certificate = %id,
                    "recorded certificate no longer exists: nothing to reactivate"),
            }
        }
        self.registry
            .set_attribute(thing, &self.attribute, "")
            .await
    }
}

impl<R: CertificateRegistry> MitigationAction for CertificateQuarantine<R> {
    fn name(&self) -> &'static str {
        MitigationKind::Certificate.name()
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            match action {
                Action::Quarantine => self.quarantine(thing).await,
                Action::Release => self.release(thing).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{KeptBecause, Retry};
    use crate::certificates::record::ATTRIBUTE_VALUE_LIMIT;
    use crate::certificates::registry::{CertStatus, certificate_of_principal};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// One registry call, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        SetAttribute(String),
        SetActive(String, bool),
        AttachPolicy(String),
        DetachPolicy(String),
    }

    #[derive(Default)]
    struct State {
        /// certificate id → things it is attached to
        attached: HashMap<String, Vec<String>>,
        status: HashMap<String, CertStatus>,
        attributes: HashMap<(String, String), String>,
        /// certificate id → policies attached to it
        policies: HashMap<String, Vec<String>>,
        calls: Vec<Call>,
        /// every registry call, reads included, by its AWS operation
        operations: Vec<&'static str>,
        /// fail UpdateCertificate for this id once (retryable)
        fail_update_once: Option<String>,
    }

    #[derive(Clone, Default)]
    struct Registry(Arc<Mutex<State>>);

    const ATTR: &str = "quarantineDeactivatedCerts";

    fn id(n: u8) -> String {
        format!("{:064x}", u64::from(n) + 0xabc0)
    }

    impl Registry {
        fn cert(self, n: u8, status: &str, things: &[&str]) -> Self {
            {
                let mut s = self.0.lock().unwrap();
                s.attached
                    .insert(id(n), things.iter().map(|t| (*t).to_owned()).collect());
                s.status.insert(id(n), CertStatus::parse(status));
            }
            self
        }
        fn status_of(&self, n: u8) -> String {
            self.0.lock().unwrap().status[&id(n)].to_string()
        }
        fn attr(&self, thing: &str) -> Option<String> {
            self.0
                .lock()
                .unwrap()
                .attributes
                .get(&(thing.to_owned(), ATTR.to_owned()))
                .cloned()
        }
        fn set_attr(&self, thing: &str, value: &str) {
            self.0
                .lock()
                .unwrap()
                .attributes
                .insert((thing.to_owned(), ATTR.to_owned()), value.to_owned());
        }
        fn policies_of(&self, n: u8) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .policies
                .get(&id(n))
                .cloned()
                .unwrap_or_default()
        }
        fn attr_named(&self, thing: &str, name: &str) -> Option<String> {
            self.0
                .lock()
                .unwrap()
                .attributes
                .get(&(thing.to_owned(), name.to_owned()))
                .cloned()
        }
        fn operations(&self) -> Vec<&'static str> {
            std::mem::take(&mut self.0.lock().unwrap().operations)
        }
        fn calls(&self) -> Vec<Call> {
            self.0.lock().unwrap().calls.clone()
        }
    }

    fn not_found(op: &'static str, what: &str) -> ActionError {
        ActionError::permanent(op, what, "ResourceNotFoundException", "no such thing")
    }

    impl CertificateRegistry for Registry {
        fn thing_certificates<'a>(
            &'a self,
            thing: &'a ThingName,
        ) -> BoxFuture<'a, Result<Vec<AttachedCertificate>, ActionError>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .unwrap()
                    .operations
                    .push("ListThingPrincipalsV2");
                let s = self.0.lock().unwrap();
                let mut ids: Vec<&String> = s
                    .attached
                    .iter()
                    .filter(|(_, things)| things.iter().any(|t| t == thing.as_str()))
                    .map(|(id, _)| id)
                    .collect();
                ids.sort();
                Ok(ids
                    .into_iter()
                    .map(|i| {
                        certificate_of_principal(&format!("arn:aws:iot:us-east-1:1:cert/{i}"))
                            .unwrap()
                    })
                    .collect())
            })
        }
        fn other_things<'a>(
            &'a self,
            certificate: &'a AttachedCertificate,
            thing: &'a ThingName,
        ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .unwrap()
                    .operations
                    .push("ListPrincipalThingsV2");
                let s = self.0.lock().unwrap();
                Ok(s.attached[certificate.id.as_str()]
                    .iter()
                    .filter(|t| *t != thing.as_str())
                    .cloned()
                    .collect())
            })
        }
        fn status<'a>(
            &'a self,
            certificate: &'a CertificateId,
        ) -> BoxFuture<'a, Result<Option<CertStatus>, ActionError>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .unwrap()
                    .operations
                    .push("DescribeCertificate");
                Ok(self
                    .0
                    .lock()
                    .unwrap()
                    .status
                    .get(certificate.as_str())
                    .cloned())
            })
        }
        fn set_active<'a>(
            &'a self,
            certificate: &'a CertificateId,
            active: bool,
        ) -> BoxFuture<'a, Result<(), ActionError>> {
            Box::pin(async move {
                self.0.lock().unwrap().operations.push("UpdateCertificate");
                let mut s = self.0.lock().unwrap();
                if s.fail_update_once.as_deref() == Some(certificate.as_str()) {
                    s.fail_update_once = None;
                    return Err(ActionError::retryable(
                        "UpdateCertificate",
                        certificate.as_str(),
                        "ThrottlingException",
                        "scripted throttling",
                    ));
                }
                s.calls
                    .push(Call::SetActive(certificate.to_string(), active));
                let status = if active {
                    CertStatus::Active
                } else {
                    CertStatus::Inactive
                };
                match s.status.get_mut(certificate.as_str()) {
                    Some(st) => {
                        *st = status;
                        Ok(())
                    }
                    None => Err(not_found("UpdateCertificate", certificate.as_str())),
                }
            })
        }
        fn attributes<'a>(
            &'a self,
            thing: &'a ThingName,
        ) -> BoxFuture<'a, Result<HashMap<String, String>, ActionError>> {
            Box::pin(async move {
                self.0.lock().unwrap().operations.push("DescribeThing");
                Ok(self
                    .0
                    .lock()
                    .unwrap()
                    .attributes
                    .iter()
                    .filter(|((t, _), _)| t == thing.as_str())
                    .map(|((_, name), value)| (name.clone(), value.clone()))
                    .collect())
            })
        }
        fn set_attribute<'a>(
            &'a self,
            thing: &'a ThingName,
            name: &'a str,
            value: &'a str,
        ) -> BoxFuture<'a, Result<(), ActionError>> {
            Box::pin(async move {
                self.0.lock().unwrap().operations.push("UpdateThing");
                assert!(
                    value.len() <= ATTRIBUTE_VALUE_LIMIT,
                    "{} chars",
                    value.len()
                );
                let mut s = self.0.lock().unwrap();
                s.calls.push(Call::SetAttribute(value.to_owned()));
                let key = (thing.to_string(), name.to_owned());
                if value.is_empty() {
                    s.attributes.remove(&key);
                } else {
                    s.attributes.insert(key, value.to_owned());
                }
                Ok(())
            })
        }
        fn attached_policies<'a>(
            &'a self,
            certificate: &'a AttachedCertificate,
        ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .unwrap()
                    .operations
                    .push("ListAttachedPolicies");
                let s = self.0.lock().unwrap();
                Ok(s.policies
                    .get(certificate.id.as_str())
                    .cloned()
                    .unwrap_or_default())
            })
        }
        fn attach_policy<'a>(
            &'a self,
            policy: &'a str,
            certificate: &'a AttachedCertificate,
        ) -> BoxFuture<'a, Result<(), ActionError>> {
            Box::pin(async move {
                self.0.lock().unwrap().operations.push("AttachPolicy");
                let mut s = self.0.lock().unwrap();
                s.calls.push(Call::AttachPolicy(certificate.id.to_string()));
                let attached = s.policies.entry(certificate.id.to_string()).or_default();
                if !attached.iter().any(|p| p == policy) {
                    attached.push(policy.to_owned());
                }
                Ok(())
            })
        }
        fn detach_policy<'a>(
            &'a self,
            policy: &'a str,
            certificate: &'a AttachedCertificate,
        ) -> BoxFuture<'a, Result<bool, ActionError>> {
            Box::pin(async move {
                self.0.lock().unwrap().operations.push("DetachPolicy");
                let mut s = self.0.lock().unwrap();
                s.calls.push(Call::DetachPolicy(certificate.id.to_string()));
                let attached = s.policies.entry(certificate.id.to_string()).or_default();
                let before = attached.len();
                attached.retain(|p| p != policy);
                Ok(attached.len() < before)
            })
        }
    }

    fn thing(name: &str) -> ThingName {
        ThingName::parse(name).unwrap()
    }

    async fn run(registry: &Registry, action: Action, name: &str) -> Result<Applied, ActionError> {
        CertificateQuarantine::new(registry.clone(), ATTR)
            .apply(action, &thing(name))
            .await
    }

    const POLICY: &str = "stack-quarantine";
    const POLICY_ATTR: &str = "quarantinePolicyCerts";

    fn policy_record() -> PolicyRecord {
        PolicyRecord {
            policy: POLICY.into(),
            attribute: POLICY_ATTR.into(),
        }
    }

    async fn run_attaching(
        registry: &Registry,
        action: Action,
        name: &str,
    ) -> Result<Applied, ActionError> {
        CertificateQuarantine::new(registry.clone(), ATTR)
            .attaching(policy_record())
            .apply(action, &thing(name))
            .await
    }

    #[tokio::test]
    async fn attach_policy_records_then_attaches_to_exclusive_certificates_only() {
        let r = Registry::default()
            .cert(1, "ACTIVE", &["dev-1"])
            .cert(2, "ACTIVE", &["dev-1", "dev-2"])
            .cert(3, "INACTIVE", &["dev-1"]);
        let applied = run_attaching(&r, Action::Quarantine, "dev-1")
            .await
            .unwrap();
        assert_eq!(
            applied,
            Applied::DoneKeeping {
                because: KeptBecause::SharedCertificate,
                held_by: vec!["dev-2".into()]
            }
        );
        let both = format!("{},{}", id(1), id(3));
        assert_eq!(
            r.calls(),
            [
                Call::SetAttribute(both.clone()),
                Call::AttachPolicy(id(1)),
                Call::AttachPolicy(id(3)),
            ],
            "recorded first; an inactive certificate gets it too, in case it is reactivated"
        );
        assert_eq!(r.policies_of(1), [POLICY]);
        assert!(r.policies_of(2).is_empty(), "shared: never touched");
        assert_eq!(
            r.status_of(1),
            "ACTIVE",
            "attach-policy deactivates nothing"
        );
        assert_eq!(r.attr_named("dev-1", POLICY_ATTR), Some(both));
        assert_eq!(r.attr("dev-1"), None, "no deactivation record");

        // Delivered again: nothing written.
        let before = r.calls().len();
        run_attaching(&r, Action::Quarantine, "dev-1")
            .await
            .unwrap();
        assert_eq!(r.calls().len(), before);

        // The release detaches from the recorded ones and removes the record.
        run_attaching(&r, Action::Release, "dev-1").await.unwrap();
        assert!(r.policies_of(1).is_empty() && r.policies_of(3).is_empty());
        assert_eq!(r.attr_named("dev-1", POLICY_ATTR), None);
    }

    /// The figures docs/containment.md gives: attach-policy costs 3 + 3k calls for k
    /// certificates only the thing uses (1 more per shared one), 2 + 2k on a redelivery,
    /// 3 + k on release; deactivate 3 + 3k and 2 + 2k.
    #[tokio::test]
    async fn calls_per_record() {
        let count = |ops: Vec<&str>, op: &str| ops.iter().filter(|o| **o == op).count();
        for k in [1u8, 3] {
            let mut r = Registry::default().cert(100, "ACTIVE", &["dev-1", "dev-2"]);
            for n in 0..k {
                r = r.cert(n, "ACTIVE", &["dev-1"]);
            }
            let k = usize::from(k);
            run_attaching(&r, Action::Quarantine, "dev-1")
                .await
                .unwrap();
            let ops = r.operations();
            assert_eq!(ops.len(), 3 + 3 * k + 1, "{ops:?}");
            assert_eq!(count(ops.clone(), "AttachPolicy"), k);
            assert_eq!(count(ops, "ListPrincipalThingsV2"), k + 1);
            run_attaching(&r, Action::Quarantine, "dev-1")
                .await
                .unwrap();
            assert_eq!(r.operations().len(), 2 + 2 * k + 1, "redelivery");
            run_attaching(&r, Action::Release, "dev-1").await.unwrap();
            assert_eq!(r.operations().len(), 3 + k, "release");

            run(&r, Action::Quarantine, "dev-1").await.unwrap();
            assert_eq!(
                r.operations().len(),
                3 + 3 * k + 2,
                "deactivate (2 for the shared one)"
            );
            run(&r, Action::Release, "dev-1").await.unwrap();
            assert_eq!(r.operations().len(), 2 + 2 * k, "reactivate");
        }
    }

    #[tokio::test]
    async fn a_policy_attached_by_someone_else_is_neither_recorded_nor_detached() {
        let r = Registry::default().cert(1, "ACTIVE", &["dev-1"]);
        r.0.lock()
            .unwrap()
            .policies
            .insert(id(1), vec![POLICY.into()]);
        assert_eq!(
            run_attaching(&r, Action::Quarantine, "dev-1")
                .await
                .unwrap(),
            Applied::Done
        );
        assert_eq!(r.calls(), [], "contained already: nothing to do");
        run_attaching(&r, Action::Release, "dev-1").await.unwrap();
        assert_eq!(r.policies_of(1), [POLICY], "not ours to detach");
    }

    #[tokio::test]
    async fn a_shared_certificate_alone_is_kept_without_the_policy() {
        let r = Registry::default().cert(1, "ACTIVE", &["dev-1", "dev-2"]);
        assert_eq!(
            run_attaching(&r, Action::Quarantine, "dev-1")
                .await
                .unwrap(),
            Applied::Kept {
                because: KeptBecause::SharedCertificate,
                held_by: vec!["dev-2".into()],
            }
        );
        assert_eq!(r.calls(), []);
    }

    #[tokio::test]
    async fn a_forged_record_cannot_free_a_certificate_of_another_thing() {
        let r = Registry::default()
            .cert(1, "ACTIVE", &["dev-1"])
            .cert(2, "ACTIVE", &["dev-2"]);
        run_attaching(&r, Action::Quarantine, "dev-2")
            .await
            .unwrap();
        assert_eq!(r.policies_of(2), [POLICY]);
        // Someone with iot:UpdateThing names dev-2's certificate in dev-1's record.
        r.0.lock().unwrap().attributes.insert(
            ("dev-1".into(), POLICY_ATTR.into()),
            format!("{},{}", id(1), id(2)),
        );
        run_attaching(&r, Action::Release, "dev-1").await.unwrap();
        assert_eq!(r.policies_of(2), [POLICY], "dev-2 stays contained");
        assert_eq!(r.attr_named("dev-1", POLICY_ATTR), None);
    }

    #[tokio::test]
    async fn a_release_undoes_both_records_whichever_action_is_configured() {
        let r = Registry::default()
            .cert(1, "ACTIVE", &["dev-1"])
            .cert(2, "ACTIVE", &["dev-1"]);
        run(&r, Action::Quarantine, "dev-1").await.unwrap();
        run_attaching(&r, Action::Quarantine, "dev-1")
            .await
            .unwrap();
        assert_eq!(r.status_of(1), "INACTIVE");
        assert_eq!(r.policies_of(1), [POLICY]);
        CertificateQuarantine::new(r.clone(), ATTR)
            .knowing(policy_record())
            .apply(Action::Release, &thing("dev-1"))
            .await
            .unwrap();
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("ACTIVE".into(), "ACTIVE".into())
        );
        assert!(r.policies_of(1).is_empty() && r.policies_of(2).is_empty());
        assert_eq!(
            (r.attr("dev-1"), r.attr_named("dev-1", POLICY_ATTR)),
            (None, None)
        );
    }

    #[tokio::test]
    async fn a_shared_certificate_is_kept_naming_the_other_things() {
        let r = Registry::default().cert(1, "ACTIVE", &["dev-1", "dev-9", "dev-2"]);
        let applied = run(&r, Action::Quarantine, "dev-1").await.unwrap();
        assert_eq!(
            applied,
            Applied::Kept {
                because: KeptBecause::SharedCertificate,
                held_by: vec!["dev-2".into(), "dev-9".into()],
            }
        );
        assert_eq!(r.status_of(1), "ACTIVE");
        assert_eq!(r.calls(), [], "nothing recorded, nothing deactivated");
        assert_eq!(r.attr("dev-1"), None);
    }

    #[tokio::test]
    async fn an_exclusive_certificate_is_recorded_then_deactivated() {
        let r = Registry::default()
            .cert(1, "ACTIVE", &["dev-1"])
            .cert(2, "ACTIVE", &["dev-1"]);
        let applied = run(&r, Action::Quarantine, "dev-1").await.unwrap();
        assert_eq!(applied, Applied::Done);
        let both = format!("{},{}", id(1), id(2));
        assert_eq!(
            r.calls(),
            [
                Call::SetAttribute(both.clone()),
                Call::SetActive(id(1), false),
                Call::SetActive(id(2), false),
            ],
            "the record is written before any certificate is deactivated"
        );
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("INACTIVE".into(), "INACTIVE".into())
        );
        assert_eq!(r.attr("dev-1"), Some(both));
    }

    #[tokio::test]
    async fn exclusive_certificates_are_deactivated_and_shared_ones_kept_active() {
        let r = Registry::default().cert(1, "ACTIVE", &["dev-1"]).cert(
            2,
            "ACTIVE",
            &["dev-1", "dev-2"],
        );
        let applied = run(&r, Action::Quarantine, "dev-1").await.unwrap();
        assert_eq!(
            applied,
            Applied::DoneKeeping {
                because: KeptBecause::SharedCertificate,
                held_by: vec!["dev-2".into()]
            },
            "something was deactivated, and the shared one is named"
        );
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("INACTIVE".into(), "ACTIVE".into())
        );
        assert_eq!(r.attr("dev-1"), Some(id(1)));
    }

    #[tokio::test]
    async fn a_certificate_someone_else_deactivated_is_not_recorded_nor_reactivated() {
        let r = Registry::default()
            .cert(1, "INACTIVE", &["dev-1"])
            .cert(2, "REVOKED", &["dev-1"])
            .cert(3, "ACTIVE", &["dev-1"]);
        run(&r, Action::Quarantine, "dev-1").await.unwrap();
        assert_eq!(r.attr("dev-1"), Some(id(3)));
        run(&r, Action::Release, "dev-1").await.unwrap();
        assert_eq!(
            (r.status_of(1), r.status_of(2), r.status_of(3)),
            ("INACTIVE".into(), "REVOKED".into(), "ACTIVE".into())
        );
        assert_eq!(r.attr("dev-1"), None, "the record is removed");
    }

    #[tokio::test]
    async fn release_reactivates_only_the_recorded_certificates() {
        let r = Registry::default()
            .cert(1, "INACTIVE", &["dev-1"])
            .cert(2, "INACTIVE", &["dev-1"])
            .cert(3, "INACTIVE", &["dev-1"]);
        r.set_attr("dev-1", &format!("{}, {}", id(1), id(3)));
        assert_eq!(
            run(&r, Action::Release, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(
            r.calls(),
            [
                Call::SetActive(id(1), true),
                Call::SetActive(id(3), true),
                Call::SetAttribute(String::new()),
            ]
        );
        assert_eq!(r.status_of(2), "INACTIVE");
        assert_eq!(r.attr("dev-1"), None);
        // Again: nothing recorded, nothing to do.
        assert_eq!(
            run(&r, Action::Release, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(r.calls().len(), 3);
    }

    #[tokio::test]
    async fn more_than_twelve_certificates_is_a_permanent_error_changing_nothing() {
        let mut r = Registry::default();
        for n in 0..13 {
            r = r.cert(n, "ACTIVE", &["dev-1"]);
        }
        let err = run(&r, Action::Quarantine, "dev-1").await.unwrap_err();
        assert_eq!(err.retry, Retry::Permanent);
        assert_eq!(err.code, "TooManyCertificates");
        assert!(
            err.message.contains("13 certificate ids"),
            "{}",
            err.message
        );
        assert_eq!(r.calls(), []);
        // Twelve fit in the 800 characters.
        let mut r = Registry::default();
        for n in 0..12 {
            r = r.cert(n, "ACTIVE", &["dev-1"]);
        }
        assert_eq!(
            run(&r, Action::Quarantine, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(r.attr("dev-1").unwrap().len(), 12 * 64 + 11);
    }

    #[tokio::test]
    async fn a_retry_after_a_failed_deactivation_finishes_the_job_and_keeps_the_record() {
        let r = Registry::default()
            .cert(1, "ACTIVE", &["dev-1"])
            .cert(2, "ACTIVE", &["dev-1"]);
        r.0.lock().unwrap().fail_update_once = Some(id(2));
        let err = run(&r, Action::Quarantine, "dev-1").await.unwrap_err();
        assert_eq!(err.retry, Retry::Retryable);
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("INACTIVE".into(), "ACTIVE".into())
        );
        assert_eq!(
            run(&r, Action::Quarantine, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("INACTIVE".into(), "INACTIVE".into())
        );
        assert_eq!(r.attr("dev-1"), Some(format!("{},{}", id(1), id(2))));
        // A third delivery changes nothing and is still done (not kept).
        let before = r.calls().len();
        assert_eq!(
            run(&r, Action::Quarantine, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(r.calls().len(), before);
        // The release reactivates both.
        run(&r, Action::Release, "dev-1").await.unwrap();
        assert_eq!(
            (r.status_of(1), r.status_of(2)),
            ("ACTIVE".into(), "ACTIVE".into())
        );
    }

    #[tokio::test]
    async fn a_thing_without_certificates_is_done_with_nothing_to_do() {
        let r = Registry::default().cert(1, "ACTIVE", &["other"]);
        assert_eq!(
            run(&r, Action::Quarantine, "dev-1").await.unwrap(),
            Applied::Done
        );
        assert_eq!(r.calls(), []);
    }
}
