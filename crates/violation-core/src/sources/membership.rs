//! Thing-group membership events of the AWS IoT registry (`THING_GROUP_MEMBERSHIP_EVENT`),
//! published on `$aws/events/thingGroupMembership/thingGroup/GROUP/thing/THING/added|removed`
//! once the account enables them, and sent to quarantine-group by the stack's topic rule:
//!
//! ```json
//! {"eventType": "THING_GROUP_MEMBERSHIP_EVENT", "eventId": "d684bd5f-...", "timestamp": 1234567890123,
//!  "operation": "REMOVED", "accountId": "123456789012",
//!  "groupArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine", "groupId": "0683...",
//!  "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/dev-1", "thingId": "b604...",
//!  "membershipId": "8505..."}
//! ```
//!
//! The documented payload names the group and the thing only in their ARNs; `groupName` and
//! `thingName` are read too when present (and must then agree with the ARNs). A thing taken
//! out of the quarantine group is re-checked by quarantine-group against the ledger
//! ([`Decision::Reconcile`]): a membership event is not an alert, so it never adds or clears
//! a cause, and can neither quarantine a free thing nor release one.

use crate::decision::{Decision, DecisionPolicy, IgnoreReason};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::thing_name::{ThingName, is_iot_name};
use crate::verdict::{AlertFacts, AlertTime};

/// The `eventType` of a thing-group membership event.
pub const MEMBERSHIP_EVENT_TYPE: &str = "THING_GROUP_MEMBERSHIP_EVENT";

const ALERT: AlertSource = AlertSource::ThingGroupMembership;

/// A membership event names itself, or has the keys only it uses.
pub(crate) fn looks_like(f: Fields<'_>) -> bool {
    f.str("eventType") == Some(MEMBERSHIP_EVENT_TYPE)
        || f.has("membershipId")
        || (f.has("operation")
            && (f.has("groupArn") || f.has("groupName"))
            && (f.has("thingArn") || f.has("thingName")))
}

/// ADDED or REMOVED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Added,
    Removed,
}

/// What a membership event says, once read.
struct Membership {
    operation: Operation,
    group: String,
    thing: ThingName,
    /// The account and region of the event (`accountId`, else the ARNs').
    account: Option<String>,
    region: Option<String>,
}

pub(crate) fn decide(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let group_arn = f.text("groupArn", notes);
    let thing_arn = f.text("thingArn", notes);
    let facts = AlertFacts {
        subject: f
            .str("thingName")
            .map(str::to_owned)
            .or_else(|| thing_arn.clone()),
        thing_name: f
            .str("thingName")
            .or_else(|| thing_arn.as_deref().and_then(|a| arn_name(a, "thing/")))
            .map(str::to_owned),
        event_type: f.str("operation").map(str::to_owned),
        time: f.get::<i64>("timestamp", notes).map(AlertTime::EpochMillis),
        event_id: f.text("eventId", notes),
        group_name: f
            .str("groupName")
            .or_else(|| {
                group_arn
                    .as_deref()
                    .and_then(|a| arn_name(a, "thinggroup/"))
            })
            .map(str::to_owned),
        ..AlertFacts::default()
    };
    for key in ["groupId", "thingId", "membershipId"] {
        let _ = f.text(key, notes);
    }
    let decision = match read(f, group_arn.as_deref(), thing_arn.as_deref(), notes) {
        Ok(membership) => decide_membership(membership, policy),
        Err(reason) => Decision::Reject(reason),
    };
    Decided { facts, decision }
}

fn decide_membership(m: Membership, policy: &DecisionPolicy) -> Decision {
    let scope = &policy.scope;
    if scope.excludes(m.account.as_deref(), m.region.as_deref()) {
        return Decision::Ignore(IgnoreReason::MembershipOutOfScope {
            found: crate::trust::describe(m.account.as_deref(), m.region.as_deref()),
            expected: scope.describe(),
        });
    }
    let Some(quarantine_group) = policy.quarantine_group.as_deref() else {
        return Decision::Ignore(IgnoreReason::NoQuarantineGroup { group: m.group });
    };
    if m.group != quarantine_group {
        return Decision::Ignore(IgnoreReason::NotTheQuarantineGroup {
            group: m.group,
            expected: quarantine_group.to_owned(),
        });
    }
    match m.operation {
        Operation::Added => Decision::Ignore(IgnoreReason::AddedToQuarantineGroup {
            thing: m.thing.to_string(),
            group: m.group,
        }),
        Operation::Removed => Decision::Reconcile { thing: m.thing },
    }
}

