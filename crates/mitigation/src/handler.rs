//! The batch handler shared by both functions and replay: decode the event, decide every
//! record (in [`violation_core`]), act on the decisions through [`MitigationAction`]s, and
//! answer Lambda: an SQS partial batch response, or a failed invocation for SNS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use violation_core::{
    Action, Decision, DecisionPolicy, EventError, RejectReason, ThingName, Trigger, Verdict,
    decide_event, decode_event,
};

use crate::action::{ActionError, ActiveViolations, MitigationAction, Retry};

/// What happened to one action on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Done,
    /// `DRY_RUN`: nothing was called.
    DryRun,
    Failed(ActionError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    /// `thing-group`, `shadow`, or `active-violations` for the check before a release.
    pub action: &'static str,
    pub outcome: ActionOutcome,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Every action succeeded.
    Done,
    DryRun,
    Ignored,
    /// A release was not done because the thing has other active violations.
    Kept {
        other_violations: Vec<String>,
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
            RecordOutcome::Rejected(_) => "rejected",
            RecordOutcome::Failed { .. } => "failed",
        }
    }
}

/// One record's decision, the actions taken and their outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub verdict: Verdict,
    pub actions: Vec<ActionReport>,
    pub outcome: RecordOutcome,
    pub duration: Duration,
}

impl RecordReport {
    /// The record must be handed back to Lambda (retried, then dead-lettered).
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            RecordOutcome::Rejected(_) | RecordOutcome::Failed { .. }
        )
    }

    /// For a failed record: whether a retry can help, and the error code.
    pub fn failure(&self) -> Option<(Retry, String)> {
        match &self.outcome {
            RecordOutcome::Rejected(r) => Some((Retry::Permanent, r.code().to_owned())),
            RecordOutcome::Failed { retry } => {
                let code = self
                    .actions
                    .iter()
                    .find_map(|a| match &a.outcome {
                        ActionOutcome::Failed(e) if e.retry == *retry => Some(e.code.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "ActionFailed".to_owned());
                Some((*retry, code))
            }
            _ => None,
        }
    }

    /// One line of description for a failed record.
    fn failure_message(&self) -> String {
        match &self.outcome {
            RecordOutcome::Rejected(_) => self.verdict.reason(),
            _ => format!(
                "record {}: {}",
                self.verdict.record_id,
                self.action_errors()
            ),
        }
    }

    /// The failed actions' errors, `; `-separated.
    fn action_errors(&self) -> String {
        let errors: Vec<String> = self
            .actions
            .iter()
            .filter_map(|a| match &a.outcome {
                ActionOutcome::Failed(e) => Some(e.to_string()),
                _ => None,
            })
            .collect();
        errors.join("; ")
    }

    /// The verdict's JSON plus `outcome`, `actions` and `durationMs`: what replay prints
    /// and the functions log.
    pub fn to_json(&self) -> Value {
        let mut line = self.verdict.to_json();
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|a| match &a.outcome {
                ActionOutcome::Done => json!({"action": a.action, "outcome": "done"}),
                ActionOutcome::DryRun => json!({"action": a.action, "outcome": "dry-run"}),
                ActionOutcome::Failed(e) => json!({
                    "action": a.action, "outcome": "failed", "operation": e.operation,
                    "code": e.code, "retryable": e.retry == Retry::Retryable, "message": e.to_string(),
                }),
            })
            .collect();
        if let Some(map) = line.as_object_mut() {
            map.insert("outcome".into(), Value::from(self.outcome.as_str()));
            map.insert("actions".into(), Value::from(actions));
            if let RecordOutcome::Kept { other_violations } = &self.outcome {
                map.insert("otherActiveViolations".into(), json!(other_violations));
            }
            if let Some((retry, _)) = self.failure() {
                map.insert("retryable".into(), Value::from(retry == Retry::Retryable));
            }
            map.insert(
                "durationMs".into(),
                Value::from(self.duration.as_secs_f64() * 1000.0),
            );
        }
        line
    }
}

/// The reports of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    pub trigger: Option<Trigger>,
    pub records: Vec<RecordReport>,
}

/// Why an invocation failed. Lambda retries a failed SNS invocation twice, then hands the
/// event to the on-failure destination.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvocationFailure {
    #[error("{0}")]
    Event(#[from] EventError),
    #[error("{failed} of {total} records failed: {summary}")]
    Records {
        retry: Retry,
        code: String,
        failed: usize,
        total: usize,
        summary: String,
    },
}

impl InvocationFailure {
    /// `Retryable.<code>` or `Permanent.<code>`: whether a retry can help, and why.
    pub fn error_type(&self) -> String {
        match self {
            InvocationFailure::Event(_) => "Permanent.NotAViolationEvent".to_owned(),
            InvocationFailure::Records { retry, code, .. } => format!("{}.{code}", retry.as_str()),
        }
    }
}

impl From<InvocationFailure> for Diagnostic {
    fn from(failure: InvocationFailure) -> Self {
        Diagnostic {
            error_type: failure.error_type(),
            error_message: violation_core::reject::excerpt(&failure.to_string(), 2000),
        }
    }
}

