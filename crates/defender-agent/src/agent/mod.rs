//! The agent: connects, reports on a schedule, handles the replies and follows the shadow.
//!
//! `link` runs the MQTT connection, `once` is --once, `daemon` the long-running agent.

mod daemon;
mod link;
mod once;

use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use serde_json::Value;

use crate::collect::{CollectError, Collector};
use crate::config::{CollectConfig, Config, ConnectionConfig, Format, Mode};
use crate::mqtt::TlsSetupError;
use crate::report::EncodeError;
use crate::shadow::Topics;
use crate::state::{self, StateError, StateFile};

pub use daemon::daemon;
pub use once::once;

/// How long --once waits for the answer to its report.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long --once waits for the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// AWS IoT Core's largest MQTT message is 128 KB; a report stays below it with room for the topic.
pub const MAX_REPORT_BYTES: usize = 128 * 1024 - 512;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("cannot connect to {endpoint}:{port}: {reason}")]
    Connect {
        endpoint: String,
        port: u16,
        reason: String,
    },
    #[error("report {rid} rejected: {code}: {message}")]
    Rejected {
        rid: u64,
        code: String,
        message: String,
    },
    #[error("no answer to report {rid} on {topic}/accepted or /rejected within {waited:?}")]
    NoReply {
        rid: u64,
        topic: String,
        waited: Duration,
    },
    #[error(
        "report {rid} is {bytes} bytes even without port and connection lists (custom metrics too large?); AWS IoT accepts at most 128 KB"
    )]
    TooLarge { rid: u64, bytes: usize },
    #[error("the MQTT client stopped: {0}")]
    Client(String),
}

/// Runs the configured mode to its end.
pub async fn run(config: Config) -> Result<(), AgentError> {
    match (config.mode, config.connection) {
        (Mode::PrintReport, _) | (_, None) => {
            let report = print_report(config.collect).await?;
            println!("{report}");
            Ok(())
        }
        (Mode::Once, Some(conn)) => once(config.collect, conn).await.map(|_| ()),
        (Mode::Run, Some(conn)) => daemon(config.collect, conn).await,
    }
}

/// Collects once and returns the report as pretty JSON.
pub async fn print_report(collect: CollectConfig) -> Result<String, AgentError> {
    let long_names = collect.long_names;
    let mut collector = Collector::new(collect);
    let report = collector.report(state::now_millis()).await?;
    let value = report.to_value(long_names)?;
    Ok(serde_json::to_string_pretty(&value).map_err(EncodeError::from)?)
}

/// An answer on /accepted or /rejected: JSON, or CBOR for CBOR reports.
pub(crate) fn decode_reply(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .or_else(|_| ciborium::from_reader::<Value, _>(payload))
        .unwrap_or(Value::Null)
}

pub(crate) fn rejection(reply: &Value) -> (String, String) {
    let details = reply.get("statusDetails");
    let text = |key| {
        details
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .unwrap_or("(none given)")
            .to_owned()
    };
    (text("ErrorCode"), text("ErrorMessage"))
}

pub(crate) fn reply_rid(reply: &Value, fallback: u64) -> u64 {
    reply
        .get("reportId")
        .and_then(Value::as_u64)
        .unwrap_or(fallback)
}

pub(crate) struct Reporter {
    collector: Collector,
    pub(crate) state: StateFile,
    pub(crate) topics: Topics,
    format: Format,
    long_names: bool,
}

impl Reporter {
    pub(crate) fn new(collect: CollectConfig, conn: &ConnectionConfig) -> Result<Self, AgentError> {
        Ok(Reporter {
            long_names: collect.long_names,
            collector: Collector::new(collect),
            state: StateFile::open(&conn.state_file)?,
            topics: Topics::new(&conn.thing_name, conn.shadow_name.as_ref(), conn.format),
            format: conn.format,
        })
    }

    /// Collects and publishes one report; returns its id.
    pub(crate) async fn publish(&mut self, client: &AsyncClient) -> Result<u64, AgentError> {
        let rid = self.state.take_rid()?;
        let mut report = self.collector.report(rid).await?;
        let (payload, truncated) =
            report.encode_within(self.format, self.long_names, MAX_REPORT_BYTES)?;
        if let Some(max_items) = truncated {
            tracing::warn!(
                rid,
                "report too large for one MQTT message; it lists at most {max_items} ports and connections of each kind (the totals are exact)"
            );
        }
        let bytes = payload.len();
        client
            .publish(&self.topics.metrics, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| AgentError::Client(e.to_string()))?;
        tracing::info!(rid, topic = %self.topics.metrics, bytes, "report {rid} published");
        Ok(rid)
    }
}
