//! Mitigation requests: the small documented JSON object that custom detectors (IoT rules on
//! device telemetry, the AWS anomaly-detection sample), Step Functions and people send:
//!
//! ```json
//! {"thingName": "dev-1", "action": "quarantine", "reason": "num_child_procs_myapp > 0", "source": "iot-rule"}
//! ```
//!
//! `action` is `quarantine` or `release`; an explicit release releases whatever
//! `RELEASE_ON_CLEAR` says. The subject is `thingName`, or instead (or as well) `thingArn`,
//! `clientId`, `certificateId` or `certificateArn` (an ARN of another account or region
//! than the stack's is refused). Extra fields are tolerated.

use crate::decision::{Action, Decision, DecisionPolicy};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::subject::{InvalidSubject, Subject};
use crate::trust::LocalScope;
use crate::verdict::{AlertFacts, AlertTime};

/// How one way of naming a subject becomes a [`Subject`]; ARNs are checked against the
/// stack's account and region.
type ParseSubject = fn(&str, &LocalScope) -> Result<Subject, InvalidSubject>;

/// How a request may name its subject.
const SUBJECT_KEYS: [(&str, ParseSubject); 5] = [
    ("thingName", |name, _| Subject::thing(name)),
    ("thingArn", Subject::from_arn_in),
    ("clientId", |name, _| Subject::thing(name)),
    ("certificateId", |id, _| Subject::certificate(id)),
    ("certificateArn", Subject::from_arn_in),
];

const EXPECTED_SUBJECT: &str = "thingName, thingArn, clientId, certificateId or certificateArn";

pub(crate) fn has_action(f: Fields<'_>) -> bool {
    f.map().contains_key("action")
}

pub(crate) fn names_a_subject(f: Fields<'_>) -> bool {
    SUBJECT_KEYS
        .iter()
        .any(|(key, _)| f.map().contains_key(*key))
}

pub(crate) fn decide(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let named: Vec<&str> = SUBJECT_KEYS
        .iter()
        .filter_map(|(key, _)| f.str(key))
        .collect();
    let facts = AlertFacts {
        subject: (!named.is_empty()).then(|| named.join(", ")),
        thing_name: f.str("thingName").map(str::to_owned),
        event_type: f.str("action").map(str::to_owned),
        time: f.text("time", notes).map(AlertTime::Text),
        alert_reason: f.text("reason", notes),
        request_source: f.text("source", notes),
        request_cause: f.text("causeId", notes),
        ..AlertFacts::default()
    };
    let decision = decide_request(f, &policy.scope, notes).unwrap_or_else(Decision::Reject);
    Decided { facts, decision }
}

