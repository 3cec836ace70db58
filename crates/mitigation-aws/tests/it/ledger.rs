//! The quarantine ledger on DynamoDB, against moto: the adapter's conditional writes, the
//! handler acting from it, and the invariant of issue 15 under random interleavings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use mitigation::ledger::{Cause, CauseChange, Ledger, Refused, Settled};
use mitigation::testing::{Call, ScriptedAction};
use mitigation::{ActionError, Applied, FunctionKind, Handler, MitigationAction, Retry};
use mitigation_aws::ledger::DynamoLedger;
use serde_json::{Value, json};
use test_harness::moto::{self, Moto};
use test_harness::sdk::{self, ClientSettings};
use test_harness::{Op, StandIn};
use violation_core::{Action, DecisionPolicy, ThingName, fixtures};

const TABLE: &str = "quarantine-ledger";

fn thing(name: &str) -> ThingName {
    ThingName::parse(name).expect("thing")
}

async fn ledger_on_moto() -> (Moto, Arc<DynamoLedger>) {
    let (moto, client) = moto::with_ledger_table(TABLE).await;
    (moto, Arc::new(DynamoLedger::new(client, TABLE)))
}

fn cause(id: &str, occurred_at: i64) -> CauseChange {
    CauseChange::Add(Cause {
        id: id.into(),
        kind: "detect-violation".into(),
        occurred_at,
        recorded_at: occurred_at,
        record_id: "m-1".into(),
        delivery: "sqs-raw".into(),
        ..Cause::default()
    })
}

fn clear(id: &str, at: i64) -> CauseChange {
    CauseChange::Clear {
        id: id.into(),
        at,
        settled_before: i64::MAX,
    }
}

/// The benchmark's DynamoDB (the AWS stand-in's table), held to the same rules as moto's.
fn ledger_on_stand_in() -> (StandIn, DynamoLedger) {
    let aws = StandIn::start();
    aws.create_table(TABLE, &["thing", "sk"]);
    let client = sdk::dynamodb_client(&aws.endpoint(), ClientSettings::attempts(1));
    (aws, DynamoLedger::new(client, TABLE))
}

#[tokio::test]
async fn conditional_writes_apply_the_ledger_s_rules() {
    let (_moto, ledger) = ledger_on_moto().await;
    conditional_writes(&ledger).await;
}

#[tokio::test]
async fn the_stand_in_s_table_applies_the_ledger_s_rules_as_moto_does() {
    let (aws, ledger) = ledger_on_stand_in();
    conditional_writes(&ledger).await;
    budget_claims(&ledger).await;
    // Every outcome above was decided by the stand-in's conditions: the duplicate and the
    // stale and too-soon changes were refused there, and the transactions cancelled there.
    assert!(aws.count_status(Op::UpdateItem, 400) >= 4);
    assert!(aws.count_status(Op::TransactWriteItems, 400) >= 3);
    let item = aws
        .table_item(TABLE, &["dev-1", "fn#group"])
        .expect("the group function's state item");
    assert_eq!(item["applied"], json!({ "BOOL": true }));
}

#[tokio::test]
async fn the_stand_in_answers_a_missing_table_as_dynamodb_does() {
    let aws = StandIn::start();
    let client = sdk::dynamodb_client(&aws.endpoint(), ClientSettings::attempts(1));
    let ledger = DynamoLedger::new(client, "no-such-table");
    let e = ledger
        .record(&thing("dev-1"), FunctionKind::Shadow, &cause("v-1", 1))
        .await
        .expect_err("no table");
    assert_eq!(
        (e.retry, e.code.as_str()),
        (Retry::Permanent, "ResourceNotFoundException")
    );
}

