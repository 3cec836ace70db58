//! Events for the tests and the benchmark: the builders of [`violation_core::fixtures`] (on
//! the `aws_lambda_events` types; re-exported here), the shapes the harness tests use most,
//! and the sample events in `events/`.

use serde_json::{Value, json};
pub use violation_core::fixtures::*;

use crate::workspace_root;

/// An SQS event of SNS envelopes, one in-alarm violation per thing: message ids `m-{thing}`,
/// violation ids `v-{thing}`.
pub fn sqs_alarms(things: &[&str]) -> Value {
    let bodies: Vec<(String, String)> = things
        .iter()
        .map(|thing| {
            let message = violation(thing, "in-alarm", &format!("v-{thing}")).to_string();
            (
                format!("m-{thing}"),
                sns_envelope(&format!("sns-{thing}"), &message),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(id, body)| (id.as_str(), body.as_str()))
        .collect();
    sqs_event(&refs)
}

/// The SQS answer that reports exactly these message ids failed.
pub fn batch_item_failures(message_ids: &[&str]) -> Value {
    let items: Vec<Value> = message_ids
        .iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    json!({ "batchItemFailures": items })
}

/// A sample event from `events/`. Panics if it is missing or not JSON.
pub fn sample_event(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
