//! What happened to each record: the actions taken, the record's outcome, its JSON line
//! (replay's output) and its log line (the functions').

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use violation_core::{RejectReason, Verdict};

use crate::action::{ActionError, KeptBecause, Retry};
use crate::targets::{Resolution, Target};

/// What happened to one action on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Done,
    /// Done, with part deliberately left as it was (see [`Applied::DoneKeeping`](crate::action::Applied::DoneKeeping)).
    DoneKeeping {
        because: KeptBecause,
        held_by: Vec<String>,
    },
    /// `DRY_RUN`: nothing was called.
    DryRun,
    /// Deliberately left as it was (see [`KeptBecause`]).
    Kept {
        because: KeptBecause,
        held_by: Vec<String>,
    },
    Failed(ActionError),
}

impl ActionOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionOutcome::Done | ActionOutcome::DoneKeeping { .. } => "done",
            ActionOutcome::DryRun => "dry-run",
            ActionOutcome::Kept { .. } => "kept",
            ActionOutcome::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    /// The mitigation's name ([`crate::MitigationKind::name`]), `active-violations` for the
    /// check before a release, `deadline` for work not started, or the lookup that resolves
    /// a record's things.
    pub action: &'static str,
    /// The thing acted on (or what a lookup was about).
    pub thing: String,
    pub outcome: ActionOutcome,
}

/// The first failed call's error, if any call failed.
pub(crate) fn first_failure(actions: &[ActionReport]) -> Option<ActionError> {
    actions.iter().find_map(ActionReport::error).cloned()
}

impl ActionReport {
    fn error(&self) -> Option<&ActionError> {
        match &self.outcome {
            ActionOutcome::Failed(e) => Some(e),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match &self.outcome {
            ActionOutcome::Failed(e) => json!({
                "action": self.action, "thing": self.thing, "outcome": "failed", "operation": e.operation,
                "code": e.code, "retryable": e.retry == Retry::Retryable, "message": e.to_string(),
            }),
            ActionOutcome::DoneKeeping { because, held_by } => json!({
                "action": self.action, "thing": self.thing, "outcome": "done",
                "keptBecause": because.as_str(), "heldBy": held_by,
            }),
            ActionOutcome::Kept { because, held_by } => json!({
                "action": self.action, "thing": self.thing, "outcome": "kept", "keptBecause": because.as_str(), "heldBy": held_by,
            }),
            other => json!({"action": self.action, "thing": self.thing, "outcome": other.as_str()}),
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Every action succeeded.
    Done,
    DryRun,
    Ignored,
    /// Deliberately left as it was: a release while other alarms hold the thing, or a
    /// certificate that other things share.
    Kept {
        because: KeptBecause,
        held_by: Vec<String>,
    },
    /// Not acted on, and not lost: the blast-radius budget is spent; the cause stays recorded
    /// in the ledger until the budget allows or an operator approves.
    Held {
        reason: String,
    },
    /// Malformed: can never succeed.
    Rejected(RejectReason),
    /// At least one action failed after the SDK's retries.
    Failed {
        retry: Retry,
    },
}

impl RecordOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordOutcome::Done => "done",
            RecordOutcome::DryRun => "dry-run",
            RecordOutcome::Ignored => "ignored",
            RecordOutcome::Kept { .. } => "kept",
            RecordOutcome::Held { .. } => "held",
            RecordOutcome::Rejected(_) => "rejected",
            RecordOutcome::Failed { .. } => "failed",
        }
    }
}

/// Why a record is handed back to Lambda: whether a retry can help, and the error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub retry: Retry,
    pub code: String,
}

impl Failure {
    /// `Retryable.<code>` or `Permanent.<code>`: the Lambda error type.
    pub fn error_type(&self) -> String {
        format!("{}.{}", self.retry.as_str(), self.code)
    }
}

/// The actions taken for one record and their combined outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Mitigation {
    pub actions: Vec<ActionReport>,
    pub outcome: RecordOutcome,
    pub duration: Duration,
}

impl Mitigation {
    /// A record that needed no call.
    pub fn without_calls(outcome: RecordOutcome) -> Self {
        Mitigation {
            actions: Vec::new(),
            outcome,
            duration: Duration::ZERO,
        }
    }
}

/// The label of a lookup that resolves a record's things, in action reports.
pub const LOOKUP_ACTION: &str = "lookup";

