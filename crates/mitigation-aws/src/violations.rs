//! A thing's active Device Defender violations (ListActiveViolations), consulted before a
//! release and to verify a Detect alarm.

use futures::future::BoxFuture;
use mitigation::{ActionError, ActiveViolations};
use violation_core::ThingName;

use crate::errors::classify;

/// ListActiveViolations for one thing.
pub struct DeviceDefenderViolations {
    client: aws_sdk_iot::Client,
}

impl DeviceDefenderViolations {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        DeviceDefenderViolations { client }
    }
}

/// Pages read before giving up on listing; a thing with more active violations than this
/// stays quarantined anyway.
const MAX_VIOLATION_PAGES: usize = 10;

impl ActiveViolations for DeviceDefenderViolations {
    fn active_violation_ids<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            let mut pages = self
                .client
                .list_active_violations()
                .thing_name(thing.as_str())
                .into_paginator()
                .send();
            for _ in 0..MAX_VIOLATION_PAGES {
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| classify("ListActiveViolations", thing.as_str(), e))?;
                ids.extend(
                    page.active_violations()
                        .iter()
                        .map(|v| v.violation_id().unwrap_or("(no id)").to_owned()),
                );
            }
            Ok(ids)
        })
    }
}
