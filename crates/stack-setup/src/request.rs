//! The CloudFormation custom resource request, decoded in two steps so that a malformed event
//! still gets an answer: first the envelope (where and how to answer), read field by field,
//! then the typed request (`aws_lambda_events`' CloudFormation types) and its properties.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde_json::Value;
use violation_core::json_type;

/// What a response needs, read leniently from the raw event. Only `ResponseURL` is required:
/// without it there is nowhere to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub response_url: String,
    pub request_type: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// Absent on Create.
    pub physical_resource_id: Option<String>,
}

/// The event has no usable `ResponseURL`: nobody can be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event has no ResponseURL string, so CloudFormation cannot be answered: {0}")]
pub struct NoResponseUrl(pub String);

impl Envelope {
    pub fn read(event: &Value) -> Result<Envelope, NoResponseUrl> {
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        let response_url = match event.get("ResponseURL") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim().to_owned(),
            Some(other) => return Err(NoResponseUrl(format!("ResponseURL is {other}"))),
            None if event.is_object() => {
                return Err(NoResponseUrl("the field is missing".into()));
            }
            None => {
                return Err(NoResponseUrl(format!(
                    "the event is not a JSON object but {}",
                    json_type(event)
                )));
            }
        };
        Ok(Envelope {
            response_url,
            request_type: text("RequestType").unwrap_or_default(),
            stack_id: text("StackId").unwrap_or_default(),
            request_id: text("RequestId").unwrap_or_default(),
            logical_resource_id: text("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: text("PhysicalResourceId"),
        })
    }
}

/// The resource's properties (CloudFormation delivers every value as a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub policy_name: String,
    pub thing_group_name: String,
    pub thing_group_arn: String,
    pub enable_fleet_indexing: bool,
    /// `EnableMembershipEvents`: turn on the registry's thing-group membership events (for
    /// putting back a thing removed from the group; see docs/ledger.md).
    pub enable_membership_events: bool,
}

/// A property that can never work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("property {property} {problem}")]
pub struct PropertyError {
    pub property: &'static str,
    pub problem: String,
}

impl Properties {
    /// `ServiceToken` and `ServiceTimeout` are ignored, as is any property not listed here.
    /// `EnableFleetIndexing` and `EnableMembershipEvents` may be absent (false);
    /// `"true"`/`"false"` in any case, or a JSON boolean, are accepted.
    pub fn read(value: &Value) -> Result<Properties, PropertyError> {
        if !value.is_object() {
            return Err(PropertyError {
                property: "ResourceProperties",
                problem: format!("is {}, expected an object", json_type(value)),
            });
        }
        let text = |property: &'static str| -> Result<String, PropertyError> {
            match value.get(property) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                Some(Value::String(_)) => Err(PropertyError {
                    property,
                    problem: "is empty".into(),
                }),
                Some(other) => Err(PropertyError {
                    property,
                    problem: format!("is {}, expected a string", json_type(other)),
                }),
                None => Err(PropertyError {
                    property,
                    problem: "is missing".into(),
                }),
            }
        };
        let policy_name = text("PolicyName")?;
        let thing_group_name = text("ThingGroupName")?;
        let thing_group_arn = text("ThingGroupArn")?;
        if !thing_group_arn.starts_with("arn:") {
            return Err(PropertyError {
                property: "ThingGroupArn",
                problem: format!("is {thing_group_arn:?}, expected a thing group ARN (arn:...)"),
            });
        }
        let enable_fleet_indexing = flag(value, "EnableFleetIndexing")?;
        let enable_membership_events = flag(value, "EnableMembershipEvents")?;
        Ok(Properties {
            policy_name,
            thing_group_name,
            thing_group_arn,
            enable_fleet_indexing,
            enable_membership_events,
        })
    }
}

/// A switch property: absent is false; `"true"`/`"false"` in any case, or a JSON boolean.
fn flag(value: &Value, property: &'static str) -> Result<bool, PropertyError> {
    match value.get(property) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            _ => Err(PropertyError {
                property,
                problem: format!("is {s:?}, expected \"true\" or \"false\""),
            }),
        },
        Some(other) => Err(PropertyError {
            property,
            problem: format!("is {}, expected \"true\" or \"false\"", json_type(other)),
        }),
    }
}

/// The request, by type. Properties that cannot be read are kept as the error, so that the
/// plan can decide (a Delete of a resource that never existed still succeeds).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Create {
        properties: Result<Properties, PropertyError>,
    },
    Update {
        properties: Result<Properties, PropertyError>,
        /// `OldResourceProperties`, raw: not acted on (the environment says what to attach).
        old_properties: Value,
        physical_resource_id: String,
    },
    Delete {
        properties: Result<Properties, PropertyError>,
        physical_resource_id: String,
    },
}

/// The event is not a CloudFormation custom resource request this handler knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CloudFormation custom resource request (RequestType {request_type:?}): {problem}")]
pub struct DecodeError {
    pub request_type: String,
    pub problem: String,
}

