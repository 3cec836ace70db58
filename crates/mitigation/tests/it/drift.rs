//! Drift, on the in-memory ledger: a thing taken out of the quarantine group while its
//! causes are active is put back, and the history says so; everything else is ignored, and a
//! membership event never adds or clears a cause.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use mitigation::ledger::{
    CauseChange, Claim, FunctionState, HistoryEntry, Ledger, Recorded, Settled,
};
use mitigation::report::RecordReport;
use mitigation::testing::{Call, MemoryLedger, ScriptedAction};
use mitigation::{ActionError, FunctionKind, Handler, MitigationAction, Retry};
use serde_json::{Value, json};
use violation_core::{Action, DecisionPolicy, ThingName, fixtures};

const GROUP: FunctionKind = FunctionKind::ThingGroup;

fn policy() -> DecisionPolicy {
    DecisionPolicy {
        quarantine_group: Some("Quarantine".into()),
        ..DecisionPolicy::default()
    }
}

fn handler(action: Arc<ScriptedAction>, ledger: Arc<dyn Ledger>) -> Handler {
    Handler::new(policy(), vec![action as Arc<dyn MitigationAction>])
        .with_ledger(ledger, GROUP, Duration::ZERO)
        .with_release_sources(mitigation::trust::ReleaseSources::from_comma_list("soc"))
}

fn alarm(thing: &str) -> Value {
    let mut v = fixtures::violation_on_metric(thing, "in-alarm", "v-1", "num_child_procs_myapp");
    v["violationEventTime"] = json!(1_000);
    v
}

/// A registry membership event, at 2,000 ms (after the alarm's 1,000).
fn membership(operation: &str, group: &str, thing: &str) -> Value {
    let event_id = format!("evt-{operation}-{thing}");
    let mut event = fixtures::membership_event(&event_id, operation, group, thing);
    event["timestamp"] = json!(2_000);
    event
}

fn call(action: Action, thing: &str) -> Call {
    Call {
        action,
        thing: thing.into(),
    }
}

async fn record(h: &Handler, event: Value) -> RecordReport {
    let mut report = h.handle(&event).await.expect("event");
    report.records.remove(0)
}

fn notes(report: &RecordReport) -> String {
    report.notes.join("; ")
}

#[tokio::test]
async fn a_quarantined_thing_taken_out_of_the_group_is_put_back_and_the_history_says_so() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone());
    assert_eq!(record(&h, alarm("dev-1")).await.outcome.as_str(), "done");
    let before = (ledger.round_trips(), ledger.history("dev-1").len());
    let report = record(&h, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "done", "{}", notes(&report));
    assert_eq!(report.verdict.decision.kind(), "reconcile");
    assert_eq!(report.things, ["dev-1"]);
    assert!(notes(&report).contains("put back"), "{}", notes(&report));
    assert_eq!(
        action.calls(),
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Quarantine, "dev-1")
        ]
    );
    assert_eq!(
        ledger.round_trips() - before.0,
        2,
        "one read, then the history with in force"
    );
    let history = ledger.history("dev-1");
    assert_eq!(history.len(), before.1 + 1);
    let entry = history.last().expect("entry");
    assert_eq!(
        (entry.asked, entry.outcome.as_str(), entry.caller.as_str()),
        ("reconcile", "put back", "registry event")
    );
    assert_eq!(entry.record_id, "evt-REMOVED-dev-1");
    assert_eq!(entry.delivery, "direct");
    assert_eq!(entry.source, "thing-group-membership");
    assert_eq!(entry.actions, ["thing-group=done"]);
    assert_eq!(entry.active_causes, ["v-1"]);
    assert!(
        entry.reason.contains("evt-REMOVED-dev-1"),
        "{}",
        entry.reason
    );
    let state = ledger.state("dev-1", GROUP);
    assert!(state.applied);
    assert_eq!(state.cause_ids(), ["v-1"], "the event adds no cause");
    // Our put-back's own ADDED event: ignored by the decision, no call, no ledger trip.
    let trips = ledger.round_trips();
    let added = record(&h, membership("ADDED", "Quarantine", "dev-1")).await;
    assert_eq!(added.outcome.as_str(), "ignored");
    assert_eq!(action.calls().len(), 2);
    assert_eq!(ledger.round_trips(), trips);
}

