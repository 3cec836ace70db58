//! The agent: connects, reports on a schedule, handles the replies and follows the shadow.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Packet, Publish, QoS};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::collect::{CollectError, Collector};
use crate::config::{CollectConfig, Config, ConnectionConfig, Format, Mode};
use crate::custom::run_shell;
use crate::mqtt::{self, TlsSetupError};
use crate::report::EncodeError;
use crate::shadow::{self, Topics};
use crate::state::{self, StateError, StateFile};

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

/// What the event-loop task tells the agent.
enum Net {
    Connected { session_present: bool },
    Message(Publish),
    Down(String),
}

fn describe(e: &ConnectionError, client_id: &str) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword => {
                    format!(
                        "not authorized (is the certificate active, attached to the thing, and does its policy allow iot:Connect as client id {client_id}?)"
                    )
                }
                ConnectReturnCode::BadClientId => format!("client id {client_id} refused"),
                other => format!("{other:?}"),
            };
            format!("the broker refused the connection: {why}")
        }
        ConnectionError::Tls(e) => format!("TLS: {e}"),
        ConnectionError::NetworkTimeout => "no answer within the connection timeout".into(),
        other => {
            let text = other.to_string();
            match text.find("received fatal alert") {
                Some(i) => format!(
                    "the broker ended the TLS handshake ({}): is the --cert certificate registered and active, and signed by a CA the endpoint trusts?",
                    &text[i..]
                ),
                None => text,
            }
        }
    }
}