/// The fields the decision needs: the event type, the operation, the group and the thing.
fn read(
    f: Fields<'_>,
    group_arn: Option<&str>,
    thing_arn: Option<&str>,
    notes: &mut Notes,
) -> Result<Membership, RejectReason> {
    let event_type = f.required_text(
        "eventType",
        RejectReason::MissingField {
            alert: ALERT,
            field: "eventType",
        },
    )?;
    if event_type != MEMBERSHIP_EVENT_TYPE {
        return Err(RejectReason::UnknownRegistryEvent {
            event_type: excerpt(event_type, 60),
        });
    }
    let raw = f.required_text(
        "operation",
        RejectReason::MissingField {
            alert: ALERT,
            field: "operation",
        },
    )?;
    let operation = match raw.trim().to_ascii_uppercase().as_str() {
        "ADDED" => Operation::Added,
        "REMOVED" => Operation::Removed,
        _ => {
            return Err(RejectReason::UnknownMembershipOperation {
                value: excerpt(raw, 60),
            });
        }
    };
    if raw != "ADDED" && raw != "REMOVED" {
        notes.push(format!(
            "operation: {raw:?} read as {:?}",
            raw.trim().to_ascii_uppercase()
        ));
    }
    let group_from_arn = named_by_arn(group_arn, "groupArn", "thinggroup/")?;
    let group = name(f, "groupName", group_from_arn.as_ref())?;
    if !is_iot_name(&group, 128) {
        return Err(RejectReason::InvalidGroupName {
            value: excerpt(&group, 140),
        });
    }
    let thing_from_arn = named_by_arn(thing_arn, "thingArn", "thing/")?;
    let thing = name(f, "thingName", thing_from_arn.as_ref())?;
    let thing = ThingName::parse(&thing).map_err(|problem| RejectReason::InvalidThingName {
        name: excerpt(&thing, 140),
        problem,
    })?;
    let arn_scope = group_from_arn.as_ref().or(thing_from_arn.as_ref());
    let account = match f.raw("accountId") {
        Some(serde_json::Value::String(id)) => Some(id.clone()),
        _ => arn_scope.map(|a| a.account.clone()),
    };
    Ok(Membership {
        operation,
        group,
        thing,
        account,
        region: arn_scope.map(|a| a.region.clone()),
    })
}

