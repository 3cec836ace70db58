//! Arbitrary bytes as a Lambda invocation, through the whole handler: what `lambda_runtime`
//! does with the body (`serde_json::from_slice` into the `LambdaEvent<Value>` payload; a
//! body that is not JSON never reaches the handler), then `Handler::handle` and
//! `Handler::handle_lambda`, as the functions run it, on the in-memory actions and lookups
//! of `mitigation::testing` (fresh for every run, so every call can be accounted for).
//!
//! The world the handlers act in:
//! - actions, in order: `thing-group` fails things whose name starts with `t` retryably and
//!   with `p` permanently; `disconnect` (quarantine only) fails `x...` retryably; `shadow`
//!   fails `s...` permanently;
//! - active violations: `keep-me` has `other-violation`, `dev-IZWB` has `v-own`; the lookup
//!   fails for `veto` (retryable) and `veto-p` (permanent);
//! - certificates: `CERT_A` is attached to `dev-cert-1` and `tcert-2`, `CERT_B` to `dev-ok`
//!   and `bad/name` (skipped), `CERT_C` only to `bad name`; any other is attached to none;
//! - audits (pages of 2): task `TASK_A` has five DEVICE_CERTIFICATE_SHARED_CHECK findings
//!   (CERT_A, client `audit-dev`, a suppressed one, an invalid client id, one of another
//!   check) and one REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK finding (`FINDING`, the
//!   published one of the samples); task `TASK_B` one shared-certificate finding on `tdev`.
//!
//! Handlers: (live) release on clear; (dry run) the same, not calling anything; (verify)
//! release on clear off, VERIFY_VIOLATION on, security profile, behavior and metric filters.
//!
//! Invariants checked on every JSON input:
//! - the handler never panics;
//! - `handle()` is `Err` exactly when the event can never be handled (not an object;
//!   `Records` not an array; a non-empty `Records` with no record of a known source), and
//!   then `handle_lambda()` is `Err(InvocationFailure::Event)` with the same error and the
//!   error type `Permanent.NotAViolationEvent`;
//! - a direct event (an object without `Records`) is one record (trigger `Direct`), named by
//!   its `id` (cut to 200 characters) or `event`; otherwise one report per element of
//!   `Records`, in order, each named by the SQS `messageId` verbatim, the SNS `MessageId`
//!   cut to 200 characters, else `Records[i]`;
//! - `handle_lambda()` answers what `handle()`'s report answers through `into_response`,
//!   and a second, fresh world gets exactly the same calls (the handler is deterministic);
//! - SQS, and an empty `Records`: `Ok`, serialising to an object with exactly the key
//!   `batchItemFailures`, each item exactly `{"itemIdentifier": id}`; every id names a
//!   record of the input, none twice, and exactly the failed records are listed;
//! - SNS and direct (`Trigger::fails_invocation`): `Err` iff some record failed, with
//!   `failed`/`total` counted right and an error type `Retryable.<code>` iff some failed
//!   record is retryable, else `Permanent.<code>`; `Ok` is a summary whose counts add up to
//!   the records and whose `things` is the number of things resolved;
//! - outcome follows decision: a rejected record is `Rejected` with the same reason, an
//!   ignored one `Ignored`, neither with actions nor things; the rest, in a dry run, are
//!   `DryRun` (or kept: quarantined in the same batch) with only dry-run actions; live they
//!   are done, kept, failed, ignored (every resolved finding or thing was ignored or
//!   skipped), or rejected as an unverified violation (only with VERIFY_VIOLATION, only a
//!   Detect quarantine);
//! - a failed record has a failed action (the lookup, the release check or a mitigation),
//!   retryable iff one of them is; a done record had every mitigation called for every
//!   thing it resolved to; an act on things only resolves to exactly those things;
//! - every thing resolved matches `[a-zA-Z0-9:_-]{1,128}` (checked here independently);
//! - calls: only on things some record resolved to with that action; one call per
//!   (action, thing) per mitigation; after a failed mitigation none of the later ones
//!   runs; never a release of a thing quarantined by the same batch, of a thing with other
//!   active violations (unless a releasing record owns them), or after a failed release
//!   check; with release on clear off, releases only from mitigation requests;
//!   a dry run calls nothing and lists no audit findings;
//! - every report renders as a JSON object with `recordId`, `decision`, `outcome`, `things`
//!   and `actions`, `retryable` exactly when failed, `keptBecause` exactly when kept.
//!
//! The certificate mitigation's rules (`mitigation::certificates`), on every input, JSON or
//! not: the bytes describe a thing's certificates (one byte each: status, whether recorded,
//! how many other things share it) and what an earlier attempt recorded, and the pure
//! decisions are checked against the rules written out here:
//! - only an ACTIVE certificate is looked up for other things; ACTIVE and unshared is
//!   deactivated, ACTIVE and shared is kept, INACTIVE is ours only when recorded, anything
//!   else is left alone;
//! - the record keeps every recorded id and adds the deactivated ones, in order, is written
//!   only when it changes, fits the 800-character attribute and reads back to the same ids;
//!   more than 12 ids is a permanent `TooManyCertificates` error;
//! - done when nothing is shared; kept when something is shared and nothing of the thing is
//!   deactivated by the quarantine; else done-keeping; naming each sharing thing once,
//!   sorted;
//! - a release reactivates exactly the INACTIVE recorded certificates.

