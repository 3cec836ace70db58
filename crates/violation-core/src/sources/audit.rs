//! Device Defender Audit: the audit-completed notification and audit findings.
//!
//! The notification (schema auditnotification/1.0) names no resource: a completed audit
//! with non-compliant checks among `AUDIT_CHECKS` becomes [`Decision::ExpandAudit`], and the
//! handler pages ListAuditFindings for each check, deciding every finding with
//! [`decide_audit_finding`]. Messages of the PUBLISH_FINDING_TO_SNS mitigation action have no
//! documented schema: any object carrying a `findingId` (at the top level or one level
//! down, e.g. under `finding`) is accepted and always becomes [`Decision::LookupFinding`]:
//! the handler reads the finding with DescribeAuditFinding. Whatever else the message
//! carries (a `nonCompliantResource` included) is never trusted, because anyone allowed to
//! publish to the topic could write it.

use crate::audit_ids::{AuditFindingId, AuditTaskId};
use crate::decision::{Action, Decision, DecisionPolicy, IgnoreReason};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::subject::{InvalidSubject, Subject};
use crate::verdict::{AlertFacts, AlertTime};

/// Keys under which a finding may be nested, tried before any other object-valued key.
const FINDING_KEYS: [&str; 4] = ["finding", "auditFinding", "Finding", "AuditFinding"];

/// The fields of one audit finding that the decision reads. The SDK adapters fill it from
/// ListAuditFindings / DescribeAuditFinding; messages that carry a finding fill it from JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFindingFields {
    pub finding_id: Option<String>,
    pub task_id: Option<String>,
    pub check_name: Option<String>,
    pub is_suppressed: Option<bool>,
    /// `nonCompliantResource.resourceIdentifier.deviceCertificateId`.
    pub device_certificate_id: Option<String>,
    /// `nonCompliantResource.resourceIdentifier.deviceCertificateArn`.
    pub device_certificate_arn: Option<String>,
    /// `nonCompliantResource.resourceIdentifier.clientId`.
    pub client_id: Option<String>,
}

