//! `status`: what the quarantine looks like for each thing, read from the registry, the
//! shadow, the data plane's connection and Device Defender. Every part is read on its own:
//! one that cannot be read (an API the account or an emulator lacks, a missing permission)
//! is reported unknown with the reason, never guessed, and the others are still shown.

use aws_config::SdkConfig;
use aws_sdk_iot::operation::list_active_violations::ListActiveViolationsOutput;
use aws_sdk_iot::operation::list_thing_groups_for_thing::ListThingGroupsForThingOutput;
use aws_sdk_iot::primitives::{DateTime, DateTimeFormat};
use aws_sdk_iot::types::ActiveViolation;
use mitigation::certificates::{
    AttachedCertificate, CertStatus, CertificateRegistry, parse_record,
};
use mitigation::{ActionError, FunctionConfig};
use mitigation_aws::adapters::{
    data_plane_client, data_plane_endpoint_configured, describe_data_endpoint,
};
use mitigation_aws::certificates::IotCertificates;
use mitigation_aws::classify;
use serde_json::{Map, Value, json};
use violation_core::{CertificateId, ThingName};

use crate::act::Failure;

/// A part of the status: its value, or why it could not be read.
type Known<T> = Result<T, String>;

/// Pages read at most when listing groups or violations.
const MAX_PAGES: usize = 10;