#![no_main]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use mitigation::certificates::{
    ATTRIBUTE_VALUE_LIMIT, Assessment, CertStatus, MAX_RECORDED_CERTIFICATES, ReleaseStep,
    Standing, parse_record, plan_quarantine, reads_other_things, release_step, standing,
};
use mitigation::testing::{Call, ScriptedAction, ScriptedDirectory, ScriptedViolations};
use mitigation::{
    ActionOutcome, Applied, EventReport, Handler, InvocationFailure, KeptBecause, LambdaAnswer,
    MitigationAction, RecordOutcome, RecordReport, Retry,
};
use serde_json::Value;
use violation_core::reject::excerpt;
use violation_core::{
    Action, AlertSource, AuditFindingFields, CertificateId, Decision, DecisionPolicy, NameFilter,
    RejectReason, ThingName, Trigger,
};

const CERT_A: &str = "5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
const CERT_B: &str = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
const CERT_C: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const TASK_A: &str = "4e3b6e8e9c2a7f1d0b5c8a6e2f4d1c3b";
const TASK_B: &str = "7b6e9b1bcf5d0a4e3c8fbd9a517c4e6f";
const FINDING: &str = "c7a4d3f2-0e9b-4a8c-9f7e-6d5c4b3a2918";
const SHARED: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";
const REVOKED: &str = "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK";

/// Things with an active violation, and its id.
const ACTIVE: [(&str, &str); 2] = [("keep-me", "other-violation"), ("dev-IZWB", "v-own")];

/// Things whose active-violations lookup fails: retryably, permanently.
const VETOED: [&str; 2] = ["veto", "veto-p"];

const THING_GROUP: &str = "thing-group";
const DISCONNECT: &str = "disconnect";
const SHADOW: &str = "shadow";

/// `[a-zA-Z0-9:_-]{1,128}`, written out without reusing `ThingName`.
fn matches_thing_name_pattern(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
}

fn first_letter_fails(thing: &ThingName, retryable: u8, permanent: u8) -> Option<Retry> {
    match thing.as_str().as_bytes().first() {
        Some(b) if *b == retryable => Some(Retry::Retryable),
        Some(b) if *b == permanent => Some(Retry::Permanent),
        _ => None,
    }
}

/// Whether `action` fails on `thing` in this world.
fn fails(action: &str, thing: &str) -> bool {
    let first = thing.as_bytes().first().copied();
    match action {
        THING_GROUP => matches!(first, Some(b't' | b'p')),
        DISCONNECT => first == Some(b'x'),
        SHADOW => first == Some(b's'),
        _ => false,
    }
}

fn finding(id: &str, check: &str) -> AuditFindingFields {
    AuditFindingFields {
        finding_id: Some(id.into()),
        task_id: Some(TASK_A.into()),
        check_name: Some(check.into()),
        is_suppressed: Some(false),
        ..AuditFindingFields::default()
    }
}

/// The in-memory AWS of one run.
struct World {
    /// thing-group, disconnect, shadow: the order the handler runs them.
    actions: Vec<Arc<ScriptedAction>>,
    directory: Arc<ScriptedDirectory>,
}