async fn conditional_writes(ledger: &DynamoLedger) {
    let dev = thing("dev-1");
    let group = FunctionKind::ThingGroup;
    let added = ledger
        .record(&dev, group, &cause("arn:alarm|dev-1", 10))
        .await
        .unwrap();
    assert_eq!((added.refused, added.state.version), (None, 1));
    assert!(added.state.desired() && !added.state.applied);
    let again = ledger
        .record(&dev, group, &cause("arn:alarm|dev-1", 10))
        .await
        .unwrap();
    assert_eq!(again.refused, Some(Refused::Duplicate));
    assert_eq!(again.state, added.state, "the item as it was comes back");
    let stale = ledger
        .record(&dev, group, &clear("arn:alarm|dev-1", 5))
        .await
        .unwrap();
    assert_eq!(stale.refused, Some(Refused::Stale));
    // The shadow function's item is its own: the group's cause does not count there.
    let shadow = ledger.read(&dev, FunctionKind::Shadow).await.unwrap();
    assert!(!shadow.desired());

    assert_eq!(
        ledger.settle(&dev, group, true, 0, &[]).await.unwrap(),
        Settled::Lost
    );
    assert_eq!(
        ledger.settle(&dev, group, true, 1, &[]).await.unwrap(),
        Settled::Won
    );
    let cleared = ledger
        .record(&dev, group, &clear("arn:alarm|dev-1", 20))
        .await
        .unwrap();
    assert_eq!(cleared.refused, None);
    assert!(!cleared.state.desired() && cleared.state.applied);
    assert_eq!(cleared.state.cleared.get("arn:alarm|dev-1"), Some(&20));
    let late = ledger
        .record(&dev, group, &cause("arn:alarm|dev-1", 15))
        .await
        .unwrap();
    assert_eq!(late.refused, Some(Refused::Stale), "older than the clear");
    let too_soon = CauseChange::Clear {
        id: "v-2".into(),
        at: 40,
        settled_before: 29,
    };
    ledger.record(&dev, group, &cause("v-2", 30)).await.unwrap();
    let kept = ledger.record(&dev, group, &too_soon).await.unwrap();
    assert_eq!(kept.refused, Some(Refused::TooSoon));
    let all = ledger
        .record(&dev, group, &CauseChange::ClearAll { at: 50 })
        .await
        .unwrap();
    assert_eq!(all.refused, None);
    assert!(all.state.causes.is_empty());
}

#[tokio::test]
async fn the_budget_counts_each_thing_once_per_window_up_to_its_maximum() {
    let (_moto, ledger) = ledger_on_moto().await;
    budget_claims(&ledger).await;
}

async fn budget_claims(ledger: &DynamoLedger) {
    use mitigation::ledger::Claim;
    let window = 3_600_000;
    for (name, want) in [
        ("dev-1", Claim::Granted),
        ("dev-1", Claim::Granted),
        ("dev-2", Claim::Granted),
        ("dev-3", Claim::Exhausted),
        ("dev-2", Claim::Granted),
    ] {
        assert_eq!(
            ledger.claim(&thing(name), window, 2).await.unwrap(),
            want,
            "{name}"
        );
    }
    assert_eq!(
        ledger.claim(&thing("dev-3"), 2 * window, 2).await.unwrap(),
        Claim::Granted,
        "the next window"
    );
}

#[tokio::test]
async fn a_missing_table_is_a_permanent_error_naming_ledger_table() {
    let moto = Moto::start();
    let ledger = DynamoLedger::new(moto::dynamodb_client(&moto.endpoint), "no-such-table");
    let e = ledger
        .record(&thing("dev-1"), FunctionKind::Shadow, &cause("v-1", 1))
        .await
        .expect_err("no table");
    assert_eq!(
        (e.retry, e.code.as_str()),
        (Retry::Permanent, "ResourceNotFoundException")
    );
    assert!(
        e.hint.as_deref().unwrap_or("").contains("LEDGER_TABLE"),
        "{e}"
    );
}