impl EventReport {
    /// The answer to Lambda. SQS: `{"batchItemFailures":[...]}` naming exactly the failed
    /// records, each message id once. SNS: a summary, or an error when any record failed.
    pub fn into_response(self) -> Result<Value, InvocationFailure> {
        let failed: Vec<&RecordReport> = self.records.iter().filter(|r| r.failed()).collect();
        // An event with no records answers like SQS: an empty list is valid for both.
        if self.trigger != Some(Trigger::Sns) {
            // Each message once: a message delivered twice in one batch has two records.
            let mut listed = std::collections::HashSet::new();
            let items: Vec<Value> = failed
                .iter()
                .filter(|r| listed.insert(r.verdict.record_id.as_str()))
                .map(|r| json!({"itemIdentifier": r.verdict.record_id}))
                .collect();
            return Ok(json!({ "batchItemFailures": items }));
        }
        if failed.is_empty() {
            let count = |kind: &str| {
                self.records
                    .iter()
                    .filter(|r| r.verdict.decision.kind() == kind)
                    .count()
            };
            return Ok(json!({
                "records": self.records.len(),
                "quarantined": count("quarantine"),
                "released": count("release"),
                "ignored": count("ignore"),
            }));
        }
        // Retrying helps if it helps any failed record.
        let retryable = failed
            .iter()
            .filter_map(|r| r.failure())
            .find(|(retry, _)| *retry == Retry::Retryable);
        let (retry, code) = retryable
            .or_else(|| failed.iter().find_map(|r| r.failure()))
            .unwrap_or((Retry::Permanent, "Unknown".to_owned()));
        let summary = failed
            .iter()
            .map(|r| r.failure_message())
            .collect::<Vec<_>>()
            .join(" | ");
        Err(InvocationFailure::Records {
            retry,
            code,
            failed: failed.len(),
            total: self.records.len(),
            summary,
        })
    }
}

/// Decides and acts on events. Built once per process; cheap to share.
pub struct Handler {
    policy: DecisionPolicy,
    actions: Vec<Arc<dyn MitigationAction>>,
    active_violations: Option<Arc<dyn ActiveViolations>>,
    dry_run: bool,
    max_concurrency: usize,
}

impl Handler {
    pub fn new(policy: DecisionPolicy, actions: Vec<Arc<dyn MitigationAction>>) -> Self {
        Handler {
            policy,
            actions,
            active_violations: None,
            dry_run: false,
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
        }
    }

