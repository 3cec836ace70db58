//! Security Hub findings sent by EventBridge ("Security Hub Findings - Custom Action" and
//! "Security Hub Findings - Imported"; `detail.findings[]` in ASFF).
//!
//! Each finding's `Resources[].Id` that is an IoT thing ARN or certificate ARN is
//! quarantined. A finding whose `Workflow.Status` is SUPPRESSED or whose `RecordState` is
//! ARCHIVED asks for nothing; nor does one without any IoT resource.

use crate::decision::{Action, Decision, IgnoreReason, SkipWhy, SkippedFinding};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::subject::Subject;
use crate::verdict::{AlertFacts, AlertTime};

pub(crate) fn looks_like(f: Fields<'_>) -> bool {
    f.str("source") == Some("aws.securityhub")
        || f.str("detail-type")
            .is_some_and(|t| t.starts_with("Security Hub Findings"))
}

/// One finding, as far as the decision reads it.
struct Finding<'a> {
    id: String,
    fields: Fields<'a>,
}

pub(crate) fn decide(f: Fields<'_>, notes: &mut Notes) -> Decided {
    let findings: Vec<Finding<'_>> = f
        .object("detail", notes)
        .map(|d| d.objects("findings", notes))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, fields)| Finding {
            id: fields
                .str("Id")
                .map_or_else(|| format!("findings[{i}]"), |id| excerpt(id, 300)),
            fields,
        })
        .collect();
    let titles: Vec<String> = findings
        .iter()
        .filter_map(|x| x.fields.str("Title").map(|t| excerpt(t, 200)))
        .collect();
    let mut facts = AlertFacts {
        event_type: f.text("detail-type", notes),
        time: f.text("time", notes).map(AlertTime::Text),
        alert_reason: (!titles.is_empty()).then(|| titles.join("; ")),
        finding_ids: findings.iter().map(|x| x.id.clone()).collect(),
        ..AlertFacts::default()
    };
    if findings.is_empty() {
        let decision = Decision::Reject(RejectReason::MissingField {
            alert: AlertSource::SecurityHub,
            field: "detail.findings",
        });
        return Decided { facts, decision };
    }
    let mut named = Vec::new();
    let decision = decide_findings(&findings, &mut named, notes);
    facts.subject = (!named.is_empty()).then(|| named.join(", "));
    Decided { facts, decision }
}

