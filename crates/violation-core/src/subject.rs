//! What an alert asks to act on: a thing, or a certificate whose things are to be acted on.
//!
//! Alerts name their subject in several ways. A thing name, and an MQTT client id (by
//! convention the thing name: the quarantine policy's variables only work then) become
//! [`Subject::Thing`]; a thing ARN `arn:aws:iot:REGION:ACCOUNT:thing/NAME` too. A certificate
//! id (64 hex) or certificate ARN `arn:aws:iot:REGION:ACCOUNT:cert/ID` becomes
//! [`Subject::Certificate`]: the functions resolve it to its things (ListPrincipalThingsV2).

use std::fmt;

use crate::certificate::{CertificateId, InvalidCertificateId};
use crate::reject::excerpt;
use crate::thing_name::{InvalidThingName, ThingName};
use crate::trust::{self, LocalScope};

/// One subject of an alert. Its display form is the ARN's resource part, `thing/NAME` or
/// `cert/ID`, which cannot be confused because a thing name has no `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Thing(ThingName),
    Certificate(CertificateId),
}

/// Why a reference to a subject cannot be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSubject {
    #[error(transparent)]
    Thing(#[from] InvalidThingName),
    #[error(transparent)]
    Certificate(#[from] InvalidCertificateId),
    #[error(
        "{arn:?} is not an AWS IoT thing or certificate ARN (arn:PARTITION:iot:REGION:ACCOUNT:thing/NAME or .../cert/ID)"
    )]
    NotAnIotArn { arn: String },
    /// A thing of another account or region would be confused with the local thing of the
    /// same name.
    #[error("{arn:?} is in {found}, but this stack acts only in {expected}")]
    Foreign {
        arn: String,
        found: String,
        expected: String,
    },
}

impl Subject {
    /// A thing name or a client id.
    pub fn thing(name: &str) -> Result<Self, InvalidSubject> {
        Ok(Subject::Thing(ThingName::parse(name)?))
    }

    /// A certificate id.
    pub fn certificate(id: &str) -> Result<Self, InvalidSubject> {
        Ok(Subject::Certificate(CertificateId::parse(id)?))
    }

    /// A thing ARN or a certificate ARN, in any partition, account and region.
    pub fn from_arn(arn: &str) -> Result<Self, InvalidSubject> {
        Self::from_arn_in(arn, &LocalScope::default())
    }

    /// A thing ARN or a certificate ARN of the scope's account and region (what is not
    /// known there is not checked).
    pub fn from_arn_in(arn: &str, scope: &LocalScope) -> Result<Self, InvalidSubject> {
        let not_iot = || InvalidSubject::NotAnIotArn {
            arn: excerpt(arn, 200),
        };
        // arn:partition:service:region:account:resource; a thing name may contain ':'.
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, _partition, service, region, account, resource] = parts[..] else {
            return Err(not_iot());
        };
        if prefix != "arn" || service != "iot" {
            return Err(not_iot());
        }
        let subject = if let Some(name) = resource.strip_prefix("thing/") {
            Subject::thing(name)?
        } else if let Some(id) = resource.strip_prefix("cert/") {
            Subject::certificate(id)?
        } else {
            return Err(not_iot());
        };
        if scope.excludes(Some(account), Some(region)) {
            return Err(InvalidSubject::Foreign {
                arn: excerpt(arn, 200),
                found: trust::describe(Some(account), Some(region)),
                expected: scope.describe(),
            });
        }
        Ok(subject)
    }

    /// Whether `text` looks like an IoT thing or certificate ARN, valid or not.
    pub fn is_iot_resource_arn(text: &str) -> bool {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        matches!(parts[..], ["arn", _, "iot", _, _, resource]
            if resource.starts_with("thing/") || resource.starts_with("cert/"))
    }

    pub fn thing_name(&self) -> Option<&ThingName> {
        match self {
            Subject::Thing(name) => Some(name),
            Subject::Certificate(_) => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Thing(name) => write!(f, "thing/{name}"),
            Subject::Certificate(id) => write!(f, "cert/{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

    #[test]
    fn thing_and_certificate_arns_become_subjects() {
        let thing = Subject::from_arn("arn:aws:iot:eu-west-1:123456789012:thing/dev-1");
        assert_eq!(thing.map(|s| s.to_string()), Ok("thing/dev-1".to_owned()));
        let colon = Subject::from_arn("arn:aws-cn:iot:cn-north-1:123456789012:thing/a:b");
        assert_eq!(colon.map(|s| s.to_string()), Ok("thing/a:b".to_owned()));
        let cert = Subject::from_arn(&format!("arn:aws:iot:us-east-1:123456789012:cert/{ID}"));
        assert_eq!(cert.map(|s| s.to_string()), Ok(format!("cert/{ID}")));
    }

    #[test]
    fn other_arns_and_bad_names_are_refused() {
        for arn in [
            "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
            "arn:aws:iot:us-east-1",
            "dev-1",
        ] {
            assert!(
                matches!(
                    Subject::from_arn(arn),
                    Err(InvalidSubject::NotAnIotArn { .. })
                ),
                "{arn}"
            );
        }
        assert!(matches!(
            Subject::from_arn("arn:aws:iot:us-east-1:1:thing/a/../b"),
            Err(InvalidSubject::Thing(_))
        ));
        assert!(matches!(
            Subject::from_arn("arn:aws:iot:us-east-1:1:cert/xyz"),
            Err(InvalidSubject::Certificate(_))
        ));
        assert!(Subject::is_iot_resource_arn("arn:aws:iot:r:a:thing/x/y"));
        assert!(!Subject::is_iot_resource_arn("arn:aws:iot:r:a:policy/x"));
    }

    #[test]
    fn arns_of_another_account_or_region_are_refused_naming_both() {
        let scope = LocalScope::new(Some("123456789012"), Some("eu-west-1"));
        let local = Subject::from_arn_in("arn:aws:iot:eu-west-1:123456789012:thing/gw-01", &scope);
        assert_eq!(local, Subject::thing("gw-01"));
        let foreign = "arn:aws:iot:us-east-1:999999999999:thing/gw-01";
        let refused = Subject::from_arn_in(foreign, &scope);
        assert_eq!(
            refused,
            Err(InvalidSubject::Foreign {
                arn: foreign.to_owned(),
                found: "account 999999999999 in region us-east-1".to_owned(),
                expected: "account 123456789012 in region eu-west-1".to_owned(),
            })
        );
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err(format!(
                "{foreign:?} is in account 999999999999 in region us-east-1, but this stack acts only in account 123456789012 in region eu-west-1"
            ))
        );
        let other_region = format!("arn:aws:iot:us-east-1:123456789012:cert/{ID}");
        assert!(matches!(
            Subject::from_arn_in(&other_region, &scope),
            Err(InvalidSubject::Foreign { .. })
        ));
        // An invalid name is reported as such, whatever its account.
        assert!(matches!(
            Subject::from_arn_in("arn:aws:iot:us-east-1:9:thing/a/b", &scope),
            Err(InvalidSubject::Thing(_))
        ));
        // Unchecked parts match anything.
        let region_only = LocalScope::new(None, Some("us-east-1"));
        assert!(Subject::from_arn_in(foreign, &region_only).is_ok());
    }
}
