//! The agent's MQTT topics, and what the shadow says about quarantine.

use serde_json::Value;

use crate::config::Format;
use crate::decision::{Flag, Message};
use crate::names::{ShadowName, ThingName};

/// Every topic the agent publishes to or subscribes to, for one thing.
#[derive(Debug, Clone)]
pub struct Topics {
    pub metrics: String,
    pub metrics_accepted: String,
    pub metrics_rejected: String,
    pub shadow_get: String,
    pub shadow_get_accepted: String,
    pub shadow_get_rejected: String,
    pub shadow_update: String,
    pub shadow_update_delta: String,
    pub shadow_update_documents: String,
    pub shadow_update_rejected: String,
    pub shadow_delete_accepted: String,
}

impl Topics {
    pub fn new(thing: &ThingName, shadow: Option<&ShadowName>, format: Format) -> Topics {
        let metrics = format!("$aws/things/{thing}/defender/metrics/{}", format.as_str());
        let shadow = match shadow {
            Some(name) => format!("$aws/things/{thing}/shadow/name/{name}"),
            None => format!("$aws/things/{thing}/shadow"),
        };
        Topics {
            metrics_accepted: format!("{metrics}/accepted"),
            metrics_rejected: format!("{metrics}/rejected"),
            metrics,
            shadow_get: format!("{shadow}/get"),
            shadow_get_accepted: format!("{shadow}/get/accepted"),
            shadow_get_rejected: format!("{shadow}/get/rejected"),
            shadow_update: format!("{shadow}/update"),
            shadow_update_delta: format!("{shadow}/update/delta"),
            shadow_update_documents: format!("{shadow}/update/documents"),
            shadow_update_rejected: format!("{shadow}/update/rejected"),
            shadow_delete_accepted: format!("{shadow}/delete/accepted"),
        }
    }

    pub fn metrics_replies(&self) -> [&str; 2] {
        [&self.metrics_accepted, &self.metrics_rejected]
    }

    pub fn shadow_subscriptions(&self) -> [&str; 6] {
        [
            &self.shadow_get_accepted,
            &self.shadow_get_rejected,
            &self.shadow_update_delta,
            &self.shadow_update_documents,
            &self.shadow_update_rejected,
            &self.shadow_delete_accepted,
        ]
    }
}

/// What a whole shadow document says: the flag and version the decision needs, and the
/// reported flag when the document shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub message: Message,
    pub reported: Option<bool>,
}

/// Longest rendering of a non-boolean flag kept for the log.
const MAX_SHOWN: usize = 64;

fn flag_of(desired: Option<&Value>) -> Flag {
    let desired = match desired {
        None | Some(Value::Null) => return Flag::NoDesired,
        Some(d) => d,
    };
    match desired.get("quarantine") {
        None | Some(Value::Null) => Flag::Missing,
        Some(Value::Bool(b)) => Flag::Set(*b),
        Some(other) => Flag::NotBoolean(other.to_string().chars().take(MAX_SHOWN).collect()),
    }
}

fn version(doc: &Value) -> Option<u64> {
    doc.get("version").and_then(Value::as_u64)
}

/// `get/accepted`: the whole shadow document.
pub fn from_get_accepted(doc: &Value) -> Reading {
    let state = doc.get("state");
    Reading {
        message: Message {
            version: version(doc),
            flag: flag_of(state.and_then(|s| s.get("desired"))),
        },
        reported: state
            .and_then(|s| s.get("reported"))
            .and_then(|r| r.get("quarantine"))
            .and_then(Value::as_bool),
    }
}

/// `update/documents`: the document after the update is under `current`.
pub fn from_documents(doc: &Value) -> Reading {
    from_get_accepted(doc.get("current").unwrap_or(&Value::Null))
}

/// `update/delta`: only the desired keys that differ from reported, so a flag that is not among
/// them did not change (a removed flag shows up in `update/documents` only).
pub fn from_delta(doc: &Value) -> Message {
    let state = doc.get("state");
    let flag = match state.and_then(|s| s.get("quarantine")) {
        None => Flag::Unmentioned,
        Some(_) => flag_of(state),
    };
    Message {
        version: version(doc),
        flag,
    }
}