impl World {
    fn new() -> Self {
        let actions = vec![
            Arc::new(
                ScriptedAction::new(THING_GROUP)
                    .failing_when(|t| first_letter_fails(t, b't', b'p')),
            ),
            Arc::new(
                ScriptedAction::new(DISCONNECT)
                    .only_for(Action::Quarantine)
                    .failing_when(|t| first_letter_fails(t, b'x', 0)),
            ),
            Arc::new(ScriptedAction::new(SHADOW).failing_when(|t| first_letter_fails(t, 0, b's'))),
        ];
        let client = |id: &str, client: &str| AuditFindingFields {
            client_id: Some(client.into()),
            ..finding(id, SHARED)
        };
        let directory = ScriptedDirectory::new(2)
            .certificate(CERT_A, &["dev-cert-1", "tcert-2"])
            .certificate(CERT_B, &["dev-ok", "bad/name"])
            .certificate(CERT_C, &["bad name"])
            .findings(
                TASK_A,
                SHARED,
                vec![
                    AuditFindingFields {
                        device_certificate_id: Some(CERT_A.into()),
                        ..finding("f-shared-1", SHARED)
                    },
                    client("f-shared-2", "audit-dev"),
                    AuditFindingFields {
                        is_suppressed: Some(true),
                        ..client("f-shared-3", "suppressed-dev")
                    },
                    client("f-shared-4", "bad/x"),
                    AuditFindingFields {
                        client_id: Some("logging-dev".into()),
                        ..finding("f-shared-5", "LOGGING_DISABLED_CHECK")
                    },
                ],
            )
            .findings(
                TASK_A,
                REVOKED,
                vec![AuditFindingFields {
                    client_id: Some("revoked-dev".into()),
                    ..finding(FINDING, REVOKED)
                }],
            )
            .findings(TASK_B, SHARED, vec![client("f-b-1", "tdev")]);
        World {
            actions,
            directory: Arc::new(directory),
        }
    }

    fn handler(&self, setup: &Setup) -> Handler {
        let violations = ScriptedViolations::new(
            ACTIVE.map(|(thing, violation)| (thing, vec![violation.to_owned()])),
        )
        .failing_for(VETOED[0], Retry::Retryable)
        .failing_for(VETOED[1], Retry::Permanent);
        Handler::new(
            setup.policy.clone(),
            self.actions
                .iter()
                .map(|a| Arc::clone(a) as Arc<dyn MitigationAction>)
                .collect(),
        )
        .with_active_violations(Arc::new(violations))
        .with_certificate_things(self.directory.clone())
        .with_audit_findings(self.directory.clone())
        .with_verify_violation(setup.verify)
        .with_dry_run(setup.dry_run)
        .with_max_concurrency(3)
    }

    /// Every call, by mitigation name, sorted.
    fn calls(&self) -> Vec<(&'static str, Action, String)> {
        let mut all: Vec<_> = self
            .actions
            .iter()
            .zip([THING_GROUP, DISCONNECT, SHADOW])
            .flat_map(|(a, name)| {
                a.calls()
                    .into_iter()
                    .map(move |Call { action, thing }| (name, action, thing))
            })
            .collect();
        all.sort_by(|a, b| (a.0, a.1.as_str(), &a.2).cmp(&(b.0, b.1.as_str(), &b.2)));
        all
    }
}

struct Setup {
    dry_run: bool,
    verify: bool,
    policy: DecisionPolicy,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    setups: Vec<Setup>,
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
        let release = DecisionPolicy {
            release_on_clear: true,
            ..DecisionPolicy::default()
        };
        let filtered = DecisionPolicy {
            release_on_clear: false,
            security_profiles: NameFilter::from_comma_list("MySecProfile, P"),
            behaviors: NameFilter::from_comma_list("MessagesPub,B"),
            metrics: NameFilter::from_comma_list("aws:num-messages-sent, aws:all-bytes-out, m"),
            ..DecisionPolicy::default()
        };
        let setups = vec![
            Setup {
                dry_run: false,
                verify: false,
                policy: release.clone(),
            },
            Setup {
                dry_run: true,
                verify: false,
                policy: release,
            },
            Setup {
                dry_run: false,
                verify: true,
                policy: filtered,
            },
        ];
        Fixture { runtime, setups }
    })
}

