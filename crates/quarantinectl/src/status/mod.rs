//! `status`: what the quarantine looks like for each thing, read from the registry, the
//! shadow, the data plane's connection and Device Defender. Every part is read on its own:
//! one that cannot be read (an API the account or an emulator lacks, a missing permission)
//! is reported unknown with the reason, never guessed, and the others are still shown.
//!
//! - [`read`]: each part, read with the SDK clients;
//! - [`render`]: the statuses as JSON lines or a table.

mod read;
mod render;

use aws_config::SdkConfig;
use mitigation::FunctionConfig;
use mitigation::certificates::CertStatus;
use serde_json::Value;
use violation_core::{CertificateId, ThingName};

use crate::act::Failure;
use read::Clients;

/// A part of the status: its value, or why it could not be read.
type Known<T> = Result<T, String>;

/// What the status is read against, as the header and the JSON name it.
struct Names {
    group: String,
    shadow_name: Option<String>,
    attribute: String,
}

#[derive(Debug, Clone)]
struct Connection {
    connected: bool,
    details: Value,
}

#[derive(Debug, Clone)]
struct Shadow {
    /// False when the thing has no such shadow.
    exists: bool,
    desired: Value,
    reported: Value,
}

#[derive(Debug, Clone)]
struct Certificate {
    id: CertificateId,
    status: Known<Option<CertStatus>>,
}

struct ThingStatus {
    thing: ThingName,
    /// DescribeThing: registered or not, and the certificates the quarantine recorded.
    registry: Known<Option<Vec<CertificateId>>>,
    in_group: Known<bool>,
    shadow: Known<Shadow>,
    connection: Known<Connection>,
    certificates: Known<Vec<Certificate>>,
    violations: Known<Vec<Value>>,
    /// The active causes in the ledger, over every function (`--ledger-table`); `None`
    /// without a ledger.
    causes: Option<Known<Vec<String>>>,
}

pub async fn run(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    things: &[ThingName],
    json_output: bool,
) -> Result<(), Failure> {
    let names = Names {
        group: config.quarantine_group.clone(),
        shadow_name: config.shadow_name.clone(),
        attribute: config.certificate_record_attribute.clone(),
    };
    let clients = Clients::new(sdk, config.iot_data_endpoint.as_deref(), names)
        .await
        .with_ledger(sdk, config.ledger_table.as_deref());
    let statuses: Vec<ThingStatus> =
        futures::future::join_all(things.iter().map(|t| clients.read(t))).await;
    if json_output {
        for s in &statuses {
            println!("{}", s.to_json(&clients.names));
        }
    } else {
        print!("{}", render::table(&statuses, &clients.names));
    }
    let missing: Vec<String> = statuses
        .iter()
        .filter(|s| matches!(s.registry, Ok(None)))
        .map(|s| s.thing.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "not registered: {}",
            missing.join(", ")
        )))
    }
}
