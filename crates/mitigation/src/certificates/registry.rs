//! What the certificate mitigation asks the thing registry, as a trait: the adapter on the
//! AWS SDK is `mitigation_aws::certificates::IotCertificates`; tests use an in-memory one.

use std::collections::HashMap;
use std::fmt;

use futures::future::BoxFuture;
use violation_core::{CertificateId, ThingName};

use crate::action::ActionError;

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

/// The registry calls the certificate mitigation makes.
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

    /// The thing's attributes with a value (DescribeThing).
    fn attributes<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, ActionError>>;

    /// Set one thing attribute, keeping the others (UpdateThing, merge); an empty value
    /// removes it.
    fn set_attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// The names of the IoT policies attached to the certificate (ListAttachedPolicies).
    fn attached_policies<'a>(
        &'a self,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;

    /// Attach the IoT policy to the certificate (AttachPolicy; attaching twice is harmless).
    fn attach_policy<'a>(
        &'a self,
        policy: &'a str,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// Detach the IoT policy from the certificate (DetachPolicy); `false` when it was not
    /// attached (or the certificate or the policy no longer exists).
    fn detach_policy<'a>(
        &'a self,
        policy: &'a str,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<bool, ActionError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificate_principals_are_certificates() {
        let id = format!("{:064x}", 0xabc1);
        let cert = format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}");
        assert_eq!(certificate_of_principal(&cert).unwrap().id.as_str(), id);
        assert!(certificate_of_principal("arn:aws:iam::123456789012:role/x").is_none());
        assert!(certificate_of_principal("eu-west-1:1234-abcd").is_none());
        assert!(certificate_of_principal("arn:aws:iot:r:a:cert/short").is_none());
    }

    #[test]
    fn statuses_other_than_active_and_inactive_keep_their_name() {
        for text in ["ACTIVE", "INACTIVE", "REVOKED", "PENDING_TRANSFER"] {
            assert_eq!(CertStatus::parse(text).to_string(), text);
        }
        assert_eq!(
            CertStatus::parse("REVOKED"),
            CertStatus::Other("REVOKED".into())
        );
    }
}