/// What the handler must make of the event, worked out from the raw JSON: `Err` when it
/// must be refused, else the trigger and the raw records (the event itself when direct).
fn expected(event: &Value) -> Result<(Option<Trigger>, Vec<&Value>), ()> {
    let object = event.as_object().ok_or(())?;
    let records = match object.get("Records") {
        None => return Ok((Some(Trigger::Direct), vec![event])),
        Some(Value::Array(records)) => records,
        Some(_) => return Err(()),
    };
    if records.is_empty() {
        return Ok((None, Vec::new()));
    }
    let trigger = records.iter().find_map(|r| {
        if r.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
            Some(Trigger::Sns)
        } else if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
            Some(Trigger::Sqs)
        } else {
            None
        }
    });
    match trigger {
        None => Err(()),
        some => Ok((some, records.iter().collect())),
    }
}

/// The id a record must be reported under, worked out from the raw record.
fn expected_id(trigger: Trigger, index: usize, record: &Value) -> String {
    let (id, fallback) = match trigger {
        Trigger::Sqs => (record.get("messageId"), format!("Records[{index}]")),
        Trigger::Sns => (
            record.get("Sns").and_then(|s| s.get("MessageId")),
            format!("Records[{index}]"),
        ),
        // An EventBridge event's id, else a registry event's eventId.
        Trigger::Direct => (
            record
                .get("id")
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .or_else(|| record.get("eventId")),
            "event".to_owned(),
        ),
    };
    match id.and_then(Value::as_str) {
        // An SQS messageId must come back verbatim (batchItemFailures); the others are
        // only logged and named in the error message, cut to 200 characters by design.
        Some(id) if !id.is_empty() && trigger == Trigger::Sqs => id.to_owned(),
        Some(id) if !id.is_empty() => excerpt(id, 200),
        _ => fallback,
    }
}

/// The action a record's things are acted on with.
fn record_action(report: &RecordReport) -> Option<Action> {
    match &report.verdict.decision {
        Decision::Act { action, .. } => Some(*action),
        Decision::ExpandAudit { .. } | Decision::LookupFinding { .. } => Some(Action::Quarantine),
        // A membership event acts only from the ledger, which this target does not use.
        Decision::Reconcile { .. } | Decision::Ignore(_) | Decision::Reject(_) => None,
    }
}