fn decide_findings(
    findings: &[Finding<'_>],
    named: &mut Vec<String>,
    notes: &mut Notes,
) -> Decision {
    let mut subjects = Vec::new();
    let mut skipped = Vec::new();
    let mut first_invalid = None;
    for finding in findings {
        if let Some(why) = closed(finding.fields, notes) {
            skipped.push(SkippedFinding {
                finding_id: finding.id.clone(),
                why,
            });
            continue;
        }
        let before = subjects.len();
        for resource in finding.fields.objects("Resources", notes) {
            let Some(id) = resource.str("Id") else {
                continue;
            };
            if !Subject::is_iot_resource_arn(id) {
                continue;
            }
            named.push(id.to_owned());
            match Subject::from_arn(id) {
                Ok(subject) => subjects.push(subject),
                Err(problem) => {
                    notes.push(format!(
                        "finding {}: resource {id:?} skipped: {problem}",
                        finding.id
                    ));
                    first_invalid.get_or_insert(RejectReason::InvalidSubject {
                        field: "Resources[].Id".to_owned(),
                        value: excerpt(id, 200),
                        problem,
                    });
                }
            }
        }
        if subjects.len() == before {
            skipped.push(SkippedFinding {
                finding_id: finding.id.clone(),
                why: SkipWhy::NoIotResource,
            });
        }
    }
    if let Some(decision) = Decision::act(Action::Quarantine, subjects) {
        skipped.iter().for_each(|s| {
            notes.push(format!(
                "finding {} not acted on: {}",
                s.finding_id,
                s.why.as_str()
            ))
        });
        return decision;
    }
    match first_invalid {
        Some(reason) => Decision::Reject(reason),
        None => Decision::Ignore(IgnoreReason::NoActionableFinding { skipped }),
    }
}

/// Why a finding is closed to action, if it is.
fn closed(finding: Fields<'_>, notes: &mut Notes) -> Option<SkipWhy> {
    let workflow = finding
        .object("Workflow", notes)
        .and_then(|w| w.str("Status"));
    if workflow == Some("SUPPRESSED") {
        return Some(SkipWhy::Suppressed);
    }
    (finding.str("RecordState") == Some("ARCHIVED")).then_some(SkipWhy::Archived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DecisionPolicy;
    use crate::verdict::verdict_of;
    use serde_json::{Value, json};

    fn finding(id: &str, resources: Value, workflow: &str, record: &str) -> Value {
        json!({"SchemaVersion": "2018-10-08", "Id": id,
               "ProductArn": "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default",
               "GeneratorId": "iot-device-defender", "AwsAccountId": "123456789012",
               "Types": ["Unusual Behaviors/Device"], "CreatedAt": "2026-11-20T10:00:00Z",
               "UpdatedAt": "2026-11-20T10:00:00Z", "Severity": {"Label": "HIGH"},
               "Title": format!("title of {id}"), "Description": "d", "Resources": resources,
               "Workflow": {"Status": workflow}, "RecordState": record})
    }

    fn event(findings: Value) -> Value {
        json!({"version": "0", "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506",
               "detail-type": "Security Hub Findings - Custom Action", "source": "aws.securityhub",
               "account": "123456789012", "time": "2026-11-20T10:05:00Z", "region": "eu-west-1",
               "resources": ["arn:aws:securityhub:eu-west-1:123456789012:action/custom/Quarantine"],
               "detail": {"actionName": "Quarantine", "findings": findings}})
    }

    fn thing(name: &str) -> Value {
        json!({"Type": "Other", "Id": format!("arn:aws:iot:eu-west-1:123456789012:thing/{name}")})
    }

    #[test]
    fn iot_resources_of_open_findings_are_quarantined() {
        let message = event(json!([
            finding(
                "f-1",
                json!([thing("dev-1"), {"Type": "AwsAccount", "Id": "AWS::::Account:123456789012"}]),
                "NEW",
                "ACTIVE"
            ),
            finding(
                "f-2",
                json!([thing("dev-2"), thing("dev-1")]),
                "NOTIFIED",
                "ACTIVE"
            ),
            finding("f-3", json!([thing("dev-3")]), "SUPPRESSED", "ACTIVE"),
        ]));
        let verdict = verdict_of(message, &DecisionPolicy::default());
        assert_eq!(verdict.source, Some(AlertSource::SecurityHub));
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                subjects: vec![
                    Subject::thing("dev-1").expect("thing"),
                    Subject::thing("dev-2").expect("thing")
                ]
            }
        );
        assert_eq!(verdict.facts.finding_ids, ["f-1", "f-2", "f-3"]);
        assert_eq!(
            verdict.notes,
            ["finding f-3 not acted on: its workflow status is SUPPRESSED"]
        );
        assert!(
            verdict
                .reason()
                .starts_with("Security Hub finding f-1, f-2, f-3: title of f-1")
        );
    }

    #[test]
    fn findings_without_iot_resources_or_closed_are_ignored() {
        let message = event(json!([
            finding(
                "f-1",
                json!([{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"}]),
                "NEW",
                "ACTIVE"
            ),
            finding("f-2", json!([thing("dev-2")]), "NEW", "ARCHIVED"),
        ]));
        let verdict = verdict_of(message, &DecisionPolicy::default());
        assert_eq!(
            verdict.decision,
            Decision::Ignore(IgnoreReason::NoActionableFinding {
                skipped: vec![
                    SkippedFinding {
                        finding_id: "f-1".into(),
                        why: SkipWhy::NoIotResource
                    },
                    SkippedFinding {
                        finding_id: "f-2".into(),
                        why: SkipWhy::Archived
                    },
                ]
            })
        );
    }

    #[test]
    fn certificate_arns_are_subjects_and_invalid_iot_arns_are_rejected() {
        let cert = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
        let message = event(json!([finding(
            "f-1",
            json!([{"Type": "Other", "Id": format!("arn:aws:iot:eu-west-1:123456789012:cert/{cert}")}]),
            "NEW",
            "ACTIVE"
        )]));
        assert_eq!(
            verdict_of(message, &DecisionPolicy::default())
                .decision
                .subjects(),
            [Subject::certificate(cert).expect("cert")]
        );
        let bad = event(json!([finding(
            "f-1",
            json!([thing("a/../b")]),
            "NEW",
            "ACTIVE"
        )]));
        assert!(matches!(
            verdict_of(bad, &DecisionPolicy::default()).decision,
            Decision::Reject(RejectReason::InvalidSubject { .. })
        ));
        let mut empty = event(json!([]));
        empty["detail-type"] = json!("Security Hub Findings - Imported");
        assert!(matches!(
            verdict_of(empty, &DecisionPolicy::default()).decision,
            Decision::Reject(RejectReason::MissingField { .. })
        ));
    }
}