    /// Check the thing's other active violations before a release.
    pub fn with_active_violations(mut self, source: Arc<dyn ActiveViolations>) -> Self {
        self.active_violations = Some(source);
        self
    }

    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// The Lambda entry point: handle, log every record, answer.
    pub async fn handle_lambda(&self, event: Value) -> Result<Value, InvocationFailure> {
        match self.handle(&event).await {
            Ok(report) => {
                report.records.iter().for_each(log_record);
                report.into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, error_type = "Permanent.NotAViolationEvent", "event rejected");
                Err(InvocationFailure::Event(e))
            }
        }
    }

    /// Decode, decide and act on one event.
    pub async fn handle(&self, event: &Value) -> Result<EventReport, EventError> {
        let decoded = decode_event(event)?;
        let verdicts = decide_event(&decoded, &self.policy);
        Ok(EventReport {
            trigger: decoded.trigger,
            records: self.execute(verdicts).await,
        })
    }

    /// Act on decided records. Records of a batch run concurrently (at most
    /// `max_concurrency` at once); records asking the same action for the same thing share
    /// one call, so a duplicated delivery in a batch is not done twice.
    pub async fn execute(&self, verdicts: Vec<Verdict>) -> Vec<RecordReport> {
        let mut work: Vec<(Action, &ThingName, Vec<usize>)> = Vec::new();
        let mut slot: HashMap<(Action, &ThingName), usize> = HashMap::new();
        for (i, verdict) in verdicts.iter().enumerate() {
            if let Decision::Act { action, thing } = &verdict.decision {
                let at = *slot.entry((*action, thing)).or_insert_with(|| {
                    work.push((*action, thing, Vec::new()));
                    work.len() - 1
                });
                work[at].2.push(i);
            }
        }
        // A thing that one record quarantines is not released by another record of the same
        // batch (delivery order is not guaranteed): quarantine wins, the release is reported
        // `kept`, naming the alarms that keep it.
        let alarms_in_batch = |thing: &ThingName| -> Option<Vec<String>> {
            let at = *slot.get(&(Action::Quarantine, thing))?;
            Some(
                work[at]
                    .2
                    .iter()
                    .map(|&i| {
                        verdicts[i]
                            .violation_id
                            .clone()
                            .unwrap_or_else(|| verdicts[i].record_id.clone())
                    })
                    .collect(),
            )
        };
        let done: Vec<(Vec<ActionReport>, RecordOutcome, Duration)> = stream::iter(work.iter())
            .map(|(action, thing, members)| {
                let own: Vec<&str> = members
                    .iter()
                    .filter_map(|&i| verdicts[i].violation_id.as_deref())
                    .collect();
                let kept = match action {
                    Action::Release => alarms_in_batch(thing),
                    Action::Quarantine => None,
                };
                async move {
                    match kept {
                        Some(other_violations) => (
                            Vec::new(),
                            RecordOutcome::Kept { other_violations },
                            Duration::ZERO,
                        ),
                        None => self.mitigate(*action, thing, own).await,
                    }
                }
            })
            .buffered(self.max_concurrency)
            .collect()
            .await;
        let mut results: Vec<Option<(Vec<ActionReport>, RecordOutcome, Duration)>> =
            vec![None; verdicts.len()];
        for ((_, _, members), result) in work.iter().zip(done) {
            for &i in members {
                results[i] = Some(result.clone());
            }
        }
        verdicts
            .into_iter()
            .zip(results)
            .map(|(verdict, result)| {
                let (actions, outcome, duration) = match (&verdict.decision, result) {
                    (_, Some(r)) => r,
                    (Decision::Reject(reason), None) => (
                        Vec::new(),
                        RecordOutcome::Rejected(reason.clone()),
                        Duration::ZERO,
                    ),
                    (_, None) => (Vec::new(), RecordOutcome::Ignored, Duration::ZERO),
                };
                RecordReport {
                    verdict,
                    actions,
                    outcome,
                    duration,
                }
            })
            .collect()
    }

    async fn mitigate(
        &self,
        action: Action,
        thing: &ThingName,
        own_violation_ids: Vec<&str>,
    ) -> (Vec<ActionReport>, RecordOutcome, Duration) {
        let started = Instant::now();
        if self.dry_run {
            let reports = self
                .actions
                .iter()
                .map(|a| ActionReport {
                    action: a.name(),
                    outcome: ActionOutcome::DryRun,
                })
                .collect();
            return (reports, RecordOutcome::DryRun, started.elapsed());
        }
        if action == Action::Release
            && let Some(source) = &self.active_violations
        {
            match source.active_violation_ids(thing).await {
                Ok(ids) => {
                    let others: Vec<String> = ids
                        .into_iter()
                        .filter(|id| !own_violation_ids.contains(&id.as_str()))
                        .collect();
                    if !others.is_empty() {
                        return (
                            Vec::new(),
                            RecordOutcome::Kept {
                                other_violations: others,
                            },
                            started.elapsed(),
                        );
                    }
                }
                Err(e) => {
                    let retry = e.retry;
                    let report = ActionReport {
                        action: "active-violations",
                        outcome: ActionOutcome::Failed(e),
                    };
                    return (
                        vec![report],
                        RecordOutcome::Failed { retry },
                        started.elapsed(),
                    );
                }
            }
        }
        let reports: Vec<ActionReport> =
            futures::future::join_all(self.actions.iter().map(|a| async move {
                ActionReport {
                    action: a.name(),
                    outcome: match a.apply(action, thing).await {
                        Ok(()) => ActionOutcome::Done,
                        Err(e) => ActionOutcome::Failed(e),
                    },
                }
            }))
            .await;
        let failures: Vec<Retry> = reports
            .iter()
            .filter_map(|r| match &r.outcome {
                ActionOutcome::Failed(e) => Some(e.retry),
                _ => None,
            })
            .collect();
        let outcome = if failures.is_empty() {
            RecordOutcome::Done
        } else if failures.contains(&Retry::Retryable) {
            RecordOutcome::Failed {
                retry: Retry::Retryable,
            }
        } else {
            RecordOutcome::Failed {
                retry: Retry::Permanent,
            }
        };
        (reports, outcome, started.elapsed())
    }
}

/// One structured log line per record: message id, thing, violation id, behavior, decision,
/// outcome, duration, and the error when there is one.
pub fn log_record(report: &RecordReport) {
    let v = &report.verdict;
    let error = match &report.outcome {
        RecordOutcome::Rejected(_) => Some(v.reason()),
        RecordOutcome::Failed { .. } => Some(report.action_errors()),
        _ => None,
    };
    let error_type = report
        .failure()
        .map(|(retry, code)| format!("{}.{code}", retry.as_str()));
    macro_rules! record_event {
        ($level:ident) => {
            tracing::$level!(
                record_id = %v.record_id,
                envelope = v.envelope.as_str(),
                thing = v.thing_name.as_deref().unwrap_or(""),
                violation_id = v.violation_id.as_deref().unwrap_or(""),
                security_profile = v.security_profile_name.as_deref().unwrap_or(""),
                behavior = v.behavior_name.as_deref().unwrap_or(""),
                metric = v.metric.as_deref().unwrap_or(""),
                event_type = v.event_type.as_deref().unwrap_or(""),
                decision = v.decision.kind(),
                outcome = report.outcome.as_str(),
                reason = %v.reason(),
                duration_ms = report.duration.as_secs_f64() * 1000.0,
                error = error.as_deref().unwrap_or(""),
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
