//! The answer to Lambda. SQS: a partial batch response naming exactly the failed messages.
//! SNS: a summary, or a failed invocation (Lambda retries it twice, then hands the event to
//! the on-failure destination) whose error type says whether a retry can help.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use lambda_runtime::Diagnostic;
use serde::Serialize;
use violation_core::{Action, Decision, EventError, Trigger};

use crate::action::Retry;
use crate::report::{Failure, RecordReport};

/// The reports of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    pub trigger: Option<Trigger>,
    pub records: Vec<RecordReport>,
}

/// What an SNS or direct invocation answers when every record succeeded: records by
/// decision, and the things acted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    pub records: usize,
    pub quarantined: usize,
    pub released: usize,
    pub ignored: usize,
    /// Audit tasks and findings resolved to things.
    #[serde(skip_serializing_if = "is_zero")]
    pub audits: usize,
    /// Things taken out of the quarantine group, checked against the ledger (drift).
    #[serde(skip_serializing_if = "is_zero")]
    pub reconciled: usize,
    /// Things acted on, over all records.
    #[serde(skip_serializing_if = "is_zero")]
    pub things: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A successful invocation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LambdaAnswer {
    /// SQS event source mappings read `batchItemFailures`; an event with no records
    /// answers this way too (an empty list is valid for both triggers).
    Sqs(SqsBatchResponse),
    /// SNS and direct invocations: a summary.
    Summary(InvocationSummary),
}

/// Why an invocation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvocationFailure {
    #[error("{0}")]
    Event(#[from] EventError),
    #[error("{failed} of {total} records failed: {summary}")]
    Records {
        failure: Failure,
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
            InvocationFailure::Records { failure, .. } => failure.error_type(),
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
    pub fn into_response(self) -> Result<LambdaAnswer, InvocationFailure> {
        match self.trigger {
            Some(trigger) if trigger.fails_invocation() => {
                self.invocation_answer().map(LambdaAnswer::Summary)
            }
            _ => Ok(LambdaAnswer::Sqs(self.sqs_answer())),
        }
    }

    /// Each failed message once: a message delivered twice in one batch has two records.
    fn sqs_answer(&self) -> SqsBatchResponse {
        let mut listed = HashSet::new();
        let mut answer = SqsBatchResponse::default();
        for report in self.records.iter().filter(|r| r.failed()) {
            if listed.insert(report.verdict.record_id.as_str()) {
                answer.add_failure(report.verdict.record_id.clone());
            }
        }
        answer
    }

    fn invocation_answer(&self) -> Result<InvocationSummary, InvocationFailure> {
        let failed: Vec<&RecordReport> = self.records.iter().filter(|r| r.failed()).collect();
        if failed.is_empty() {
            return Ok(self.summary());
        }
        // Retrying helps if it helps any failed record.
        let failures: Vec<Failure> = failed.iter().filter_map(|r| r.failure()).collect();
        let failure = failures
            .iter()
            .find(|f| f.retry == Retry::Retryable)
            .or(failures.first())
            .cloned()
            .unwrap_or(Failure {
                retry: Retry::Permanent,
                code: "Unknown".to_owned(),
            });
        let summary: Vec<String> = failed.iter().map(|r| r.failure_message()).collect();
        Err(InvocationFailure::Records {
            failure,
            failed: failed.len(),
            total: self.records.len(),
            summary: summary.join(" | "),
        })
    }

    fn summary(&self) -> InvocationSummary {
        let mut summary = InvocationSummary {
            records: self.records.len(),
            ..InvocationSummary::default()
        };
        for report in &self.records {
            match &report.verdict.decision {
                Decision::Act {
                    action: Action::Quarantine,
                    ..
                } => summary.quarantined += 1,
                Decision::Act {
                    action: Action::Release,
                    ..
                } => summary.released += 1,
                Decision::ExpandAudit { .. } | Decision::LookupFinding { .. } => {
                    summary.audits += 1
                }
                Decision::Reconcile { .. } => summary.reconciled += 1,
                Decision::Ignore(_) => summary.ignored += 1,
                Decision::Reject(_) => {}
            }
            summary.things += report.things.len();
        }
        summary
    }
}
