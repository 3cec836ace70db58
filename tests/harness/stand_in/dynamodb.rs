//! DynamoDB on the awsJson1_0 wire (`POST /`, the operation in `X-Amz-Target`), for the
//! quarantine ledger: tables made with [`super::StandIn::create_table`], and GetItem, PutItem,
//! UpdateItem and TransactWriteItems on them with their conditions evaluated
//! ([`super::expression`]), so a duplicate comes back as DynamoDB answers it: 400
//! `ConditionalCheckFailedException`, with the item as it was when
//! `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`; a transaction whose condition fails is
//! cancelled whole, with a reason per item. Other operations answer 400
//! `UnknownOperationException`, as DynamoDB does.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::Op;
use super::expression::{Item, Placeholders, apply_update, condition_holds};
use super::wire::Reply;

const NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810";
pub(super) const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const CONDITION_FAILED: &str = "The conditional request failed";

/// One table: its key attributes (partition, then sort) and its items by key.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) key_names: Vec<String>,
    pub(super) items: BTreeMap<Vec<String>, Item>,
}

/// The operation an `X-Amz-Target` names.
pub(super) fn op_of(target: &str) -> Op {
    match target.strip_prefix(TARGET_PREFIX) {
        Some("GetItem") => Op::GetItem,
        Some("PutItem") => Op::PutItem,
        Some("UpdateItem") => Op::UpdateItem,
        Some("TransactWriteItems") => Op::TransactWriteItems,
        _ => Op::Unknown,
    }
}

/// The partition key's text of the item a request is about (for the call log): the first
/// string attribute of its `Key` or `Item`, or of its first transaction item's.
pub(super) fn subject_of(request: &Value, key_name: &str) -> Option<String> {
    let one = |r: &Value| {
        r.get("Key")
            .or_else(|| r.get("Item"))
            .and_then(|k| k.get(key_name))
            .and_then(|v| v.get("S"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    one(request).or_else(|| {
        let first = request
            .get("TransactItems")?
            .as_array()?
            .first()?
            .as_object()?;
        first.values().find_map(one)
    })
}

fn error(kind: &str, message: impl Into<String>, extra: Map<String, Value>) -> Reply {
    let namespace = match kind {
        "ValidationException" => "com.amazon.coral.validate",
        "UnknownOperationException" => "com.amazon.coral.service",
        _ => NAMESPACE,
    };
    let mut body = Map::from_iter([
        ("__type".to_owned(), json!(format!("{namespace}#{kind}"))),
        ("message".to_owned(), json!(message.into())),
    ]);
    body.extend(extra);
    Reply::json_1_0(StatusCode::BAD_REQUEST, Value::Object(body))
}

fn validation(message: impl Into<String>) -> Reply {
    error("ValidationException", message, Map::new())
}

/// Answers one DynamoDB request on `tables`.
pub(super) fn serve(
    op: Op,
    target: &str,
    request: &Value,
    tables: &mut BTreeMap<String, Table>,
) -> Reply {
    let result = match op {
        Op::GetItem => get_item(request, tables),
        Op::PutItem => write_one(request, tables, Write::Put),
        Op::UpdateItem => write_one(request, tables, Write::Update),
        Op::TransactWriteItems => transact_write_items(request, tables),
        _ => Err(error(
            "UnknownOperationException",
            format!("stand-in: DynamoDB has no operation {target}"),
            Map::new(),
        )),
    };
    result.unwrap_or_else(|reply| reply)
}

fn table<'t>(
    request: &Value,
    tables: &'t mut BTreeMap<String, Table>,
) -> Result<&'t mut Table, Reply> {
    let name = request
        .get("TableName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tables.get_mut(name).ok_or_else(|| {
        error(
            "ResourceNotFoundException",
            "Requested resource not found",
            Map::new(),
        )
    })
}

/// The item's key, checked against the table's key attributes.
fn key_of(table: &Table, attributes: &Value, whole_key: bool) -> Result<Vec<String>, Reply> {
    let map = attributes
        .as_object()
        .ok_or_else(|| validation("The key is missing"))?;
    if whole_key && map.len() != table.key_names.len() {
        return Err(validation(
            "The provided key element does not match the schema",
        ));
    }
    table
        .key_names
        .iter()
        .map(|name| {
            let value = map.get(name);
            value
                .and_then(|v| v.get("S").or_else(|| v.get("N")))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| validation("The provided key element does not match the schema"))
        })
        .collect()
}

fn placeholders(request: &Value) -> Placeholders<'_> {
    Placeholders {
        names: request
            .get("ExpressionAttributeNames")
            .and_then(Value::as_object),
        values: request
            .get("ExpressionAttributeValues")
            .and_then(Value::as_object),
    }
}

fn get_item(request: &Value, tables: &mut BTreeMap<String, Table>) -> Result<Reply, Reply> {
    let table = table(request, tables)?;
    let key = key_of(table, request.get("Key").unwrap_or(&Value::Null), true)?;
    Ok(Reply::json_1_0(
        StatusCode::OK,
        match table.items.get(&key) {
            Some(item) => json!({ "Item": item }),
            None => json!({}),
        },
    ))
}

#[derive(Clone, Copy)]
enum Write {
    Put,
    Update,
}

/// One write's outcome before it is stored: the key, the item as it was, the item after.
struct Planned {
    key: Vec<String>,
    old: Option<Item>,
    new: Item,
}