fn check_outcome(r: &RecordReport, setup: &Setup) {
    let decision = &r.verdict.decision;
    match (decision, &r.outcome) {
        (Decision::Reject(a), RecordOutcome::Rejected(b)) => assert_eq!(a, b),
        (Decision::Reject(_), o) => panic!("rejected record with outcome {o:?}"),
        (Decision::Ignore(_), RecordOutcome::Ignored) => {}
        (Decision::Ignore(_), o) => panic!("ignored record with outcome {o:?}"),
        (_, RecordOutcome::DryRun) => assert!(setup.dry_run, "DryRun outcome when live: {r:?}"),
        (
            _,
            RecordOutcome::Kept {
                because: mitigation::KeptBecause::QuarantinedInBatch,
                ..
            },
        ) => {}
        (_, o) if setup.dry_run => panic!("dry run came to {o:?}"),
        (_, RecordOutcome::Done | RecordOutcome::Kept { .. } | RecordOutcome::Failed { .. }) => {}
        (_, RecordOutcome::Ignored) => {
            // Only when every thing resolved was skipped or every finding ignored: never
            // for an act naming things only.
            let things_only = decision.subjects().iter().all(|s| s.thing_name().is_some());
            assert!(
                !matches!(decision, Decision::Act { .. }) || !things_only,
                "act on things came to Ignored: {r:?}"
            );
        }
        (_, RecordOutcome::Rejected(RejectReason::UnverifiedViolation { .. })) => {
            assert!(setup.verify, "unverified without VERIFY_VIOLATION: {r:?}");
            assert_eq!(r.verdict.source, Some(AlertSource::DetectViolation));
            assert_eq!(record_action(r), Some(Action::Quarantine));
        }
        (_, o) => panic!("{} record came to {o:?}", decision.kind()),
    }

    if matches!(decision, Decision::Reject(_) | Decision::Ignore(_)) {
        assert!(
            r.actions.is_empty(),
            "actions for a record not acted on: {r:?}"
        );
        assert!(
            r.things.is_empty(),
            "things for a record not acted on: {r:?}"
        );
    }
    if setup.dry_run {
        assert!(
            r.actions.iter().all(|a| a.outcome == ActionOutcome::DryRun),
            "dry run reports a non-dry-run action: {r:?}"
        );
    }
    for thing in &r.things {
        assert!(
            matches_thing_name_pattern(thing),
            "resolved to an invalid thing {thing:?}"
        );
    }
    let unique: HashSet<&String> = r.things.iter().collect();
    assert_eq!(unique.len(), r.things.len(), "a thing twice: {r:?}");

    // An act naming things only resolves to exactly them (unless verification stopped it).
    if let Decision::Act { subjects, .. } = decision {
        let names: Option<Vec<String>> = subjects
            .iter()
            .map(|s| s.thing_name().map(ToString::to_string))
            .collect();
        let stopped = matches!(r.outcome, RecordOutcome::Rejected(_))
            || r.actions.iter().any(|a| a.action == "lookup");
        if let Some(names) = names
            && !stopped
        {
            assert_eq!(r.things, names, "act on things resolved to others");
        }
    }

    // Failed iff an action failed; retryable iff one of them is.
    let failed: Vec<&mitigation::ActionError> = r
        .actions
        .iter()
        .filter_map(|a| match &a.outcome {
            ActionOutcome::Failed(e) => Some(e),
            _ => None,
        })
        .collect();
    match &r.outcome {
        RecordOutcome::Failed { retry } => {
            assert!(!failed.is_empty(), "failed without a failed action: {r:?}");
            let retryable = failed.iter().any(|e| e.retry == Retry::Retryable);
            assert_eq!(*retry == Retry::Retryable, retryable, "{r:?}");
            let failure = r.failure().expect("a failed record has a failure");
            assert_eq!(failure.retry, *retry);
            assert!(
                failed
                    .iter()
                    .any(|e| e.retry == *retry && e.code == failure.code),
                "failure code {:?} names no failed action: {r:?}",
                failure.code
            );
        }
        other => assert!(failed.is_empty(), "{other:?} with a failed action: {r:?}"),
    }
    if let RecordOutcome::Done = r.outcome {
        assert!(!r.things.is_empty(), "done without things: {r:?}");
    }
    for a in &r.actions {
        if [THING_GROUP, DISCONNECT, SHADOW, "active-violations"].contains(&a.action) {
            assert!(
                r.things.contains(&a.thing),
                "action on a thing not resolved: {r:?}"
            );
        }
    }

    let line = r.to_json();
    let map = line.as_object().expect("to_json() is an object");
    assert_eq!(map["recordId"].as_str(), Some(r.verdict.record_id.as_str()));
    assert_eq!(map["decision"], r.verdict.decision.kind());
    assert_eq!(map["outcome"], r.outcome.as_str());
    assert_eq!(map["things"], Value::from(r.things.clone()));
    assert_eq!(
        map["actions"].as_array().map(Vec::len),
        Some(r.actions.len())
    );
    assert_eq!(map.contains_key("retryable"), r.failed());
    assert_eq!(
        map.contains_key("keptBecause"),
        matches!(r.outcome, RecordOutcome::Kept { .. })
    );
    let _ = line.to_string();
}