/// A Detect violation of a device-side metric at `time` (epoch ms).
fn violation(thing: &str, event_type: &str, id: &str, time: i64) -> Value {
    let mut v = fixtures::violation_on_metric(thing, event_type, id, "num_child_procs_myapp");
    v["violationEventTime"] = json!(time);
    v
}

fn release_on_clear() -> DecisionPolicy {
    DecisionPolicy {
        release_on_clear: true,
        ..DecisionPolicy::default()
    }
}

#[tokio::test]
async fn through_the_handler_a_duplicate_makes_no_call_and_the_history_names_the_violation() {
    let (moto, ledger) = ledger_on_moto().await;
    let action = Arc::new(ScriptedAction::new("thing-group"));
    let h = Handler::new(
        release_on_clear(),
        vec![action.clone() as Arc<dyn MitigationAction>],
    )
    .with_ledger(ledger.clone(), FunctionKind::ThingGroup, Duration::ZERO);
    let alarm = violation("dev-1", "in-alarm", "v-42", 1_000).to_string();
    for id in ["m-1", "m-2"] {
        let report = h
            .handle(&fixtures::sqs_event(&[(id, &alarm)]))
            .await
            .unwrap();
        assert_eq!(report.records[0].outcome.as_str(), "done");
    }
    assert_eq!(
        action.calls(),
        vec![Call {
            action: Action::Quarantine,
            thing: "dev-1".into()
        }]
    );
    let history: Vec<(String, String)> =
        moto::ledger_history(&moto::dynamodb_client(&moto.endpoint), TABLE, "dev-1")
            .await
            .iter()
            .map(|entry| {
                let text = |k: &str| entry.get(k).cloned().unwrap_or_default();
                (text("causeId"), text("cause"))
            })
            .collect();
    // The duplicate changed nothing and did nothing: the history has the quarantine alone.
    assert_eq!(history, [("v-42".to_owned(), "recorded".to_owned())]);
}

/// A function's mitigation as the world sees it, failing every call the seed says.
struct World {
    name: &'static str,
    quarantined: Mutex<HashSet<String>>,
    rng: AtomicU64,
}

impl World {
    fn new(name: &'static str, seed: u64) -> Self {
        World {
            name,
            quarantined: Mutex::new(HashSet::new()),
            rng: AtomicU64::new(seed | 1),
        }
    }

    fn fails(&self) -> bool {
        let mut x = self.rng.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::SeqCst);
        x.is_multiple_of(5)
    }
}

impl MitigationAction for World {
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            if self.fails() {
                return Err(mitigation::testing::scripted_error(
                    "Scripted",
                    thing,
                    Retry::Retryable,
                ));
            }
            let mut set = self.quarantined.lock().unwrap();
            match action {
                Action::Quarantine => set.insert(thing.to_string()),
                Action::Release => set.remove(thing.as_str()),
            };
            Ok(Applied::Done)
        })
    }
}

/// Each ledger call alone, as DynamoDB makes each request atomic: moto does not (two
/// concurrent UpdateItems of one item can lose one), while the rounds of concurrent
/// invocations still interleave between their calls.
struct OneCallAtATime {
    inner: DynamoLedger,
    turn: tokio::sync::Mutex<()>,
}

impl Ledger for OneCallAtATime {
    fn record<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        change: &'a CauseChange,
    ) -> BoxFuture<'a, Result<mitigation::ledger::Recorded, ActionError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            self.inner.record(thing, function, change).await
        })
    }

    fn read<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
    ) -> BoxFuture<'a, Result<mitigation::ledger::FunctionState, ActionError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            self.inner.read(thing, function).await
        })
    }

    fn settle<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        applied: bool,
        seen_version: u64,
        history: &'a [mitigation::ledger::HistoryEntry],
    ) -> BoxFuture<'a, Result<Settled, ActionError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
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
    ) -> BoxFuture<'a, Result<mitigation::ledger::Claim, ActionError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            self.inner.claim(thing, window_start, max).await
        })
    }

    fn append<'a>(
        &'a self,
        thing: &'a ThingName,
        history: &'a [mitigation::ledger::HistoryEntry],
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            self.inner.append(thing, history).await
        })
    }
}