/// Checks one Put or Update's condition and works out the item after it; `Err(None)` when
/// the condition fails, `Err(Some(reply))` when the request is invalid.
fn plan(request: &Value, table: &Table, write: Write) -> Result<Planned, Option<Reply>> {
    let p = placeholders(request);
    let attributes = match write {
        Write::Put => request.get("Item"),
        Write::Update => request.get("Key"),
    }
    .unwrap_or(&Value::Null);
    let key = key_of(table, attributes, matches!(write, Write::Update)).map_err(Some)?;
    let old = table.items.get(&key).cloned();
    let current = old.clone().unwrap_or_default();
    if let Some(condition) = request.get("ConditionExpression").and_then(Value::as_str)
        && !condition_holds(condition, &p, &current).map_err(|e| Some(validation(e)))?
    {
        return Err(None);
    }
    let new = match write {
        Write::Put => attributes.as_object().cloned().unwrap_or_default(),
        Write::Update => {
            let mut base = old
                .clone()
                .unwrap_or_else(|| attributes.as_object().cloned().unwrap_or_default());
            if let Some(update) = request.get("UpdateExpression").and_then(Value::as_str) {
                base = apply_update(update, &p, &base).map_err(|e| Some(validation(e)))?;
            }
            base
        }
    };
    Ok(Planned { key, old, new })
}

fn all_old_on_failure(request: &Value) -> bool {
    request
        .get("ReturnValuesOnConditionCheckFailure")
        .and_then(Value::as_str)
        == Some("ALL_OLD")
}

fn write_one(
    request: &Value,
    tables: &mut BTreeMap<String, Table>,
    write: Write,
) -> Result<Reply, Reply> {
    let table = table(request, tables)?;
    let planned = match plan(request, table, write) {
        Ok(planned) => planned,
        Err(Some(reply)) => return Err(reply),
        Err(None) => {
            let key = match write {
                Write::Put => request.get("Item"),
                Write::Update => request.get("Key"),
            };
            let old = key
                .and_then(|k| key_of(table, k, matches!(write, Write::Update)).ok())
                .and_then(|k| table.items.get(&k).cloned());
            let mut extra = Map::new();
            if let (true, Some(old)) = (all_old_on_failure(request), old) {
                extra.insert("Item".to_owned(), Value::Object(old));
            }
            return Err(error(
                "ConditionalCheckFailedException",
                CONDITION_FAILED,
                extra,
            ));
        }
    };
    let returned = match request
        .get("ReturnValues")
        .and_then(Value::as_str)
        .unwrap_or("NONE")
    {
        "NONE" => None,
        "ALL_NEW" => Some(planned.new.clone()),
        "ALL_OLD" => planned.old.clone(),
        other => {
            return Err(validation(format!(
                "stand-in: ReturnValues {other} is not supported"
            )));
        }
    };
    table.items.insert(planned.key, planned.new);
    Ok(Reply::json_1_0(
        StatusCode::OK,
        match returned {
            Some(item) => json!({ "Attributes": item }),
            None => json!({}),
        },
    ))
}

/// All the writes or none: every condition is checked on the items as they are, then every
/// write is stored.
fn transact_write_items(
    request: &Value,
    tables: &mut BTreeMap<String, Table>,
) -> Result<Reply, Reply> {
    let items = request
        .get("TransactItems")
        .and_then(Value::as_array)
        .filter(|items| (1..=100).contains(&items.len()))
        .ok_or_else(|| validation("TransactItems must hold 1 to 100 items"))?;
    let mut planned = Vec::new();
    let mut reasons = Vec::new();
    let mut cancelled = false;
    for item in items {
        let (write, inner) = match (item.get("Put"), item.get("Update")) {
            (Some(put), None) => (Write::Put, put),
            (None, Some(update)) => (Write::Update, update),
            _ => {
                return Err(validation(
                    "stand-in: only Put and Update are supported in a transaction",
                ));
            }
        };
        let table_name = inner
            .get("TableName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let outcome = plan(inner, table(inner, tables)?, write);
        match outcome {
            Ok(p) => {
                reasons.push(json!({ "Code": "None" }));
                planned.push((table_name, p));
            }
            Err(Some(reply)) => return Err(reply),
            Err(None) => {
                cancelled = true;
                let mut reason =
                    json!({ "Code": "ConditionalCheckFailed", "Message": CONDITION_FAILED });
                let key = inner.get("Key").or_else(|| inner.get("Item"));
                let old = key.and_then(|k| {
                    let t = tables.get(&table_name)?;
                    t.items.get(&key_of(t, k, false).ok()?).cloned()
                });
                if let (true, Some(old)) = (all_old_on_failure(inner), old) {
                    reason["Item"] = Value::Object(old);
                }
                reasons.push(reason);
            }
        }
    }
    if cancelled {
        let codes: Vec<&str> = reasons.iter().filter_map(|r| r["Code"].as_str()).collect();
        let message = format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        );
        return Err(error(
            "TransactionCanceledException",
            message,
            Map::from_iter([("CancellationReasons".to_owned(), Value::Array(reasons))]),
        ));
    }
    for (table_name, p) in planned {
        if let Some(table) = tables.get_mut(&table_name) {
            table.items.insert(p.key, p.new);
        }
    }
    Ok(Reply::json_1_0(StatusCode::OK, json!({})))
}
