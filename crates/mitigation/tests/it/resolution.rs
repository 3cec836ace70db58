//! Subjects resolved to things through the handler: certificates (ListPrincipalThingsV2),
//! audit tasks expanded over every page of their findings, published findings looked up,
//! and Detect alarms verified.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mitigation::testing::{Call, ScriptedAction, ScriptedDirectory, ScriptedViolations};
use mitigation::{Handler, MitigationAction, RecordOutcome, Retry};
use serde_json::{Value, json};
use violation_core::{Action, AuditFindingFields, DecisionPolicy, fixtures};

const CERT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CERT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SHARED: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";

fn handler(action: &Arc<ScriptedAction>, directory: ScriptedDirectory) -> Handler {
    let directory = Arc::new(directory);
    Handler::new(
        DecisionPolicy::default(),
        vec![action.clone() as Arc<dyn MitigationAction>],
    )
    .with_certificate_things(directory.clone())
    .with_audit_findings(directory)
}

fn sqs(bodies: &[(&str, Value)]) -> Value {
    let texts: Vec<(String, String)> = bodies
        .iter()
        .map(|(id, b)| ((*id).to_owned(), b.to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(i, b)| (i.as_str(), b.as_str()))
        .collect();
    fixtures::sqs_event(&refs)
}

fn things(action: &ScriptedAction) -> Vec<String> {
    let mut called: Vec<String> = action.calls().into_iter().map(|c| c.thing).collect();
    called.sort();
    called
}

fn finding(
    id: usize,
    cert: Option<&str>,
    client: Option<&str>,
    suppressed: bool,
) -> AuditFindingFields {
    AuditFindingFields {
        finding_id: Some(format!("f-{id}")),
        task_id: Some("task-1".into()),
        check_name: Some(SHARED.into()),
        is_suppressed: Some(suppressed),
        device_certificate_id: cert.map(str::to_owned),
        client_id: client.map(str::to_owned),
        ..Default::default()
    }
}

fn audit_notification(task: &str) -> Value {
    json!({"accountId": "123456789012", "taskId": task, "taskStatus": "COMPLETED",
           "taskType": "SCHEDULED_AUDIT_TASK", "nonCompliantChecksCount": 1,
           "auditDetails": [{"checkName": SHARED, "checkRunStatus": "COMPLETED_NON_COMPLIANT",
                             "nonCompliantResourcesCount": 3, "totalResourcesCount": 9}]})
}

#[tokio::test]
async fn a_certificate_subject_quarantines_every_thing_it_is_attached_to() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(
        &action,
        ScriptedDirectory::new(10).certificate(CERT_A, &["cam-1", "cam-2"]),
    );
    let request = json!({"certificateId": CERT_A, "action": "quarantine", "reason": "leaked key", "source": "soc"});
    let report = h.handle(&sqs(&[("m1", request)])).await.expect("decoded");
    assert_eq!(report.records[0].outcome, RecordOutcome::Done);
    assert_eq!(report.records[0].things, ["cam-1", "cam-2"]);
    assert_eq!(things(&action), ["cam-1", "cam-2"]);
}

#[tokio::test]
async fn a_certificate_attached_to_no_thing_fails_permanently_naming_it() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(&action, ScriptedDirectory::new(10));
    let request = json!({"certificateId": CERT_B, "action": "quarantine"});
    let report = h.handle(&sqs(&[("m1", request)])).await.expect("decoded");
    let record = &report.records[0];
    assert_eq!(
        record.outcome,
        RecordOutcome::Failed {
            retry: Retry::Permanent
        }
    );
    let failure = record.failure().expect("failed");
    assert_eq!(failure.code, "NoThingForCertificate");
    assert!(
        record.action_errors().contains(CERT_B),
        "{}",
        record.action_errors()
    );
    assert!(action.calls().is_empty());
}

#[tokio::test]
async fn a_certificate_attached_only_to_invalid_names_fails_permanently() {
    // Found by fuzzing the handler: such a record used to end as ignored, so nothing was
    // quarantined and nothing was dead-lettered.
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(
        &action,
        ScriptedDirectory::new(10).certificate(CERT_A, &["bad name", ""]),
    );
    let request = json!({"certificateId": CERT_A, "action": "quarantine"});
    let report = h.handle(&sqs(&[("m1", request)])).await.expect("decoded");
    let record = &report.records[0];
    assert_eq!(
        record.outcome,
        RecordOutcome::Failed {
            retry: Retry::Permanent
        }
    );
    assert_eq!(
        record.failure().map(|f| f.code).as_deref(),
        Some("NoThingForCertificate")
    );
    assert!(
        record.notes.iter().any(|n| n.contains("bad name")),
        "{:?}",
        record.notes
    );
    assert!(action.calls().is_empty());
}

#[tokio::test]
async fn an_audit_is_expanded_over_every_page_skipping_suppressed_findings() {
    // 1,000 findings over 4 pages of 250: certificates shared by two things each, client
    // ids, and suppressed findings that must change nothing.
    let mut findings = Vec::new();
    let mut directory = ScriptedDirectory::new(250);
    for i in 0..1000 {
        let f = match i % 4 {
            0 => {
                let cert = format!("{i:064x}");
                directory = directory.certificate(&cert, &[&format!("c{i}-a"), &format!("c{i}-b")]);
                finding(i, Some(&cert), None, false)
            }
            1 | 2 => finding(i, None, Some(&format!("client-{i}")), false),
            _ => finding(i, None, Some(&format!("suppressed-{i}")), true),
        };
        findings.push(f);
    }
    let directory = directory.findings("task-1", SHARED, findings);
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(&action, directory);
    let report = h
        .handle(&sqs(&[("m1", audit_notification("task-1"))]))
        .await
        .expect("decoded");
    let record = &report.records[0];
    assert_eq!(record.outcome, RecordOutcome::Done, "{:?}", record.notes);
    // 250 certificates x 2 things + 500 client ids; none of the 250 suppressed.
    assert_eq!(record.things.len(), 1000);
    let called = things(&action);
    assert_eq!(called.len(), 1000, "each thing acted on once");
    assert!(called.iter().all(|t| !t.starts_with("suppressed")));
    assert!(
        record.notes.iter().any(|n| n.contains("250 ignored")),
        "{:?}",
        record.notes
    );
}