#[tokio::test]
async fn a_thing_without_causes_is_not_put_back_nor_quarantined() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone());
    // Never quarantined: the event cannot quarantine a free thing.
    let free = record(&h, membership("REMOVED", "Quarantine", "dev-2")).await;
    assert_eq!(free.outcome.as_str(), "ignored");
    assert!(notes(&free).contains("no active cause"), "{}", notes(&free));
    // Quarantined, then released by a trusted request: its REMOVED event is ignored.
    record(&h, alarm("dev-1")).await;
    let release = json!({"thingName": "dev-1", "action": "release", "source": "soc"});
    assert_eq!(record(&h, release).await.outcome.as_str(), "done");
    let history = ledger.history("dev-1").len();
    let report = record(&h, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "ignored");
    assert!(
        notes(&report).contains("no active cause"),
        "{}",
        notes(&report)
    );
    assert_eq!(
        action.calls(),
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Release, "dev-1")
        ]
    );
    assert_eq!(ledger.history("dev-1").len(), history, "nothing to record");
    assert!(ledger.state("dev-1", GROUP).causes.is_empty());
    assert!(ledger.state("dev-2", GROUP).causes.is_empty());
}

#[tokio::test]
async fn a_held_thing_is_not_put_back() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone()).with_budget(mitigation::ledger::Budget {
        max_new: 1,
        window_ms: 3_600_000,
    });
    assert_eq!(record(&h, alarm("dev-1")).await.outcome.as_str(), "done");
    assert_eq!(record(&h, alarm("dev-2")).await.outcome.as_str(), "held");
    let report = record(&h, membership("REMOVED", "Quarantine", "dev-2")).await;
    assert_eq!(report.outcome.as_str(), "ignored");
    assert!(
        notes(&report).contains("not in force"),
        "{}",
        notes(&report)
    );
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
}

#[tokio::test]
async fn other_groups_and_added_events_are_ignored_without_a_ledger_trip() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone());
    record(&h, alarm("dev-1")).await;
    let trips = ledger.round_trips();
    for event in [
        membership("REMOVED", "Cameras", "dev-1"),
        membership("ADDED", "Quarantine", "dev-1"),
    ] {
        let report = record(&h, event).await;
        assert_eq!(report.outcome.as_str(), "ignored");
        assert_eq!(report.verdict.decision.kind(), "ignore");
    }
    assert_eq!(ledger.round_trips(), trips);
    assert_eq!(action.calls().len(), 1);
}

#[tokio::test]
async fn a_failed_put_back_fails_the_record_and_its_retry_puts_the_thing_back() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let h = handler(action.clone(), ledger.clone());
    record(&h, alarm("dev-1")).await;
    let failing =
        Arc::new(ScriptedAction::new("thing-group").failing(&[("dev-1", Retry::Retryable)]));
    let h_failing = handler(failing, ledger.clone());
    let event = membership("REMOVED", "Quarantine", "dev-1");
    let report = record(&h_failing, event.clone()).await;
    assert_eq!(report.outcome.as_str(), "failed");
    assert!(report.failed());
    assert_eq!(
        report.failure().map(|f| f.error_type()).as_deref(),
        Some("Retryable.ThrottlingException")
    );
    // Lambda hands a failed direct invocation back: the invocation fails, and is retried.
    assert!(h_failing.handle_lambda(event.clone()).await.is_err());
    let outcomes: Vec<String> = ledger
        .history("dev-1")
        .iter()
        .filter(|e| e.asked == "reconcile")
        .map(|e| e.outcome.clone())
        .collect();
    assert_eq!(outcomes, ["failed", "failed"]);
    assert_eq!(record(&h, event).await.outcome.as_str(), "done");
    assert_eq!(
        ledger.history("dev-1").last().map(|e| e.outcome.clone()),
        Some("put back".to_owned())
    );
}

#[tokio::test]
async fn without_the_ledger_or_in_another_function_the_event_is_ignored() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let bare = Handler::new(policy(), vec![action.clone() as Arc<dyn MitigationAction>]);
    let report = record(&bare, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "ignored");
    assert!(
        notes(&report).contains("needs the ledger"),
        "{}",
        notes(&report)
    );
    let ledger = Arc::new(MemoryLedger::new());
    let shadow_action = Arc::new(ScriptedAction::new("shadow"));
    let shadow = Handler::new(
        policy(),
        vec![shadow_action.clone() as Arc<dyn MitigationAction>],
    )
    .with_ledger(ledger.clone(), FunctionKind::Shadow, Duration::ZERO);
    record(&shadow, alarm("dev-1")).await;
    let report = record(&shadow, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "ignored");
    assert!(
        notes(&report).contains("only quarantine-group"),
        "{}",
        notes(&report)
    );
    assert_eq!(action.calls(), vec![]);
    assert_eq!(
        shadow_action.calls(),
        vec![call(Action::Quarantine, "dev-1")]
    );
    // A dry run (replay) only says what would be done.
    let dry = handler(action.clone(), ledger).with_dry_run(true);
    let report = record(&dry, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "dry-run");
    assert_eq!(action.calls(), vec![]);
}

