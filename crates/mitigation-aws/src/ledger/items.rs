//! The ledger's items as DynamoDB attributes. The table: partition key `thing` (S), sort key
//! `sk` (S).
//! - `sk = fn#<group|shadow|certificate>`: one function's state for the thing: each active
//!   cause as an attribute `c#<cause id>` (a map), each clear as `x#<cause id>` (the time of
//!   the newest clear, epoch ms), `applied` (bool) and `version` (number);
//! - `sk = h#<RFC 3339 time>#<function>#<record id>#<request id>`: one history entry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use mitigation::FunctionKind;
use mitigation::ledger::time::format_rfc3339_millis;
use mitigation::ledger::{Cause, FunctionState, HistoryEntry};

pub type Item = HashMap<String, AttributeValue>;

pub const CAUSE_PREFIX: &str = "c#";
pub const CLEARED_PREFIX: &str = "x#";
/// `quarantinectl protect`: a map of `reason`, `by` and `at` on each function's state item.
pub const PROTECTED: &str = "protected";

/// The state item's key.
pub fn state_key(thing: &str, function: FunctionKind) -> Item {
    HashMap::from([
        ("thing".to_owned(), AttributeValue::S(thing.to_owned())),
        (
            "sk".to_owned(),
            AttributeValue::S(format!("fn#{}", function.ledger_name())),
        ),
    ])
}

pub fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn text(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

/// A cause as the map stored under `c#<id>`; empty texts are left out.
pub fn cause_value(cause: &Cause) -> AttributeValue {
    let mut map = HashMap::from([
        ("kind".to_owned(), text(&cause.kind)),
        ("occurredAt".to_owned(), number(cause.occurred_at)),
        ("recordedAt".to_owned(), number(cause.recorded_at)),
    ]);
    for (key, value) in [
        ("sender", &cause.sender),
        ("recordId", &cause.record_id),
        ("delivery", &cause.delivery),
        ("requestId", &cause.request_id),
    ] {
        if !value.is_empty() {
            map.insert(key.to_owned(), text(value));
        }
    }
    AttributeValue::M(map)
}

fn get_text(map: &Item, key: &str) -> String {
    match map.get(key) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

fn get_number(value: Option<&AttributeValue>) -> i64 {
    match value {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn cause_of(id: &str, map: &Item) -> Cause {
    Cause {
        id: id.to_owned(),
        kind: get_text(map, "kind"),
        sender: get_text(map, "sender"),
        occurred_at: get_number(map.get("occurredAt")),
        recorded_at: get_number(map.get("recordedAt")),
        record_id: get_text(map, "recordId"),
        delivery: get_text(map, "delivery"),
        request_id: get_text(map, "requestId"),
    }
}

/// The state item read back; no item is the empty state.
pub fn state_of(item: Option<&Item>) -> FunctionState {
    let mut state = FunctionState::default();
    for (name, value) in item.into_iter().flatten() {
        if let Some(id) = name.strip_prefix(CAUSE_PREFIX) {
            if let AttributeValue::M(map) = value {
                state.causes.insert(id.to_owned(), cause_of(id, map));
            }
        } else if let Some(id) = name.strip_prefix(CLEARED_PREFIX) {
            state.cleared.insert(id.to_owned(), get_number(Some(value)));
        } else if name == "applied" {
            state.applied = matches!(value, AttributeValue::Bool(true));
        } else if name == "version" {
            state.version = u64::try_from(get_number(Some(value))).unwrap_or(0);
        } else if let (PROTECTED, AttributeValue::M(map)) = (name.as_str(), value) {
            state.protected = Some(format!(
                "protected by {}: {}",
                get_text(map, "by"),
                get_text(map, "reason")
            ));
        }
    }
    state
}

/// A history entry as an item of the thing's partition.
pub fn history_item(thing: &str, entry: &HistoryEntry) -> Item {
    let mut item = HashMap::from([
        ("thing".to_owned(), text(thing)),
        ("sk".to_owned(), text(&entry.sort_key())),
        ("at".to_owned(), text(&format_rfc3339_millis(entry.at))),
        ("function".to_owned(), text(entry.function.ledger_name())),
        ("asked".to_owned(), text(entry.asked)),
        ("cause".to_owned(), text(entry.cause.as_str())),
        ("outcome".to_owned(), text(&entry.outcome)),
    ]);
    for (key, value) in [
        ("causeId", &entry.cause_id),
        ("source", &entry.source),
        ("reason", &entry.reason),
        ("recordId", &entry.record_id),
        ("delivery", &entry.delivery),
        ("requestId", &entry.request_id),
        ("caller", &entry.caller),
    ] {
        if !value.is_empty() {
            item.insert(key.to_owned(), text(value));
        }
    }
    for (key, list) in [
        ("actions", &entry.actions),
        ("activeCauses", &entry.active_causes),
    ] {
        item.insert(
            key.to_owned(),
            AttributeValue::L(list.iter().map(|s| text(s)).collect()),
        );
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_item_reads_back_as_written() {
        let cause = Cause {
            id: "v-1".into(),
            kind: "detect-violation".into(),
            sender: String::new(),
            occurred_at: 10,
            recorded_at: 20,
            record_id: "m-1".into(),
            delivery: "sqs-raw".into(),
            request_id: "req".into(),
        };
        let item: Item = HashMap::from([
            ("c#v-1".to_owned(), cause_value(&cause)),
            ("x#v-0".to_owned(), number(5)),
            ("applied".to_owned(), AttributeValue::Bool(true)),
            ("version".to_owned(), number(3)),
            ("thing".to_owned(), text("dev-1")),
        ]);
        let state = state_of(Some(&item));
        assert_eq!(state.causes.get("v-1"), Some(&cause));
        assert_eq!(state.cleared.get("v-0"), Some(&5));
        assert!(state.applied);
        assert_eq!(state.version, 3);
        assert_eq!(state_of(None), FunctionState::default());
    }
}
