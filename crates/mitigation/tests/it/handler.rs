//! The batch handler with in-memory actions: responses, failure reporting, concurrency,
//! de-duplication and dry runs.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Diagnostic;
use mitigation::testing::{Call, ScriptedAction, ScriptedViolations};
use mitigation::{Handler, InvocationFailure, KeptBecause, MitigationAction, RecordOutcome, Retry};
use serde_json::{Value, json};
use violation_core::fixtures;
use violation_core::{Action, DecisionPolicy};

type FakeAction = ScriptedAction;

fn fake() -> FakeAction {
    ScriptedAction::new("fake")
}

fn call(action: Action, thing: &str) -> Call {
    Call {
        action,
        thing: thing.to_string(),
    }
}

/// A Detect violation on the seed's custom metric: device-side, so a cleared alarm may
/// release (a cloud-side one never does: the quarantine itself changes it).
fn violation(thing: &str, event_type: &str, id: &str) -> String {
    fixtures::violation_on_metric(thing, event_type, id, "num_child_procs_myapp").to_string()
}

fn sqs_event(bodies: &[(&str, String)]) -> Value {
    let refs: Vec<(&str, &str)> = bodies.iter().map(|(id, b)| (*id, b.as_str())).collect();
    fixtures::sqs_event(&refs)
}

fn sns_event(id: &str, message: String) -> Value {
    fixtures::sns_event(&[(id, &message)])
}

/// The handler's Lambda answer as the runtime serializes it.
async fn answer(h: &Handler, event: Value) -> Result<Value, InvocationFailure> {
    h.handle_lambda(event)
        .await
        .map(|a| serde_json::to_value(a).expect("answers serialize"))
}

fn handler(action: Arc<FakeAction>) -> Handler {
    Handler::new(
        DecisionPolicy::default(),
        vec![action as Arc<dyn MitigationAction>],
    )
}

#[tokio::test]
async fn sqs_batch_lists_exactly_the_failed_records() {
    let action = Arc::new(fake().failing(&[
        ("throttled", Retry::Retryable),
        ("deleted", Retry::Permanent),
    ]));
    let event = sqs_event(&[
        ("ok-1", violation("dev-1", "in-alarm", "v1")),
        ("bad-json", "{not json".into()),
        ("throttled-1", violation("throttled", "in-alarm", "v2")),
        ("ignored-1", violation("dev-2", "alarm-invalidated", "v3")),
        ("deleted-1", violation("deleted", "in-alarm", "v4")),
        ("ok-2", violation("dev-3", "in-alarm", "v5")),
    ]);
    let response = answer(&handler(action.clone()), event)
        .await
        .expect("SQS answers with a batch response");
    assert_eq!(
        response,
        json!({"batchItemFailures": [
            {"itemIdentifier": "bad-json"}, {"itemIdentifier": "throttled-1"}, {"itemIdentifier": "deleted-1"}
        ]})
    );
    let mut called: Vec<String> = action.calls().into_iter().map(|c| c.thing).collect();
    called.sort();
    assert_eq!(called, vec!["deleted", "dev-1", "dev-3", "throttled"]);
}

#[tokio::test]
async fn sns_failure_fails_the_invocation_saying_whether_a_retry_helps() {
    let action = Arc::new(fake().failing(&[
        ("throttled", Retry::Retryable),
        ("deleted", Retry::Permanent),
    ]));
    let h = handler(action);

    let ok = answer(&h, sns_event("m1", violation("dev-1", "in-alarm", "v1"))).await;
    assert_eq!(
        ok,
        Ok(json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1}))
    );

    let throttled = h
        .handle_lambda(sns_event("m2", violation("throttled", "in-alarm", "v2")))
        .await;
    let diagnostic: Diagnostic = throttled
        .expect_err("throttled record fails the invocation")
        .into();
    assert_eq!(diagnostic.error_type, "Retryable.ThrottlingException");
    assert!(
        diagnostic.error_message.contains("record m2"),
        "{}",
        diagnostic.error_message
    );
    assert!(
        diagnostic.error_message.contains("thing throttled"),
        "{}",
        diagnostic.error_message
    );

    let deleted = h
        .handle_lambda(sns_event("m3", violation("deleted", "in-alarm", "v3")))
        .await;
    let diagnostic: Diagnostic = deleted
        .expect_err("missing thing fails the invocation")
        .into();
    assert_eq!(diagnostic.error_type, "Permanent.ResourceNotFoundException");

    let malformed = h.handle_lambda(sns_event("m4", "not json".into())).await;
    let diagnostic: Diagnostic = malformed
        .expect_err("malformed record fails the invocation")
        .into();
    assert_eq!(diagnostic.error_type, "Permanent.MessageNotJson");
    assert!(diagnostic.error_message.contains("record m4"));
}