/// What a record comes to, from its resolution and the calls made for its things: a
/// failure if any (retryable if any is), kept if every thing was kept, else done.
pub fn record_mitigation(
    resolution: &Resolution,
    done: &HashMap<&Target, Mitigation>,
) -> Mitigation {
    let targets = match resolution {
        Resolution::Rejected(reason) => {
            return Mitigation::without_calls(RecordOutcome::Rejected(reason.clone()));
        }
        Resolution::Failed(e) => {
            return Mitigation {
                actions: vec![ActionReport {
                    action: LOOKUP_ACTION,
                    thing: e.thing.clone(),
                    outcome: ActionOutcome::Failed(e.clone()),
                }],
                ..Mitigation::without_calls(RecordOutcome::Failed { retry: e.retry })
            };
        }
        Resolution::Nothing => return Mitigation::without_calls(RecordOutcome::Ignored),
        Resolution::FannedOut(_) => return Mitigation::without_calls(RecordOutcome::Done),
        Resolution::Planned(targets) if targets.is_empty() => {
            return Mitigation::without_calls(RecordOutcome::DryRun);
        }
        Resolution::Act(targets) | Resolution::Planned(targets) => targets,
    };
    let parts: Vec<&Mitigation> = targets.iter().filter_map(|t| done.get(t)).collect();
    let mut outcome = parts
        .first()
        .map_or(RecordOutcome::Done, |m| m.outcome.clone());
    for part in parts.iter().skip(1) {
        outcome = combine(outcome, &part.outcome);
    }
    Mitigation {
        actions: parts.iter().flat_map(|m| m.actions.clone()).collect(),
        outcome,
        duration: parts
            .iter()
            .map(|m| m.duration)
            .max()
            .unwrap_or(Duration::ZERO),
    }
}

/// Two things' outcomes as one record's: a retryable failure first, then a permanent one;
/// kept only when both were kept.
fn combine(a: RecordOutcome, b: &RecordOutcome) -> RecordOutcome {
    use RecordOutcome::{Failed, Kept};
    match (a, b) {
        (
            Failed {
                retry: Retry::Retryable,
            },
            _,
        ) => Failed {
            retry: Retry::Retryable,
        },
        (_, Failed { retry }) if *retry == Retry::Retryable => Failed {
            retry: Retry::Retryable,
        },
        (a @ Failed { .. }, _) => a,
        (_, b @ Failed { .. }) => b.clone(),
        (
            Kept {
                because,
                mut held_by,
            },
            Kept { held_by: more, .. },
        ) => {
            held_by.extend(more.iter().cloned());
            Kept { because, held_by }
        }
        (Kept { .. }, other) => other.clone(),
        (a, _) => a,
    }
}

/// One record's decision, the things resolved, the actions taken and their outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub verdict: Verdict,
    /// The things the record was resolved to (a certificate's things, an audit's findings').
    pub things: Vec<String>,
    pub actions: Vec<ActionReport>,
    pub outcome: RecordOutcome,
    pub duration: Duration,
    /// The resolver's notes (findings counted, subjects skipped, lookups a dry run skips).
    pub notes: Vec<String>,
}

impl RecordReport {
    pub fn new(verdict: Verdict, mitigation: Mitigation) -> Self {
        RecordReport {
            verdict,
            things: Vec::new(),
            actions: mitigation.actions,
            outcome: mitigation.outcome,
            duration: mitigation.duration,
            notes: Vec::new(),
        }
    }

    /// The things a record was resolved to, and the resolver's notes.
    pub fn with_resolution(mut self, targets: &[Target], notes: Vec<String>) -> Self {
        self.things = targets.iter().map(|t| t.thing.to_string()).collect();
        self.notes = notes;
        self
    }

    /// The record must be handed back to Lambda (retried, then dead-lettered).
    pub fn failed(&self) -> bool {
        self.failure().is_some()
    }

    /// For a failed record: whether a retry can help, and the error code.
    pub fn failure(&self) -> Option<Failure> {
        match &self.outcome {
            RecordOutcome::Rejected(r) => Some(Failure {
                retry: Retry::Permanent,
                code: r.code().to_owned(),
            }),
            RecordOutcome::Failed { retry } => Some(Failure {
                retry: *retry,
                code: self
                    .errors()
                    .find(|e| e.retry == *retry)
                    .map_or_else(|| "ActionFailed".to_owned(), |e| e.code.clone()),
            }),
            _ => None,
        }
    }

    fn errors(&self) -> impl Iterator<Item = &ActionError> {
        self.actions.iter().filter_map(ActionReport::error)
    }