/// `delete/accepted`: the shadow is gone; the version is the deleted document's.
pub fn from_delete_accepted(doc: &Value) -> Message {
    Message {
        version: version(doc),
        flag: Flag::NoShadow,
    }
}

/// `get/rejected` with code 404: the thing has no shadow.
pub fn is_no_shadow(doc: &Value) -> bool {
    doc.get("code").and_then(Value::as_u64) == Some(404)
}

/// The `clientToken` a shadow answer echoes.
pub fn client_token(doc: &Value) -> Option<&str> {
    doc.get("clientToken").and_then(Value::as_str)
}

/// A `get` request whose answer echoes `token`.
pub fn get_request(token: &str) -> Vec<u8> {
    serde_json::json!({ "clientToken": token })
        .to_string()
        .into_bytes()
}

pub fn reported_document(quarantined: bool) -> Vec<u8> {
    serde_json::json!({"state": {"reported": {"quarantine": quarantined}}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_classic_and_named() {
        let thing = ThingName::parse("mything1").unwrap();
        let t = Topics::new(&thing, None, Format::Json);
        assert_eq!(t.metrics, "$aws/things/mything1/defender/metrics/json");
        assert_eq!(
            t.metrics_rejected,
            "$aws/things/mything1/defender/metrics/json/rejected"
        );
        assert_eq!(
            t.shadow_update_delta,
            "$aws/things/mything1/shadow/update/delta"
        );
        let named = ShadowName::parse("security").unwrap();
        let t = Topics::new(&thing, Some(&named), Format::Cbor);
        assert_eq!(t.metrics, "$aws/things/mything1/defender/metrics/cbor");
        assert_eq!(
            t.shadow_get,
            "$aws/things/mything1/shadow/name/security/get"
        );
    }

    #[test]
    fn reads_the_flag_and_version_from_each_message() {
        let get = json!({"state": {"desired": {"quarantine": true}, "reported": {"quarantine": false}}, "version": 3, "clientToken": "t1"});
        assert_eq!(
            from_get_accepted(&get),
            Reading {
                message: Message {
                    version: Some(3),
                    flag: Flag::Set(true)
                },
                reported: Some(false)
            }
        );
        assert_eq!(client_token(&get), Some("t1"));
        let removed = json!({"previous": {}, "current": {"state": {"desired": {"other": 1}, "reported": {"quarantine": true}}, "version": 8}});
        assert_eq!(
            from_documents(&removed),
            Reading {
                message: Message {
                    version: Some(8),
                    flag: Flag::Missing
                },
                reported: Some(true)
            }
        );
        let cleared =
            json!({"current": {"state": {"reported": {"quarantine": true}}, "version": 9}});
        assert_eq!(from_documents(&cleared).message.flag, Flag::NoDesired);
        let text = json!({"state": {"desired": {"quarantine": "false"}}, "version": 4});
        assert_eq!(
            from_get_accepted(&text).message.flag,
            Flag::NotBoolean("\"false\"".into())
        );
        let long = json!({"state": {"desired": {"quarantine": "x".repeat(500)}}});
        let Flag::NotBoolean(shown) = from_get_accepted(&long).message.flag else {
            panic!("not read as a non-boolean flag")
        };
        assert_eq!(shown.chars().count(), MAX_SHOWN);
        assert_eq!(
            from_delta(&json!({"version": 5, "state": {"quarantine": false}})),
            Message {
                version: Some(5),
                flag: Flag::Set(false)
            }
        );
        assert_eq!(
            from_delta(&json!({"version": 5, "state": {"quarantine": 0}})).flag,
            Flag::NotBoolean("0".into())
        );
        assert_eq!(
            from_delta(&json!({"state": {"color": "red"}})).flag,
            Flag::Unmentioned
        );
        assert_eq!(
            from_delete_accepted(&json!({"version": 12, "timestamp": 1})),
            Message {
                version: Some(12),
                flag: Flag::NoShadow
            }
        );
        assert!(is_no_shadow(
            &json!({"code": 404, "message": "No shadow exists with name: 'x'"})
        ));
        assert_eq!(get_request("t2"), br#"{"clientToken":"t2"}"#.to_vec());
        assert_eq!(
            reported_document(true),
            br#"{"state":{"reported":{"quarantine":true}}}"#.to_vec()
        );
    }
}