/// Polls the event loop in its own task (so a slow command never stalls the keep-alive), and
/// retries a failed connection after 1 s, 2 s, 4 s ... up to `reconnect_max`.
fn spawn_event_loop(
    mut eventloop: rumqttc::EventLoop,
    client_id: String,
    reconnect_max: Duration,
) -> mpsc::UnboundedReceiver<Net> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let event = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_secs(1);
                    Net::Connected {
                        session_present: ack.session_present,
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => Net::Message(p),
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        tracing::error!(
                            "the broker refused a subscription (does the policy allow iot:Subscribe and iot:Receive on the thing's topics?)"
                        );
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => {
                    let reason = describe(&e, &client_id);
                    if tx.send(Net::Down(reason)).is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(reconnect_max);
                    continue;
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

/// An answer on /accepted or /rejected: JSON, or CBOR for CBOR reports.
fn decode_reply(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .or_else(|_| ciborium::from_reader::<Value, _>(payload))
        .unwrap_or(Value::Null)
}

fn rejection(reply: &Value) -> (String, String) {
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

fn reply_rid(reply: &Value, fallback: u64) -> u64 {
    reply
        .get("reportId")
        .and_then(Value::as_u64)
        .unwrap_or(fallback)
}

struct Reporter {
    collector: Collector,
    state: StateFile,
    topics: Topics,
    format: Format,
    long_names: bool,
}

impl Reporter {
    fn new(collect: CollectConfig, conn: &ConnectionConfig) -> Result<Self, AgentError> {
        Ok(Reporter {
            long_names: collect.long_names,
            collector: Collector::new(collect),
            state: StateFile::load(&conn.state_file)?,
            topics: Topics::new(&conn.thing_name, conn.shadow_name.as_ref(), conn.format),
            format: conn.format,
        })
    }

    /// Collects and publishes one report; returns its id.
    async fn publish(&mut self, client: &AsyncClient) -> Result<u64, AgentError> {
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

/// --once: connect (clean session), publish one report, wait for its answer.
pub async fn once(collect: CollectConfig, conn: ConnectionConfig) -> Result<u64, AgentError> {
    let mut reporter = Reporter::new(collect, &conn)?;
    let (client, eventloop) = AsyncClient::new(mqtt::options(&conn, false)?, 16);
    let mut events = spawn_event_loop(eventloop, conn.client_id.clone(), conn.reconnect_max);
    let connect_error = |reason| AgentError::Connect {
        endpoint: conn.endpoint.clone(),
        port: conn.port,
        reason,
    };
    let connect_deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut sent: Option<(u64, Instant)> = None;
    loop {
        let deadline = sent.map_or(connect_deadline, |(_, at)| at + REPLY_TIMEOUT);
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(match sent {
                    Some((rid, _)) => AgentError::NoReply { rid, topic: reporter.topics.metrics.clone(), waited: REPLY_TIMEOUT },
                    None => connect_error(format!("no connection within {CONNECT_TIMEOUT:?}")),
                });
            }
        };
        match event {
            None => return Err(AgentError::Client("event loop ended".into())),
            Some(Net::Down(reason)) => return Err(connect_error(reason)),
            Some(Net::Connected { .. }) => {
                if sent.is_none() {
                    for topic in reporter.topics.metrics_replies() {
                        client
                            .subscribe(topic, QoS::AtLeastOnce)
                            .await
                            .map_err(|e| AgentError::Client(e.to_string()))?;
                    }
                    let rid = reporter.publish(&client).await?;
                    sent = Some((rid, Instant::now()));
                }
            }
            Some(Net::Message(p)) => {
                let Some((rid, _)) = sent else { continue };
                let reply = decode_reply(&p.payload);
                if p.topic == reporter.topics.metrics_accepted {
                    tracing::info!(rid = reply_rid(&reply, rid), "report {rid} accepted");
                    let _ = client.disconnect().await;
                    return Ok(rid);
                }
                if p.topic == reporter.topics.metrics_rejected {
                    let (code, message) = rejection(&reply);
                    let rid = reply_rid(&reply, rid);
                    // main prints the error.
                    let _ = client.disconnect().await;
                    return Err(AgentError::Rejected { rid, code, message });
                }
            }
        }
    }
}

/// What the agent knows about the quarantine flag.
#[derive(Default)]
struct Follower {
    /// The last desired value the shadow showed.
    desired: Option<bool>,
    /// The last reported value the shadow showed.
    reported: Option<bool>,
}

struct Daemon {
    conn: ConnectionConfig,
    reporter: Reporter,
    client: AsyncClient,
    follower: Follower,
    command_timeout: Duration,
    last_rid: Option<u64>,
}

/// The long-running agent.
pub async fn daemon(collect: CollectConfig, conn: ConnectionConfig) -> Result<(), AgentError> {
    let command_timeout = collect.command_timeout;
    let reporter = Reporter::new(collect, &conn)?;
    let (client, eventloop) = AsyncClient::new(mqtt::options(&conn, true)?, 64);
    let mut events = spawn_event_loop(eventloop, conn.client_id.clone(), conn.reconnect_max);
    if conn.quarantine_command.is_none() {
        tracing::warn!(
            "no --quarantine-command: a quarantine will only be acknowledged in the shadow"
        );
    }
    tracing::info!(
        endpoint = %conn.endpoint, port = conn.port, thing = %conn.thing_name,
        client_id = %conn.client_id, interval_secs = conn.interval.as_secs(),
        metrics_topic = %reporter.topics.metrics, shadow = %reporter.topics.shadow_get.trim_end_matches("/get"),
        "defender-agent starting"
    );
    let mut agent = Daemon {
        conn,
        reporter,
        client,
        follower: Follower::default(),
        command_timeout,
        last_rid: None,
    };
    let mut connected = false;
    // The first report goes out as soon as the first connection is up.
    let mut report_due = true;
    let mut next_report = Instant::now() + agent.conn.interval;
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate());
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt());
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return Err(AgentError::Client("event loop ended".into())),
                Some(Net::Down(reason)) => {
                    if connected {
                        tracing::warn!("connection lost: {reason}; reconnecting");
                    } else {
                        tracing::error!("cannot connect to {}:{}: {reason}; retrying", agent.conn.endpoint, agent.conn.port);
                    }
                    connected = false;
                }
                Some(Net::Connected { session_present }) => {
                    connected = true;
                    tracing::info!(session_present, "connected");
                    agent.on_connect(session_present).await?;
                    if report_due {
                        report_due = false;
                        next_report = Instant::now() + agent.conn.interval;
                        agent.report().await;
                    }
                }
                Some(Net::Message(p)) => agent.on_message(&p).await,
            },
            _ = tokio::time::sleep_until(next_report) => {
                // From now, not from the missed deadline: after a suspend, one report, not a burst.
                next_report = Instant::now() + agent.conn.interval;
                if connected {
                    agent.report().await;
                } else {
                    tracing::warn!("report due while disconnected; it goes out on reconnection");
                    report_due = true;
                }
                // A command that failed earlier is tried again.
                agent.reconcile().await;
            }
            _ = recv(&mut terminate) => break,
            _ = recv(&mut interrupt) => break,
        }
    }
    tracing::info!("stopping");
    let _ = agent.client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl Daemon {
    async fn on_connect(&mut self, session_present: bool) -> Result<(), AgentError> {
        let topics = &self.reporter.topics;
        if !session_present {
            let all = topics
                .metrics_replies()
                .into_iter()
                .chain(topics.shadow_subscriptions());
            for topic in all {
                self.client
                    .subscribe(topic, QoS::AtLeastOnce)
                    .await
                    .map_err(|e| AgentError::Client(e.to_string()))?;
            }
        }
        // Read the whole shadow on every connection: a quarantine set while the device was
        // offline is obeyed now, not on the next change.
        self.client
            .publish(&topics.shadow_get, QoS::AtLeastOnce, false, b"{}".to_vec())
            .await
            .map_err(|e| AgentError::Client(e.to_string()))
    }

    async fn report(&mut self) {
        match self.reporter.publish(&self.client).await {
            Ok(rid) => self.last_rid = Some(rid),
            Err(e) => tracing::error!("report not sent: {e}"),
        }
    }

    /// The report a reply is about: its `reportId`, else the last report sent.
    fn replied_rid(&self, reply: &Value) -> String {
        reply
            .get("reportId")
            .and_then(Value::as_u64)
            .or(self.last_rid)
            .map_or_else(|| "?".to_owned(), |r| r.to_string())
    }

    async fn on_message(&mut self, p: &Publish) {
        let topics = &self.reporter.topics;
        let topic = p.topic.as_str();
        if topic == topics.metrics_accepted {
            let rid = self.replied_rid(&decode_reply(&p.payload));
            tracing::info!("report {rid} accepted");
            return;
        }
        if topic == topics.metrics_rejected {
            let reply = decode_reply(&p.payload);
            let (code, message) = rejection(&reply);
            let rid = self.replied_rid(&reply);
            tracing::error!(error_code = %code, error_message = %message, "report {rid} rejected: {code}: {message}");
            return;
        }
        let doc: Value = match serde_json::from_slice(&p.payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(topic, error = %e, "ignored a shadow message that is not JSON");
                return;
            }
        };
        if topic == topics.shadow_get_accepted || topic == topics.shadow_update_documents {
            let view = if topic == topics.shadow_get_accepted {
                shadow::from_get_accepted(&doc)
            } else {
                shadow::from_documents(&doc)
            };
            if topic == topics.shadow_get_accepted {
                tracing::info!(desired_quarantine = view.desired, reported_quarantine = ?view.reported, "shadow read");
            }
            self.follower.desired = Some(view.desired);
            self.follower.reported = view.reported;
        } else if topic == topics.shadow_update_delta {
            match shadow::from_delta(&doc) {
                Some(desired) => self.follower.desired = Some(desired),
                None => return,
            }
        } else if topic == topics.shadow_get_rejected {
            if shadow::is_no_shadow(&doc) {
                tracing::info!("shadow read: the thing has no shadow yet");
                self.follower.desired = Some(false);
                self.follower.reported = None;
            } else {
                tracing::warn!(answer = %doc, "could not read the shadow");
                return;
            }
        } else if topic == topics.shadow_update_rejected {
            // Also seen when another client's update of the same shadow is rejected.
            tracing::warn!(answer = %doc, "a shadow update was rejected");
            return;
        } else {
            return;
        }
        self.reconcile().await;
    }

    /// Brings the device in line with the desired flag: runs the command if the applied state
    /// differs, then makes `reported.quarantine` say what is applied.
    async fn reconcile(&mut self) {
        let Some(desired) = self.follower.desired else {
            return;
        };
        let applied = self.reporter.state.state().quarantined;
        // First start and nothing desired: there is nothing to release.
        let in_line = applied == Some(desired) || (applied.is_none() && !desired);
        if !in_line {
            let (command, what) = if desired {
                (self.conn.quarantine_command.as_deref(), "quarantine")
            } else {
                (self.conn.release_command.as_deref(), "release")
            };
            tracing::warn!(desired_quarantine = desired, "shadow asks for {what}");
            if let Some(command) = command {
                let env = [
                    ("THING_NAME", self.conn.thing_name.as_str()),
                    ("QUARANTINE", if desired { "true" } else { "false" }),
                ];
                match run_shell(command, &env, self.command_timeout).await {
                    Ok(out) => {
                        tracing::info!(command, output = out.trim(), "{what} command succeeded")
                    }
                    Err(e) => {
                        tracing::error!(
                            command,
                            "{what} command failed: {e}; trying again at the next report"
                        );
                        return;
                    }
                }
            }
        }
        if applied != Some(desired)
            && let Err(e) = self.reporter.state.set_quarantined(desired)
        {
            tracing::error!("{e}");
        }
        let report_needed = self.follower.reported != Some(desired)
            && (desired || self.follower.reported.is_some() || !in_line);
        if report_needed {
            let topic = &self.reporter.topics.shadow_update;
            match self
                .client
                .publish(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    shadow::reported_document(desired),
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(topic, "reported quarantine: {desired}");
                    self.follower.reported = Some(desired);
                }
                Err(e) => tracing::error!("cannot report quarantine {desired}: {e}"),
            }
        }
    }
}
