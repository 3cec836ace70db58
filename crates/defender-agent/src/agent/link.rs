//! The MQTT connection, polled in a task of its own.

use std::time::Duration;

use rumqttc::{ConnectReturnCode, ConnectionError, Event, Packet, Publish};
use tokio::sync::mpsc;

/// What the event-loop task tells the agent.
pub(crate) enum Net {
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
pub(crate) fn spawn_event_loop(
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