#[tokio::test]
async fn a_failed_thing_in_an_audit_hands_the_record_back_and_the_retry_finishes_it() {
    let findings = (0..5)
        .map(|i| finding(i, None, Some(&format!("client-{i}")), false))
        .collect();
    let directory = ScriptedDirectory::new(2).findings("task-1", SHARED, findings);
    let flaky =
        Arc::new(ScriptedAction::new("thing-group").failing(&[("client-3", Retry::Retryable)]));
    let event = sqs(&[("m1", audit_notification("task-1"))]);
    let report = handler(&flaky, directory)
        .handle(&event)
        .await
        .expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Failed {
            retry: Retry::Retryable
        }
    );
    let answer = serde_json::to_value(report.into_response().expect("sqs answer")).unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
}

#[tokio::test]
async fn a_published_finding_is_looked_up_and_decided() {
    let directory = ScriptedDirectory::new(10)
        .certificate(CERT_A, &["cam-9"])
        .findings(
            "task-1",
            SHARED,
            vec![finding(7, Some(CERT_A), None, false)],
        );
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(&action, directory);
    let published = json!({"findingId": "f-7", "taskId": "task-1", "checkName": SHARED});
    let report = h.handle(&sqs(&[("m1", published)])).await.expect("decoded");
    assert_eq!(report.records[0].verdict.decision.kind(), "lookup-finding");
    assert_eq!(report.records[0].outcome, RecordOutcome::Done);
    assert_eq!(
        action.calls(),
        vec![Call {
            action: Action::Quarantine,
            thing: "cam-9".into()
        }]
    );
}

#[tokio::test]
async fn verify_violation_rejects_an_alarm_device_defender_does_not_list() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let active = ScriptedViolations::new([("dev-1", vec!["v-real".to_string()])]);
    let h = Handler::new(
        DecisionPolicy::default(),
        vec![action.clone() as Arc<dyn MitigationAction>],
    )
    .with_active_violations(Arc::new(active))
    .with_verify_violation(true);
    let event = sqs(&[
        ("real", fixtures::violation("dev-1", "in-alarm", "v-real")),
        (
            "forged",
            fixtures::violation("dev-1", "in-alarm", "v-forged"),
        ),
    ]);
    let report = h.handle(&event).await.expect("decoded");
    assert_eq!(report.records[0].outcome, RecordOutcome::Done);
    let forged = &report.records[1];
    assert_eq!(
        forged.failure().map(|f| f.error_type()).as_deref(),
        Some("Permanent.UnverifiedViolation")
    );
    assert_eq!(things(&action), ["dev-1"]);
}

#[tokio::test]
async fn a_dry_run_resolves_nothing_and_says_what_it_would_look_up() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(
        &action,
        ScriptedDirectory::new(10).certificate(CERT_A, &["cam-1"]),
    )
    .with_dry_run(true);
    let event = sqs(&[
        ("m1", audit_notification("task-1")),
        (
            "m2",
            json!({"certificateId": CERT_A, "action": "quarantine"}),
        ),
    ]);
    let report = h.handle(&event).await.expect("decoded");
    for record in &report.records {
        assert_eq!(record.outcome, RecordOutcome::DryRun);
        assert!(!record.notes.is_empty());
    }
    assert!(action.calls().is_empty());
}

#[tokio::test]
async fn with_a_queue_an_audit_is_fanned_out_one_request_per_device_and_acted_on_there() {
    use mitigation::testing::ScriptedFanOut;
    let findings = vec![
        finding(1, Some(CERT_A), None, false),
        finding(2, None, Some("client-2"), false),
        finding(3, None, Some("client-2"), false),
        finding(4, None, Some("suppressed-4"), true),
    ];
    let directory = ScriptedDirectory::new(2)
        .certificate(CERT_A, &["cam-1"])
        .findings("task-1", SHARED, findings);
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let queue = Arc::new(ScriptedFanOut::failing(1));
    let h = handler(&action, directory).with_fan_out(queue.clone());
    let event = sqs(&[("m1", audit_notification("task-1"))]);

    // The queue refuses once: the record is handed back, nothing is acted on, nothing sent.
    let report = h.handle(&event).await.expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Failed {
            retry: Retry::Retryable
        }
    );
    assert!(queue.sent().is_empty() && action.calls().is_empty());

    // The retry sends one request per device (client-2 once; nothing suppressed) and acts
    // on none of them itself.
    let report = h.handle(&event).await.expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Done,
        "{:?}",
        report.records[0].notes
    );
    assert!(action.calls().is_empty());
    let sent: Vec<Value> = queue
        .sent()
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0]["certificateId"], CERT_A);
    assert_eq!(sent[1]["thingName"], "client-2");
    assert!(
        sent.iter()
            .all(|r| r["action"] == "quarantine" && r["source"] == "audit:task-1")
    );

    // Each request is an alert of its own: handled, it quarantines its device.
    let requests: Vec<(&str, Value)> = vec![("r1", sent[0].clone()), ("r2", sent[1].clone())];
    let report = h.handle(&sqs(&requests)).await.expect("decoded");
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome == RecordOutcome::Done)
    );
    assert_eq!(things(&action), ["cam-1", "client-2"]);
}
