//! What a request needs done and how it is answered, decided without calling anything. The
//! policy and group come from [`Target`] (the environment); the request only says when.

use crate::request::{Properties, PropertyError, Request};
use crate::target::Target;

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
    /// DescribeEventConfigurations, then UpdateEventConfigurations when thing-group
    /// membership events are off. Never undone: other consumers may depend on them.
    MembershipEvents,
    /// DescribeStacks: go on only while the stack is leaving (see [`crate::stack`]).
    RequireStackLeaving {
        stack_id: String,
    },
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
    /// For the `Data` of the answer: the pair acted on.
    pub target: Option<Target>,
    /// What the plan did not do, said in the SUCCESS answer's `Reason`.
    pub note: Option<String>,
}

/// The `PhysicalResourceId` answered when a Create fails. It is never one this handler
/// issues on success (`<PolicyName>|<ThingGroupName>`), so the Delete that follows is known
/// to be about a resource that was never created.
pub fn failed_create_id(request_id: &str) -> String {
    format!("create-failed:{request_id}")
}

/// The plan for `request` of `stack_id` on `target`. `request_id` is CloudFormation's
/// `RequestId`.
pub fn plan(request: &Request, request_id: &str, stack_id: &str, target: &Target) -> Plan {
    match request {
        Request::Create { properties } => {
            attach_plan(properties, target, failed_create_id(request_id))
        }
        // A new pair in the environment gives a new id: CloudFormation then deletes the old
        // id, which is not this function's pair any more (see the Delete below).
        Request::Update {
            properties,
            physical_resource_id,
            ..
        } => attach_plan(properties, target, physical_resource_id.clone()),
        Request::Delete {
            properties,
            physical_resource_id,
        } => delete_plan(properties, target, physical_resource_id, stack_id),
    }
}

fn attach_plan(
    properties: &Result<Properties, PropertyError>,
    target: &Target,
    failure_id: String,
) -> Plan {
    let p = match properties {
        Ok(p) => p,
        Err(e) => return refused(e.to_string(), failure_id),
    };
    if let Some(reason) = target.disagreement(p) {
        return refused(reason, failure_id);
    }
    let mut steps = vec![Step::Attach {
        policy_name: target.policy_name.clone(),
        target: target.group.arn.clone(),
    }];
    if p.enable_fleet_indexing {
        steps.push(Step::FleetIndexing);
    }
    if p.enable_membership_events {
        steps.push(Step::MembershipEvents);
    }
    Plan {
        steps,
        refused: None,
        success_id: target.physical_resource_id(),
        failure_id,
        target: Some(target.clone()),
        note: None,
    }
}

/// Only the resource this function issued (its id is the environment's pair) is detached,
/// and only while the stack is leaving. Any other id (a Create that failed, a pair replaced
/// by an Update) has nothing of ours to undo and succeeds without a call, so a Delete can
/// never name what it detaches.
fn delete_plan(
    properties: &Result<Properties, PropertyError>,
    target: &Target,
    physical_resource_id: &str,
    stack_id: &str,
) -> Plan {
    let id = physical_resource_id.to_owned();
    if physical_resource_id != target.physical_resource_id() {
        return Plan {
            steps: Vec::new(),
            refused: None,
            success_id: id.clone(),
            failure_id: id,
            target: None,
            note: Some(format!(
                "nothing to detach: resource {physical_resource_id:?} is not this function's attachment {:?}",
                target.physical_resource_id()
            )),
        };
    }
    let disagreement = match properties {
        Ok(p) => target.disagreement(p),
        Err(e) => Some(e.to_string()),
    };
    if let Some(reason) = disagreement {
        return refused(reason, id);
    }
    Plan {
        steps: vec![
            Step::RequireStackLeaving {
                stack_id: stack_id.to_owned(),
            },
            Step::Detach {
                policy_name: target.policy_name.clone(),
                target: target.group.arn.clone(),
            },
        ],
        refused: None,
        success_id: id.clone(),
        failure_id: id,
        target: Some(target.clone()),
        note: None,
    }
}

