//! The handler acting from the ledger (in memory): release by cause, duplicates, stale
//! clears, failures and their redelivery, the minimum time in quarantine, round trips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use mitigation::testing::{Call, MemoryLedger, ScriptedAction};
use mitigation::{FunctionKind, Handler, MitigationAction, Retry};
use serde_json::{Value, json};
use violation_core::{Action, DecisionPolicy, fixtures};

const GROUP: FunctionKind = FunctionKind::ThingGroup;

fn policy() -> DecisionPolicy {
    DecisionPolicy {
        release_on_clear: true,
        ..DecisionPolicy::default()
    }
}

/// A Detect violation of a device-side metric at `time` (epoch ms).
fn violation(thing: &str, event_type: &str, id: &str, time: i64) -> Value {
    let mut v = fixtures::violation_on_metric(thing, event_type, id, "num_child_procs_myapp");
    v["violationEventTime"] = json!(time);
    v
}

fn request(thing: &str, action: &str, source: &str, reason: &str) -> Value {
    json!({"thingName": thing, "action": action, "source": source, "reason": reason})
}

fn sqs(id: &str, message: &Value) -> Value {
    fixtures::sqs_event(&[(id, &message.to_string())])
}

fn handler(action: Arc<ScriptedAction>, ledger: Arc<MemoryLedger>, min: Duration) -> Handler {
    Handler::new(policy(), vec![action as Arc<dyn MitigationAction>])
        .with_ledger(ledger, GROUP, min)
        .with_release_sources(mitigation::trust::ReleaseSources::from_comma_list("soc"))
}

fn call(action: Action, thing: &str) -> Call {
    Call {
        action,
        thing: thing.into(),
    }
}

async fn outcome(h: &Handler, event: Value) -> (String, Vec<String>) {
    let report = h.handle(&event).await.expect("event");
    let record = &report.records[0];
    (
        record.outcome.as_str().to_owned(),
        record.held_by().into_iter().map(str::to_owned).collect(),
    )
}

#[tokio::test]
async fn a_duplicate_alert_makes_no_second_call_and_one_ledger_round_trip() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    let alarm = violation("dev-1", "in-alarm", "v-1", 1_000);
    assert_eq!(outcome(&h, sqs("m-1", &alarm)).await.0, "done");
    assert_eq!(
        ledger.round_trips(),
        2,
        "record the cause, then applied with history"
    );
    assert_eq!(outcome(&h, sqs("m-2", &alarm)).await.0, "done");
    assert_eq!(
        ledger.round_trips(),
        3,
        "a duplicate: the refused record alone, no history"
    );
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
    let history = ledger.history("dev-1");
    let causes: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|e| (e.cause_id.as_str(), e.cause.as_str(), e.record_id.as_str()))
        .collect();
    assert_eq!(causes, [("v-1", "recorded", "m-1")]);
    assert_eq!(history[0].actions, ["thing-group=done"]);
}

#[tokio::test]
async fn an_operator_quarantine_survives_the_clear_of_another_cause() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    outcome(
        &h,
        sqs("m-1", &violation("dev-1", "in-alarm", "v-1", 1_000)),
    )
    .await;
    outcome(
        &h,
        sqs("m-2", &request("dev-1", "quarantine", "soc", "forensics")),
    )
    .await;
    let (kept, held_by) = outcome(
        &h,
        sqs("m-3", &violation("dev-1", "alarm-cleared", "v-1", 2_000)),
    )
    .await;
    assert_eq!(kept, "kept");
    assert_eq!(held_by.len(), 1);
    assert!(held_by[0].starts_with("request:soc:"), "{held_by:?}");
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
    assert!(ledger.state("dev-1", GROUP).applied);
    // A trusted release request releases whatever the causes.
    assert_eq!(
        outcome(&h, sqs("m-4", &request("dev-1", "release", "soc", "done")))
            .await
            .0,
        "done"
    );
    assert_eq!(
        action.calls(),
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Release, "dev-1")
        ]
    );
    let state = ledger.state("dev-1", GROUP);
    assert!(!state.applied && state.causes.is_empty());
}

