//! A thing's status as a JSON line, or a row of the table with numbered notes for the parts
//! that could not be read.

use serde_json::{Map, Value, json};
use violation_core::{CertificateId, ThingName};

use super::{CertStatus, Certificate, Known, Names, Shadow, ThingStatus};

impl ThingStatus {
    /// The certificate ids the quarantine recorded as deactivated; none when unknown.
    fn recorded(&self) -> &[CertificateId] {
        match &self.registry {
            Ok(Some(ids)) => ids,
            _ => &[],
        }
    }

    pub(super) fn to_json(&self, names: &Names) -> Value {
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
        let causes = match &self.causes {
            None => Value::Null,
            Some(causes) => parts.known("causes", causes, |c| Value::from(c.clone())),
        };
        json!({
            "thingName": self.thing.as_str(),
            "causes": causes,
            "registered": registered,
            "quarantineGroup": names.group,
            "inQuarantineGroup": in_group,
            "shadowName": names.shadow_name,
            "shadowExists": shadow_exists,
            "shadowQuarantine": shadow_desired,
            "shadowReportedQuarantine": shadow_reported,
            "shadowWrittenBy": "device: reported always, desired too under the Restricted quarantine policy",
            "connected": connected,
            "connection": connection,
            "certificates": certificates,
            "certificateRecordAttribute": names.attribute,
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
        let mut row = vec![
            format!("{t}{registered}"),
            in_group,
            shadow,
            connected,
            certificates,
            violations,
        ];
        if let Some(causes) = &self.causes {
            let cell = causes.as_ref().map(|c| {
                if c.is_empty() {
                    "none".to_owned()
                } else {
                    c.join("; ")
                }
            });
            row.push(notes.cell(cell, "causes", t));
        }
        row
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
pub(super) fn table(statuses: &[ThingStatus], names: &Names) -> String {
    let mut notes = Notes::default();
    let mut header = header(names);
    if statuses.iter().any(|s| s.causes.is_some()) {
        header.push("CAUSES (ledger)".to_owned());
    }
    let mut rows = vec![header];
    rows.extend(statuses.iter().map(|s| s.row(&mut notes)));
    let mut out = align(&rows);
    for (i, note) in notes.0.iter().enumerate() {
        out.push_str(&format!("[{}] {note}\n", i + 1));
    }
    out.push_str(SHADOW_LEGEND);
    out.push('\n');
    out
}

/// Whose word the shadow columns are: the device writes `reported`, and under the
/// `Restricted` quarantine policy it can write `desired` too.
const SHADOW_LEGEND: &str = "The shadow is the device's word: it writes reported, and under the Restricted quarantine policy it can write desired too (Strict denies it). What contains it is the group membership.";

fn header(names: &Names) -> Vec<String> {
    let shadow_label = names
        .shadow_name
        .as_deref()
        .map_or("SHADOW".to_owned(), |n| format!("SHADOW {n}"));
    vec![
        "THING".to_owned(),
        format!("IN {}", names.group),
        format!("{shadow_label} (desired/reported by the device)"),
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
    use super::*;
    use crate::status::Connection;

    fn names() -> Names {
        Names {
            group: "Quarantine".into(),
            shadow_name: None,
            attribute: "quarantineDeactivatedCerts".into(),
        }
    }

    /// A quarantined thing with two certificates, one recorded; its shadow unreadable.
    fn status() -> ThingStatus {
        let id = |n: u64| CertificateId::parse(&format!("{:064x}", 0xabc0 + n)).unwrap();
        ThingStatus {
            thing: ThingName::parse("dev-1").unwrap(),
            registry: Ok(Some(vec![id(1)])),
            in_group: Ok(true),
            shadow: Err("GetThingShadow: denied".into()),
            connection: Ok(Connection {
                connected: false,
                details: json!({"clientId": "dev-1"}),
            }),
            certificates: Ok(vec![
                Certificate {
                    id: id(1),
                    status: Ok(Some(CertStatus::Inactive)),
                },
                Certificate {
                    id: id(2),
                    status: Ok(None),
                },
            ]),
            violations: Ok(vec![json!({"behaviorName": "MessagesSent"})]),
            causes: None,
        }
    }

    #[test]
    fn with_the_ledger_the_causes_are_a_last_column_and_a_json_list() {
        let with_causes = ThingStatus {
            causes: Some(Ok(vec!["v-1 (detect-violation: group, shadow)".into()])),
            ..status()
        };
        let text = table(&[with_causes], &names());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("CAUSES (ledger)"), "{text}");
        assert!(
            lines[1].ends_with("v-1 (detect-violation: group, shadow)"),
            "{text}"
        );
        let unreadable = ThingStatus {
            causes: Some(Err("GetItem: denied".into())),
            ..status()
        };
        let v = unreadable.to_json(&names());
        assert_eq!(v["causes"], Value::Null);
        assert_eq!(v["unknown"]["causes"], "GetItem: denied");
        assert_eq!(status().to_json(&names())["causes"], Value::Null);
    }

    #[test]
    fn the_table_numbers_each_unknown_part_with_its_reason() {
        let text = table(&[status()], &names());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("THING  IN Quarantine  SHADOW (desired/reported by the device)")
        );
        assert!(
            lines[3].starts_with("The shadow is the device's word"),
            "{text}"
        );
        assert!(lines[1].starts_with("dev-1  yes"), "{text}");
        assert!(lines[1].contains("unknown [1]"), "{text}");
        assert!(
            lines[1].contains("00000000… INACTIVE*, 00000000… NOT_FOUND"),
            "{text}"
        );
        assert!(lines[1].ends_with("MessagesSent"), "{text}");
        assert_eq!(lines[2], "[1] dev-1 shadow: GetThingShadow: denied");
    }

    #[test]
    fn json_leaves_an_unknown_part_null_and_says_why() {
        let v = status().to_json(&names());
        assert_eq!(v["shadowQuarantine"], Value::Null);
        assert!(
            v["shadowWrittenBy"]
                .as_str()
                .is_some_and(|w| w.starts_with("device"))
        );
        assert_eq!(v["unknown"]["shadowQuarantine"], "GetThingShadow: denied");
        assert_eq!(v["inQuarantineGroup"], true);
        assert_eq!(v["certificates"][0]["deactivatedByQuarantine"], true);
        assert_eq!(v["certificates"][1]["status"], "NOT_FOUND");
        assert_eq!(v["certificateRecord"].as_array().map(Vec::len), Some(1));
    }
}