#[tokio::test]
async fn events_that_are_no_alert_fail_permanently() {
    let h = handler(Arc::new(fake()));
    // A direct invocation is read as the alert itself: one that is none of the known
    // sources is rejected, saying which were tried.
    let diagnostic: Diagnostic = h
        .handle_lambda(json!({"detail-type": "Scheduled Event", "source": "aws.events"}))
        .await
        .expect_err("not an alert")
        .into();
    assert_eq!(diagnostic.error_type, "Permanent.UnknownAlert");
    assert!(
        diagnostic.error_message.contains("mitigation"),
        "{}",
        diagnostic.error_message
    );
    let diagnostic: Diagnostic = h
        .handle_lambda(json!(["not", "an", "event"]))
        .await
        .expect_err("not an event")
        .into();
    assert_eq!(diagnostic.error_type, "Permanent.NotAViolationEvent");
    assert_eq!(
        answer(&h, json!({"Records": []})).await,
        Ok(json!({"batchItemFailures": []}))
    );
}

#[tokio::test]
async fn records_of_a_batch_run_concurrently_within_the_bound() {
    let bodies: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("m{i}"),
                violation(&format!("dev-{i}"), "in-alarm", &format!("v{i}")),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = bodies
        .iter()
        .map(|(id, b)| (id.as_str(), b.clone()))
        .collect();
    for (bound, expected_peak) in [(10, 10), (3, 3), (1, 1)] {
        let action = Arc::new(fake().with_delay(Duration::from_millis(20)));
        let h = handler(action.clone()).with_max_concurrency(bound);
        let response = answer(&h, sqs_event(&refs)).await.expect("batch response");
        assert_eq!(response, json!({"batchItemFailures": []}));
        assert_eq!(action.calls().len(), 10);
        assert_eq!(action.peak_concurrency(), expected_peak, "bound {bound}");
    }
}

#[tokio::test]
async fn a_thing_repeated_in_a_batch_gets_one_call() {
    let action = Arc::new(fake());
    let event = sqs_event(&[
        ("a", violation("dev-1", "in-alarm", "v1")),
        ("b", violation("dev-1", "in-alarm", "v1")),
        ("c", violation("dev-1", "in-alarm", "v2")),
    ]);
    let report = handler(action.clone())
        .handle(&event)
        .await
        .expect("decoded");
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome == RecordOutcome::Done)
    );
}

#[tokio::test]
async fn dry_run_calls_nothing() {
    let action = Arc::new(fake());
    let h = handler(action.clone()).with_dry_run(true);
    let report = h
        .handle(&sns_event("m1", violation("dev-1", "in-alarm", "v1")))
        .await
        .expect("decoded");
    assert!(action.calls().is_empty());
    assert_eq!(report.records[0].outcome, RecordOutcome::DryRun);
    assert_eq!(
        report.records[0].to_json()["actions"],
        json!([{"action": "fake", "thing": "dev-1", "outcome": "dry-run"}])
    );
}

#[tokio::test]
async fn release_waits_until_no_other_violation_is_active() {
    let action = Arc::new(fake());
    let violations = ScriptedViolations::new([
        (
            "busy",
            vec!["other-violation".to_string(), "v-own".to_string()],
        ),
        ("calm", vec!["v-own".to_string()]),
    ]);
    let policy = DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    };
    let h = Handler::new(policy, vec![action.clone() as Arc<dyn MitigationAction>])
        .with_active_violations(Arc::new(violations));
    let event = sqs_event(&[
        ("m1", violation("busy", "alarm-cleared", "v-own")),
        ("m2", violation("calm", "alarm-cleared", "v-own")),
    ]);
    let report = h.handle(&event).await.expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Kept {
            because: KeptBecause::ActiveViolations,
            held_by: vec!["other-violation".to_string()]
        }
    );
    assert_eq!(report.records[1].outcome, RecordOutcome::Done);
    assert_eq!(action.calls(), vec![call(Action::Release, "calm")]);
    let response = report
        .into_response()
        .map(|a| serde_json::to_value(a).expect("json"));
    assert_eq!(response, Ok(json!({"batchItemFailures": []})));
}

