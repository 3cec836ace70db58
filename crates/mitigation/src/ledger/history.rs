//! The append-only history: one entry per record per function, saying what the record
//! asked, what became of its cause, and what was done.

use super::time::format_rfc3339_millis;
use crate::function::FunctionKind;

/// What became of a record's cause in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseOutcome {
    Recorded,
    /// See [`super::Refused`].
    Duplicate,
    Stale,
    TooSoon,
    /// Not recorded: the thing is protected, or the record was refused.
    NotRecorded,
}

impl CauseOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseOutcome::Recorded => "recorded",
            CauseOutcome::Duplicate => "duplicate",
            CauseOutcome::Stale => "stale",
            CauseOutcome::TooSoon => "too-soon",
            CauseOutcome::NotRecorded => "not-recorded",
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When it was written (epoch ms).
    pub at: i64,
    pub function: FunctionKind,
    /// `quarantine` or `release`: what the record asked.
    pub asked: &'static str,
    pub cause_id: String,
    pub cause: CauseOutcome,
    /// The record's outcome (`done`, `kept`, `failed`, ...).
    pub outcome: String,
    /// Each action called and its outcome, `name=outcome`; empty when nothing was called.
    pub actions: Vec<String>,
    /// The causes still active after the record.
    pub active_causes: Vec<String>,
    /// The record's source (`detect-violation`, ...) and why it was decided so.
    pub source: String,
    pub reason: String,
    pub record_id: String,
    pub delivery: String,
    pub request_id: String,
    /// Who sent it (a request's source, the operator).
    pub caller: String,
}

impl HistoryEntry {
    /// The sort key: `h#<time>#<function>#<record id>#<request id>`, in time order within
    /// the thing (the request id tells apart two direct invocations, whose record id is the
    /// same, in one millisecond).
    pub fn sort_key(&self) -> String {
        format!(
            "h#{}#{}#{}#{}",
            format_rfc3339_millis(self.at),
            self.function.ledger_name(),
            self.record_id,
            self.request_id
        )
    }
}
