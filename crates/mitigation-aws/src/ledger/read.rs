//! The ledger read for the operator (quarantinectl `list` and `history`): items as JSON.

use std::ops::ControlFlow;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use mitigation::ActionError;
use serde_json::{Map, Value};

use super::items::Item;
use crate::paging::read_pages;

/// Pages read at most (1 MB each).
const MAX_PAGES: usize = 1000;

/// A DynamoDB value as JSON: numbers as numbers where they parse, maps and lists within.
pub fn json_of(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::from(s.as_str()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(n.as_str())),
        AttributeValue::Bool(b) => Value::from(*b),
        AttributeValue::L(list) => Value::from(list.iter().map(json_of).collect::<Vec<_>>()),
        AttributeValue::M(map) => Value::Object(object_of(map)),
        AttributeValue::Ss(set) => Value::from(set.clone()),
        _ => Value::Null,
    }
}

pub fn object_of(item: &Item) -> Map<String, Value> {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), json_of(&item[k])))
        .collect()
}

/// Every history entry of `thing`, oldest first.
pub async fn history(client: &Client, table: &str, thing: &str) -> Result<Vec<Value>, ActionError> {
    let pages = client
        .query()
        .table_name(table)
        .key_condition_expression("thing = :t AND begins_with(sk, :h)")
        .expression_attribute_values(":t", AttributeValue::S(thing.to_owned()))
        .expression_attribute_values(":h", AttributeValue::S("h#".to_owned()))
        .into_paginator()
        .send();
    let mut entries = Vec::new();
    read_pages(pages, MAX_PAGES, "Query", thing, |page| {
        entries.extend(page.items().iter().map(|i| Value::Object(object_of(i))));
        ControlFlow::Continue(())
    })
    .await?;
    Ok(entries)
}

/// Every function state that has a cause or is in force, by thing.
pub async fn states(client: &Client, table: &str) -> Result<Vec<Value>, ActionError> {
    let pages = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(sk, :f)")
        .expression_attribute_values(":f", AttributeValue::S("fn#".to_owned()))
        .into_paginator()
        .send();
    let mut states = Vec::new();
    read_pages(pages, MAX_PAGES, "Scan", table, |page| {
        for item in page.items() {
            let causes: Map<String, Value> = item
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(super::items::CAUSE_PREFIX)
                        .map(|id| (id.to_owned(), json_of(v)))
                })
                .collect();
            let applied = matches!(item.get("applied"), Some(AttributeValue::Bool(true)));
            if causes.is_empty() && !applied {
                continue;
            }
            let text = |k: &str| item.get(k).map(json_of).unwrap_or(Value::Null);
            let function = text("sk")
                .as_str()
                .and_then(|s| s.strip_prefix("fn#"))
                .map(str::to_owned);
            states.push(serde_json::json!({
                "thingName": text("thing"),
                "function": function,
                "inForce": applied,
                "causes": causes,
            }));
        }
        ControlFlow::Continue(())
    })
    .await?;
    states.sort_by_key(|s| (s["thingName"].to_string(), s["function"].to_string()));
    Ok(states)
}