/// A seeded xorshift: the interleaving of one run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One alert: (thing, cause, in alarm?, time).
type Alert = (usize, usize, bool, i64);

/// The model: a cause is active when its newest alert is an alarm (a clear wins a tie).
fn active_causes(alerts: &[Alert]) -> BTreeMap<String, BTreeSet<String>> {
    let mut newest: BTreeMap<(usize, usize), (i64, bool)> = BTreeMap::new();
    for &(t, c, alarm, time) in alerts {
        let entry = newest.entry((t, c)).or_insert((time, alarm));
        if time > entry.0 || (time == entry.0 && !alarm) {
            *entry = (time, alarm);
        }
    }
    let mut active: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((t, c), (_, alarm)) in newest {
        if alarm {
            active
                .entry(format!("dev-{t}"))
                .or_default()
                .insert(format!("v-{t}-{c}"));
        }
    }
    active
}

async fn run_interleaving(seed: u64, ledger: Arc<OneCallAtATime>) {
    let mut rng = Rng(seed);
    let functions = [
        FunctionKind::ThingGroup,
        FunctionKind::Shadow,
        FunctionKind::Certificate,
    ];
    let worlds: Vec<Arc<World>> = functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Arc::new(World::new(
                f.ledger_name(),
                seed.wrapping_mul(31).wrapping_add(i as u64),
            ))
        })
        .collect();
    let handlers: Vec<Handler> = functions
        .iter()
        .zip(&worlds)
        .map(|(f, w)| {
            Handler::new(
                release_on_clear(),
                vec![w.clone() as Arc<dyn MitigationAction>],
            )
            .with_ledger(ledger.clone(), *f, Duration::ZERO)
        })
        .collect();
    // 3 things, 2 causes each, 1 to 4 alerts per cause at times 1..=8.
    let mut alerts: Vec<Alert> = Vec::new();
    for t in 0..3 {
        for c in 0..2 {
            for _ in 0..=rng.below(4) {
                alerts.push((t, c, rng.below(2) == 0, 1 + rng.below(8) as i64));
            }
        }
    }
    // Every function gets every alert (SNS fans out), some twice; in its own random order.
    let mut queues: Vec<Vec<(String, String)>> = vec![Vec::new(); functions.len()];
    for (n, &(t, c, alarm, time)) in alerts.iter().enumerate() {
        let kind = if alarm { "in-alarm" } else { "alarm-cleared" };
        let body = violation(&format!("dev-{t}"), kind, &format!("v-{t}-{c}"), time).to_string();
        for queue in &mut queues {
            let copies = if rng.below(4) == 0 { 2 } else { 1 };
            for copy in 0..copies {
                let at = rng.below(queue.len() + 1);
                queue.insert(at, (format!("m-{n}-{copy}"), body.clone()));
            }
        }
    }
    let mut steps = 0;
    while queues.iter().any(|q| !q.is_empty()) {
        steps += 1;
        assert!(steps < 2_000, "seed {seed}: no convergence");
        // Two invocations at once, possibly of the same function (concurrent batches).
        let mut batches = Vec::new();
        for _ in 0..2 {
            let f = rng.below(functions.len());
            let take = (1 + rng.below(3)).min(queues[f].len());
            let batch: Vec<(String, String)> = queues[f].drain(..take).collect();
            batches.push((f, batch));
        }
        let runs = batches.iter().map(|(f, batch)| {
            let records: Vec<(&str, &str)> = batch
                .iter()
                .map(|(id, b)| (id.as_str(), b.as_str()))
                .collect();
            let event = fixtures::sqs_event(&records);
            let h = &handlers[*f];
            async move { h.handle(&event).await.unwrap() }
        });
        let reports = futures::future::join_all(runs).await;
        for ((f, batch), report) in batches.into_iter().zip(reports) {
            for (record, message) in report.records.iter().zip(batch) {
                if record.failed() {
                    assert_eq!(
                        record.failure().map(|x| x.retry),
                        Some(Retry::Retryable),
                        "{:?}",
                        record.to_json()
                    );
                    queues[f].push(message); // redelivered later
                }
            }
        }
    }
    let active = active_causes(&alerts);
    let want: BTreeSet<String> = active.keys().cloned().collect();
    for (f, world) in functions.iter().zip(&worlds) {
        let have: BTreeSet<String> = world.quarantined.lock().unwrap().iter().cloned().collect();
        assert_eq!(
            have, want,
            "seed {seed}: {f:?} quarantines exactly the things with an active cause; alerts {alerts:?}"
        );
        for t in 0..3 {
            let name = format!("dev-{t}");
            let state = ledger.read(&thing(&name), *f).await.unwrap();
            let causes: BTreeSet<String> = state.causes.keys().cloned().collect();
            assert_eq!(
                causes,
                active.get(&name).cloned().unwrap_or_default(),
                "seed {seed}: {f:?} {name}"
            );
            assert_eq!(
                state.applied,
                want.contains(&name),
                "seed {seed}: {f:?} {name} applied"
            );
        }
    }
}