struct Clients {
    iot: aws_sdk_iot::Client,
    data: Known<aws_sdk_iotdataplane::Client>,
    certificates: IotCertificates,
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

pub async fn run(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    things: &[ThingName],
    json_output: bool,
) -> Result<(), Failure> {
    let iot = aws_sdk_iot::Client::new(sdk);
    let data = match &config.iot_data_endpoint {
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
    let clients = Clients {
        certificates: IotCertificates::new(iot.clone()),
        iot,
        data,
        group: config.quarantine_group.clone(),
        shadow_name: config.shadow_name.clone(),
        attribute: config.certificate_record_attribute.clone(),
    };
    let statuses: Vec<ThingStatus> =
        futures::future::join_all(things.iter().map(|t| clients.read(t))).await;
    if json_output {
        for s in &statuses {
            println!("{}", s.to_json(&clients));
        }
    } else {
        print!("{}", table(&statuses, &clients));
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

impl Clients {
    async fn read(&self, thing: &ThingName) -> ThingStatus {
        let (registry, in_group, shadow, connection, certificates, violations) = futures::join!(
            self.registry(thing),
            self.in_group(thing),
            self.shadow(thing),
            self.connection(thing),
            self.certificates(thing),
            self.violations(thing),
        );
        ThingStatus {
            thing: thing.clone(),
            registry,
            in_group,
            shadow,
            connection,
            certificates,
            violations,
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
                    .and_then(|a| a.get(&self.attribute))
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
        let walk = walk_pages(
            |token| async move {
                self.iot
                    .list_thing_groups_for_thing()
                    .thing_name(thing.as_str())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| unknown(classify("ListThingGroupsForThing", thing.as_str(), e)))
            },
            ListThingGroupsForThingOutput::next_token,
            |page| {
                page.thing_groups()
                    .iter()
                    .any(|g| g.group_name() == Some(self.group.as_str()))
            },
        )
        .await?;
        match walk {
            Walk::Stopped => Ok(true),
            Walk::Ended => Ok(false),
            Walk::PageLimit => Err(format!(
                "ListThingGroupsForThing: more than {MAX_PAGES} pages of groups"
            )),
        }
    }

    async fn shadow(&self, thing: &ThingName) -> Known<Shadow> {
        let data = self.data.as_ref().map_err(String::clone)?;
        let result = data
            .get_thing_shadow()
            .thing_name(thing.as_str())
            .set_shadow_name(self.shadow_name.clone())
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
        walk_pages(
            |token| async move {
                self.iot
                    .list_active_violations()
                    .thing_name(thing.as_str())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| unknown(classify("ListActiveViolations", thing.as_str(), e)))
            },
            ListActiveViolationsOutput::next_token,
            |page| {
                violations.extend(page.active_violations().iter().map(violation_json));
                false
            },
        )
        .await?;
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

/// How a walk through the pages of a listing ended.
enum Walk {
    /// `visit` found what it looked for.
    Stopped,
    /// The last page was read.
    Ended,
    /// MAX_PAGES pages were read and there were more.
    PageLimit,
}

/// Reads a listing page by page, at most MAX_PAGES, handing each page to `visit` until it
/// answers true.
async fn walk_pages<P, Fut>(
    mut fetch: impl FnMut(Option<String>) -> Fut,
    next_token: impl Fn(&P) -> Option<&str>,
    mut visit: impl FnMut(&P) -> bool,
) -> Known<Walk>
where
    Fut: Future<Output = Known<P>>,
{
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = fetch(token.take()).await?;
        if visit(&page) {
            return Ok(Walk::Stopped);
        }
        match next_token(&page) {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(Walk::Ended),
        }
    }
    Ok(Walk::PageLimit)
}

fn date(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

impl ThingStatus {
    /// The certificate ids the quarantine recorded as deactivated; none when unknown.
    fn recorded(&self) -> &[CertificateId] {
        match &self.registry {
            Ok(Some(ids)) => ids,
            _ => &[],
        }
    }

    fn to_json(&self, clients: &Clients) -> Value {
        let mut parts = JsonParts::default();
        let registered = parts.known("registered", &self.registry, |r| Value::from(r.is_some()));
        let recorded = parts.known("certificateRecord", &self.registry, |r| {
            r.as_ref().map_or(Value::Null, |ids| {
                ids.iter().map(|i| Value::from(i.as_str())).collect()
            })
        });
        let in_group = parts.known("inQuarantineGroup", &self.in_group, |b| Value::from(*b));
        let shadow_desired = parts.known("shadowQuarantine", &self.shadow, |s| s.desired.clone());
        let shadow_reported = parts.known("shadowReportedQuarantine", &self.shadow, |s| {
            s.reported.clone()
        });
        let shadow_exists = parts.known("shadowExists", &self.shadow, |s| Value::from(s.exists));
        let connected = parts.known("connected", &self.connection, |c| Value::from(c.connected));
        let connection = self
            .connection
            .as_ref()
            .map_or(Value::Null, |c| c.details.clone());
        let certificates = parts.known("certificates", &self.certificates, |certs| {
            certs.iter().map(|c| c.to_json(self.recorded())).collect()
        });
        let violations = parts.known("activeViolations", &self.violations, |v| {
            Value::from(v.clone())
        });
        json!({
            "thingName": self.thing.as_str(),
            "registered": registered,
            "quarantineGroup": clients.group,
            "inQuarantineGroup": in_group,
            "shadowName": clients.shadow_name,
            "shadowExists": shadow_exists,
            "shadowQuarantine": shadow_desired,
            "shadowReportedQuarantine": shadow_reported,
            "connected": connected,
            "connection": connection,
            "certificates": certificates,
            "certificateRecordAttribute": clients.attribute,
            "certificateRecord": recorded,
            "activeViolations": violations,
            "unknown": parts.unknown,
        })
    }

    /// The table row of this thing; unknown cells are noted in `notes`.
    fn row(&self, notes: &mut Notes) -> Vec<String> {
        let t = &self.thing;
        let registered = match &self.registry {
            Ok(None) => " (not registered)",
            _ => "",
        };
        let in_group = notes.cell(
            self.in_group.as_ref().map(|b| yes_no(*b)),
            "quarantine group",
            t,
        );
        let shadow = notes.cell(self.shadow.as_ref().map(Shadow::cell), "shadow", t);
        let connected = notes.cell(
            self.connection.as_ref().map(|c| yes_no(c.connected)),
            "connection",
            t,
        );
        let certificates = notes.cell(
            self.certificates
                .as_ref()
                .map(|certs| certificates_cell(certs, self.recorded())),
            "certificates",
            t,
        );
        let violations = notes.cell(
            self.violations.as_ref().map(|v| violations_cell(v)),
            "active violations",
            t,
        );
        vec![
            format!("{t}{registered}"),
            in_group,
            shadow,
            connected,
            certificates,
            violations,
        ]
    }
}

/// The parts of a status's JSON: a part that could not be read is null, with the reason
/// under `unknown`.
#[derive(Default)]
struct JsonParts {
    unknown: Map<String, Value>,
}

impl JsonParts {
    fn known<T>(&mut self, field: &str, part: &Known<T>, value: impl FnOnce(&T) -> Value) -> Value {
        match part {
            Ok(v) => value(v),
            Err(reason) => {
                self.unknown
                    .insert(field.to_owned(), Value::from(reason.as_str()));
                Value::Null
            }
        }
    }
}

impl Certificate {
    /// The status as shown (`NOT_FOUND` when IoT does not know the certificate), or why it
    /// is unknown.
    fn status_text(&self) -> Result<String, &String> {
        self.status.as_ref().map(|s| {
            s.as_ref()
                .map_or_else(|| "NOT_FOUND".to_owned(), CertStatus::to_string)
        })
    }

    fn to_json(&self, recorded: &[CertificateId]) -> Value {
        let (status, reason) = match self.status_text() {
            Ok(text) => (Value::from(text), None),
            Err(reason) => (Value::Null, Some(reason.clone())),
        };
        let mut cert = json!({
            "certificateId": self.id.as_str(),
            "status": status,
            "deactivatedByQuarantine": recorded.contains(&self.id),
        });
        if let (Some(reason), Some(map)) = (reason, cert.as_object_mut()) {
            map.insert("unknown".into(), Value::from(reason));
        }
        cert
    }
}

impl Shadow {
    fn cell(&self) -> String {
        if self.exists {
            format!("{}/{}", flag(&self.desired), flag(&self.reported))
        } else {
            "no shadow".to_owned()
        }
    }
}

/// The reasons of the table's unknown cells, numbered from 1.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    /// The cell's text, or `unknown [n]` pointing to a new note with the reason.
    fn cell(&mut self, part: Result<String, &String>, what: &str, thing: &ThingName) -> String {
        match part {
            Ok(text) => text,
            Err(reason) => {
                self.0.push(format!("{thing} {what}: {reason}"));
                format!("unknown [{}]", self.0.len())
            }
        }
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn certificates_cell(certs: &[Certificate], recorded: &[CertificateId]) -> String {
    if certs.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = certs
        .iter()
        .map(|c| {
            let status = c.status_text().unwrap_or_else(|_| "unknown".to_owned());
            let mark = if recorded.contains(&c.id) { "*" } else { "" };
            format!("{}… {status}{mark}", &c.id.as_str()[..8])
        })
        .collect();
    parts.join(", ")
}

fn violations_cell(violations: &[Value]) -> String {
    if violations.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<String> = violations
        .iter()
        .map(|x| {
            x["behaviorName"]
                .as_str()
                .or(x["violationId"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    names.join(", ")
}

/// A table, one row per thing; unknown cells point to a numbered note with the reason.
fn table(statuses: &[ThingStatus], clients: &Clients) -> String {
    let mut notes = Notes::default();
    let mut rows = vec![header(clients)];
    rows.extend(statuses.iter().map(|s| s.row(&mut notes)));
    let mut out = align(&rows);
    for (i, note) in notes.0.iter().enumerate() {
        out.push_str(&format!("[{}] {note}\n", i + 1));
    }
    out
}

fn header(clients: &Clients) -> Vec<String> {
    let shadow_label = clients
        .shadow_name
        .as_deref()
        .map_or("SHADOW".to_owned(), |n| format!("SHADOW {n}"));
    vec![
        "THING".to_owned(),
        format!("IN {}", clients.group),
        format!("{shadow_label} (desired/reported)"),
        "CONNECTED".to_owned(),
        "CERTIFICATES (* deactivated by the quarantine)".to_owned(),
        "ACTIVE VIOLATIONS".to_owned(),
    ]
}

/// The rows as lines of left-aligned columns two spaces apart.
fn align(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A shadow flag: its JSON value, `-` when absent.
fn flag(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A page of a listing of `pages` pages: its number and the token of the next.
    struct FakePage {
        number: usize,
        next: String,
    }

    impl FakePage {
        fn next_token(&self) -> Option<&str> {
            Some(&self.next)
        }
    }

    /// Walks a listing of `pages` pages, stopping at page `stop_at`; how the walk ended and
    /// the numbers of the pages visited.
    fn walk(pages: usize, stop_at: Option<usize>) -> (Known<Walk>, Vec<usize>) {
        let mut seen = Vec::new();
        let walk = futures::executor::block_on(walk_pages(
            |token: Option<String>| async move {
                let number = token.map_or(0, |t| t.parse::<usize>().unwrap());
                let next = if number + 1 < pages {
                    (number + 1).to_string()
                } else {
                    String::new()
                };
                Ok(FakePage { number, next })
            },
            FakePage::next_token,
            |page| {
                seen.push(page.number);
                stop_at == Some(page.number)
            },
        ));
        (walk, seen)
    }

    #[test]
    fn walk_pages_ends_on_an_empty_token() {
        let (walk, seen) = walk(3, None);
        assert!(matches!(walk, Ok(Walk::Ended)));
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    fn walk_pages_stops_when_visit_finds() {
        let (walk, seen) = walk(5, Some(1));
        assert!(matches!(walk, Ok(Walk::Stopped)));
        assert_eq!(seen, [0, 1]);
    }

    #[test]
    fn walk_pages_reads_at_most_max_pages() {
        let (walk, seen) = walk(MAX_PAGES + 1, None);
        assert!(matches!(walk, Ok(Walk::PageLimit)));
        assert_eq!(seen.len(), MAX_PAGES);
    }

    #[test]
    fn walk_pages_passes_a_failed_page_on() {
        let walk = futures::executor::block_on(walk_pages(
            |_token| async { Err::<usize, _>("ListThings: denied".to_owned()) },
            |_: &usize| None,
            |_| panic!("no page to visit"),
        ));
        assert!(matches!(walk, Err(reason) if reason == "ListThings: denied"));
    }
}