fn decide_request(
    f: Fields<'_>,
    scope: &LocalScope,
    notes: &mut Notes,
) -> Result<Decision, RejectReason> {
    let raw = f.required_text("action", RejectReason::MissingRequestAction)?;
    let action = match raw.trim().to_ascii_lowercase().as_str() {
        "quarantine" => Action::Quarantine,
        "release" => Action::Release,
        _ => {
            return Err(RejectReason::UnknownRequestAction {
                value: excerpt(raw, 60),
            });
        }
    };
    if raw != action.as_str() {
        notes.push(format!("action: {raw:?} read as {:?}", action.as_str()));
    }
    let mut subjects = Vec::new();
    for (key, parse) in SUBJECT_KEYS {
        let Some(value) = f.raw(key) else { continue };
        let text = value.as_str().ok_or(RejectReason::FieldNotText {
            field: key,
            found: crate::lenient::json_type(value),
        })?;
        let subject = parse(text, scope).map_err(|problem| RejectReason::InvalidSubject {
            field: key.to_owned(),
            value: excerpt(text, 140),
            problem,
        })?;
        subjects.push(subject);
    }
    Decision::act(action, subjects).ok_or(RejectReason::MissingSubject {
        alert: AlertSource::MitigationRequest,
        expected: EXPECTED_SUBJECT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DecisionPolicy;
    use crate::verdict::verdict_of;
    use serde_json::json;

    const CERT: &str = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

    #[test]
    fn a_request_quarantines_or_releases_whatever_release_on_clear_says() {
        let request = json!({"thingName": "dev-1", "action": "quarantine",
            "reason": "num_child_procs_myapp > 0", "source": "iot-rule", "extra": {"x": 1}});
        let verdict = verdict_of(request, &DecisionPolicy::default());
        assert_eq!(verdict.source, Some(AlertSource::MitigationRequest));
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                subjects: vec![Subject::thing("dev-1").expect("thing")]
            }
        );
        assert_eq!(
            verdict.reason(),
            "quarantine requested by iot-rule: num_child_procs_myapp > 0"
        );
        assert_eq!(verdict.to_json()["requestSource"], "iot-rule");
        let release =
            json!({"thingName": "dev-1", "action": "release", "reason": "fixed", "source": "ops"});
        assert_eq!(
            verdict_of(release, &DecisionPolicy::default())
                .decision
                .kind(),
            "release"
        );
    }

    #[test]
    fn certificates_arns_and_client_ids_are_subjects() {
        let request = json!({"action": "Quarantine", "certificateId": CERT,
            "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/dev-2", "clientId": "dev-2"});
        let verdict = verdict_of(request, &DecisionPolicy::default());
        assert_eq!(
            verdict.decision.subjects(),
            [
                Subject::thing("dev-2").expect("thing"),
                Subject::certificate(CERT).expect("cert")
            ]
        );
        assert_eq!(
            verdict.notes,
            vec!["action: \"Quarantine\" read as \"quarantine\"".to_owned()]
        );
    }

    #[test]
    fn an_arn_of_another_account_or_region_is_refused_naming_it() {
        let policy = DecisionPolicy {
            scope: LocalScope::new(Some("123456789012"), Some("eu-west-1")),
            ..Default::default()
        };
        let local = json!({"action": "quarantine",
            "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/gw-01"});
        assert_eq!(
            verdict_of(local.clone(), &policy).decision.kind(),
            "quarantine"
        );
        let foreign = "arn:aws:iot:us-east-1:999999999999:thing/gw-01";
        let request = json!({"action": "quarantine", "thingArn": foreign});
        let verdict = verdict_of(request.clone(), &policy);
        assert!(matches!(
            verdict.decision,
            Decision::Reject(RejectReason::InvalidSubject {
                problem: InvalidSubject::Foreign { .. },
                ..
            })
        ));
        assert_eq!(verdict.to_json()["error"], "ForeignResource");
        let reason = verdict.reason();
        assert!(
            reason.contains(foreign) && reason.contains("account 123456789012 in region eu-west-1"),
            "{reason}"
        );
        // Without a known account and region, today's behaviour: any ARN.
        assert_eq!(
            verdict_of(request, &DecisionPolicy::default())
                .decision
                .kind(),
            "quarantine"
        );
        let cert = json!({"action": "release",
            "certificateArn": format!("arn:aws:iot:eu-west-1:999999999999:cert/{CERT}")});
        assert_eq!(verdict_of(cert, &policy).decision.kind(), "reject");
    }

    #[test]
    fn a_request_without_action_or_subject_is_rejected() {
        let policy = DecisionPolicy::default();
        assert_eq!(
            verdict_of(json!({"thingName": "dev-1"}), &policy).decision,
            Decision::Reject(RejectReason::MissingRequestAction)
        );
        assert!(matches!(
            verdict_of(json!({"thingName": "dev-1", "action": "delete"}), &policy).decision,
            Decision::Reject(RejectReason::UnknownRequestAction { .. })
        ));
        assert!(matches!(
            verdict_of(json!({"action": "quarantine", "reason": "?"}), &policy).decision,
            Decision::Reject(RejectReason::MissingSubject { .. })
        ));
        assert!(matches!(
            verdict_of(
                json!({"action": "quarantine", "thingArn": "arn:aws:s3:::bucket"}),
                &policy
            )
            .decision,
            Decision::Reject(RejectReason::InvalidSubject { .. })
        ));
        assert!(matches!(
            verdict_of(json!({"action": "quarantine", "thingName": ["a"]}), &policy).decision,
            Decision::Reject(RejectReason::FieldNotText {
                field: "thingName",
                ..
            })
        ));
    }
}