#[tokio::test]
async fn batch_item_failures_name_a_long_message_id_exactly() {
    // Found by fuzzing the handler (fuzz/fuzz_targets/handler_input.rs): message ids were
    // cut to 200 characters plus '…', an itemIdentifier naming no message of the batch.
    let long_id = format!("a09ce2d1-25e0-{}", "b".repeat(250));
    let event = sqs_event(&[
        (long_id.as_str(), "{not json".into()),
        ("ok-1", violation("dev-1", "in-alarm", "v1")),
    ]);
    let response = answer(&handler(Arc::new(fake())), event)
        .await
        .expect("batch response");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": long_id}]})
    );
}

#[tokio::test]
async fn a_message_delivered_twice_in_a_batch_is_listed_once() {
    // Found by fuzzing the handler (fuzz/fuzz_targets/handler_input.rs), from
    // events/sqs-mixed-batch.json with message ...e03 delivered twice: both failed records
    // were listed, so batchItemFailures named the same message twice.
    let action = Arc::new(fake().failing(&[("throttled", Retry::Retryable)]));
    let id = "3e9f8daf-4253-4b6e-bdcf-304152637e03";
    let event = sqs_event(&[
        (id, violation("throttled", "in-alarm", "v1")),
        ("3e9f8daf-4253-4b6e-bdcf-304152637e01", "{not json".into()),
        (id, violation("throttled", "in-alarm", "v1")),
    ]);
    let response = answer(&handler(action), event)
        .await
        .expect("batch response");
    assert_eq!(
        response,
        json!({"batchItemFailures": [
            {"itemIdentifier": id}, {"itemIdentifier": "3e9f8daf-4253-4b6e-bdcf-304152637e01"}
        ]})
    );
}

#[tokio::test]
async fn quarantine_wins_over_a_release_of_the_same_thing_in_one_batch() {
    // The in-alarm and the alarm-cleared of a thing may arrive together, in any order: the
    // thing stays quarantined and the release is reported kept, naming the alarm.
    let action = Arc::new(fake());
    let policy = DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    };
    let h = Handler::new(policy, vec![action.clone() as Arc<dyn MitigationAction>]);
    let event = sqs_event(&[
        ("m1", violation("dev-1", "alarm-cleared", "v-old")),
        ("m2", violation("dev-1", "in-alarm", "v-new")),
        ("m3", violation("dev-2", "alarm-cleared", "v-2")),
    ]);
    let report = h.handle(&event).await.expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Kept {
            because: KeptBecause::QuarantinedInBatch,
            held_by: vec!["v-new".to_string()]
        }
    );
    assert_eq!(report.records[1].outcome, RecordOutcome::Done);
    assert_eq!(report.records[2].outcome, RecordOutcome::Done);
    let mut calls = action.calls();
    calls.sort_by(|a, b| a.thing.cmp(&b.thing));
    assert_eq!(
        calls,
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Release, "dev-2")
        ]
    );
}

#[tokio::test]
async fn actions_run_in_order_and_a_failure_stops_the_rest() {
    // quarantine-group with DISCONNECT: the connection is cut only once the thing is in the
    // group, and a failed group change leaves the disconnect for the retry.
    let group = Arc::new(fake().failing(&[("deleted", Retry::Permanent)]));
    let cut = Arc::new(ScriptedAction::new("disconnect").only_for(Action::Quarantine));
    let policy = DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    };
    let h = Handler::new(
        policy,
        vec![
            group.clone() as Arc<dyn MitigationAction>,
            cut.clone() as Arc<dyn MitigationAction>,
        ],
    );
    let event = sqs_event(&[
        ("m1", violation("dev-1", "in-alarm", "v1")),
        ("m2", violation("deleted", "in-alarm", "v2")),
        ("m3", violation("dev-3", "alarm-cleared", "v3")),
    ]);
    let report = h.handle(&event).await.expect("decoded");
    let names =
        |i: usize| -> Vec<&str> { report.records[i].actions.iter().map(|a| a.action).collect() };
    assert_eq!(names(0), ["fake", "disconnect"]);
    assert_eq!(
        names(1),
        ["fake"],
        "a failed group change stops the disconnect"
    );
    assert_eq!(
        report.records[1].outcome,
        RecordOutcome::Failed {
            retry: Retry::Permanent
        }
    );
    assert_eq!(names(2), ["fake"], "nothing to disconnect on release");
    assert_eq!(cut.calls(), vec![call(Action::Quarantine, "dev-1")]);
}

