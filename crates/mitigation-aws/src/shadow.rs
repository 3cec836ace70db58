//! The shadow mitigation: the desired `quarantine` flag in the thing's (named) shadow.

use aws_sdk_iotdataplane::primitives::Blob;
use futures::future::BoxFuture;
use mitigation::{ActionError, Applied, MitigationAction, MitigationKind};
use violation_core::{Action, ThingName};

use crate::errors::classify;

/// The shadow document that tells the device it is quarantined (or no longer).
pub fn shadow_document(action: Action) -> &'static [u8] {
    match action {
        Action::Quarantine => br#"{"state":{"desired":{"quarantine":true}}}"#,
        Action::Release => br#"{"state":{"desired":{"quarantine":false}}}"#,
    }
}

/// Quarantine = desired `quarantine: true` in the thing's shadow, release = `false`.
pub struct ShadowFlag {
    client: aws_sdk_iotdataplane::Client,
    shadow_name: Option<String>,
}

impl ShadowFlag {
    pub fn new(client: aws_sdk_iotdataplane::Client, shadow_name: Option<String>) -> Self {
        ShadowFlag {
            client,
            shadow_name,
        }
    }
}

impl MitigationAction for ShadowFlag {
    fn name(&self) -> &'static str {
        MitigationKind::Shadow.name()
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            self.client
                .update_thing_shadow()
                .thing_name(thing.as_str())
                .set_shadow_name(self.shadow_name.clone())
                .payload(Blob::new(shadow_document(action)))
                .send()
                .await
                .map(|_| Applied::Done)
                .map_err(|e| classify("UpdateThingShadow", thing.as_str(), e))
        })
    }
}
