//! The disconnect mitigation: a quarantined thing's live MQTT connection cut, after the
//! group change it makes effective.

use futures::future::BoxFuture;
use mitigation::{ActionError, Applied, MitigationAction, MitigationKind};
use violation_core::{Action, ThingName};

use crate::errors::classify;

/// Cut a quarantined thing's live MQTT connection (DeleteConnection on its client id, which
/// by convention is the thing name), so that its next connect is authorized under the
/// quarantine policy. The persistent session is kept (the device gets its shadow delta when
/// it reconnects); its last will is not published. A client that is not connected is
/// already where the quarantine wants it.
pub struct ConnectionCut {
    client: aws_sdk_iotdataplane::Client,
}

impl ConnectionCut {
    pub fn new(client: aws_sdk_iotdataplane::Client) -> Self {
        ConnectionCut { client }
    }
}

impl MitigationAction for ConnectionCut {
    fn name(&self) -> &'static str {
        MitigationKind::Disconnect.name()
    }

    fn performs(&self, action: Action) -> bool {
        MitigationKind::Disconnect.performs(action)
    }

    fn apply<'a>(
        &'a self,
        _action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_connection()
                .client_id(thing.as_str())
                // A quarantined device's last will is its own word: not published on a cut.
                .prevent_will_message(true)
                .send()
                .await;
            match result {
                Ok(_) => Ok(Applied::Done),
                Err(e) => match classify("DeleteConnection", thing.as_str(), e) {
                    not_connected if not_connected.code == "ResourceNotFoundException" => {
                        tracing::info!(thing = %thing, "client not connected: nothing to cut");
                        Ok(Applied::Done)
                    }
                    other => Err(other),
                },
            }
        })
    }
}
