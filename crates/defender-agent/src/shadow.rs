//! The agent's MQTT topics, and what the shadow says about quarantine.

use serde_json::Value;

use crate::config::Format;
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
        }
    }

    pub fn metrics_replies(&self) -> [&str; 2] {
        [&self.metrics_accepted, &self.metrics_rejected]
    }

    pub fn shadow_subscriptions(&self) -> [&str; 5] {
        [
            &self.shadow_get_accepted,
            &self.shadow_get_rejected,
            &self.shadow_update_delta,
            &self.shadow_update_documents,
            &self.shadow_update_rejected,
        ]
    }
}

/// What a shadow message says about the quarantine flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowView {
    /// `desired.quarantine`; a missing or non-boolean flag means "not quarantined".
    pub desired: bool,
    /// `reported.quarantine`, when the message shows it.
    pub reported: Option<bool>,
}

fn flag(section: Option<&Value>) -> Option<bool> {
    section?.get("quarantine")?.as_bool()
}

/// `get/accepted`: the whole shadow state.
pub fn from_get_accepted(doc: &Value) -> ShadowView {
    let state = doc.get("state");
    ShadowView {
        desired: flag(state.and_then(|s| s.get("desired"))).unwrap_or(false),
        reported: flag(state.and_then(|s| s.get("reported"))),
    }
}

/// `update/documents`: the state after the update is under `current`.
pub fn from_documents(doc: &Value) -> ShadowView {
    from_get_accepted(doc.get("current").unwrap_or(&Value::Null))
}

/// `update/delta`: only desired keys that differ from reported; `None` when the flag is not
/// among them (a removed flag shows up in `update/documents` only).
pub fn from_delta(doc: &Value) -> Option<bool> {
    flag(doc.get("state"))
}

/// `get/rejected` with code 404: the thing has no shadow yet, so nothing is desired.
pub fn is_no_shadow(doc: &Value) -> bool {
    doc.get("code").and_then(Value::as_u64) == Some(404)
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
    fn reads_the_flag_from_each_message() {
        let get = json!({"state": {"desired": {"quarantine": true}, "reported": {"quarantine": false}}, "version": 3});
        assert_eq!(
            from_get_accepted(&get),
            ShadowView {
                desired: true,
                reported: Some(false)
            }
        );
        let removed = json!({"previous": {}, "current": {"state": {"desired": {"other": 1}, "reported": {"quarantine": true}}}});
        assert_eq!(
            from_documents(&removed),
            ShadowView {
                desired: false,
                reported: Some(true)
            }
        );
        assert_eq!(
            from_delta(&json!({"state": {"quarantine": true}})),
            Some(true)
        );
        assert_eq!(from_delta(&json!({"state": {"color": "red"}})), None);
        assert!(is_no_shadow(
            &json!({"code": 404, "message": "No shadow exists with name: 'x'"})
        ));
        assert_eq!(
            reported_document(true),
            br#"{"state":{"reported":{"quarantine":true}}}"#.to_vec()
        );
    }
}
