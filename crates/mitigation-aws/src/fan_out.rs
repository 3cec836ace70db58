//! Fanning an audit out through the function's own SQS queue: SendMessageBatch, ten
//! requests a call; entries SQS refuses are sent again, and what still fails fails the
//! record, so the audit is handed back rather than half sent in silence.

use futures::future::BoxFuture;
use mitigation::{ActionError, FanOut};

use crate::errors::classify;

/// SendMessageBatch takes at most ten entries.
const BATCH: usize = 10;
/// Calls in flight at once.
const CONCURRENCY: usize = 8;
/// Sends of the entries SQS refused in a batch (the first included).
const ATTEMPTS: usize = 3;

/// The function's own queue.
pub struct QueueFanOut {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl QueueFanOut {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        QueueFanOut {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// One batch, entries SQS refuses sent again.
    async fn send_batch(&self, batch: &[String]) -> Result<(), ActionError> {
        let mut pending: Vec<(usize, &String)> = batch.iter().enumerate().collect();
        for _ in 0..ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body.as_str())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ActionError::permanent(
                        "SendMessageBatch",
                        &self.queue_url,
                        "BuildError",
                        e.to_string(),
                    )
                })?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("SendMessageBatch", &self.queue_url, e))?;
            let refused: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            pending.retain(|(i, _)| refused.contains(&i.to_string().as_str()));
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(ActionError::retryable(
            "SendMessageBatch",
            &self.queue_url,
            "EntriesRefused",
            format!("SQS refused {} request(s) {ATTEMPTS} times", pending.len()),
        ))
    }
}

impl FanOut for QueueFanOut {
    fn send<'a>(&'a self, alerts: &'a [String]) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            // CONCURRENCY batches at a time.
            for wave in alerts.chunks(BATCH * CONCURRENCY) {
                let mut calls = Vec::new();
                for batch in wave.chunks(BATCH) {
                    calls.push(self.send_batch(batch));
                }
                futures::future::try_join_all(calls).await?;
            }
            Ok(())
        })
    }
}