#[tokio::test]
async fn a_clear_delivered_before_its_alarm_leaves_the_thing_free() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    outcome(
        &h,
        sqs("m-2", &violation("dev-1", "alarm-cleared", "v-1", 2_000)),
    )
    .await;
    outcome(
        &h,
        sqs("m-1", &violation("dev-1", "in-alarm", "v-1", 1_000)),
    )
    .await;
    assert!(action.calls().is_empty(), "{:?}", action.calls());
    let history = ledger.history("dev-1");
    assert_eq!(history[1].cause.as_str(), "stale");
    // A later alarm of the same violation counts again.
    outcome(
        &h,
        sqs("m-3", &violation("dev-1", "in-alarm", "v-1", 3_000)),
    )
    .await;
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
}

#[tokio::test]
async fn a_failed_action_leaves_applied_unset_so_the_redelivery_acts_again() {
    let failing =
        Arc::new(ScriptedAction::new("thing-group").failing(&[("dev-1", Retry::Retryable)]));
    let ledger = Arc::new(MemoryLedger::new());
    let alarm = violation("dev-1", "in-alarm", "v-1", 1_000);
    let report = handler(failing.clone(), ledger.clone(), Duration::ZERO)
        .handle(&sqs("m-1", &alarm))
        .await
        .expect("event");
    assert_eq!(
        report.records[0]
            .failure()
            .map(|f| f.error_type())
            .as_deref(),
        Some("Retryable.ThrottlingException")
    );
    let state = ledger.state("dev-1", GROUP);
    assert!(state.desired() && !state.applied);
    assert_eq!(ledger.history("dev-1")[0].outcome, "failed");
    let working = Arc::new(ScriptedAction::new("thing-group"));
    let h = handler(working.clone(), ledger.clone(), Duration::ZERO);
    assert_eq!(outcome(&h, sqs("m-1", &alarm)).await.0, "done");
    assert_eq!(working.calls(), vec![call(Action::Quarantine, "dev-1")]);
    assert!(ledger.state("dev-1", GROUP).applied);
}

#[tokio::test]
async fn a_clear_sooner_than_the_minimum_time_keeps_the_thing() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::from_secs(600));
    outcome(
        &h,
        sqs("m-1", &violation("dev-1", "in-alarm", "v-1", 1_000)),
    )
    .await;
    let (kept, held_by) = outcome(
        &h,
        sqs("m-2", &violation("dev-1", "alarm-cleared", "v-1", 2_000)),
    )
    .await;
    assert_eq!((kept.as_str(), held_by), ("kept", vec!["v-1".to_owned()]));
    let report = h
        .handle(&sqs(
            "m-2",
            &violation("dev-1", "alarm-cleared", "v-1", 2_000),
        ))
        .await
        .expect("event");
    assert_eq!(
        report.records[0].to_json()["keptBecause"],
        "min-quarantine-time"
    );
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
}

#[tokio::test]
async fn one_batch_with_a_quarantine_and_a_clear_of_different_causes_keeps_the_thing() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    outcome(
        &h,
        sqs("m-0", &violation("dev-1", "in-alarm", "v-1", 1_000)),
    )
    .await;
    let batch = fixtures::sqs_event(&[
        (
            "m-1",
            &violation("dev-1", "alarm-cleared", "v-1", 2_000).to_string(),
        ),
        (
            "m-2",
            &violation("dev-1", "in-alarm", "v-2", 2_500).to_string(),
        ),
    ]);
    let report = h.handle(&batch).await.expect("event");
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["kept", "done"]);
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
    assert_eq!(ledger.state("dev-1", GROUP).cause_ids(), ["v-2"]);
}