/// Issue 15, item 1: once every record has been processed, in any order and with any
/// retries, each function's mitigation is in force exactly for the things with at least one
/// active cause.
#[tokio::test]
async fn every_interleaving_converges_to_quarantine_exactly_while_a_cause_is_active() {
    let moto = Moto::start();
    let client = moto::dynamodb_client(&moto.endpoint);
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 42, 7_777, 123_456_789] {
        let table = format!("ledger-{seed}");
        moto::create_ledger_table(&client, &table).await;
        let ledger = OneCallAtATime {
            inner: DynamoLedger::new(client.clone(), table),
            turn: tokio::sync::Mutex::new(()),
        };
        run_interleaving(seed, Arc::new(ledger)).await;
    }
}

#[tokio::test]
async fn a_clear_forgets_tombstones_far_older_than_itself_and_keeps_the_rest() {
    let (_moto, ledger) = ledger_on_moto().await;
    let dev = thing("dev-1");
    let group = FunctionKind::ThingGroup;
    let day = 24 * 3_600_000;
    for (id, at) in [("old", 10), ("recent", 10 * day)] {
        ledger
            .record(&dev, group, &cause(id, at - 1))
            .await
            .unwrap();
        ledger.record(&dev, group, &clear(id, at)).await.unwrap();
    }
    let state = ledger.read(&dev, group).await.unwrap();
    assert_eq!(
        state.cleared.keys().collect::<Vec<_>>(),
        ["old", "recent"],
        "within 14 days of each other: both kept"
    );
    ledger
        .record(&dev, group, &cause("newest", 20 * day - 1))
        .await
        .unwrap();
    let newest = ledger
        .record(&dev, group, &clear("newest", 20 * day))
        .await
        .unwrap();
    assert_eq!(newest.refused, None);
    let state = ledger.read(&dev, group).await.unwrap();
    assert_eq!(
        state.cleared.keys().collect::<Vec<_>>(),
        ["newest", "recent"],
        "the tombstone 20 days older than the newest clear is gone from the item"
    );
    // Forgotten: an alert as old as the forgotten clear quarantines again (the safe side);
    // one older than a remembered clear is still refused.
    let replayed = ledger.record(&dev, group, &cause("old", 5)).await.unwrap();
    assert_eq!(replayed.refused, None);
    let stale = ledger
        .record(&dev, group, &cause("recent", 5))
        .await
        .unwrap();
    assert_eq!(stale.refused, Some(Refused::Stale));
}