/// A ledger on which a release of every cause lands between the put-back's read and its
/// write (a concurrent release).
struct ReleasedMeanwhile {
    inner: MemoryLedger,
    armed: AtomicBool,
}

impl Ledger for ReleasedMeanwhile {
    fn record<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        change: &'a CauseChange,
    ) -> BoxFuture<'a, Result<Recorded, ActionError>> {
        self.inner.record(thing, function, change)
    }

    fn read<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
    ) -> BoxFuture<'a, Result<FunctionState, ActionError>> {
        self.inner.read(thing, function)
    }

    fn settle<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        applied: bool,
        seen_version: u64,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<Settled, ActionError>> {
        Box::pin(async move {
            if self.armed.swap(false, Ordering::SeqCst) {
                let release = CauseChange::ClearAll { at: 5_000 };
                self.inner.record(thing, function, &release).await?;
                let state = self.inner.state(thing.as_str(), function);
                self.inner
                    .settle(thing, function, false, state.version, &[])
                    .await?;
            }
            self.inner
                .settle(thing, function, applied, seen_version, history)
                .await
        })
    }

    fn claim<'a>(
        &'a self,
        thing: &'a ThingName,
        window_start: i64,
        max: u32,
    ) -> BoxFuture<'a, Result<Claim, ActionError>> {
        self.inner.claim(thing, window_start, max)
    }

    fn append<'a>(
        &'a self,
        thing: &'a ThingName,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        self.inner.append(thing, history)
    }
}

#[tokio::test]
async fn a_put_back_that_races_a_release_is_undone() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(ReleasedMeanwhile {
        inner: MemoryLedger::new(),
        armed: AtomicBool::new(false),
    });
    let h = handler(action.clone(), ledger.clone());
    record(&h, alarm("dev-1")).await;
    ledger.armed.store(true, Ordering::SeqCst);
    let report = record(&h, membership("REMOVED", "Quarantine", "dev-1")).await;
    assert_eq!(report.outcome.as_str(), "done", "{}", notes(&report));
    assert!(
        notes(&report).contains("taken out again"),
        "{}",
        notes(&report)
    );
    assert_eq!(
        action.calls(),
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Quarantine, "dev-1"),
            call(Action::Release, "dev-1")
        ],
        "a released thing is not left in the group"
    );
    let last = ledger.inner.history("dev-1").pop().expect("entry");
    assert_eq!(last.outcome, "put back, then undone: released meanwhile");
    assert!(last.active_causes.is_empty());
    let state = ledger.inner.state("dev-1", GROUP);
    assert!(!state.applied && state.causes.is_empty());
}

/// The group's membership as a test sets it, or an error.
struct Membership(std::sync::Mutex<Result<bool, ActionError>>);

impl mitigation::GroupMembership for Membership {
    fn in_group<'a>(&'a self, _thing: &'a ThingName) -> BoxFuture<'a, Result<bool, ActionError>> {
        let answer = self.0.lock().map(|a| a.clone()).unwrap_or(Ok(false));
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn a_thing_already_back_in_the_group_is_left_alone_and_an_unreadable_membership_is_retried() {
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let ledger = Arc::new(MemoryLedger::new());
    let membership = Arc::new(Membership(std::sync::Mutex::new(Ok(true))));
    let h = handler(action.clone(), ledger.clone()).with_group_membership(membership.clone());
    record(&h, alarm("dev-1")).await;
    let history = ledger.history("dev-1").len();

    // A duplicate or late REMOVED event: the thing is in the group.
    let report = record(&h, membership_event("REMOVED")).await;
    assert_eq!(report.outcome.as_str(), "ignored", "{}", notes(&report));
    assert!(notes(&report).contains("in the quarantine group already"));
    assert_eq!(action.calls(), vec![call(Action::Quarantine, "dev-1")]);
    assert_eq!(ledger.history("dev-1").len(), history, "nothing to record");

    *membership.0.lock().unwrap() = Err(ActionError::new(
        "ListThingGroupsForThing",
        "dev-1",
        Retry::Retryable,
        "ThrottlingException",
        "slow down",
    ));
    let report = record(&h, membership_event("REMOVED")).await;
    assert_eq!(report.outcome.as_str(), "failed", "{}", notes(&report));
    assert_eq!(action.calls().len(), 1, "not put back blindly");

    *membership.0.lock().unwrap() = Ok(false);
    let report = record(&h, membership_event("REMOVED")).await;
    assert_eq!(report.outcome.as_str(), "done", "{}", notes(&report));
    assert_eq!(
        action.calls(),
        vec![
            call(Action::Quarantine, "dev-1"),
            call(Action::Quarantine, "dev-1")
        ]
    );
}

fn membership_event(operation: &str) -> Value {
    membership(operation, "Quarantine", "dev-1")
}