impl AuditFindingFields {
    /// The subjects named by the finding, as written, for the log.
    pub fn subject_text(&self) -> Option<String> {
        let named: Vec<&str> = [
            &self.device_certificate_id,
            &self.device_certificate_arn,
            &self.client_id,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
        (!named.is_empty()).then(|| named.join(", "))
    }

    /// The facts an operator needs about this finding.
    pub fn facts(&self) -> AlertFacts {
        AlertFacts {
            subject: self.subject_text(),
            thing_name: self.client_id.clone(),
            task_id: self.task_id.clone(),
            check_name: self.check_name.clone(),
            finding_ids: self.finding_id.iter().cloned().collect(),
            ..AlertFacts::default()
        }
    }

    fn from_json(f: Fields<'_>, notes: &mut Notes) -> Self {
        let identifier = f
            .object("nonCompliantResource", notes)
            .and_then(|r| r.object("resourceIdentifier", notes));
        let id = |key: &str, notes: &mut Notes| identifier.and_then(|i| i.text(key, notes));
        AuditFindingFields {
            finding_id: f.str("findingId").map(str::to_owned),
            task_id: f.text("taskId", notes),
            check_name: f.text("checkName", notes),
            is_suppressed: f.get("isSuppressed", notes),
            device_certificate_id: id("deviceCertificateId", notes),
            device_certificate_arn: id("deviceCertificateArn", notes),
            client_id: id("clientId", notes),
        }
    }
}

/// Decide one audit finding: quarantine the devices behind its certificate or client id,
/// unless it is suppressed, of a check outside `AUDIT_CHECKS`, or names no device.
pub fn decide_audit_finding(finding: &AuditFindingFields, policy: &DecisionPolicy) -> Decision {
    if finding.is_suppressed == Some(true) {
        return Decision::Ignore(IgnoreReason::FindingSuppressed {
            finding_id: finding.finding_id.clone(),
        });
    }
    if !finding
        .check_name
        .as_deref()
        .is_some_and(|c| policy.selects_audit_check(c))
    {
        return Decision::Ignore(IgnoreReason::CheckNotSelected {
            check: finding.check_name.clone(),
        });
    }
    match finding_subjects(finding, policy) {
        Err(reason) => Decision::Reject(reason),
        Ok(subjects) => Decision::act(Action::Quarantine, subjects).unwrap_or_else(|| {
            Decision::Ignore(IgnoreReason::NoDeviceInFinding {
                check: finding.check_name.clone(),
            })
        }),
    }
}

fn finding_subjects(
    finding: &AuditFindingFields,
    policy: &DecisionPolicy,
) -> Result<Vec<Subject>, RejectReason> {
    let invalid =
        |field: &str, value: &str, problem: InvalidSubject| RejectReason::InvalidSubject {
            field: format!("nonCompliantResource.resourceIdentifier.{field}"),
            value: excerpt(value, 140),
            problem,
        };
    let mut subjects = Vec::new();
    // The id and the ARN name the same certificate: the id is enough.
    if let Some(id) = &finding.device_certificate_id {
        subjects.push(Subject::certificate(id).map_err(|p| invalid("deviceCertificateId", id, p))?);
    } else if let Some(arn) = &finding.device_certificate_arn {
        subjects.push(
            Subject::from_arn_in(arn, &policy.scope)
                .map_err(|p| invalid("deviceCertificateArn", arn, p))?,
        );
    }
    if let Some(client) = &finding.client_id {
        subjects.push(Subject::thing(client).map_err(|p| invalid("clientId", client, p))?);
    }
    Ok(subjects)
}

pub(crate) fn looks_like_task(f: Fields<'_>) -> bool {
    f.map().contains_key("taskId")
        && (f.map().contains_key("taskStatus") || f.map().contains_key("auditDetails"))
}

pub(crate) fn looks_like_finding(f: Fields<'_>) -> bool {
    locate_finding(f, &mut Notes::default()).is_some()
}

/// The object that carries `findingId`: the message itself, or one level down.
fn locate_finding<'a>(f: Fields<'a>, notes: &mut Notes) -> Option<Fields<'a>> {
    if f.has("findingId") {
        return Some(f);
    }
    let named = FINDING_KEYS
        .iter()
        .filter_map(|k| f.map().get_key_value(*k));
    let others = f
        .map()
        .iter()
        .filter(|(k, _)| !FINDING_KEYS.contains(&k.as_str()));
    named
        .chain(others)
        .filter(|(_, v)| v.is_object())
        .find_map(|(k, _)| f.object(k, notes).filter(|inner| inner.has("findingId")))
}

pub(crate) fn decide_task(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let mut facts = AlertFacts {
        task_id: f.str("taskId").map(str::to_owned),
        event_type: f.str("taskStatus").map(str::to_owned),
        time: f
            .get::<i64>("taskStartTime", notes)
            .map(AlertTime::EpochMillis),
        alert_reason: f
            .text("scheduledAuditName", notes)
            .map(|name| format!("scheduled audit {name}")),
        ..AlertFacts::default()
    };
    let decision = task_decision(f, policy, notes).unwrap_or_else(Decision::Reject);
    if let Decision::ExpandAudit { checks, .. } = &decision {
        facts.check_name = Some(checks.join(", "));
    }
    Decided { facts, decision }
}

