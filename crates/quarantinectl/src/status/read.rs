//! Each part of a thing's status, read with the SDK clients on its own.

use std::ops::ControlFlow;

use aws_config::SdkConfig;
use aws_sdk_iot::primitives::{DateTime, DateTimeFormat};
use aws_sdk_iot::types::ActiveViolation;
use mitigation::ActionError;
use mitigation::certificates::{AttachedCertificate, CertificateRegistry, parse_record};
use mitigation_aws::certificates::IotCertificates;
use mitigation_aws::classify;
use mitigation_aws::paging::read_pages;
use mitigation_aws::sdk::{
    data_plane_client, data_plane_endpoint_configured, describe_data_endpoint,
};
use serde_json::{Value, json};
use violation_core::{CertificateId, ThingName};

use super::{Certificate, Connection, Known, Names, Shadow, ThingStatus};

/// The clients a status is read with.
pub(super) struct Clients {
    iot: aws_sdk_iot::Client,
    data: Known<aws_sdk_iotdataplane::Client>,
    certificates: IotCertificates,
    ledger: Option<mitigation_aws::ledger::DynamoLedger>,
    pub(super) names: Names,
}

/// The reason a part is unknown: the error, and a word when the endpoint seems to lack the
/// API altogether (moto answers 404 or 500 without an AWS error code).
fn unknown(e: ActionError) -> String {
    let mut reason = e.to_string();
    if e.code == "Unknown" {
        reason.push_str(&format!(
            " (no AWS error code: the endpoint may not implement {}, as emulators such as moto do not)",
            e.operation
        ));
    }
    reason
}

/// Pages read at most when listing groups or violations.
const MAX_PAGES: usize = 10;

impl Clients {
    /// The IoT client, and the data-plane client on the configured endpoint or the one
    /// DescribeEndpoint answers (unknown, with the reason, when neither is there).
    pub(super) async fn new(sdk: &SdkConfig, data_endpoint: Option<&str>, names: Names) -> Self {
        let iot = aws_sdk_iot::Client::new(sdk);
        let data = match data_endpoint {
            Some(endpoint) => Ok(data_plane_client(sdk, Some(endpoint))),
            None if data_plane_endpoint_configured(sdk) => Ok(data_plane_client(sdk, None)),
            None => match describe_data_endpoint(&iot).await {
                Ok(endpoint) => Ok(data_plane_client(sdk, Some(&endpoint))),
                Err(e) => Err(format!(
                    "the data-plane endpoint is unknown: {} (set IOT_DATA_ENDPOINT or --iot-data-endpoint)",
                    unknown(e)
                )),
            },
        };
        Clients {
            certificates: IotCertificates::new(iot.clone()),
            iot,
            data,
            ledger: None,
            names,
        }
    }

    /// Read the causes from the quarantine ledger `table` too.
    pub(super) fn with_ledger(mut self, sdk: &SdkConfig, table: Option<&str>) -> Self {
        self.ledger = table.map(|t| {
            mitigation_aws::ledger::DynamoLedger::new(aws_sdk_dynamodb::Client::new(sdk), t)
        });
        self
    }

    /// Every function's active causes, each as `id (source, by sender: function, ...)`.
    async fn causes(&self, thing: &ThingName) -> Option<Known<Vec<String>>> {
        use mitigation::FunctionKind;
        use mitigation::ledger::Ledger;
        let ledger = self.ledger.as_ref()?;
        let mut causes: std::collections::BTreeMap<String, (String, Vec<&str>)> =
            std::collections::BTreeMap::new();
        for function in [
            FunctionKind::ThingGroup,
            FunctionKind::Shadow,
            FunctionKind::Certificate,
        ] {
            let state = match ledger.read(thing, function).await {
                Ok(state) => state,
                Err(e) => return Some(Err(unknown(e))),
            };
            for (id, cause) in state.causes {
                let sender = if cause.sender.is_empty() {
                    String::new()
                } else {
                    format!(", by {}", cause.sender)
                };
                causes
                    .entry(id)
                    .or_insert_with(|| (format!("{}{sender}", cause.kind), Vec::new()))
                    .1
                    .push(function.ledger_name());
            }
        }
        Some(Ok(causes
            .into_iter()
            .map(|(id, (what, functions))| format!("{id} ({what}: {})", functions.join(", ")))
            .collect()))
    }

    pub(super) async fn read(&self, thing: &ThingName) -> ThingStatus {
        let (registry, in_group, shadow, connection, certificates, violations, causes) = futures::join!(
            self.registry(thing),
            self.in_group(thing),
            self.shadow(thing),
            self.connection(thing),
            self.certificates(thing),
            self.violations(thing),
            self.causes(thing),
        );
        ThingStatus {
            thing: thing.clone(),
            registry,
            in_group,
            shadow,
            connection,
            certificates,
            violations,
            causes,
        }
    }

