//! What the stand-in remembers: groups, shadows (merged as the shadow service merges them),
//! connections, certificates, audit findings, scripted faults, and the token bucket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::wire::Reply;
use super::{Disconnect, Fault, Op};
use crate::epoch_millis;

const MAX_SHADOW_STATE_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub(super) struct FaultEntry {
    pub(super) fault: Fault,
    pub(super) seen: u32,
}

#[derive(Debug, Default)]
pub(super) struct Shadow {
    pub(super) state: Map<String, Value>,
    pub(super) version: u64,
    pub(super) documents: Vec<Value>,
}

#[derive(Debug)]
pub(super) struct Connection {
    pub(super) thing: Option<String>,
    pub(super) connected: bool,
    pub(super) since_ms: u64,
}

#[derive(Debug, Default)]
pub(super) struct World {
    pub(super) groups: BTreeMap<String, BTreeSet<String>>,
    pub(super) shadows: HashMap<(String, Option<String>), Shadow>,
    pub(super) faults: HashMap<(String, Option<Op>), FaultEntry>,
    pub(super) violations: BTreeMap<String, Vec<Value>>,
    pub(super) connections: BTreeMap<String, Connection>,
    pub(super) disconnects: Vec<Disconnect>,
    /// Certificate id → status.
    pub(super) certificates: BTreeMap<String, String>,
    /// Thing → certificate ids attached to it.
    pub(super) principals: BTreeMap<String, BTreeSet<String>>,
    pub(super) findings: Vec<Value>,
    /// Violation id → the state PutVerificationStateOnViolation set.
    pub(super) verification_states: BTreeMap<String, String>,
    /// Thing → its registry attributes (every thing exists, with none at first).
    pub(super) attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// Registry event type → enabled (UpdateEventConfigurations).
    pub(super) event_configurations: BTreeMap<String, bool>,
    /// DynamoDB tables by name.
    pub(super) tables: BTreeMap<String, super::dynamodb::Table>,
}

impl World {
    pub(super) fn groups_of(&self, thing: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, things)| things.contains(thing))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// The fault scripted for this subject and operation, counting the call.
    pub(super) fn fault(&mut self, subject: &str, op: Op) -> Option<(Fault, u32)> {
        let key_op = (subject.to_owned(), Some(op));
        let key = if self.faults.contains_key(&key_op) {
            key_op
        } else {
            (subject.to_owned(), None)
        };
        let entry = self.faults.get_mut(&key)?;
        let seen = entry.seen;
        entry.seen = entry.seen.saturating_add(1);
        Some((entry.fault.clone(), seen))
    }
}

#[derive(Debug)]
pub(super) struct Bucket {
    pub(super) rate: f64,
    pub(super) burst: f64,
    pub(super) tokens: f64,
    pub(super) last: Instant,
}

impl Bucket {
    pub(super) fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.tokens = (self.tokens + refill).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Merges a shadow document as the shadow service does: sections merge key by key, `null`
/// deletes, a stale `version` is a 409 and a state over 8 KiB a 413.
pub(super) fn update_shadow(
    world: &mut World,
    key: (String, Option<String>),
    document: Value,
) -> Reply {
    let Some(patch) = document.get("state") else {
        return Reply::invalid("Missing required node: state");
    };
    if !patch.is_object() && !patch.is_null() {
        return Reply::invalid("Invalid JSON: state node must be an object");
    }
    if patch.to_string().len() > MAX_SHADOW_STATE_BYTES {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            "The payload exceeds the maximum size allowed",
        );
    }
    if let Some(expected) = document.get("version") {
        let current = world.shadows.get(&key).map_or(0, |s| s.version);
        if expected.as_u64() != Some(current) {
            return Reply::error(
                StatusCode::CONFLICT,
                "ConflictException",
                "Version conflict",
            );
        }
    }
    let shadow = world.shadows.entry(key).or_default();
    match patch {
        Value::Object(sections) => {
            for (section, value) in sections {
                let target = shadow
                    .state
                    .entry(section.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                merge(target, value);
                if target.is_null() || target.as_object().is_some_and(Map::is_empty) {
                    shadow.state.remove(section);
                }
            }
        }
        _ => shadow.state.clear(),
    }
    shadow.version += 1;
    let mut answer = json!({
        "state": patch,
        "metadata": {},
        "version": shadow.version,
        "timestamp": epoch_millis() / 1000,
    });
    if let Some(token) = document.get("clientToken") {
        answer["clientToken"] = token.clone();
    }
    shadow.documents.push(document);
    Reply::ok(answer)
}

/// Objects merge key by key, `null` deletes a key, anything else replaces.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(map), Value::Object(entries)) => {
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, Value::Object(_)) => {
            *target = Value::Object(Map::new());
            merge(target, patch);
        }
        (target, other) => *target = other.clone(),
    }
}
