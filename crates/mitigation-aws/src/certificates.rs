//! The certificate mitigation (`quarantine-certificate`): deactivate the X.509 certificates a
//! thing uses, but never one that other things use too, and record what was deactivated in a
//! registry attribute of the thing, so that a release reactivates exactly that.
//!
//! On quarantine:
//! 1. ListThingPrincipalsV2: the thing's certificates (other principals are skipped);
//! 2. DescribeThing: what an earlier attempt recorded (attribute `CERTIFICATE_RECORD_ATTRIBUTE`);
//! 3. per certificate, DescribeCertificate (its status) and, for an ACTIVE one,
//!    ListPrincipalThingsV2: a certificate that other things also use is left ACTIVE and
//!    reported `kept` (`shared-certificate`, naming the other things); an INACTIVE one is
//!    ours only if it is recorded (a certificate someone else deactivated is not recorded,
//!    so a release never reactivates it);
//! 4. UpdateThing (merge): the recorded ids plus the ones about to be deactivated, FIRST;
//! 5. UpdateCertificate INACTIVE for each of those, THEN.
//!
//! Recording before deactivating means a failure between the two leaves a certificate
//! recorded and still ACTIVE (the retry deactivates it; a release reactivates an ACTIVE
//! certificate harmlessly), never a deactivated certificate nobody knows about.
//!
//! The result: `kept` only when nothing of the thing is (now) deactivated by us and at least
//! one certificate was kept because it is shared; otherwise `done` (shared certificates of a
//! thing whose own certificates were deactivated are logged, with the things sharing them).
//!
//! On release: DescribeThing → the recorded ids → for each, DescribeCertificate and
//! UpdateCertificate ACTIVE when it is INACTIVE (a certificate revoked or deleted since is
//! left alone, with a warning) → UpdateThing removes the attribute. Every step is
//! idempotent, so SNS/SQS redeliveries and retries are safe.
//!
//! The record lives in the thing registry, which a device cannot write (unlike its shadow).
//! An attribute value holds at most 800 characters: 12 certificate ids (64 characters each,
//! comma-separated). A thing that would need more is a permanent error, with nothing changed.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_iot::types::{AttributePayload, CertificateStatus};
use futures::future::BoxFuture;
use mitigation::function::CERTIFICATE_ACTION;
use mitigation::{ActionError, Applied, KeptBecause, MitigationAction};
use violation_core::{Action, CertificateId, ThingName};

use crate::adapters::{Paging, classify};

/// Certificate ids an attribute value can hold: 12 × 64 characters + 11 commas = 779 ≤ 800.
pub const MAX_RECORDED_CERTIFICATES: usize = 12;
/// The longest thing attribute value AWS IoT accepts.
pub const ATTRIBUTE_VALUE_LIMIT: usize = 800;
/// Pages read at most when listing a thing's principals or a certificate's things.
const MAX_PAGES: usize = 10;

/// A certificate's status, as far as the mitigation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Active,
    Inactive,
    /// REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, PENDING_ACTIVATION, ...: never touched.
    Other(String),
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertStatus::Active => f.write_str("ACTIVE"),
            CertStatus::Inactive => f.write_str("INACTIVE"),
            CertStatus::Other(s) => f.write_str(s),
        }
    }
}

impl CertStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "ACTIVE" => CertStatus::Active,
            "INACTIVE" => CertStatus::Inactive,
            other => CertStatus::Other(other.to_owned()),
        }
    }
}

/// A certificate attached to a thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedCertificate {
    pub id: CertificateId,
    pub arn: String,
}

/// `arn:aws:iot:REGION:ACCOUNT:cert/ID` → the certificate; `None` for other principals
/// (IAM users and roles, Cognito identities) and malformed certificate ARNs.
pub fn certificate_of_principal(principal: &str) -> Option<AttachedCertificate> {
    let (_, id) = principal.split_once(":cert/")?;
    let id = CertificateId::parse(id).ok()?;
    Some(AttachedCertificate {
        id,
        arn: principal.to_owned(),
    })
}

/// The registry calls the certificate mitigation makes; the real one is [`IotCertificates`],
/// tests use an in-memory registry.
pub trait CertificateRegistry: Send + Sync {
    /// The thing's X.509 certificates (ListThingPrincipalsV2), without duplicates.
    fn thing_certificates<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<AttachedCertificate>, ActionError>>;