#[tokio::test]
async fn a_protected_thing_is_kept_and_its_history_says_so() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO)
        .with_protected_things(mitigation::trust::ProtectedThings::from_comma_list("gw-*"));
    let (kept, held_by) =
        outcome(&h, sqs("m-1", &violation("gw-1", "in-alarm", "v-1", 1_000))).await;
    assert_eq!(
        (kept.as_str(), held_by),
        ("kept", vec!["PROTECTED_THINGS: gw-*".to_owned()])
    );
    assert!(action.calls().is_empty());
    let history = ledger.history("gw-1");
    assert_eq!(
        (history[0].cause.as_str(), history[0].outcome.as_str()),
        ("not-recorded", "kept")
    );
    assert!(!ledger.state("gw-1", GROUP).desired());
}

#[tokio::test]
async fn beyond_the_budget_records_are_held_and_a_thing_counts_once_across_functions() {
    let budget = mitigation::ledger::Budget {
        max_new: 2,
        window_ms: 3_600_000,
    };
    let ledger = Arc::new(MemoryLedger::new());
    let group = Arc::new(ScriptedAction::new("thing-group"));
    let shadow = Arc::new(ScriptedAction::new("shadow"));
    let h_group = handler(group.clone(), ledger.clone(), Duration::ZERO).with_budget(budget);
    let h_shadow = Handler::new(policy(), vec![shadow.clone() as Arc<dyn MitigationAction>])
        .with_ledger(ledger.clone(), FunctionKind::Shadow, Duration::ZERO)
        .with_budget(budget);
    let batch = fixtures::sqs_event(&[
        (
            "m-1",
            &violation("dev-1", "in-alarm", "v-1", 1_000).to_string(),
        ),
        (
            "m-2",
            &violation("dev-2", "in-alarm", "v-2", 1_000).to_string(),
        ),
        (
            "m-3",
            &violation("dev-3", "in-alarm", "v-3", 1_000).to_string(),
        ),
    ]);
    let report = h_group.handle(&batch).await.expect("event");
    let mut outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.as_str()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["done", "done", "held"]);
    assert!(
        report.records.iter().all(|r| !r.failed()),
        "held is not a failure"
    );
    let held = report
        .records
        .iter()
        .find(|r| r.outcome.as_str() == "held")
        .unwrap();
    assert!(
        held.to_json()["heldBecause"]
            .as_str()
            .unwrap()
            .contains("MAX_NEW_QUARANTINES")
    );
    assert_eq!(mitigation::metrics::Figures::of(&report).held, 1);
    let held_thing = held.things[0].clone();
    assert_eq!(ledger.history(&held_thing)[0].outcome, "held");
    assert!(
        ledger.state(&held_thing, GROUP).desired(),
        "the cause is kept"
    );
    assert!(!ledger.state(&held_thing, GROUP).applied);
    // The shadow function acts on the same things: the two already counted go ahead, the
    // held one stays held.
    let report = h_shadow.handle(&batch).await.expect("event");
    let shadowed: Vec<String> = shadow.calls().into_iter().map(|c| c.thing).collect();
    assert_eq!(shadowed.len(), 2);
    assert!(!shadowed.contains(&held_thing));
    assert_eq!(mitigation::metrics::Figures::of(&report).held, 1);
}

/// A Security Hub finding naming `things`.
fn finding_naming(things: &[&str]) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/direct-securityhub-imported.json"
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let template = event["detail"]["findings"][0]["Resources"][0].clone();
    let resources: Vec<Value> = things
        .iter()
        .map(|t| {
            let mut r = template.clone();
            r["Id"] = json!(format!("arn:aws:iot:eu-west-1:123456789012:thing/{t}"));
            r["Details"]["Other"]["ThingName"] = json!(t);
            r
        })
        .collect();
    event["detail"]["findings"][0]["Resources"] = json!(resources);
    // From a trusted product (the sample's is the account's own default product, which
    // anyone allowed BatchImportFindings can write and the functions do not trust).
    event["detail"]["findings"][0]["ProductArn"] =
        json!("arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-detect");
    event
}