/// The name, account and region an ARN gives.
struct FromArn {
    name: String,
    account: String,
    region: String,
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:<kind>NAME`, when the field is present.
fn named_by_arn(
    arn: Option<&str>,
    field: &'static str,
    kind: &'static str,
) -> Result<Option<FromArn>, RejectReason> {
    let Some(arn) = arn else { return Ok(None) };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "iot", region, account, resource] => match resource.strip_prefix(kind) {
            Some(name) if !name.is_empty() => Ok(Some(FromArn {
                name: name.to_owned(),
                account: account.to_owned(),
                region: region.to_owned(),
            })),
            _ => Err(not_an_arn(field, arn, kind)),
        },
        _ => Err(not_an_arn(field, arn, kind)),
    }
}

fn not_an_arn(field: &'static str, arn: &str, kind: &'static str) -> RejectReason {
    RejectReason::InvalidRegistryArn {
        field,
        value: excerpt(arn, 200),
        expected: kind,
    }
}

/// The name from `key`, else from the ARN; both present must agree.
fn name(f: Fields<'_>, key: &'static str, arn: Option<&FromArn>) -> Result<String, RejectReason> {
    let named = match f.raw(key) {
        None => None,
        Some(serde_json::Value::String(text)) => Some(text.as_str()),
        Some(other) => {
            return Err(RejectReason::FieldNotText {
                field: key,
                found: crate::lenient::json_type(other),
            });
        }
    };
    match (named, arn) {
        (Some(n), Some(a)) if n != a.name => Err(RejectReason::ConflictingNames {
            field: key,
            named: excerpt(n, 140),
            in_arn: excerpt(&a.name, 140),
        }),
        (Some(n), _) => Ok(n.to_owned()),
        (None, Some(a)) => Ok(a.name.clone()),
        (None, None) => Err(RejectReason::MissingField {
            alert: ALERT,
            field: if key == "groupName" {
                "groupArn (or groupName)"
            } else {
                "thingArn (or thingName)"
            },
        }),
    }
}

/// The name in an ARN's resource part, for the facts (never checked there).
fn arn_name<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    arn.splitn(6, ':').nth(5)?.strip_prefix(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::LocalScope;
    use crate::verdict::verdict_of;
    use serde_json::{Value, json};

    const ACCOUNT: &str = "123456789012";

    fn event(operation: &str, group: &str, thing: &str) -> Value {
        json!({
            "eventType": "THING_GROUP_MEMBERSHIP_EVENT",
            "eventId": "d684bd5f-6678-4c6f-9d4a-2c0a1a5a3b11",
            "timestamp": 1_764_881_354_123_i64,
            "operation": operation,
            "accountId": ACCOUNT,
            "groupArn": format!("arn:aws:iot:eu-west-1:{ACCOUNT}:thinggroup/{group}"),
            "groupId": "06838589-373f-4312-b1f2-53f2192291c4",
            "thingArn": format!("arn:aws:iot:eu-west-1:{ACCOUNT}:thing/{thing}"),
            "thingId": "b604ecb6-f6a4-4e7a-bd28-36e2bb5c9ff7",
            "membershipId": "8505ebf8-4d32-4286-80e9-c23a4a16bbd8"
        })
    }

    fn policy() -> DecisionPolicy {
        DecisionPolicy {
            quarantine_group: Some("Quarantine".into()),
            ..DecisionPolicy::default()
        }
    }

    fn thing(name: &str) -> ThingName {
        ThingName::parse(name).expect("thing")
    }

    #[test]
    fn a_thing_removed_from_the_quarantine_group_is_reconciled() {
        let verdict = verdict_of(event("REMOVED", "Quarantine", "dev-1"), &policy());
        assert_eq!(verdict.source, Some(AlertSource::ThingGroupMembership));
        assert_eq!(
            verdict.decision,
            Decision::Reconcile {
                thing: thing("dev-1")
            }
        );
        assert_eq!(verdict.decision.kind(), "reconcile");
        assert!(
            verdict.decision.subjects().is_empty(),
            "no cause, no action"
        );
        assert_eq!(verdict.facts.thing_name.as_deref(), Some("dev-1"));
        assert_eq!(
            verdict.facts.event_id.as_deref(),
            Some("d684bd5f-6678-4c6f-9d4a-2c0a1a5a3b11")
        );
        assert_eq!(verdict.facts.group_name.as_deref(), Some("Quarantine"));
        assert_eq!(verdict.facts.event_time_millis(), Some(1_764_881_354_123));
        assert!(verdict.notes.is_empty(), "{:?}", verdict.notes);
        let line = verdict.to_json();
        assert_eq!(line["source"], "thing-group-membership");
        assert_eq!(line["eventId"], "d684bd5f-6678-4c6f-9d4a-2c0a1a5a3b11");
        assert_eq!(line["groupName"], "Quarantine");
        assert!(
            verdict
                .reason()
                .contains("dev-1 was removed from the quarantine group Quarantine"),
            "{}",
            verdict.reason()
        );
    }

    #[test]
    fn added_events_other_groups_and_functions_without_a_group_are_ignored() {
        let added = verdict_of(event("ADDED", "Quarantine", "dev-1"), &policy());
        assert_eq!(
            added.decision,
            Decision::Ignore(IgnoreReason::AddedToQuarantineGroup {
                thing: "dev-1".into(),
                group: "Quarantine".into()
            })
        );
        let other = verdict_of(event("REMOVED", "Cameras", "dev-1"), &policy());
        assert_eq!(
            other.decision,
            Decision::Ignore(IgnoreReason::NotTheQuarantineGroup {
                group: "Cameras".into(),
                expected: "Quarantine".into()
            })
        );
        assert!(other.reason().contains("Cameras"), "{}", other.reason());
        let shadow = verdict_of(
            event("REMOVED", "Quarantine", "dev-1"),
            &DecisionPolicy::default(),
        );
        assert!(matches!(
            shadow.decision,
            Decision::Ignore(IgnoreReason::NoQuarantineGroup { .. })
        ));
    }

    #[test]
    fn another_account_is_ignored_when_the_account_is_known() {
        let mut foreign = event("REMOVED", "Quarantine", "dev-1");
        foreign["accountId"] = json!("999999999999");
        let open = verdict_of(foreign.clone(), &policy());
        assert_eq!(
            open.decision.kind(),
            "reconcile",
            "ACCOUNT_ID unset: not checked"
        );
        let scoped = DecisionPolicy {
            scope: LocalScope::new(Some(ACCOUNT), Some("eu-west-1")),
            ..policy()
        };
        let verdict = verdict_of(foreign, &scoped);
        assert!(
            matches!(
                verdict.decision,
                Decision::Ignore(IgnoreReason::MembershipOutOfScope { .. })
            ),
            "{:?}",
            verdict.decision
        );
        assert!(
            verdict.reason().contains("999999999999"),
            "{}",
            verdict.reason()
        );
        let local = verdict_of(event("REMOVED", "Quarantine", "dev-1"), &scoped);
        assert_eq!(local.decision.kind(), "reconcile");
    }

    #[test]
    fn names_may_come_from_name_fields_and_odd_fields_are_noted() {
        let bare = json!({"eventType": "THING_GROUP_MEMBERSHIP_EVENT", "operation": "removed",
            "groupName": "Quarantine", "thingName": "dev-2", "timestamp": "yesterday",
            "eventId": 7, "membershipId": ["x"]});
        let verdict = verdict_of(bare, &policy());
        assert_eq!(
            verdict.decision,
            Decision::Reconcile {
                thing: thing("dev-2")
            }
        );
        assert_eq!(verdict.notes.len(), 4, "{:?}", verdict.notes);
        assert!(verdict.notes.iter().any(|n| n.starts_with("timestamp:")));
        assert!(verdict.notes.iter().any(|n| n.starts_with("eventId:")));
        assert!(verdict.notes.iter().any(|n| n.starts_with("membershipId:")));
        assert!(verdict.notes.iter().any(|n| n.starts_with("operation:")));
        let mut both = event("REMOVED", "Quarantine", "dev-1");
        both["thingName"] = json!("dev-1");
        both["groupName"] = json!("Quarantine");
        assert_eq!(verdict_of(both, &policy()).decision.kind(), "reconcile");
    }

    #[test]
    fn a_malformed_event_is_rejected_naming_what_was_wrong() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e.as_object_mut().map(|o| o.remove("operation"));
                    e
                },
                "MissingField",
                "has no operation",
            ),
            (
                event("DELETED", "Quarantine", "dev-1"),
                "UnknownMembershipOperation",
                "DELETED",
            ),
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e["eventType"] = json!("THING_GROUP_HIERARCHY_EVENT");
                    e
                },
                "UnknownRegistryEvent",
                "THING_GROUP_HIERARCHY_EVENT",
            ),
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e.as_object_mut().map(|o| o.remove("thingArn"));
                    e
                },
                "MissingField",
                "thingArn (or thingName)",
            ),
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e["groupArn"] = json!("arn:aws:iot:eu-west-1:123456789012:thing/Quarantine");
                    e
                },
                "InvalidRegistryArn",
                "groupArn",
            ),
            (
                event("REMOVED", "Quarantine", "dev/1"),
                "InvalidThingName",
                "dev/1",
            ),
            (
                event("REMOVED", "bad group", "dev-1"),
                "InvalidGroupName",
                "bad group",
            ),
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e["thingName"] = json!("dev-9");
                    e
                },
                "ConflictingNames",
                "dev-9",
            ),
            (
                {
                    let mut e = event("REMOVED", "Quarantine", "dev-1");
                    e["operation"] = json!(3);
                    e
                },
                "FieldNotText",
                "operation is a number",
            ),
        ];
        for (message, code, says) in cases {
            let verdict = verdict_of(message.clone(), &policy());
            assert_eq!(
                verdict.source,
                Some(AlertSource::ThingGroupMembership),
                "{message}"
            );
            assert_eq!(verdict.decision.kind(), "reject", "{message}");
            assert_eq!(verdict.to_json()["error"], code, "{message}");
            let reason = verdict.reason();
            assert!(reason.starts_with("record m-1: "), "{reason}");
            assert!(reason.contains(says), "{reason} should say {says}");
        }
    }
}