    /// Things other than `thing` that the certificate is attached to (ListPrincipalThingsV2;
    /// reading stops after the first page that names one).
    fn other_things<'a>(
        &'a self,
        certificate: &'a AttachedCertificate,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;

    /// The certificate's status (DescribeCertificate); `None` when it does not exist.
    fn status<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Option<CertStatus>, ActionError>>;

    /// UpdateCertificate to ACTIVE (`active`) or INACTIVE.
    fn set_active<'a>(
        &'a self,
        certificate: &'a CertificateId,
        active: bool,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// A thing attribute (DescribeThing); `None` when the thing has no such attribute.
    fn attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ActionError>>;

    /// Set one thing attribute, keeping the others (UpdateThing, merge); an empty value
    /// removes it.
    fn set_attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>>;
}

/// The ids recorded in an attribute value: comma-separated certificate ids. Anything else
/// in it is returned apart (and never acted on).
pub fn parse_record(value: &str) -> (Vec<CertificateId>, Vec<String>) {
    let mut ids = Vec::new();
    let mut odd = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match CertificateId::parse(&part.to_ascii_lowercase()) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => odd.push(part.to_owned()),
        }
    }
    (ids, odd)
}

fn record_value(ids: &[CertificateId]) -> String {
    let ids: Vec<&str> = ids.iter().map(CertificateId::as_str).collect();
    ids.join(",")
}

/// Quarantine = deactivate the thing's own certificates (recorded first); release =
/// reactivate the recorded ones and remove the record.
pub struct CertificateQuarantine<R> {
    registry: R,
    attribute: String,
}

impl<R: CertificateRegistry> CertificateQuarantine<R> {
    pub fn new(registry: R, attribute: impl Into<String>) -> Self {
        CertificateQuarantine {
            registry,
            attribute: attribute.into(),
        }
    }

    async fn recorded(&self, thing: &ThingName) -> Result<(Vec<CertificateId>, bool), ActionError> {
        let value = self.registry.attribute(thing, &self.attribute).await?;
        let Some(value) = value else {
            return Ok((Vec::new(), false));
        };
        let (ids, odd) = parse_record(&value);
        if !odd.is_empty() {
            tracing::warn!(thing = %thing, attribute = %self.attribute, odd = %odd.join(","),
                "the record holds values that are not certificate ids: ignored");
        }
        Ok((ids, true))
    }

