//! Arbitrary bytes as a Lambda invocation, through the whole handler: what `lambda_runtime`
//! does with the body (`serde_json::from_slice` into the `LambdaEvent<Value>` payload; a
//! body that is not JSON never reaches the handler), then `Handler::handle_lambda` with
//! in-memory actions, as the functions run it.
//!
//! The in-memory actions fail by thing name: a name starting with `t` fails retryably,
//! with `p` permanently. Before a release the in-memory active violations answer: a name
//! starting with `v` fails retryably, with `k` reports another active violation.
//! Handlers: acting, and dry run; release-on-clear on for both.
//!
//! Invariants checked on every JSON input:
//! - the handler never panics;
//! - `handle()` is `Err` exactly when `handle_lambda()` is `Err(InvocationFailure::Event)`,
//!   with the same error, and `Permanent.NotAViolationEvent` as its error type;
//! - one report per element of `Records`, in order, each naming its record (the SQS
//!   `messageId` verbatim, the SNS `MessageId` cut to 200 characters, else `Records[i]`);
//! - `handle_lambda()` answers what `handle()`'s report answers through `into_response`;
//! - SQS (first classifiable record has `eventSource` `aws:sqs`; also an empty `Records`):
//!   `Ok`, an object with exactly the key `batchItemFailures`; every `itemIdentifier` is the
//!   `messageId` (or `Records[i]` when it has none) of a record of the input, none twice,
//!   and exactly the records whose report failed are listed;
//! - SNS: `Err` iff some record failed; the `Diagnostic`'s error type starts with
//!   `Retryable.` or `Permanent.`, `Retryable.` iff some failed record is retryable;
//! - dry run calls nothing; no action is taken for a rejected or ignored record;
//! - every report renders as a JSON object with `recordId`, `decision` and `outcome`.

#![no_main]

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use lambda_runtime::Diagnostic;
use libfuzzer_sys::fuzz_target;
use mitigation::{
    ActionError, ActiveViolations, EventReport, Handler, InvocationFailure, MitigationAction,
    RecordOutcome, Retry,
};
use serde_json::Value;
use violation_core::reject::excerpt;
use violation_core::{Action, Decision, DecisionPolicy, ThingName};

fn scripted_failure(operation: &'static str, thing: &ThingName) -> Result<(), ActionError> {
    let retry = match thing.as_str().as_bytes().first() {
        Some(b't') => Retry::Retryable,
        Some(b'p') => Retry::Permanent,
        _ => return Ok(()),
    };
    Err(ActionError {
        operation,
        thing: thing.to_string(),
        retry,
        code: match retry {
            Retry::Retryable => "ThrottlingException".into(),
            Retry::Permanent => "ResourceNotFoundException".into(),
        },
        message: "scripted failure".into(),
        hint: None,
    })
}

/// Succeeds, or fails by the thing's first letter; counts calls.
struct FakeAction {
    name: &'static str,
    calls: AtomicUsize,
}

impl MitigationAction for FakeAction {
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply<'a>(
        &'a self,
        _action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { scripted_failure("FakeOperation", thing) })
    }
}

struct FakeViolations;

