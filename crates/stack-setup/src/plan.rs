//! What a request needs done and how it is answered, decided without calling anything.

use serde_json::Value;

use crate::request::{Properties, Request};

/// One step of a plan; [`Step::FleetIndexing`] is GetIndexingConfiguration, then
/// UpdateIndexingConfiguration when needed (see [`crate::indexing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attach {
        policy_name: String,
        target: String,
    },
    /// `ResourceNotFoundException` counts as done: the attachment, policy or group is gone.
    Detach {
        policy_name: String,
        target: String,
    },
    FleetIndexing,
}

/// The calls for one request and the two possible answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Run in order; the first failure stops the rest.
    pub steps: Vec<Step>,
    /// When set, no call is made and the answer is FAILED with this reason.
    pub refused: Option<String>,
    /// The `PhysicalResourceId` answered with SUCCESS.
    pub success_id: String,
    /// The `PhysicalResourceId` answered with FAILED.
    pub failure_id: String,
    /// A Delete of a resource this handler never created (its Create failed): a failed call
    /// is logged and the answer is still SUCCESS, or the stack could never be deleted.
    pub tolerate_failures: bool,
    /// For the `Data` of the answer.
    pub policy_name: Option<String>,
    pub thing_group_arn: Option<String>,
    /// What the plan did not do, said in the SUCCESS answer's `Reason`.
    pub note: Option<String>,
}

/// The `PhysicalResourceId` answered when a Create fails. It is never one this handler
/// issues on success (`<PolicyName>|<ThingGroupName>`), so the Delete that follows is known
/// to be about a resource that was never created.
pub fn failed_create_id(request_id: &str) -> String {
    format!("create-failed:{request_id}")
}

/// The plan for `request`. `request_id` is CloudFormation's `RequestId`.
pub fn plan(request: &Request, request_id: &str) -> Plan {
    match request {
        Request::Create { properties } => {
            let failure_id = failed_create_id(request_id);
            match properties {
                Ok(p) => attach_plan(p, p.physical_resource_id(), failure_id),
                Err(e) => refused(e.to_string(), failure_id),
            }
        }
        Request::Update {
            properties,
            old_properties,
            physical_resource_id,
        } => match properties {
            Ok(p) => {
                let success_id = if changed(p, old_properties) {
                    // A new id: CloudFormation then deletes the old one, with the old
                    // properties, which detaches the old pair.
                    p.physical_resource_id()
                } else {
                    physical_resource_id.clone()
                };
                attach_plan(p, success_id, physical_resource_id.clone())
            }
            Err(e) => refused(e.to_string(), physical_resource_id.clone()),
        },
        Request::Delete {
            properties,
            physical_resource_id,
        } => match properties {
            Ok(p) => Plan {
                steps: vec![Step::Detach {
                    policy_name: p.policy_name.clone(),
                    target: p.thing_group_arn.clone(),
                }],
                refused: None,
                success_id: physical_resource_id.clone(),
                failure_id: physical_resource_id.clone(),
                tolerate_failures: *physical_resource_id != p.physical_resource_id(),
                policy_name: Some(p.policy_name.clone()),
                thing_group_arn: Some(p.thing_group_arn.clone()),
                note: None,
            },
            // Properties this handler cannot read were never accepted by a Create, so
            // there is nothing of ours to undo.
            Err(e) => Plan {
                steps: Vec::new(),
                refused: None,
                success_id: physical_resource_id.clone(),
                failure_id: physical_resource_id.clone(),
                tolerate_failures: true,
                policy_name: None,
                thing_group_arn: None,
                note: Some(format!("nothing to detach: {e}")),
            },
        },
    }
}

fn attach_plan(p: &Properties, success_id: String, failure_id: String) -> Plan {
    let mut steps = vec![Step::Attach {
        policy_name: p.policy_name.clone(),
        target: p.thing_group_arn.clone(),
    }];
    if p.enable_fleet_indexing {
        steps.push(Step::FleetIndexing);
    }
    Plan {
        steps,
        refused: None,
        success_id,
        failure_id,
        tolerate_failures: false,
        policy_name: Some(p.policy_name.clone()),
        thing_group_arn: Some(p.thing_group_arn.clone()),
        note: None,
    }
}

fn refused(reason: String, failure_id: String) -> Plan {
    Plan {
        steps: Vec::new(),
        refused: Some(reason),
        success_id: failure_id.clone(),
        failure_id,
        tolerate_failures: false,
        policy_name: None,
        thing_group_arn: None,
        note: None,
    }
}