    async fn quarantine(&self, thing: &ThingName) -> Result<Applied, ActionError> {
        let attached = self.registry.thing_certificates(thing).await?;
        if attached.is_empty() {
            tracing::info!(thing = %thing, "no certificate attached to the thing: nothing to deactivate");
            return Ok(Applied::Done);
        }
        let (recorded, _) = self.recorded(thing).await?;
        let mut deactivate: Vec<CertificateId> = Vec::new();
        let mut ours_already = 0;
        let mut shared: Vec<(CertificateId, Vec<String>)> = Vec::new();
        for cert in &attached {
            match self.registry.status(&cert.id).await? {
                Some(CertStatus::Active) => {
                    let others = self.registry.other_things(cert, thing).await?;
                    if others.is_empty() {
                        deactivate.push(cert.id.clone());
                    } else {
                        shared.push((cert.id.clone(), others));
                    }
                }
                Some(CertStatus::Inactive) if recorded.contains(&cert.id) => ours_already += 1,
                Some(status) => tracing::info!(thing = %thing, certificate = %cert.id, %status,
                    "certificate not active and not deactivated by the quarantine: left as it is, not recorded"),
                None => tracing::warn!(thing = %thing, certificate = %cert.id,
                    "attached certificate not found by DescribeCertificate: skipped"),
            }
        }
        let mut record = recorded.clone();
        for id in &deactivate {
            if !record.contains(id) {
                record.push(id.clone());
            }
        }
        if record.len() > MAX_RECORDED_CERTIFICATES {
            return Err(too_many(thing, &self.attribute, record.len()));
        }
        if record != recorded {
            self.registry
                .set_attribute(thing, &self.attribute, &record_value(&record))
                .await?;
        }
        for id in &deactivate {
            self.registry.set_active(id, false).await?;
            tracing::info!(thing = %thing, certificate = %id, attribute = %self.attribute,
                "certificate deactivated (recorded for the release)");
        }
        let held_by: Vec<String> = shared
            .iter()
            .flat_map(|(_, others)| others.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (id, others) in &shared {
            tracing::warn!(thing = %thing, certificate = %id, shared_with = %others.join(","),
                "certificate also used by other things: left ACTIVE");
        }
        if held_by.is_empty() {
            return Ok(Applied::Done);
        }
        let because = KeptBecause::SharedCertificate;
        if deactivate.is_empty() && ours_already == 0 {
            Ok(Applied::Kept { because, held_by })
        } else {
            Ok(Applied::DoneKeeping { because, held_by })
        }
    }

    async fn release(&self, thing: &ThingName) -> Result<Applied, ActionError> {
        let (recorded, present) = self.recorded(thing).await?;
        if !present {
            tracing::info!(thing = %thing, attribute = %self.attribute,
                "no certificate recorded as deactivated by the quarantine: nothing to reactivate");
            return Ok(Applied::Done);
        }
        for id in &recorded {
            match self.registry.status(id).await? {
                Some(CertStatus::Inactive) => {
                    self.registry.set_active(id, true).await?;
                    tracing::info!(thing = %thing, certificate = %id, "certificate reactivated");
                }
                Some(CertStatus::Active) => {}
                Some(status) => tracing::warn!(thing = %thing, certificate = %id, %status,
                    "recorded certificate is neither ACTIVE nor INACTIVE (changed since the quarantine): left as it is"),
                None => tracing::warn!(thing = %thing, certificate = %id,
                    "recorded certificate no longer exists: nothing to reactivate"),
            }
        }
        self.registry
            .set_attribute(thing, &self.attribute, "")
            .await?;
        Ok(Applied::Done)
    }
}

fn too_many(thing: &ThingName, attribute: &str, n: usize) -> ActionError {
    ActionError::permanent(
        "UpdateThing",
        thing.to_string(),
        "TooManyCertificates",
        format!(
            "{n} certificate ids would have to be recorded in attribute {attribute}, whose {ATTRIBUTE_VALUE_LIMIT}-character value holds at most {MAX_RECORDED_CERTIFICATES}; nothing was changed"
        ),
    )
    .with_hint(format!(
        "deactivate the certificates of thing {thing} by hand (aws iot update-certificate --new-status INACTIVE) and keep your own record of them"
    ))
}

impl<R: CertificateRegistry> MitigationAction for CertificateQuarantine<R> {
    fn name(&self) -> &'static str {
        CERTIFICATE_ACTION
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

/// [`CertificateRegistry`] on the IoT control-plane client.
#[derive(Clone)]
pub struct IotCertificates {
    client: aws_sdk_iot::Client,
}

impl IotCertificates {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        IotCertificates { client }
    }
}

fn cert_subject(id: &CertificateId) -> String {
    format!("cert/{id}")
}

impl CertificateRegistry for IotCertificates {
    fn thing_certificates<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<AttachedCertificate>, ActionError>> {
        Box::pin(async move {
            let mut certificates: Vec<AttachedCertificate> = Vec::new();
            let mut skipped = 0;
            let mut pages = Paging::new(MAX_PAGES);
            while let Some(token) = pages.next_page() {
                let page = self
                    .client
                    .list_thing_principals_v2()
                    .thing_name(thing.as_str())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| classify("ListThingPrincipalsV2", thing.as_str(), e))?;
                for object in page.thing_principal_objects() {
                    match certificate_of_principal(object.principal()) {
                        Some(c) if !certificates.contains(&c) => certificates.push(c),
                        Some(_) => {}
                        None => skipped += 1,
                    }
                }
                pages.answered(page.next_token());
            }
            if skipped > 0 {
                tracing::debug!(thing = %thing, skipped, "principals that are not X.509 certificates skipped");
            }
            Ok(certificates)
        })
    }