impl ActiveViolations for FakeViolations {
    fn active_violation_ids<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            match thing.as_str().as_bytes().first() {
                Some(b'v') => Err(ActionError {
                    operation: "ListActiveViolations",
                    thing: thing.to_string(),
                    retry: Retry::Retryable,
                    code: "ThrottlingException".into(),
                    message: "scripted failure".into(),
                    hint: None,
                }),
                Some(b'k') => Ok(vec!["other-violation".to_owned()]),
                _ => Ok(Vec::new()),
            }
        })
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    /// (handler, dry run, its actions)
    handlers: Vec<(Handler, bool, Vec<Arc<FakeAction>>)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // The functions log every record; format the lines (into a sink) so that logging
        // is exercised too.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::sink)
            .try_init();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let handlers = [false, true]
            .into_iter()
            .map(|dry_run| {
                let actions: Vec<Arc<FakeAction>> = ["thing-group", "shadow"]
                    .into_iter()
                    .map(|name| {
                        Arc::new(FakeAction {
                            name,
                            calls: AtomicUsize::new(0),
                        })
                    })
                    .collect();
                let policy = DecisionPolicy {
                    release_on_clear: true,
                    ..DecisionPolicy::default()
                };
                let handler = Handler::new(
                    policy,
                    actions
                        .iter()
                        .map(|a| Arc::clone(a) as Arc<dyn MitigationAction>)
                        .collect(),
                )
                .with_active_violations(Arc::new(FakeViolations))
                .with_dry_run(dry_run)
                .with_max_concurrency(3);
                (handler, dry_run, actions)
            })
            .collect();
        Fixture { runtime, handlers }
    })
}

/// The trigger the event should be read as, worked out here without the decoder: the
/// first record naming a source (`EventSource` `aws:sns` is looked at before
/// `eventSource` `aws:sqs`).
fn expected_trigger(records: &[Value]) -> Option<&'static str> {
    records.iter().find_map(|r| {
        if r.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
            Some("sns")
        } else if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
            Some("sqs")
        } else {
            None
        }
    })
}

/// The id a record's failure must be reported under, worked out from the raw record.
fn expected_id(trigger: &str, index: usize, record: &Value) -> String {
    let id = match trigger {
        "sqs" => record.get("messageId"),
        _ => record.get("Sns").and_then(|s| s.get("MessageId")),
    };
    match id.and_then(Value::as_str) {
        // An SQS messageId must come back verbatim (batchItemFailures); an SNS MessageId is
        // only logged and named in the error message, cut to 200 characters by design.
        Some(id) if !id.is_empty() && trigger == "sqs" => id.to_owned(),
        Some(id) if !id.is_empty() => excerpt(id, 200),
        _ => format!("Records[{index}]"),
    }
}

fn check_report(report: &EventReport, records: &[Value], trigger: &str, dry_run: bool) {
    assert_eq!(report.records.len(), records.len(), "one report per record");
    for (i, (r, raw)) in report.records.iter().zip(records).enumerate() {
        assert_eq!(
            r.verdict.record_id,
            expected_id(trigger, i, raw),
            "record {i} is reported under another id"
        );
        match (&r.verdict.decision, &r.outcome) {
            (Decision::Reject(a), RecordOutcome::Rejected(b)) => assert_eq!(a, b),
            (Decision::Reject(_), o) => panic!("rejected record with outcome {o:?}"),
            (Decision::Ignore(_), RecordOutcome::Ignored) => {}
            (Decision::Ignore(_), o) => panic!("ignored record with outcome {o:?}"),
            (Decision::Act { .. }, RecordOutcome::DryRun) => assert!(dry_run),
            (Decision::Act { .. }, o) => {
                assert!(!dry_run, "dry run acted: {o:?}");
                assert!(!matches!(o, RecordOutcome::Rejected(_) | RecordOutcome::Ignored));
            }
        }
        if !matches!(r.verdict.decision, Decision::Act { .. }) {
            assert!(r.actions.is_empty(), "actions for a record not acted on: {r:?}");
        }
        let line = r.to_json();
        let map = line.as_object().expect("to_json() is an object");
        assert_eq!(map["recordId"].as_str(), Some(r.verdict.record_id.as_str()));
        assert_eq!(map["decision"], r.verdict.decision.kind());
        assert_eq!(map["outcome"], r.outcome.as_str());
        assert_eq!(map.contains_key("retryable"), r.failed());
    }
}