#[tokio::test]
async fn a_record_naming_too_many_things_is_held_with_its_causes_recorded() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO).with_max_things_per_record(2);
    let report = h
        .handle(&finding_naming(&["cam-07", "cam-08", "cam-09"]))
        .await
        .expect("event");
    let record = &report.records[0];
    assert_eq!(record.things, ["cam-07", "cam-08", "cam-09"]);
    assert_eq!(record.outcome.as_str(), "held");
    assert!(!record.failed());
    let why = record.to_json()["heldBecause"].as_str().unwrap().to_owned();
    assert!(
        why.contains("MAX_THINGS_PER_RECORD") && why.contains("names 3 things"),
        "{why}"
    );
    assert!(action.calls().is_empty(), "{:?}", action.calls());
    for thing in ["cam-07", "cam-08", "cam-09"] {
        let state = ledger.state(thing, GROUP);
        assert!(state.desired() && !state.applied, "{thing}");
        assert_eq!(ledger.history(thing)[0].outcome, "held");
    }
    // Two things in one record are within the limit.
    let report = h
        .handle(&finding_naming(&["cam-10", "cam-11"]))
        .await
        .expect("event");
    assert_eq!(report.records[0].outcome.as_str(), "done");
    assert_eq!(action.calls().len(), 2);
}

#[tokio::test]
async fn a_thing_protected_in_the_ledger_keeps_its_causes_and_only_force_quarantines_it() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    ledger.protect(
        "gw-9",
        GROUP,
        Some("protected by quarantinectl:bob: gateway".into()),
    );
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    let (kept, held_by) =
        outcome(&h, sqs("m-1", &violation("gw-9", "in-alarm", "v-1", 1_000))).await;
    assert_eq!(
        (kept.as_str(), held_by),
        (
            "kept",
            vec!["protected by quarantinectl:bob: gateway".to_owned()]
        )
    );
    assert!(action.calls().is_empty());
    assert!(
        ledger.state("gw-9", GROUP).desired(),
        "the cause is recorded all the same"
    );
    let forced =
        handler(action.clone(), ledger.clone(), Duration::ZERO).with_override_protection(true);
    let request = request("gw-9", "quarantine", "quarantinectl:alice", "forced");
    assert_eq!(outcome(&forced, sqs("m-2", &request)).await.0, "done");
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "gw-9")]);
}

#[tokio::test]
async fn a_refused_release_request_is_in_the_thing_s_history() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO);
    let report = h
        .handle(&sqs(
            "m-1",
            &request("dev-1", "release", "mallory", "let me out"),
        ))
        .await
        .expect("event");
    assert_eq!(
        report.records[0]
            .failure()
            .map(|f| f.error_type())
            .as_deref(),
        Some("Permanent.ReleaseNotAllowed")
    );
    let history = ledger.history("dev-1");
    assert_eq!(history.len(), 1);
    let entry = &history[0];
    assert_eq!(
        (
            entry.asked,
            entry.outcome.as_str(),
            entry.caller.as_str(),
            entry.record_id.as_str()
        ),
        ("release", "rejected", "mallory", "m-1")
    );
    assert!(action.calls().is_empty());
}

#[tokio::test]
async fn with_the_budget_a_first_quarantine_costs_three_ledger_round_trips_and_a_duplicate_one() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone(), Duration::ZERO).with_budget(
        mitigation::ledger::Budget {
            max_new: 100,
            window_ms: 3_600_000,
        },
    );
    let alarm = violation("dev-1", "in-alarm", "v-1", 1_000);
    outcome(&h, sqs("m-1", &alarm)).await;
    assert_eq!(
        ledger.round_trips(),
        3,
        "cause, budget claim, applied with history"
    );
    outcome(&h, sqs("m-2", &alarm)).await;
    assert_eq!(ledger.round_trips(), 4, "the cause (refused) alone");
    assert_eq!(action.calls().len(), 1);
}