    fn other_things<'a>(
        &'a self,
        certificate: &'a AttachedCertificate,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let mut others = Vec::new();
            let mut pages = Paging::new(MAX_PAGES);
            while let Some(token) = pages.next_page() {
                let page = self
                    .client
                    .list_principal_things_v2()
                    .principal(&certificate.arn)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| {
                        classify("ListPrincipalThingsV2", &cert_subject(&certificate.id), e)
                    })?;
                others.extend(
                    page.principal_thing_objects()
                        .iter()
                        .map(|o| o.thing_name())
                        .filter(|t| *t != thing.as_str())
                        .map(str::to_owned),
                );
                // The first page that names another thing is enough.
                pages.answered(page.next_token().filter(|_| others.is_empty()));
            }
            Ok(others)
        })
    }

    fn status<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Option<CertStatus>, ActionError>> {
        Box::pin(async move {
            let result = self
                .client
                .describe_certificate()
                .certificate_id(certificate.as_str())
                .send()
                .await;
            match result {
                Ok(out) => Ok(Some(
                    out.certificate_description()
                        .and_then(|d| d.status())
                        .map_or(CertStatus::Other("UNKNOWN".into()), |s| {
                            CertStatus::parse(s.as_str())
                        }),
                )),
                Err(e) => {
                    let e = classify("DescribeCertificate", &cert_subject(certificate), e);
                    if e.code == "ResourceNotFoundException" {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        })
    }

    fn set_active<'a>(
        &'a self,
        certificate: &'a CertificateId,
        active: bool,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let status = if active {
                CertificateStatus::Active
            } else {
                CertificateStatus::Inactive
            };
            self.client
                .update_certificate()
                .certificate_id(certificate.as_str())
                .new_status(status)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateCertificate", &cert_subject(certificate), e))
        })
    }

    fn attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ActionError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_thing()
                .thing_name(thing.as_str())
                .send()
                .await
                .map_err(|e| classify("DescribeThing", thing.as_str(), e))?;
            Ok(out
                .attributes()
                .and_then(|a| a.get(name))
                .filter(|v| !v.is_empty())
                .cloned())
        })
    }

    fn set_attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let payload = AttributePayload::builder()
                .attributes(name, value)
                .merge(true)
                .build();
            self.client
                .update_thing()
                .thing_name(thing.as_str())
                .attribute_payload(payload)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateThing", thing.as_str(), e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mitigation::Retry;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// One registry call, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        SetAttribute(String),
        SetActive(String, bool),
    }

    #[derive(Default)]
    struct State {
        /// certificate id → things it is attached to
        attached: HashMap<String, Vec<String>>,
        status: HashMap<String, CertStatus>,
        attributes: HashMap<(String, String), String>,
        calls: Vec<Call>,
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
        fn attribute<'a>(
            &'a self,
            thing: &'a ThingName,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<String>, ActionError>> {
            Box::pin(async move {
                Ok(self
                    .0
                    .lock()
                    .unwrap()
                    .attributes
                    .get(&(thing.to_string(), name.to_owned()))
                    .cloned())
            })
        }
        fn set_attribute<'a>(
            &'a self,
            thing: &'a ThingName,
            name: &'a str,
            value: &'a str,
        ) -> BoxFuture<'a, Result<(), ActionError>> {
            Box::pin(async move {
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
    }

    fn thing(name: &str) -> ThingName {
        ThingName::parse(name).unwrap()
    }

    async fn run(registry: &Registry, action: Action, name: &str) -> Result<Applied, ActionError> {
        CertificateQuarantine::new(registry.clone(), ATTR)
            .apply(action, &thing(name))
            .await
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

    #[test]
    fn principals_and_records_are_read_tolerantly() {
        let cert = format!("arn:aws:iot:eu-west-1:123456789012:cert/{}", id(1));
        assert_eq!(certificate_of_principal(&cert).unwrap().id.as_str(), id(1));
        assert!(certificate_of_principal("arn:aws:iam::123456789012:role/x").is_none());
        assert!(certificate_of_principal("eu-west-1:1234-abcd").is_none());
        assert!(certificate_of_principal("arn:aws:iot:r:a:cert/short").is_none());
        let (ids, odd) = parse_record(&format!(" {} ,,junk,{}", id(1), id(1).to_uppercase()));
        assert_eq!(ids.len(), 1);
        assert_eq!(odd, ["junk"]);
    }
}