fn check_sqs(response: &Result<Value, InvocationFailure>, report: &EventReport, records: &[Value]) {
    let response = match response {
        Ok(v) => v,
        Err(e) => panic!("SQS event answered with an error: {e:?}"),
    };
    let map = response.as_object().expect("SQS response is an object");
    assert_eq!(
        map.keys().collect::<Vec<_>>(),
        ["batchItemFailures"],
        "{response}"
    );
    let items = map["batchItemFailures"].as_array().expect("array");
    let input_ids: HashSet<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| expected_id("sqs", i, r))
        .collect();
    let mut listed = HashSet::new();
    for item in items {
        let item = item.as_object().expect("item is an object");
        assert_eq!(item.len(), 1, "{response}");
        let id = item["itemIdentifier"].as_str().expect("string itemIdentifier");
        assert!(
            input_ids.contains(id),
            "itemIdentifier {id:?} names no record of the input"
        );
        assert!(listed.insert(id.to_owned()), "itemIdentifier {id:?} listed twice");
    }
    let failed: HashSet<String> = report
        .records
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.verdict.record_id.clone())
        .collect();
    assert_eq!(
        listed.iter().collect::<BTreeSet<_>>(),
        failed.iter().collect::<BTreeSet<_>>(),
        "batchItemFailures must list exactly the failed records"
    );
}

fn check_sns(response: Result<Value, InvocationFailure>, report: &EventReport) {
    let failed: Vec<_> = report.records.iter().filter(|r| r.failed()).collect();
    match response {
        Ok(v) => {
            assert!(failed.is_empty(), "SNS event with failed records answered Ok: {v}");
            assert_eq!(v["records"].as_u64(), Some(report.records.len() as u64));
        }
        Err(e) => {
            assert!(!failed.is_empty(), "SNS event failed without a failed record: {e}");
            let retryable = failed
                .iter()
                .any(|r| r.failure().is_some_and(|(retry, _)| retry == Retry::Retryable));
            let diagnostic = Diagnostic::from(e);
            let prefix = if retryable { "Retryable." } else { "Permanent." };
            assert!(
                diagnostic.error_type.starts_with(prefix),
                "error type {:?}, expected {prefix}",
                diagnostic.error_type
            );
            assert!(diagnostic.error_type.len() > prefix.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // lambda_runtime: a body that is not JSON fails before the handler is called.
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let fixture = fixture();
    let records: Option<&Vec<Value>> = event.get("Records").and_then(Value::as_array);
    for (handler, dry_run, actions) in &fixture.handlers {
        let calls_before: usize = actions.iter().map(|a| a.calls.load(Ordering::Relaxed)).sum();
        let (report, response) = fixture.runtime.block_on(async {
            let report = handler.handle(&event).await;
            let response = handler.handle_lambda(event.clone()).await;
            (report, response)
        });
        if *dry_run {
            let calls: usize = actions.iter().map(|a| a.calls.load(Ordering::Relaxed)).sum();
            assert_eq!(calls, calls_before, "dry run called an action");
        }
        let report = match report {
            Err(e) => {
                assert_eq!(response, Err(InvocationFailure::Event(e)));
                let failure = response.unwrap_err();
                assert_eq!(
                    Diagnostic::from(failure).error_type,
                    "Permanent.NotAViolationEvent"
                );
                let trigger = records.map(|r| expected_trigger(r));
                assert!(
                    matches!(trigger, None | Some(None)),
                    "event with a {trigger:?} record rejected as a whole"
                );
                continue;
            }
            Ok(report) => report,
        };
        let records = records.expect("a handled event has a Records array");
        let trigger = expected_trigger(records);
        assert_eq!(
            report.trigger.map(|t| t.as_str()),
            trigger,
            "event read as the wrong kind"
        );
        assert_eq!(response, report.clone().into_response(), "handle_lambda vs handle");
        check_report(&report, records, trigger.unwrap_or("sqs"), *dry_run);
        match trigger {
            Some("sns") => check_sns(response, &report),
            _ => check_sqs(&response, &report, records),
        }
    }
});