/// True when the attachment itself changes: another policy or another group. (The group's
/// name is compared as well as its ARN: it is part of the id.)
fn changed(new: &Properties, old: &Value) -> bool {
    let old_text = |key: &str| old.get(key).and_then(Value::as_str).map(str::trim);
    old_text("PolicyName") != Some(new.policy_name.as_str())
        || old_text("ThingGroupArn") != Some(new.thing_group_arn.as_str())
        || old_text("ThingGroupName") != Some(new.thing_group_name.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request::PropertyError;

    const ARN: &str = "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine";

    fn props(policy: &str, indexing: bool) -> Properties {
        Properties {
            policy_name: policy.into(),
            thing_group_name: "Quarantine".into(),
            thing_group_arn: ARN.into(),
            enable_fleet_indexing: indexing,
        }
    }

    fn raw(p: &Properties) -> Value {
        json!({
            "PolicyName": p.policy_name,
            "ThingGroupName": p.thing_group_name,
            "ThingGroupArn": p.thing_group_arn,
            "EnableFleetIndexing": p.enable_fleet_indexing.to_string(),
        })
    }

    fn attach(policy: &str) -> Step {
        Step::Attach {
            policy_name: policy.into(),
            target: ARN.into(),
        }
    }

    #[test]
    fn create_attaches_and_issues_policy_bar_group() {
        let p = plan(
            &Request::Create {
                properties: Ok(props("s-quarantine", false)),
            },
            "req-1",
        );
        assert_eq!(p.steps, vec![attach("s-quarantine")]);
        assert_eq!(p.refused, None);
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
        assert_eq!(p.failure_id, "create-failed:req-1");
        assert!(!p.tolerate_failures);
        assert_eq!(p.thing_group_arn.as_deref(), Some(ARN));
    }

    #[test]
    fn create_with_fleet_indexing_adds_the_indexing_step_after_the_attach() {
        let p = plan(
            &Request::Create {
                properties: Ok(props("s-quarantine", true)),
            },
            "req-1",
        );
        assert_eq!(p.steps, vec![attach("s-quarantine"), Step::FleetIndexing]);
    }

    #[test]
    fn create_with_a_bad_property_is_refused_without_calls() {
        let p = plan(
            &Request::Create {
                properties: Err(PropertyError {
                    property: "PolicyName",
                    problem: "is missing".into(),
                }),
            },
            "req-2",
        );
        assert!(p.steps.is_empty());
        assert_eq!(p.refused.as_deref(), Some("property PolicyName is missing"));
        assert_eq!(p.failure_id, "create-failed:req-2");
    }

    #[test]
    fn update_without_change_attaches_again_and_keeps_the_id() {
        let new = props("s-quarantine", true);
        let old = props("s-quarantine", false);
        let p = plan(
            &Request::Update {
                properties: Ok(new),
                old_properties: raw(&old),
                physical_resource_id: "kept-id".into(),
            },
            "req-3",
        );
        assert_eq!(p.steps, vec![attach("s-quarantine"), Step::FleetIndexing]);
        assert_eq!(p.success_id, "kept-id");
        assert_eq!(p.failure_id, "kept-id");
    }

    #[test]
    fn update_to_another_policy_attaches_the_new_pair_under_a_new_id() {
        let p = plan(
            &Request::Update {
                properties: Ok(props("s-quarantine-v2", false)),
                old_properties: raw(&props("s-quarantine", false)),
                physical_resource_id: "s-quarantine|Quarantine".into(),
            },
            "req-4",
        );
        assert_eq!(p.steps, vec![attach("s-quarantine-v2")]);
        assert_eq!(p.success_id, "s-quarantine-v2|Quarantine");
        // A failed update keeps the resource it had.
        assert_eq!(p.failure_id, "s-quarantine|Quarantine");
    }

    #[test]
    fn update_to_another_group_arn_is_a_change() {
        let mut old = raw(&props("s-quarantine", false));
        old["ThingGroupArn"] = json!("arn:aws:iot:eu-west-1:123456789012:thinggroup/Old");
        old["ThingGroupName"] = json!("Old");
        let p = plan(
            &Request::Update {
                properties: Ok(props("s-quarantine", false)),
                old_properties: old,
                physical_resource_id: "s-quarantine|Old".into(),
            },
            "req-5",
        );
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
    }

    #[test]
    fn delete_detaches_and_fails_loudly_for_a_resource_it_created() {
        let p = plan(
            &Request::Delete {
                properties: Ok(props("s-quarantine", true)),
                physical_resource_id: "s-quarantine|Quarantine".into(),
            },
            "req-6",
        );
        // Never turns fleet indexing off.
        assert_eq!(
            p.steps,
            vec![Step::Detach {
                policy_name: "s-quarantine".into(),
                target: ARN.into()
            }]
        );
        assert!(!p.tolerate_failures);
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
    }

    #[test]
    fn delete_after_a_failed_create_still_tries_to_detach_but_always_succeeds() {
        let p = plan(
            &Request::Delete {
                properties: Ok(props("s-quarantine", false)),
                physical_resource_id: failed_create_id("req-1"),
            },
            "req-7",
        );
        assert_eq!(p.steps.len(), 1);
        assert!(p.tolerate_failures);
        assert_eq!(p.success_id, "create-failed:req-1");
    }

    #[test]
    fn delete_with_unreadable_properties_has_nothing_to_undo() {
        let p = plan(
            &Request::Delete {
                properties: Err(PropertyError {
                    property: "ThingGroupArn",
                    problem: "is missing".into(),
                }),
                physical_resource_id: "create-failed:req-1".into(),
            },
            "req-8",
        );
        assert!(p.steps.is_empty());
        assert_eq!(p.refused, None);
        assert!(p.note.unwrap().contains("ThingGroupArn"));
    }
}
