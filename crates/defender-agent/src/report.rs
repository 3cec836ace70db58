//! The Device Defender metrics report (AWS's "device metrics document", version 1.0), with the
//! short names the AWS agents send, and its JSON and CBOR encodings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Format;

pub const REPORT_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub hed: Header,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<Metrics>,
    /// Custom metrics; each value is a one-element array (AWS rejects anything else).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cmet: BTreeMap<String, [CustomValue; 1]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Report id: unique and increasing for the thing, across restarts.
    pub rid: u64,
    pub v: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Listening TCP ports.
    pub tp: PortList,
    /// Listening UDP ports.
    pub up: PortList,
    /// Network traffic since the previous report; absent from the first report after start-up,
    /// when there is no previous sample (a total since boot would look like a traffic spike).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns: Option<NetworkStats>,
    /// Established TCP connections.
    pub tc: TcpConnections,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortList {
    pub pts: Vec<Port>,
    pub t: u64,
}

impl PortList {
    pub fn new(pts: Vec<Port>) -> Self {
        PortList {
            t: pts.len() as u64,
            pts,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Port {
    pub pt: u16,
    /// Interface name; absent when the socket listens on every interface.
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub bi: u64,
    pub bo: u64,
    pub pi: u64,
    pub po: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpConnections {
    pub ec: ConnectionList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionList {
    pub cs: Vec<Connection>,
    pub t: u64,
}

impl ConnectionList {
    pub fn new(cs: Vec<Connection>) -> Self {
        ConnectionList {
            t: cs.len() as u64,
            cs,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Connection {
    /// Remote address `ip:port` (`[ip]:port` for IPv6).
    pub rad: String,
    pub lp: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub li: Option<String>,
}

/// A custom metric value of one of the spec's kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomValue {
    Number(Number),
    NumberList(Vec<Number>),
    StringList(Vec<String>),
    IpList(Vec<String>),
}

/// A number that keeps integers integral on the wire (`2`, not `2.0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn parse(s: &str) -> Option<Number> {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Number::Int(i));
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot encode the report as CBOR: {0}")]
    Cbor(String),
    #[error(
        "report {rid} is {bytes} bytes even without port and connection lists (custom metrics too large?); at most {limit} fit in one message"
    )]
    TooLarge {
        rid: u64,
        bytes: usize,
        limit: usize,
    },
}

impl Report {
    pub fn new(rid: u64, met: Option<Metrics>, cmet: BTreeMap<String, [CustomValue; 1]>) -> Self {
        Report {
            hed: Header {
                rid,
                v: REPORT_VERSION.to_owned(),
            },
            met,
            cmet,
        }
    }

    /// Keeps at most `max` entries in each list of ports and connections; the totals (`t`) still
    /// count them all.
    pub fn truncate_lists(&mut self, max: usize) {
        if let Some(met) = &mut self.met {
            met.tp.pts.truncate(max);
            met.up.pts.truncate(max);
            met.tc.ec.cs.truncate(max);
        }
    }

    /// Encodes the report in at most `limit` bytes: an oversized MQTT message would be refused
    /// (and re-sent by a persistent session after every reconnection), so the lists are shortened
    /// until the report fits. Returns the payload and, if lists were shortened, their new length.
    pub fn encode_within(
        &mut self,
        format: Format,
        long_names: bool,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<usize>), EncodeError> {
        let mut payload = self.encode(format, long_names)?;
        let mut truncated = None;
        let mut max_items = 1024;
        while payload.len() > limit && max_items > 0 {
            max_items /= 2;
            self.truncate_lists(max_items);
            payload = self.encode(format, long_names)?;
            truncated = Some(max_items);
        }
        if payload.len() > limit {
            return Err(EncodeError::TooLarge {
                rid: self.hed.rid,
                bytes: payload.len(),
                limit,
            });
        }
        Ok((payload, truncated))
    }

    /// The report as a JSON value, with short names or the spec's long names.
    pub fn to_value(&self, long_names: bool) -> Result<serde_json::Value, EncodeError> {
        let mut value = serde_json::to_value(self)?;
        if long_names {
            lengthen(&mut value, Level::Top);
        }
        Ok(value)
    }

    pub fn encode(&self, format: Format, long_names: bool) -> Result<Vec<u8>, EncodeError> {
        let value = self.to_value(long_names)?;
        match format {
            Format::Json => Ok(serde_json::to_vec(&value)?),
            Format::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(&value, &mut out)
                    .map_err(|e| EncodeError::Cbor(e.to_string()))?;
                Ok(out)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Level {
    Top,
    /// Inside `cmet`: the keys are metric names and stay as they are.
    CustomMetrics,
    Other,
}

/// Renames the short keys to the long ones of the spec, leaving custom metric names alone.
fn lengthen(value: &mut serde_json::Value, level: Level) {
    match value {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (key, mut v) in old {
                let (long, child) = match (level, key.as_str()) {
                    (Level::CustomMetrics, _) => (key.clone(), Level::Other),
                    (Level::Top, "cmet") => ("custom_metrics".to_owned(), Level::CustomMetrics),
                    (_, short) => (long_name(short).unwrap_or(short).to_owned(), Level::Other),
                };
                lengthen(&mut v, child);
                map.insert(long, v);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                lengthen(item, Level::Other);
            }
        }
        _ => {}
    }
}

fn long_name(short: &str) -> Option<&'static str> {
    Some(match short {
        "hed" => "header",
        "rid" => "report_id",
        "v" => "version",
        "met" => "metrics",
        "tp" => "listening_tcp_ports",
        "up" => "listening_udp_ports",
        "pts" => "ports",
        "pt" => "port",
        "if" => "interface",
        "t" => "total",
        "ns" => "network_stats",
        "bi" => "bytes_in",
        "bo" => "bytes_out",
        "pi" => "packets_in",
        "po" => "packets_out",
        "tc" => "tcp_connections",
        "ec" => "established_connections",
        "cs" => "connections",
        "rad" => "remote_addr",
        "lp" => "local_port",
        "li" => "local_interface",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Report {
        let met = Metrics {
            tp: PortList::new(vec![Port {
                pt: 22,
                interface: None,
            }]),
            up: PortList::new(vec![Port {
                pt: 53,
                interface: Some("lo".into()),
            }]),
            ns: Some(NetworkStats {
                bi: 1,
                bo: 2,
                pi: 3,
                po: 4,
            }),
            tc: TcpConnections {
                ec: ConnectionList::new(vec![Connection {
                    rad: "10.0.0.1:443".into(),
                    lp: 40000,
                    li: Some("eth0".into()),
                }]),
            },
        };
        let mut cmet = BTreeMap::new();
        cmet.insert(
            "num_child_procs_myapp".to_owned(),
            [CustomValue::Number(Number::Int(2))],
        );
        cmet.insert(
            "t".to_owned(),
            [CustomValue::IpList(vec!["10.0.0.1".into()])],
        );
        Report::new(1700000000000, Some(met), cmet)
    }

    #[test]
    fn short_names_follow_the_spec() {
        let v = sample().to_value(false).unwrap();
        assert_eq!(
            v,
            json!({
                "hed": {"rid": 1700000000000u64, "v": "1.0"},
                "met": {
                    "tp": {"pts": [{"pt": 22}], "t": 1},
                    "up": {"pts": [{"pt": 53, "if": "lo"}], "t": 1},
                    "ns": {"bi": 1, "bo": 2, "pi": 3, "po": 4},
                    "tc": {"ec": {"cs": [{"rad": "10.0.0.1:443", "lp": 40000, "li": "eth0"}], "t": 1}}
                },
                "cmet": {
                    "num_child_procs_myapp": [{"number": 2}],
                    "t": [{"ip_list": ["10.0.0.1"]}]
                }
            })
        );
    }

    #[test]
    fn long_names_leave_metric_names_alone() {
        let v = sample().to_value(true).unwrap();
        assert_eq!(v["header"]["report_id"], json!(1700000000000u64));
        assert_eq!(v["header"]["version"], json!("1.0"));
        assert_eq!(
            v["metrics"]["listening_udp_ports"]["ports"][0],
            json!({"port": 53, "interface": "lo"})
        );
        assert_eq!(
            v["metrics"]["tcp_connections"]["established_connections"]["total"],
            json!(1)
        );
        assert_eq!(v["custom_metrics"]["t"], json!([{"ip_list": ["10.0.0.1"]}]));
        assert_eq!(
            v["custom_metrics"]["num_child_procs_myapp"],
            json!([{"number": 2}])
        );
    }

    #[test]
    fn cbor_round_trips() {
        let bytes = sample().encode(Format::Cbor, false).unwrap();
        let back: serde_json::Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, sample().to_value(false).unwrap());
    }

    #[test]
    fn oversized_reports_are_shortened_keeping_their_totals() {
        let ports: Vec<Port> = (1..=3000)
            .map(|pt| Port {
                pt,
                interface: Some("eth0".into()),
            })
            .collect();
        let mut r = sample();
        r.met.as_mut().unwrap().tp = PortList::new(ports);
        let (payload, truncated) = r.encode_within(Format::Json, false, 4096).unwrap();
        assert!(payload.len() <= 4096);
        let n = truncated.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["met"]["tp"]["t"], json!(3000));
        assert_eq!(v["met"]["tp"]["pts"].as_array().unwrap().len(), n);
        assert!(n > 0);
        let (small, none) = sample().encode_within(Format::Cbor, false, 4096).unwrap();
        assert_eq!(none, None);
        assert_eq!(small, sample().encode(Format::Cbor, false).unwrap());
        let e = sample().encode_within(Format::Json, false, 10).unwrap_err();
        assert!(e.to_string().starts_with("report 1700000000000 is "), "{e}");
    }

    #[test]
    fn numbers_stay_integral() {
        assert_eq!(Number::parse("2"), Some(Number::Int(2)));
        assert_eq!(Number::parse("2.5"), Some(Number::Float(2.5)));
        assert_eq!(Number::parse("NaN"), None);
        assert_eq!(Number::parse("x"), None);
    }
}