    /// `None` when the thing is not registered; else the recorded certificate ids.
    async fn registry(&self, thing: &ThingName) -> Known<Option<Vec<CertificateId>>> {
        match self
            .iot
            .describe_thing()
            .thing_name(thing.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.attributes()
                    .and_then(|a| a.get(&self.names.attribute))
                    .map(|v| parse_record(v).0)
                    .unwrap_or_default(),
            )),
            Err(e) => match classify("DescribeThing", thing.as_str(), e) {
                e if e.code == "ResourceNotFoundException" => Ok(None),
                e => Err(unknown(e)),
            },
        }
    }

    async fn in_group(&self, thing: &ThingName) -> Known<bool> {
        let mut pages = self
            .iot
            .list_thing_groups_for_thing()
            .thing_name(thing.as_str())
            .into_paginator()
            .send();
        let operation = "ListThingGroupsForThing";
        for _ in 0..MAX_PAGES {
            let Some(page) = pages.next().await else {
                return Ok(false);
            };
            let page = page.map_err(|e| unknown(classify(operation, thing.as_str(), e)))?;
            let group = Some(self.names.group.as_str());
            if page.thing_groups().iter().any(|g| g.group_name() == group) {
                return Ok(true);
            }
        }
        // Past the limit, only a page that is there leaves the answer unknown.
        match pages.next().await {
            None => Ok(false),
            Some(_) => Err(format!(
                "{operation}: more than {MAX_PAGES} pages of groups"
            )),
        }
    }

    async fn shadow(&self, thing: &ThingName) -> Known<Shadow> {
        let data = self.data.as_ref().map_err(String::clone)?;
        let result = data
            .get_thing_shadow()
            .thing_name(thing.as_str())
            .set_shadow_name(self.names.shadow_name.clone())
            .send()
            .await;
        match result {
            Ok(out) => {
                let bytes = out.payload().map_or(&b"{}"[..], |b| b.as_ref());
                let doc: Value = serde_json::from_slice(bytes)
                    .map_err(|e| format!("GetThingShadow: the shadow document is not JSON: {e}"))?;
                Ok(Shadow {
                    exists: true,
                    desired: doc["state"]["desired"]["quarantine"].clone(),
                    reported: doc["state"]["reported"]["quarantine"].clone(),
                })
            }
            Err(e) => match classify("GetThingShadow", thing.as_str(), e) {
                e if e.code == "ResourceNotFoundException" => Ok(Shadow {
                    exists: false,
                    desired: Value::Null,
                    reported: Value::Null,
                }),
                e => Err(unknown(e)),
            },
        }
    }

    async fn connection(&self, thing: &ThingName) -> Known<Connection> {
        let data = self.data.as_ref().map_err(String::clone)?;
        let out = match data.get_connection().client_id(thing.as_str()).send().await {
            Ok(out) => out,
            Err(e) => {
                return match classify("GetConnection", thing.as_str(), e) {
                    // The data plane knows no connection or session for the client id, as
                    // DeleteConnection answers for a client that is not connected.
                    e if e.code == "ResourceNotFoundException" => Ok(Connection {
                        connected: false,
                        details: json!({
                            "clientId": thing.as_str(),
                            "note": "no connection or session known for this client id (ResourceNotFoundException)",
                        }),
                    }),
                    e => Err(unknown(e)),
                };
            }
        };
        let time = |epoch_ms: i64| {
            (epoch_ms > 0)
                .then(|| date(&DateTime::from_millis(epoch_ms)))
                .map_or(Value::Null, Value::from)
        };
        Ok(Connection {
            connected: out.connected(),
            details: json!({
                "clientId": out.client_id().unwrap_or(thing.as_str()),
                "connectedSince": time(out.connected_since()),
                "disconnectedSince": time(out.disconnected_since()),
                "disconnectReason": out.disconnect_reason(),
                "sourceIp": out.source_ip(),
                "cleanSession": out.clean_session(),
            }),
        })
    }

    async fn certificates(&self, thing: &ThingName) -> Known<Vec<Certificate>> {
        let attached: Vec<AttachedCertificate> = self
            .certificates
            .thing_certificates(thing)
            .await
            .map_err(unknown)?;
        let statuses =
            futures::future::join_all(attached.iter().map(|c| self.certificates.status(&c.id)))
                .await;
        Ok(attached
            .into_iter()
            .zip(statuses)
            .map(|(c, status)| Certificate {
                id: c.id,
                status: status.map_err(unknown),
            })
            .collect())
    }

    /// The active violations, from at most MAX_PAGES pages.
    async fn violations(&self, thing: &ThingName) -> Known<Vec<Value>> {
        let mut violations = Vec::new();
        let pages = self
            .iot
            .list_active_violations()
            .thing_name(thing.as_str())
            .into_paginator()
            .send();
        read_pages(
            pages,
            MAX_PAGES,
            "ListActiveViolations",
            thing.as_str(),
            |page| {
                violations.extend(page.active_violations().iter().map(violation_json));
                ControlFlow::Continue(())
            },
        )
        .await
        .map_err(unknown)?;
        Ok(violations)
    }
}

fn violation_json(v: &ActiveViolation) -> Value {
    json!({
        "violationId": v.violation_id(),
        "securityProfileName": v.security_profile_name(),
        "behaviorName": v.behavior().map(|b| b.name()),
        "metric": v.behavior().and_then(|b| b.metric()),
        "violationStartTime": v.violation_start_time().map(date),
    })
}

fn date(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}