/// The calls a live run made, against its reports.
fn check_calls(world: &World, report: &EventReport, setup: &Setup) {
    let calls = world.calls();
    if setup.dry_run {
        assert!(calls.is_empty(), "dry run called {calls:?}");
        assert_eq!(world.directory.pages_served(), 0, "dry run listed findings");
        return;
    }
    // (action, thing) -> the records resolved to it.
    let mut targets: HashMap<(Action, &str), Vec<&RecordReport>> = HashMap::new();
    for r in &report.records {
        if let Some(action) = record_action(r) {
            for thing in &r.things {
                targets.entry((action, thing)).or_default().push(r);
            }
        }
    }
    let mut once = HashSet::new();
    for (name, action, thing) in &calls {
        assert!(
            once.insert((*name, *action, thing.as_str())),
            "{name} called twice for {} of {thing}",
            action.as_str()
        );
        let Some(records) = targets.get(&(*action, thing.as_str())) else {
            panic!(
                "{name} {} of {thing}, which no record resolved to",
                action.as_str()
            );
        };
        if *action == Action::Release {
            assert!(
                !targets.contains_key(&(Action::Quarantine, thing.as_str())),
                "{thing} released though the batch quarantines it"
            );
            assert!(
                !VETOED.contains(&thing.as_str()),
                "{thing} released after a failed release check"
            );
            for (held, by) in ACTIVE {
                assert!(
                    thing != held
                        || records
                            .iter()
                            .any(|r| r.verdict.facts.violation_id.as_deref() == Some(by)),
                    "{thing} released while {by} holds it"
                );
            }
            if !setup.policy.release_on_clear {
                assert!(
                    records
                        .iter()
                        .any(|r| r.verdict.source == Some(AlertSource::MitigationRequest)),
                    "{thing} released with release on clear off, not by a request"
                );
            }
        }
    }
    let called = |name: &str, action: Action, thing: &str| {
        once.contains(&(
            match name {
                THING_GROUP => THING_GROUP,
                DISCONNECT => DISCONNECT,
                _ => SHADOW,
            },
            action,
            thing,
        ))
    };
    // In order, the first failure stopping the rest.
    for (name, action, thing) in &calls {
        let before: &[&str] = match (*name, action) {
            (THING_GROUP, _) => &[],
            (DISCONNECT, _) => &[THING_GROUP],
            (_, Action::Quarantine) => &[THING_GROUP, DISCONNECT],
            (_, Action::Release) => &[THING_GROUP],
        };
        for earlier in before {
            assert!(
                called(earlier, *action, thing) && !fails(earlier, thing),
                "{name} called for {thing} though {earlier} was not, or failed"
            );
        }
        assert!(
            *name != DISCONNECT || *action == Action::Quarantine,
            "disconnect on release"
        );
    }
    // A done record had every mitigation called for each of its things, but those kept
    // (a record is done when some things were done and the others kept), and for one at
    // least.
    for r in &report.records {
        if r.outcome != RecordOutcome::Done {
            continue;
        }
        let action = record_action(r).expect("done means acted");
        let names: &[&str] = match action {
            Action::Quarantine => &[THING_GROUP, DISCONNECT, SHADOW],
            Action::Release => &[THING_GROUP, SHADOW],
        };
        let mut done = 0;
        for thing in &r.things {
            let n = names.iter().filter(|n| called(n, action, thing)).count();
            assert!(
                n == 0 || n == names.len(),
                "record done but only {n} of {names:?} called for {thing}: {r:?}"
            );
            done += usize::from(n == names.len());
        }
        assert!(
            done > 0,
            "record done but no thing had its mitigations: {r:?}"
        );
    }
}

fn check_sqs(answer: &Result<LambdaAnswer, InvocationFailure>, report: &EventReport) {
    let answer = match answer {
        Ok(answer @ LambdaAnswer::Sqs(_)) => answer,
        other => panic!("SQS event answered {other:?}"),
    };
    let json = serde_json::to_value(answer).expect("the answer serialises");
    let map = json.as_object().expect("SQS answer is an object");
    assert_eq!(
        map.keys().collect::<Vec<_>>(),
        ["batchItemFailures"],
        "{json}"
    );
    let items = map["batchItemFailures"].as_array().expect("array");
    let input_ids: HashSet<&str> = report
        .records
        .iter()
        .map(|r| r.verdict.record_id.as_str())
        .collect();
    let mut listed = HashSet::new();
    for item in items {
        let item = item.as_object().expect("item is an object");
        assert_eq!(
            item.keys().collect::<Vec<_>>(),
            ["itemIdentifier"],
            "{json}"
        );
        let id = item["itemIdentifier"]
            .as_str()
            .expect("string itemIdentifier");
        assert!(
            input_ids.contains(id),
            "itemIdentifier {id:?} names no record"
        );
        assert!(listed.insert(id), "itemIdentifier {id:?} listed twice");
    }
    let failed: BTreeSet<&str> = report
        .records
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.verdict.record_id.as_str())
        .collect();
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        failed,
        "batchItemFailures must list exactly the failed records"
    );
}

