//! The long-running agent: reports on a schedule and follows the shadow's quarantine flag
//! (`follow`).

mod follow;

use std::time::Duration;

use rumqttc::{AsyncClient, Publish, QoS};
use serde_json::Value;
use tokio::time::Instant;

use super::link::{Net, spawn_event_loop};
use super::{AgentError, Reporter, decode_reply, rejection};
use crate::config::{CollectConfig, ConnectionConfig};
use crate::mqtt;

use follow::Follower;

struct Daemon {
    conn: ConnectionConfig,
    reporter: Reporter,
    client: AsyncClient,
    follower: Follower,
    command_timeout: Duration,
    last_rid: Option<u64>,
    connected: bool,
    /// A report is owed as soon as the connection is up: the first one, or one that fell due
    /// while the device was offline.
    report_due: bool,
    next_report: Instant,
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
        report_quarantine = conn.report_quarantine,
        metrics_topic = %reporter.topics.metrics, shadow = %reporter.topics.shadow_get.trim_end_matches("/get"),
        "defender-agent starting"
    );
    let mut agent = Daemon {
        next_report: Instant::now() + conn.interval,
        conn,
        reporter,
        client,
        follower: Follower::default(),
        command_timeout,
        last_rid: None,
        connected: false,
        report_due: true,
    };
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate());
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt());
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => agent.on_event(event).await?,
                None => return Err(AgentError::Client("event loop ended".into())),
            },
            _ = tokio::time::sleep_until(agent.next_report) => agent.on_tick().await,
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
    async fn on_event(&mut self, event: Net) -> Result<(), AgentError> {
        match event {
            Net::Down(reason) => {
                if self.connected {
                    tracing::warn!("connection lost: {reason}; reconnecting");
                } else {
                    tracing::error!(
                        "cannot connect to {}:{}: {reason}; retrying",
                        self.conn.endpoint,
                        self.conn.port
                    );
                }
                self.connected = false;
            }
            Net::Connected { session_present } => {
                self.connected = true;
                tracing::info!(session_present, "connected");
                self.on_connect(session_present).await?;
                if self.report_due {
                    self.report_due = false;
                    self.next_report = Instant::now() + self.conn.interval;
                    self.report().await;
                }
            }
            Net::Message(p) => self.on_message(&p).await,
        }
        Ok(())
    }

    async fn on_tick(&mut self) {
        // From now, not from the missed deadline: after a suspend, one report, not a burst.
        self.next_report = Instant::now() + self.conn.interval;
        if self.connected {
            self.report().await;
        } else {
            tracing::warn!("report due while disconnected; it goes out on reconnection");
            self.report_due = true;
        }
        self.forget_lost_read();
        // A command that failed earlier is tried again.
        self.reconcile().await;
    }

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
        self.read_shadow().await
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
        self.on_shadow(topic, &doc).await;
    }
}
