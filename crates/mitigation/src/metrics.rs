//! CloudWatch embedded-metric-format (EMF) figures, one document per invocation: things
//! quarantined and released, records ignored, kept, held, rejected and failed, things put
//! back in the quarantine group (drift), by function.
//! CloudWatch extracts metrics only from a log event that is the EMF document itself, so
//! the document is written to stdout as its own line, not inside a tracing event.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use violation_core::{Action, Decision};

use crate::answer::EventReport;
use crate::report::{RecordOutcome, RecordReport};

/// Default CloudWatch namespace of the figures (`METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "IotQuarantine";

/// One invocation's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Things put in quarantine (an audit record can quarantine many).
    pub quarantined: usize,
    /// Things released.
    pub released: usize,
    pub ignored: usize,
    pub kept: usize,
    /// Records held by the blast-radius budget (the ledger's `MAX_NEW_QUARANTINES`).
    pub held: usize,
    pub rejected: usize,
    pub failed: usize,
    /// Things put back in the quarantine group after someone else took them out (drift).
    pub put_back: usize,
}

impl Figures {
    pub fn of(report: &EventReport) -> Self {
        let mut figures = Figures::default();
        for record in &report.records {
            figures.count(record);
        }
        figures
    }

    /// An invocation whose event was not an event at all: one rejection.
    pub fn rejected_event() -> Self {
        Figures {
            rejected: 1,
            ..Figures::default()
        }
    }

    fn count(&mut self, record: &RecordReport) {
        match &record.outcome {
            RecordOutcome::Done => match &record.verdict.decision {
                Decision::Act {
                    action: Action::Release,
                    ..
                } => self.released += record.things.len(),
                Decision::Reconcile { .. } => self.put_back += record.things.len(),
                _ => self.quarantined += record.things.len(),
            },
            RecordOutcome::DryRun | RecordOutcome::Ignored => self.ignored += 1,
            RecordOutcome::Kept { .. } => self.kept += 1,
            RecordOutcome::Held { .. } => self.held += 1,
            RecordOutcome::Rejected(_) => self.rejected += 1,
            RecordOutcome::Failed { .. } => self.failed += 1,
        }
    }

    /// The EMF document for `function`, at `timestamp_ms`.
    pub fn emf_document(&self, namespace: &str, function: &str, timestamp_ms: u128) -> Value {
        let names = [
            ("Quarantined", self.quarantined),
            ("Released", self.released),
            ("Ignored", self.ignored),
            ("Kept", self.kept),
            ("Held", self.held),
            ("Rejected", self.rejected),
            ("Failed", self.failed),
            ("PutBack", self.put_back),
        ];
        let definitions: Vec<Value> = names
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut document = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            },
            "Function": function,
        });
        if let Some(map) = document.as_object_mut() {
            for (name, value) in names {
                map.insert(name.into(), Value::from(value));
            }
        }
        document
    }
}

/// Where a function writes its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSink {
    pub namespace: String,
    pub function: String,
}

impl MetricsSink {
    /// Write the figures as one line on stdout.
    pub fn emit(&self, figures: &Figures) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let line = figures.emf_document(&self.namespace, &self.function, now);
        let mut out = std::io::stdout().lock();
        // A lost metrics line must not fail the invocation.
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_declares_every_figure_under_the_function_dimension() {
        let figures = Figures {
            quarantined: 3,
            failed: 1,
            ..Figures::default()
        };
        let doc = figures.emf_document("IotQuarantine", "quarantine-group", 1_700_000_000_000);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "IotQuarantine");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(
            declared,
            [
                "Quarantined",
                "Released",
                "Ignored",
                "Kept",
                "Held",
                "Rejected",
                "Failed",
                "PutBack"
            ]
        );
        for name in declared {
            assert!(doc[name].is_u64(), "{name} has a value");
        }
        assert_eq!(doc["Quarantined"], 3);
        assert_eq!(doc["Failed"], 1);
        assert_eq!(doc["Function"], "quarantine-group");
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_u64);
    }
}