#[tokio::test]
async fn work_not_started_before_the_deadline_is_handed_back() {
    use mitigation::handler::Deadline;
    use std::time::SystemTime;
    let action = Arc::new(fake());
    let h = handler(action.clone());
    let event = sqs_event(&[
        ("m1", violation("dev-1", "in-alarm", "v1")),
        ("m2", violation("dev-2", "in-alarm", "v2")),
    ]);
    let soon = Deadline(Some(SystemTime::now() + Duration::from_secs(1)));
    let report = h.handle_until(&event, soon).await.expect("decoded");
    assert!(
        action.calls().is_empty(),
        "nothing started this close to the deadline"
    );
    for record in &report.records {
        assert_eq!(
            record.failure().map(|f| f.error_type()).as_deref(),
            Some("Retryable.DeadlineNear")
        );
    }
    let later = Deadline(Some(SystemTime::now() + Duration::from_secs(60)));
    let report = h.handle_until(&event, later).await.expect("decoded");
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome == RecordOutcome::Done)
    );
    assert_eq!(action.calls().len(), 2);
}

/// Item 3 of issue 15: a release request is refused unless its source is trusted, on the
/// topic, a queue or a direct invocation alike; nothing is called for it.
#[tokio::test]
async fn a_release_request_from_an_untrusted_source_is_refused_whatever_the_delivery() {
    let action = Arc::new(fake());
    let h = handler(action.clone()).with_release_sources(
        mitigation::trust::ReleaseSources::from_comma_list("soc-runbook"),
    );
    let request = |source: &str| json!({"thingName": "dev-1", "action": "release", "reason": "fixed", "source": source});
    let direct = h.handle_lambda(request("quarantinectl:alice")).await;
    let diagnostic: Diagnostic = direct.expect_err("refused").into();
    assert_eq!(diagnostic.error_type, "Permanent.ReleaseNotAllowed");
    assert!(
        diagnostic.error_message.contains("quarantinectl:alice"),
        "{}",
        diagnostic.error_message
    );
    let sns = h
        .handle_lambda(sns_event("m1", request("anyone").to_string()))
        .await;
    let diagnostic: Diagnostic = sns.expect_err("refused").into();
    assert_eq!(diagnostic.error_type, "Permanent.ReleaseNotAllowed");
    let sqs = answer(&h, sqs_event(&[("q1", request("anyone").to_string())])).await;
    assert_eq!(
        sqs,
        Ok(json!({"batchItemFailures": [{"itemIdentifier": "q1"}]}))
    );
    assert!(action.calls().is_empty(), "{:?}", action.calls());

    let trusted = answer(&h, request("soc-runbook")).await;
    assert!(trusted.is_ok(), "{trusted:?}");
    assert_eq!(action.calls(), vec![call(Action::Release, "dev-1")]);
}

/// Item 5 of issue 15 (`PROTECTED_THINGS`): a protected thing is kept, the others of the
/// batch are quarantined.
#[tokio::test]
async fn a_protected_thing_is_kept_and_says_why() {
    let action = Arc::new(fake());
    let h = handler(action.clone()).with_protected_things(
        mitigation::trust::ProtectedThings::from_comma_list("gw-*,core-1"),
    );
    let report = h
        .handle(&sqs_event(&[
            ("a", violation("gw-7", "in-alarm", "v1")),
            ("b", violation("dev-1", "in-alarm", "v2")),
            ("c", violation("core-1", "in-alarm", "v3")),
        ]))
        .await
        .expect("SQS event");
    let outcomes: Vec<(&str, Vec<&str>)> = report
        .records
        .iter()
        .map(|r| (r.outcome.as_str(), r.held_by()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("kept", vec!["PROTECTED_THINGS: gw-*"]),
            ("done", vec![]),
            ("kept", vec!["PROTECTED_THINGS: core-1"]),
        ]
    );
    assert_eq!(
        report.records[0].to_json()["keptBecause"],
        json!("protected")
    );
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
}