fn check_invocation(answer: Result<LambdaAnswer, InvocationFailure>, report: &EventReport) {
    let failed: Vec<&RecordReport> = report.records.iter().filter(|r| r.failed()).collect();
    match answer {
        Ok(LambdaAnswer::Summary(s)) => {
            assert!(failed.is_empty(), "records failed, answered Ok: {s:?}");
            assert_eq!(s.records, report.records.len());
            assert_eq!(s.quarantined + s.released + s.ignored + s.audits, s.records);
            let things: usize = report.records.iter().map(|r| r.things.len()).sum();
            assert_eq!(s.things, things);
            let json = serde_json::to_value(s).expect("the summary serialises");
            assert_eq!(json["records"].as_u64(), Some(report.records.len() as u64));
        }
        Ok(other) => panic!("SNS/direct event answered {other:?}"),
        Err(InvocationFailure::Event(e)) => panic!("handled event failed as an event: {e}"),
        Err(e @ InvocationFailure::Records { .. }) => {
            assert!(!failed.is_empty(), "failed without a failed record: {e}");
            if let InvocationFailure::Records {
                failed: n, total, ..
            } = &e
            {
                assert_eq!(*n, failed.len());
                assert_eq!(*total, report.records.len());
            }
            let retryable = failed
                .iter()
                .any(|r| r.failure().is_some_and(|f| f.retry == Retry::Retryable));
            let prefix = if retryable {
                "Retryable."
            } else {
                "Permanent."
            };
            let error_type = e.error_type();
            assert!(
                error_type.starts_with(prefix) && error_type.len() > prefix.len(),
                "error type {error_type:?}, expected {prefix}..."
            );
        }
    }
}

/// One certificate of the thing, as the input describes it.
struct CertCase {
    id: CertificateId,
    status: Option<CertStatus>,
    recorded: bool,
    others: Vec<String>,
}

/// Certificates read from the input: at most 15, one byte each.
const MAX_CASE_CERTIFICATES: usize = 15;

fn certificate_id(n: usize) -> CertificateId {
    CertificateId::parse(&format!("{n:064x}")).expect("64 hex digits")
}

/// The thing's certificates from the input's first bytes (bits 0-1 the status, bit 2
/// recorded, bits 3-4 how many other things share it, bits 5-7 which), and the ids recorded
/// though no longer attached (the next byte).
fn certificate_case(data: &[u8]) -> (Vec<CertCase>, Vec<CertificateId>) {
    let attached: Vec<CertCase> = data
        .iter()
        .take(MAX_CASE_CERTIFICATES)
        .enumerate()
        .map(|(i, b)| CertCase {
            id: certificate_id(i),
            status: match b & 0b11 {
                0 => Some(CertStatus::Active),
                1 => Some(CertStatus::Inactive),
                2 => Some(CertStatus::parse("REVOKED")),
                _ => None,
            },
            recorded: b & 0b100 != 0,
            others: (0..(b >> 3) & 0b11)
                .map(|k| format!("other-{}", (b >> 5) + k))
                .collect(),
        })
        .collect();
    let detached = data
        .get(MAX_CASE_CERTIFICATES)
        .map_or(0, |b| usize::from(b % 4));
    let mut recorded: Vec<CertificateId> = (0..detached).map(|k| certificate_id(100 + k)).collect();
    recorded.extend(attached.iter().filter(|c| c.recorded).map(|c| c.id.clone()));
    (attached, recorded)
}