fn refused(reason: String, failure_id: String) -> Plan {
    Plan {
        steps: Vec::new(),
        refused: Some(reason),
        success_id: failure_id.clone(),
        failure_id,
        target: None,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::{ARN, target};

    fn props(policy: &str, indexing: bool) -> Properties {
        Properties {
            policy_name: policy.into(),
            thing_group_name: "Quarantine".into(),
            thing_group_arn: ARN.into(),
            enable_fleet_indexing: indexing,
            enable_membership_events: false,
        }
    }

    fn attach() -> Step {
        Step::Attach {
            policy_name: "s-quarantine".into(),
            target: ARN.into(),
        }
    }

    const STACK: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid";

    fn detach() -> Vec<Step> {
        vec![
            Step::RequireStackLeaving {
                stack_id: STACK.into(),
            },
            Step::Detach {
                policy_name: "s-quarantine".into(),
                target: ARN.into(),
            },
        ]
    }

    fn create(p: Result<Properties, PropertyError>) -> Plan {
        plan(
            &Request::Create { properties: p },
            "req-1",
            STACK,
            &target(),
        )
    }

    fn delete(p: Properties, id: &str) -> Plan {
        let request = Request::Delete {
            properties: Ok(p),
            physical_resource_id: id.into(),
        };
        plan(&request, "req-9", STACK, &target())
    }

    #[test]
    fn create_attaches_the_environment_s_pair_and_issues_policy_bar_group() {
        let p = create(Ok(props("s-quarantine", false)));
        assert_eq!(p.steps, vec![attach()]);
        assert_eq!(p.refused, None);
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
        assert_eq!(p.failure_id, "create-failed:req-1");
        assert_eq!(p.target, Some(target()));
    }

    #[test]
    fn create_with_fleet_indexing_adds_the_indexing_step_after_the_attach() {
        let p = create(Ok(props("s-quarantine", true)));
        assert_eq!(p.steps, vec![attach(), Step::FleetIndexing]);
    }

    #[test]
    fn membership_events_come_last_on_create_and_update_and_never_on_delete() {
        let with_events = Properties {
            enable_membership_events: true,
            ..props("s-quarantine", true)
        };
        let p = create(Ok(with_events.clone()));
        assert_eq!(
            p.steps,
            vec![attach(), Step::FleetIndexing, Step::MembershipEvents]
        );
        let update = plan(
            &Request::Update {
                properties: Ok(with_events.clone()),
                old_properties: serde_json::json!({}),
                physical_resource_id: "s-quarantine|Quarantine".into(),
            },
            "req-4",
            STACK,
            &target(),
        );
        assert!(update.steps.contains(&Step::MembershipEvents));
        // Other consumers may depend on the account's registry events: left on.
        assert_eq!(
            delete(with_events, "s-quarantine|Quarantine").steps,
            detach()
        );
    }

    #[test]
    fn create_naming_another_policy_is_refused_without_calls() {
        let p = create(Ok(props("someone-else", false)));
        assert!(p.steps.is_empty());
        assert!(p.refused.unwrap().contains("someone-else"));
        assert_eq!(p.failure_id, "create-failed:req-1");
    }

    #[test]
    fn create_with_a_bad_property_is_refused_without_calls() {
        let p = create(Err(PropertyError {
            property: "PolicyName",
            problem: "is missing".into(),
        }));
        assert!(p.steps.is_empty());
        assert_eq!(p.refused.as_deref(), Some("property PolicyName is missing"));
    }

    #[test]
    fn update_attaches_again_under_the_environment_s_id() {
        let p = plan(
            &Request::Update {
                properties: Ok(props("s-quarantine", true)),
                old_properties: serde_json::json!({}),
                physical_resource_id: "s-quarantine|Old".into(),
            },
            "req-3",
            STACK,
            &target(),
        );
        assert_eq!(p.steps, vec![attach(), Step::FleetIndexing]);
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
        // A failed update keeps the resource it had.
        assert_eq!(p.failure_id, "s-quarantine|Old");
    }

    #[test]
    fn delete_of_its_own_resource_detaches_once_the_stack_is_leaving_and_never_touches_fleet_indexing()
     {
        let p = delete(props("s-quarantine", true), "s-quarantine|Quarantine");
        assert_eq!(p.steps, detach());
        assert_eq!(p.success_id, "s-quarantine|Quarantine");
    }

    #[test]
    fn delete_of_any_other_id_calls_nothing_and_succeeds() {
        for id in [
            failed_create_id("req-1"),
            "s-quarantine|Old".into(),
            "x".into(),
        ] {
            let p = delete(props("s-quarantine", false), &id);
            assert!(p.steps.is_empty(), "{id}");
            assert_eq!(p.refused, None);
            assert!(p.note.unwrap().contains("nothing to detach"));
            assert_eq!(p.success_id, id);
        }
    }

    #[test]
    fn delete_of_its_own_id_naming_another_pair_is_refused() {
        let p = delete(props("someone-else", false), "s-quarantine|Quarantine");
        assert!(p.steps.is_empty());
        assert!(p.refused.is_some());
        let unreadable = plan(
            &Request::Delete {
                properties: Err(PropertyError {
                    property: "ThingGroupArn",
                    problem: "is missing".into(),
                }),
                physical_resource_id: "s-quarantine|Quarantine".into(),
            },
            "req-8",
            STACK,
            &target(),
        );
        assert!(unreadable.steps.is_empty());
        assert!(unreadable.refused.unwrap().contains("ThingGroupArn"));
    }
}