fn task_decision(
    f: Fields<'_>,
    policy: &DecisionPolicy,
    notes: &mut Notes,
) -> Result<Decision, RejectReason> {
    let missing = |field| RejectReason::MissingField {
        alert: AlertSource::AuditTask,
        field,
    };
    let raw_id = f.required_text("taskId", missing("taskId"))?;
    let task_id = AuditTaskId::parse(raw_id).map_err(|problem| RejectReason::InvalidAuditId {
        field: "taskId",
        value: excerpt(raw_id, 60),
        problem,
    })?;
    let status = f.required_text("taskStatus", missing("taskStatus"))?;
    if status != "COMPLETED" {
        return Ok(Decision::Ignore(IgnoreReason::AuditNotCompleted {
            task_id: task_id.to_string(),
            status: status.to_owned(),
        }));
    }
    let checks: Vec<String> = if f.has("auditDetails") {
        f.objects("auditDetails", notes)
            .into_iter()
            .filter(|d| d.str("checkRunStatus") == Some("COMPLETED_NON_COMPLIANT"))
            .filter_map(|d| d.str("checkName"))
            .filter(|c| policy.selects_audit_check(c))
            .map(str::to_owned)
            .collect()
    } else {
        notes.push("auditDetails: absent; every check of AUDIT_CHECKS is listed");
        policy.audit_checks.clone()
    };
    if checks.is_empty() {
        return Ok(Decision::Ignore(
            IgnoreReason::NoSelectedNonCompliantCheck {
                task_id: task_id.to_string(),
            },
        ));
    }
    Ok(Decision::ExpandAudit { task_id, checks })
}