/// The certificate rules on the case the input describes (see the module's list).
fn check_certificate_rules(data: &[u8]) {
    const ATTRIBUTE: &str = "quarantineDeactivatedCerts";
    let thing = ThingName::parse("dev-cert").expect("valid");
    let (attached, recorded) = certificate_case(data);
    let mut assessed = Vec::new();
    for c in &attached {
        let active = c.status == Some(CertStatus::Active);
        assert_eq!(reads_other_things(c.status.as_ref()), active);
        let others = if active { c.others.clone() } else { Vec::new() };
        let got = standing(c.status.clone(), c.recorded, others.clone());
        let want = match &c.status {
            Some(CertStatus::Active) if others.is_empty() => Standing::Exclusive,
            Some(CertStatus::Active) => Standing::Shared(others),
            Some(CertStatus::Inactive) if c.recorded => Standing::OursAlready,
            Some(status) => Standing::NotOurs(status.clone()),
            None => Standing::Missing,
        };
        assert_eq!(got, want, "standing of {:?}", c.status);
        assessed.push(Assessment {
            id: c.id.clone(),
            standing: got,
        });

        let step = release_step(c.status.clone());
        assert_eq!(
            step == ReleaseStep::Reactivate,
            c.status == Some(CertStatus::Inactive),
            "release of a {:?} certificate: {step:?}",
            c.status
        );
    }

    let exclusive: Vec<CertificateId> = assessed
        .iter()
        .filter(|a| a.standing == Standing::Exclusive)
        .map(|a| a.id.clone())
        .collect();
    let mut union = recorded.clone();
    union.extend(
        exclusive
            .iter()
            .filter(|id| !recorded.contains(id))
            .cloned(),
    );
    let plan = match plan_quarantine(&thing, ATTRIBUTE, &recorded, &assessed) {
        Err(e) => {
            assert!(union.len() > MAX_RECORDED_CERTIFICATES, "refused: {e}");
            assert_eq!(
                (e.retry, e.code.as_str()),
                (Retry::Permanent, "TooManyCertificates")
            );
            assert!(e.message.contains(ATTRIBUTE), "{e}");
            return;
        }
        Ok(plan) => plan,
    };
    assert!(
        union.len() <= MAX_RECORDED_CERTIFICATES,
        "{} ids accepted",
        union.len()
    );
    assert_eq!(
        plan.contain, exclusive,
        "deactivated: the ACTIVE unshared ones"
    );
    match &plan.record {
        None => assert_eq!(union, recorded, "a changed record not written"),
        Some(value) => {
            assert_ne!(union, recorded, "an unchanged record written again");
            assert!(
                value.len() <= ATTRIBUTE_VALUE_LIMIT,
                "{} characters",
                value.len()
            );
            assert_eq!(
                parse_record(value),
                (union, Vec::new()),
                "the record reads back"
            );
        }
    }
    let shared: Vec<&Assessment> = assessed
        .iter()
        .filter(|a| matches!(a.standing, Standing::Shared(_)))
        .collect();
    let shared_ids: Vec<&CertificateId> = plan.shared.iter().map(|s| &s.id).collect();
    assert_eq!(shared_ids, shared.iter().map(|a| &a.id).collect::<Vec<_>>());
    let held_by: Vec<String> = shared
        .iter()
        .flat_map(|a| match &a.standing {
            Standing::Shared(others) => others.clone(),
            _ => Vec::new(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ours = assessed
        .iter()
        .any(|a| matches!(a.standing, Standing::Exclusive | Standing::OursAlready));
    let because = KeptBecause::SharedCertificate;
    let want = match (held_by.is_empty(), ours) {
        (true, _) => Applied::Done,
        (false, false) => Applied::Kept { because, held_by },
        (false, true) => Applied::DoneKeeping { because, held_by },
    };
    assert_eq!(plan.applied, want);
}

fuzz_target!(|data: &[u8]| {
    check_certificate_rules(data);
    // lambda_runtime: a body that is not JSON fails before the handler is called.
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let fixture = fixture();
    let expected = expected(&event);
    for setup in &fixture.setups {
        let world = World::new();
        let handler = world.handler(setup);
        let report = fixture.runtime.block_on(handler.handle(&event));
        let again = World::new();
        let answer = fixture
            .runtime
            .block_on(again.handler(setup).handle_lambda(event.clone()));

        match (report, &expected) {
            (Err(e), Err(())) => {
                assert_eq!(answer, Err(InvocationFailure::Event(e.clone())));
                let failure = answer.expect_err("checked above");
                assert_eq!(failure.error_type(), "Permanent.NotAViolationEvent");
                assert!(world.calls().is_empty() && again.calls().is_empty());
                continue;
            }
            (Err(e), Ok(_)) => panic!("event refused ({e}) though it can be handled"),
            (Ok(report), Err(())) => panic!("event handled though it cannot be: {report:?}"),
            (Ok(report), Ok((trigger, raw))) => {
                assert_eq!(report.trigger, *trigger, "event read as the wrong kind");
                assert_eq!(report.records.len(), raw.len(), "one report per record");
                for (i, (r, raw)) in report.records.iter().zip(raw).enumerate() {
                    let trigger = trigger.expect("records mean a trigger");
                    assert_eq!(
                        r.verdict.record_id,
                        expected_id(trigger, i, raw),
                        "record {i} is reported under another id"
                    );
                    check_outcome(r, setup);
                }
                check_calls(&world, &report, setup);
                assert_eq!(
                    world.calls(),
                    again.calls(),
                    "a second run called otherwise"
                );
                assert_eq!(
                    answer,
                    report.clone().into_response(),
                    "handle_lambda vs handle"
                );
                match trigger {
                    Some(t) if t.fails_invocation() => check_invocation(answer, &report),
                    _ => check_sqs(&answer, &report),
                }
            }
        }
    }
});