impl Request {
    pub fn decode(event: &Value) -> Result<Request, DecodeError> {
        let request_type = event
            .get("RequestType")
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned))
            .unwrap_or_default();
        let typed: CloudFormationCustomResourceRequest = serde_json::from_value(event.clone())
            .map_err(|e| DecodeError {
                request_type: request_type.clone(),
                problem: e.to_string(),
            })?;
        match typed {
            CloudFormationCustomResourceRequest::Create(create) => Ok(Request::Create {
                properties: Properties::read(&create.resource_properties),
            }),
            CloudFormationCustomResourceRequest::Update(update) => Ok(Request::Update {
                properties: Properties::read(&update.resource_properties),
                old_properties: update.old_resource_properties,
                physical_resource_id: update.physical_resource_id,
            }),
            CloudFormationCustomResourceRequest::Delete(delete) => Ok(Request::Delete {
                properties: Properties::read(&delete.resource_properties),
                physical_resource_id: delete.physical_resource_id,
            }),
            // The enum is non-exhaustive: a request type added later is refused.
            _ => Err(DecodeError {
                request_type,
                problem: "unknown RequestType, expected Create, Update or Delete".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn props() -> Value {
        json!({
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:s-stack-setup",
            "ServiceTimeout": "600",
            "PolicyName": "s-quarantine",
            "ThingGroupName": "Quarantine",
            "ThingGroupArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine",
            "EnableFleetIndexing": "true",
            "EnableMembershipEvents": "true"
        })
    }

    fn event(request_type: &str) -> Value {
        json!({
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:s-stack-setup",
            "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x?X-Amz-Signature=abc",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid",
            "RequestId": "req-1",
            "LogicalResourceId": "QuarantineSetup",
            "PhysicalResourceId": "s-quarantine|Quarantine",
            "ResourceType": "Custom::QuarantineSetup",
            "ResourceProperties": props(),
            "OldResourceProperties": props()
        })
    }

    #[test]
    fn properties_are_read_and_service_fields_ignored() {
        let p = Properties::read(&props()).unwrap();
        assert_eq!(
            p,
            Properties {
                policy_name: "s-quarantine".into(),
                thing_group_name: "Quarantine".into(),
                thing_group_arn: "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine".into(),
                enable_fleet_indexing: true,
                enable_membership_events: true,
            }
        );
        let mut p = props();
        p["EnableMembershipEvents"] = json!("maybe");
        assert_eq!(
            Properties::read(&p).unwrap_err().property,
            "EnableMembershipEvents"
        );
        p.as_object_mut().unwrap().remove("EnableMembershipEvents");
        assert!(!Properties::read(&p).unwrap().enable_membership_events);
    }

    #[test]
    fn fleet_indexing_flag_is_tolerant_of_case_and_absence_but_not_of_nonsense() {
        for (value, expected) in [
            (json!("TRUE"), Some(true)),
            (json!("False"), Some(false)),
            (json!(true), Some(true)),
            (Value::Null, Some(false)),
            (json!("yes"), None),
            (json!(1), None),
        ] {
            let mut p = props();
            p["EnableFleetIndexing"] = value.clone();
            let read = Properties::read(&p);
            assert_eq!(
                read.as_ref().ok().map(|p| p.enable_fleet_indexing),
                expected,
                "{value}"
            );
            if expected.is_none() {
                assert_eq!(read.unwrap_err().property, "EnableFleetIndexing");
            }
        }
        let mut p = props();
        p.as_object_mut().unwrap().remove("EnableFleetIndexing");
        assert!(!Properties::read(&p).unwrap().enable_fleet_indexing);
    }

    #[test]
    fn a_missing_or_wrong_property_is_named() {
        let mut p = props();
        p.as_object_mut().unwrap().remove("PolicyName");
        let e = Properties::read(&p).unwrap_err();
        assert_eq!(e.to_string(), "property PolicyName is missing");

        let mut p = props();
        p["ThingGroupArn"] = json!("Quarantine");
        let e = Properties::read(&p).unwrap_err();
        assert_eq!(e.property, "ThingGroupArn");
        assert!(e.problem.contains("\"Quarantine\""), "{e}");

        let mut p = props();
        p["ThingGroupName"] = json!(7);
        assert_eq!(
            Properties::read(&p).unwrap_err().to_string(),
            "property ThingGroupName is a number, expected a string"
        );
        assert_eq!(
            Properties::read(&json!([])).unwrap_err().property,
            "ResourceProperties"
        );
    }

    #[test]
    fn requests_decode_by_type() {
        assert!(matches!(
            Request::decode(&event("Create")).unwrap(),
            Request::Create { properties: Ok(_) }
        ));
        match Request::decode(&event("Update")).unwrap() {
            Request::Update {
                old_properties,
                physical_resource_id,
                ..
            } => {
                assert_eq!(old_properties, props());
                assert_eq!(physical_resource_id, "s-quarantine|Quarantine");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Request::decode(&event("Delete")).unwrap(),
            Request::Delete {
                properties: Ok(_),
                ..
            }
        ));
    }

    #[test]
    fn an_unknown_request_type_is_a_decode_error_but_keeps_its_envelope() {
        let e = event("Rename");
        let err = Request::decode(&e).unwrap_err();
        assert_eq!(err.request_type, "Rename");
        assert!(err.problem.contains("Rename"), "{err}");
        let envelope = Envelope::read(&e).unwrap();
        assert_eq!(envelope.request_id, "req-1");
        assert_eq!(envelope.logical_resource_id, "QuarantineSetup");
        assert_eq!(envelope.request_type, "Rename");
    }

    #[test]
    fn the_envelope_needs_only_a_response_url() {
        let envelope = Envelope::read(&json!({"ResponseURL": " http://127.0.0.1:9/r "})).unwrap();
        assert_eq!(envelope.response_url, "http://127.0.0.1:9/r");
        assert_eq!(envelope.stack_id, "");
        assert_eq!(envelope.physical_resource_id, None);
        assert!(Envelope::read(&json!({"RequestType": "Create"})).is_err());
        assert!(Envelope::read(&json!({"ResponseURL": 5})).is_err());
        assert!(Envelope::read(&json!("Create")).is_err());
    }
}
