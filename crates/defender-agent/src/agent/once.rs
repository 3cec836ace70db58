//! --once: one report, one answer.

use rumqttc::{AsyncClient, QoS};
use tokio::time::Instant;

use super::link::{Net, spawn_event_loop};
use super::{
    AgentError, CONNECT_TIMEOUT, REPLY_TIMEOUT, Reporter, decode_reply, rejection, reply_rid,
};
use crate::config::{CollectConfig, ConnectionConfig};
use crate::mqtt;

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
