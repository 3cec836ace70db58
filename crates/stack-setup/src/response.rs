//! The JSON document CloudFormation expects on the request's `ResponseURL`.

use serde::{Deserialize, Serialize};

use crate::request::Envelope;

/// CloudFormation refuses a response body over 4096 bytes; the reason is cut well below.
pub const MAX_REASON_CHARS: usize = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

/// `Data`: what the resource did (shown in the stack's events; the template reads none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Data {
    pub policy_name: String,
    pub thing_group_arn: String,
    /// `not-requested`, `already-enabled` or `enabled`.
    pub fleet_indexing: String,
    /// Thing-group membership registry events: the same three values.
    pub membership_events: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseBody {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Data>,
}

impl ResponseBody {
    /// The answer to `envelope`'s request. A physical id CloudFormation would refuse (empty)
    /// is replaced by the request id.
    pub fn new(
        envelope: &Envelope,
        status: Status,
        reason: &str,
        physical_resource_id: &str,
        data: Option<Data>,
    ) -> ResponseBody {
        let physical_resource_id = if physical_resource_id.trim().is_empty() {
            envelope
                .physical_resource_id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| format!("create-failed:{}", envelope.request_id))
        } else {
            physical_resource_id.to_owned()
        };
        ResponseBody {
            status,
            reason: violation_core::reject::excerpt(reason, MAX_REASON_CHARS),
            physical_resource_id,
            stack_id: envelope.stack_id.clone(),
            request_id: envelope.request_id.clone(),
            logical_resource_id: envelope.logical_resource_id.clone(),
            data,
        }
    }

    /// The body as sent.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and enums cannot fail; the fallback keeps this panic-free.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            response_url: "http://127.0.0.1:1/r".into(),
            request_type: "Create".into(),
            stack_id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid".into(),
            request_id: "req-1".into(),
            logical_resource_id: "QuarantineSetup".into(),
            physical_resource_id: None,
        }
    }

    #[test]
    fn success_body_has_every_field_cloudformation_reads() {
        let body = ResponseBody::new(
            &envelope(),
            Status::Success,
            "attached",
            "s-quarantine|Quarantine",
            Some(Data {
                policy_name: "s-quarantine".into(),
                thing_group_arn: "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine".into(),
                fleet_indexing: "enabled".into(),
                membership_events: "already-enabled".into(),
            }),
        );
        let json: Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(
            json,
            json!({
                "Status": "SUCCESS",
                "Reason": "attached",
                "PhysicalResourceId": "s-quarantine|Quarantine",
                "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid",
                "RequestId": "req-1",
                "LogicalResourceId": "QuarantineSetup",
                "Data": {
                    "PolicyName": "s-quarantine",
                    "ThingGroupArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine",
                    "FleetIndexing": "enabled",
                    "MembershipEvents": "already-enabled"
                }
            })
        );
    }

    #[test]
    fn failed_body_has_a_bounded_reason_and_never_an_empty_id() {
        let long = "x".repeat(5000);
        let body = ResponseBody::new(&envelope(), Status::Failed, &long, "", None);
        let json: Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(json["Status"], "FAILED");
        assert_eq!(json["PhysicalResourceId"], "create-failed:req-1");
        assert!(json.get("Data").is_none());
        assert!(body.reason.chars().count() <= MAX_REASON_CHARS + 1);
        assert!(body.to_json().len() < 4096);

        let mut update = envelope();
        update.physical_resource_id = Some("s-quarantine|Quarantine".into());
        let body = ResponseBody::new(&update, Status::Failed, "no", " ", None);
        assert_eq!(body.physical_resource_id, "s-quarantine|Quarantine");
    }
}