pub(crate) fn decide_finding_message(f: Fields<'_>, notes: &mut Notes) -> Decided {
    let Some(finding) = locate_finding(f, notes) else {
        return Decided {
            facts: AlertFacts::default(),
            decision: Decision::Reject(RejectReason::MissingField {
                alert: AlertSource::AuditFinding,
                field: "findingId",
            }),
        };
    };
    let fields = AuditFindingFields::from_json(finding, notes);
    // The devices the message names are its own claim: only the looked-up finding is shown
    // and acted on.
    let facts = AlertFacts {
        subject: None,
        thing_name: None,
        ..fields.facts()
    };
    if finding.has("nonCompliantResource") {
        notes.push(
            "nonCompliantResource: not trusted from the message; the finding is read with DescribeAuditFinding",
        );
    }
    let raw_id = match finding.required_text(
        "findingId",
        RejectReason::MissingField {
            alert: AlertSource::AuditFinding,
            field: "findingId",
        },
    ) {
        Ok(id) => id,
        Err(reason) => {
            return Decided {
                facts,
                decision: Decision::Reject(reason),
            };
        }
    };
    let decision = match AuditFindingId::parse(raw_id) {
        Err(problem) => Decision::Reject(RejectReason::InvalidAuditId {
            field: "findingId",
            value: excerpt(raw_id, 140),
            problem,
        }),
        Ok(finding_id) => Decision::LookupFinding { finding_id },
    };
    Decided { facts, decision }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::verdict_of;
    use serde_json::{Value, json};

    const CERT: &str = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

    fn notification(status: &str, details: Value) -> Value {
        json!({"accountId": "123456789012", "taskId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
               "taskStatus": status, "taskType": "SCHEDULED_AUDIT_TASK",
               "scheduledAuditName": "daily", "taskStartTime": 1700000000000u64,
               "failedChecksCount": 0, "auditDetails": details})
    }

    fn detail(check: &str, status: &str) -> Value {
        json!({"checkName": check, "checkRunStatus": status, "nonCompliantResourcesCount": 2,
               "totalResourcesCount": 10})
    }

    fn finding(check: &str, identifier: Value) -> AuditFindingFields {
        AuditFindingFields {
            finding_id: Some("f-1".into()),
            task_id: Some("t-1".into()),
            check_name: Some(check.into()),
            is_suppressed: Some(false),
            device_certificate_id: identifier["deviceCertificateId"].as_str().map(Into::into),
            device_certificate_arn: identifier["deviceCertificateArn"].as_str().map(Into::into),
            client_id: identifier["clientId"].as_str().map(Into::into),
        }
    }

    #[test]
    fn a_completed_audit_expands_its_selected_non_compliant_checks() {
        let message = notification(
            "COMPLETED",
            json!([
                detail("DEVICE_CERTIFICATE_SHARED_CHECK", "COMPLETED_NON_COMPLIANT"),
                detail("CONFLICTING_CLIENT_IDS_CHECK", "COMPLETED_COMPLIANT"),
                detail("LOGGING_DISABLED_CHECK", "COMPLETED_NON_COMPLIANT"),
                detail("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", "FAILED"),
            ]),
        );
        let verdict = verdict_of(message, &DecisionPolicy::default());
        assert_eq!(verdict.source, Some(AlertSource::AuditTask));
        assert_eq!(
            verdict.decision,
            Decision::ExpandAudit {
                task_id: AuditTaskId::parse("a1b2c3d4e5f60718293a4b5c6d7e8f90").expect("id"),
                checks: vec!["DEVICE_CERTIFICATE_SHARED_CHECK".into()],
            }
        );
        assert_eq!(
            verdict.facts.time,
            Some(AlertTime::EpochMillis(1_700_000_000_000))
        );
        let line = verdict.to_json();
        assert_eq!(line["decision"], "expand-audit");
        assert_eq!(line["checks"], json!(["DEVICE_CERTIFICATE_SHARED_CHECK"]));
        assert_eq!(line["taskId"], "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    }

    #[test]
    fn audits_that_did_not_complete_or_found_nothing_selected_are_ignored() {
        let failed = verdict_of(
            notification("FAILED", json!([])),
            &DecisionPolicy::default(),
        );
        assert!(matches!(
            failed.decision,
            Decision::Ignore(IgnoreReason::AuditNotCompleted { .. })
        ));
        let clean = notification(
            "COMPLETED",
            json!([detail(
                "DEVICE_CERTIFICATE_SHARED_CHECK",
                "COMPLETED_COMPLIANT"
            )]),
        );
        assert!(matches!(
            verdict_of(clean, &DecisionPolicy::default()).decision,
            Decision::Ignore(IgnoreReason::NoSelectedNonCompliantCheck { .. })
        ));
        let only = DecisionPolicy {
            audit_checks: vec!["LOGGING_DISABLED_CHECK".into()],
            ..Default::default()
        };
        let logging = notification(
            "COMPLETED",
            json!([detail("LOGGING_DISABLED_CHECK", "COMPLETED_NON_COMPLIANT")]),
        );
        assert_eq!(verdict_of(logging, &only).decision.kind(), "expand-audit");
    }

    #[test]
    fn a_completed_audit_without_details_lists_every_selected_check() {
        let mut message = notification("COMPLETED", Value::Null);
        message.as_object_mut().map(|m| m.remove("auditDetails"));
        let verdict = verdict_of(message, &DecisionPolicy::default());
        let Decision::ExpandAudit { checks, .. } = &verdict.decision else {
            panic!("{:?}", verdict.decision)
        };
        assert_eq!(checks.len(), 4);
        assert_eq!(verdict.notes.len(), 1);
    }

    #[test]
    fn a_bad_task_id_is_rejected() {
        let mut message = notification("COMPLETED", json!([]));
        message["taskId"] = json!("../x");
        assert!(matches!(
            verdict_of(message, &DecisionPolicy::default()).decision,
            Decision::Reject(RejectReason::InvalidAuditId {
                field: "taskId",
                ..
            })
        ));
    }

    #[test]
    fn a_finding_quarantines_the_devices_behind_its_certificate_or_client_id() {
        let policy = DecisionPolicy::default();
        let shared = finding(
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            json!({"deviceCertificateId": CERT}),
        );
        assert_eq!(
            decide_audit_finding(&shared, &policy),
            Decision::Act {
                action: Action::Quarantine,
                subjects: vec![Subject::certificate(CERT).expect("cert")]
            }
        );
        let by_arn = finding(
            "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
            json!({"deviceCertificateArn": format!("arn:aws:iot:eu-west-1:123456789012:cert/{CERT}")}),
        );
        assert_eq!(decide_audit_finding(&by_arn, &policy).subjects().len(), 1);
        let client = finding("CONFLICTING_CLIENT_IDS_CHECK", json!({"clientId": "dev-7"}));
        assert_eq!(
            decide_audit_finding(&client, &policy).subjects(),
            [Subject::thing("dev-7").expect("thing")]
        );
    }

    #[test]
    fn a_certificate_arn_of_another_account_is_refused() {
        let policy = DecisionPolicy {
            scope: crate::trust::LocalScope::new(Some("123456789012"), None),
            ..Default::default()
        };
        let foreign = finding(
            "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
            json!({"deviceCertificateArn": format!("arn:aws:iot:eu-west-1:999999999999:cert/{CERT}")}),
        );
        assert!(matches!(
            decide_audit_finding(&foreign, &policy),
            Decision::Reject(RejectReason::InvalidSubject {
                problem: InvalidSubject::Foreign { .. },
                ..
            })
        ));
    }

    #[test]
    fn findings_that_ask_nothing_are_ignored_with_their_reason() {
        let policy = DecisionPolicy::default();
        let mut suppressed = finding(
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            json!({"deviceCertificateId": CERT}),
        );
        suppressed.is_suppressed = Some(true);
        assert_eq!(
            decide_audit_finding(&suppressed, &policy),
            Decision::Ignore(IgnoreReason::FindingSuppressed {
                finding_id: Some("f-1".into())
            })
        );
        let posture = finding("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", json!({}));
        assert!(matches!(
            decide_audit_finding(&posture, &policy),
            Decision::Ignore(IgnoreReason::CheckNotSelected { .. })
        ));
        let nothing = finding(
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            json!({"caCertificateId": CERT}),
        );
        assert_eq!(
            decide_audit_finding(&nothing, &policy),
            Decision::Ignore(IgnoreReason::NoDeviceInFinding {
                check: Some("DEVICE_CERTIFICATE_SHARED_CHECK".into())
            })
        );
        let bad = finding("CONFLICTING_CLIENT_IDS_CHECK", json!({"clientId": "a/b"}));
        assert!(matches!(
            decide_audit_finding(&bad, &policy),
            Decision::Reject(RejectReason::InvalidSubject { .. })
        ));
    }

    #[test]
    fn a_published_finding_is_looked_up_by_id_wherever_it_sits() {
        for message in [
            json!({"findingId": "ffe4fb9c-5d7c-4b3a"}),
            json!({"finding": {"findingId": "ffe4fb9c-5d7c-4b3a", "severity": "CRITICAL"}}),
            json!({"auditFinding": {"findingId": "ffe4fb9c-5d7c-4b3a"}, "taskId": 7}),
            json!({"payload": {"findingId": "ffe4fb9c-5d7c-4b3a"}}),
        ] {
            let verdict = verdict_of(message.clone(), &DecisionPolicy::default());
            assert_eq!(verdict.source, Some(AlertSource::AuditFinding), "{message}");
            assert_eq!(
                verdict.decision,
                Decision::LookupFinding {
                    finding_id: AuditFindingId::parse("ffe4fb9c-5d7c-4b3a").expect("id")
                },
                "{message}"
            );
        }
    }

    #[test]
    fn a_published_finding_is_looked_up_even_when_it_carries_its_resource() {
        let message = json!({"finding": {
            "findingId": "f-2", "taskId": "t-2", "checkName": "DEVICE_CERTIFICATE_SHARED_CHECK",
            "isSuppressed": false, "severity": "CRITICAL",
            "nonCompliantResource": {"resourceType": "DEVICE_CERTIFICATE",
                "resourceIdentifier": {"deviceCertificateId": CERT, "clientId": "victim"}}}});
        let verdict = verdict_of(message, &DecisionPolicy::default());
        assert_eq!(
            verdict.decision,
            Decision::LookupFinding {
                finding_id: AuditFindingId::parse("f-2").expect("id")
            }
        );
        assert_eq!(verdict.facts.finding_ids, vec!["f-2".to_owned()]);
        assert_eq!(verdict.facts.subject, None);
        assert_eq!(verdict.facts.thing_name, None);
        assert_eq!(
            verdict.facts.check_name.as_deref(),
            Some("DEVICE_CERTIFICATE_SHARED_CHECK")
        );
        assert_eq!(
            verdict.notes,
            [
                "nonCompliantResource: not trusted from the message; the finding is read with DescribeAuditFinding"
            ]
        );
        let bad = json!({"findingId": "../../x"});
        assert!(matches!(
            verdict_of(bad, &DecisionPolicy::default()).decision,
            Decision::Reject(RejectReason::InvalidAuditId {
                field: "findingId",
                ..
            })
        ));
    }
}