    /// What keeps the thing (other alarms, the things sharing a certificate), if anything.
    pub fn held_by(&self) -> Vec<&str> {
        let mut held: Vec<&str> = match &self.outcome {
            RecordOutcome::Kept { held_by, .. } => held_by.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for action in &self.actions {
            if let ActionOutcome::Kept { held_by, .. }
            | ActionOutcome::DoneKeeping { held_by, .. } = &action.outcome
            {
                held.extend(held_by.iter().map(String::as_str));
            }
        }
        held.sort_unstable();
        held.dedup();
        held
    }

    /// The failed actions' errors, `; `-separated.
    pub fn action_errors(&self) -> String {
        let errors: Vec<String> = self.errors().map(ActionError::to_string).collect();
        errors.join("; ")
    }

    /// One line of description for a failed record.
    pub fn failure_message(&self) -> String {
        match &self.outcome {
            RecordOutcome::Rejected(_) => self.verdict.reason(),
            _ => format!(
                "record {}: {}",
                self.verdict.record_id,
                self.action_errors()
            ),
        }
    }

    /// The verdict's JSON plus `outcome`, `actions` and `durationMs`: what replay prints
    /// and the functions log.
    pub fn to_json(&self) -> Value {
        let mut line = self.verdict.to_json();
        if let Some(map) = line.as_object_mut() {
            map.insert("outcome".into(), Value::from(self.outcome.as_str()));
            map.insert("things".into(), json!(self.things));
            if !self.notes.is_empty() {
                let notes = map.entry("notes").or_insert_with(|| json!([]));
                if let Some(list) = notes.as_array_mut() {
                    list.extend(self.notes.iter().map(|n| Value::from(n.as_str())));
                }
            }
            let actions: Vec<Value> = self.actions.iter().map(ActionReport::to_json).collect();
            map.insert("actions".into(), Value::from(actions));
            if let RecordOutcome::Kept { because, held_by } = &self.outcome {
                map.insert("keptBecause".into(), Value::from(because.as_str()));
                map.insert("heldBy".into(), json!(held_by));
            }
            if let RecordOutcome::Held { reason } = &self.outcome {
                map.insert("heldBecause".into(), Value::from(reason.as_str()));
            }
            if let Some(failure) = self.failure() {
                map.insert(
                    "retryable".into(),
                    Value::from(failure.retry == Retry::Retryable),
                );
            }
            map.insert(
                "durationMs".into(),
                Value::from(self.duration.as_secs_f64() * 1000.0),
            );
        }
        line
    }
}

/// The most any one text field of the record line holds (bytes), and the joined notes: with
/// about twenty fields the line stays near 100 KB at worst, well below CloudWatch Logs' 256 KB
/// event, so a JSON line is never cut into unparseable JSON.
pub const LOG_FIELD_MAX: usize = 4096;
pub const LOG_NOTES_MAX: usize = 8192;

/// One structured log line per record: message id, source, thing(s), ids, decision,
/// outcome, duration, and the error when there is one. Every open-ended field is capped
/// (what is left out is counted in the field itself).
pub fn log_record(report: &RecordReport) {
    use crate::logging::{capped, capped_list};
    let v = &report.verdict;
    let f = &v.facts;
    let error = match &report.outcome {
        RecordOutcome::Rejected(_) => Some(v.reason()),
        RecordOutcome::Failed { .. } => Some(report.action_errors()),
        _ => None,
    };
    let error_type = report.failure().map(|f| f.error_type());
    let held_by = capped_list(report.held_by(), ",", LOG_FIELD_MAX);
    let thing = match report.things.as_slice() {
        [one] => one.as_str(),
        _ => f.thing_name.as_deref().unwrap_or(""),
    };
    let notes = capped_list(
        v.notes.iter().chain(&report.notes).map(String::as_str),
        "; ",
        LOG_NOTES_MAX,
    );
    let finding_ids = capped_list(f.finding_ids.iter().map(String::as_str), ",", LOG_FIELD_MAX);
    let thing_names = capped_list(report.things.iter().map(String::as_str), ",", LOG_FIELD_MAX);
    let field = |text: Option<&str>| capped(text.unwrap_or(""), LOG_FIELD_MAX).into_owned();
    let reason = v.reason();
    macro_rules! record_event {
        ($level:ident) => {
            tracing::$level!(
                record_id = %capped(&v.record_id, LOG_FIELD_MAX),
                envelope = v.envelope.as_str(),
                source = v.source.map_or("", |s| s.as_str()),
                thing = %capped(thing, LOG_FIELD_MAX),
                things = report.things.len(),
                thing_names = %thing_names,
                subject = field(f.subject.as_deref()),
                violation_id = field(f.violation_id.as_deref()),
                security_profile = field(f.security_profile_name.as_deref()),
                behavior = field(f.behavior_name.as_deref()),
                metric = field(f.metric.as_deref()),
                event_type = field(f.event_type.as_deref()),
                alarm = field(f.alarm_name.as_deref()),
                task_id = field(f.task_id.as_deref()),
                finding_ids,
                request_source = field(f.request_source.as_deref()),
                decision = v.decision.kind(),
                outcome = report.outcome.as_str(),
                reason = %capped(&reason, LOG_FIELD_MAX),
                held_by,
                notes,
                duration_ms = report.duration.as_secs_f64() * 1000.0,
                error = field(error.as_deref()),
                error_type = error_type.as_deref().unwrap_or(""),
                "record {}", report.outcome.as_str()
            )
        };
    }
    match report.outcome {
        RecordOutcome::Failed { .. } => record_event!(error),
        RecordOutcome::Rejected(_) => record_event!(warn),
        _ => record_event!(info),
    }
}
