//! The quarantine ledger on DynamoDB (`LEDGER_TABLE`): the rules of
//! [`mitigation::ledger::FunctionState::check`] as condition expressions, so duplicates,
//! retries and concurrent functions converge. A failed condition is an answer, not an
//! error: the item as it was comes back with it (ReturnValuesOnConditionCheckFailure).

mod items;
pub mod read;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use futures::future::BoxFuture;
use mitigation::ledger::time::format_rfc3339_millis;
use mitigation::ledger::{
    CauseChange, Claim, FunctionState, HistoryEntry, Ledger, Recorded, Refused, Settled,
};
use mitigation::{ActionError, FunctionKind};
use violation_core::ThingName;

use crate::errors::classify;
use items::{CAUSE_PREFIX, CLEARED_PREFIX, Item, history_item, number, state_key, state_of};

/// Rounds of a release of every cause before it gives up to concurrent changes.
const CLEAR_ALL_ROUNDS: usize = 5;
/// Tombstones forgotten per UpdateItem (its expressions stay far below their 4 KB).
const FORGET_PER_WRITE: usize = 50;
/// TransactWriteItems takes at most 100 items.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// The ledger in one DynamoDB table.
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }

    fn error<E>(
        &self,
        operation: &'static str,
        thing: &ThingName,
        e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ActionError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        with_table_hint(classify(operation, thing.as_str(), e), &self.table)
    }

    /// `quarantinectl protect` (`Some((reason, by))`) or `unprotect` (`None`), on every
    /// function's state item of `thing`: the functions read it with the causes, at no extra
    /// round trip.
    pub async fn set_protection(
        &self,
        thing: &ThingName,
        protection: Option<(&str, &str)>,
    ) -> Result<(), ActionError> {
        for function in [
            FunctionKind::ThingGroup,
            FunctionKind::Shadow,
            FunctionKind::Certificate,
        ] {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(state_key(thing.as_str(), function)))
                .expression_attribute_names("#p", items::PROTECTED);
            let update = match protection {
                Some((reason, by)) => update
                    .update_expression("SET #p = :p")
                    .expression_attribute_values(
                        ":p",
                        AttributeValue::M(HashMap::from([
                            ("reason".to_owned(), AttributeValue::S(reason.to_owned())),
                            ("by".to_owned(), AttributeValue::S(by.to_owned())),
                            (
                                "at".to_owned(),
                                number(mitigation::ledger::time::now_millis()),
                            ),
                        ])),
                    ),
                None => update.update_expression("REMOVE #p"),
            };
            update
                .send()
                .await
                .map_err(|e| self.error("UpdateItem", thing, e))?;
        }
        Ok(())
    }

    /// One conditional UpdateItem: the item after it, or as it was when the condition failed.
    async fn update(
        &self,
        thing: &ThingName,
        function: FunctionKind,
        expression: Expression,
    ) -> Result<Result<Item, Option<Item>>, ActionError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(thing.as_str(), function)))
            .update_expression(expression.update)
            .condition_expression(expression.condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let old = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                    _ => None,
                };
                Ok(Err(old))
            }
            Err(e) => Err(self.error("UpdateItem", thing, e)),
        }
    }

    async fn get(
        &self,
        thing: &ThingName,
        function: FunctionKind,
    ) -> Result<FunctionState, ActionError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(state_key(thing.as_str(), function)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", thing, e))?;
        Ok(state_of(out.item()))
    }

    /// A cause added or cleared: the state after it, or as it is and why not.
    async fn record_one(
        &self,
        thing: &ThingName,
        function: FunctionKind,
        change: &CauseChange,
    ) -> Result<Recorded, ActionError> {
        let expression = match change {
            CauseChange::Add(cause) => Expression::add(cause),
            CauseChange::Clear {
                id,
                at,
                settled_before,
            } => Expression::clear(id, *at, *settled_before),
            CauseChange::ClearAll { .. } => return self.clear_all(thing, function, change).await,
        };
        match self.update(thing, function, expression).await? {
            Ok(item) => {
                let state = state_of(Some(&item));
                if matches!(change, CauseChange::Clear { .. }) {
                    self.forget_expired(thing, function, &state).await;
                }
                Ok(Recorded {
                    state,
                    refused: None,
                })
            }
            Err(old) => {
                let state = match old {
                    Some(item) => state_of(Some(&item)),
                    None => self.get(thing, function).await?,
                };
                let refused = state.check(change).err().unwrap_or(Refused::Duplicate);
                Ok(Recorded {
                    state,
                    refused: Some(refused),
                })
            }
        }
    }

    /// After a clear (which adds a tombstone, so only then): forget the tombstones
    /// [`FunctionState::expired_tombstones`] names, each only if unchanged since read. One
    /// UpdateItem per [`FORGET_PER_WRITE`], and only when some expired; housekeeping, so a
    /// failure is logged, not the record's (the next clear tries again).
    async fn forget_expired(
        &self,
        thing: &ThingName,
        function: FunctionKind,
        state: &FunctionState,
    ) {
        for chunk in state.expired_tombstones().chunks(FORGET_PER_WRITE) {
            // A failed condition (a tombstone renewed meanwhile) leaves it, as it should.
            if let Err(e) = self
                .update(thing, function, Expression::forget(chunk))
                .await
            {
                tracing::warn!(thing = %thing, error = %e, "expired tombstones not forgotten");
                return;
            }
        }
    }

    /// Every cause removed, on the version read (read again when it moved).
    async fn clear_all(
        &self,
        thing: &ThingName,
        function: FunctionKind,
        change: &CauseChange,
    ) -> Result<Recorded, ActionError> {
        let CauseChange::ClearAll { at } = change else {
            return Err(ActionError::permanent(
                "UpdateItem",
                thing.to_string(),
                "NotAClearAll",
                "internal: clear_all of another change",
            ));
        };
        for _ in 0..CLEAR_ALL_ROUNDS {
            let state = self.get(thing, function).await?;
            if let Err(refused) = state.check(change) {
                return Ok(Recorded {
                    state,
                    refused: Some(refused),
                });
            }
            let expression = Expression::clear_all(&state, *at);
            if let Ok(item) = self.update(thing, function, expression).await? {
                let state = state_of(Some(&item));
                self.forget_expired(thing, function, &state).await;
                return Ok(Recorded {
                    state,
                    refused: None,
                });
            }
        }
        Err(ActionError::retryable(
            "UpdateItem",
            thing.to_string(),
            "LedgerContention",
            "the causes kept changing while every cause was being cleared",
        ))
    }

    fn put(
        &self,
        thing: &ThingName,
        entry: &HistoryEntry,
    ) -> Result<TransactWriteItem, ActionError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(history_item(thing.as_str(), entry)))
            .build()
            .map_err(|e| build_error(thing, e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(
        &self,
        thing: &ThingName,
        items: Vec<TransactWriteItem>,
    ) -> Result<Settled, ActionError> {
        if items.is_empty() {
            return Ok(Settled::Won);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Settled::Won),
            Err(SdkError::ServiceError(e)) if lost_on_condition(e.err()) => Ok(Settled::Lost),
            Err(e) => Err(self.error("TransactWriteItems", thing, e)),
        }
    }
}

/// The budget's claim: a marker per (window, thing), so a thing counts once however many
/// functions claim it, and the window's counter, raised only below the maximum; both in one
/// transaction. Partition `budget#<window start>`, sort keys `thing#<name>` and `count`.
fn claim_items(
    table: &str,
    thing: &ThingName,
    window_start: i64,
    max: u32,
) -> Result<Vec<TransactWriteItem>, ActionError> {
    let partition = AttributeValue::S(format!("budget#{}", format_rfc3339_millis(window_start)));
    let marker = Put::builder()
        .table_name(table)
        .item("thing", partition.clone())
        .item("sk", AttributeValue::S(format!("thing#{thing}")))
        .condition_expression("attribute_not_exists(sk)")
        .build()
        .map_err(|e| build_error(thing, e))?;
    let counter = Update::builder()
        .table_name(table)
        .key("thing", partition)
        .key("sk", AttributeValue::S("count".into()))
        .update_expression("SET #n = if_not_exists(#n, :zero) + :one")
        .condition_expression("attribute_not_exists(#n) OR #n < :max")
        .expression_attribute_names("#n", "things")
        .expression_attribute_values(":zero", number(0))
        .expression_attribute_values(":one", number(1))
        .expression_attribute_values(":max", number(i64::from(max)))
        .build()
        .map_err(|e| build_error(thing, e))?;
    Ok(vec![
        TransactWriteItem::builder().put(marker).build(),
        TransactWriteItem::builder().update(counter).build(),
    ])
}

/// Which items of a cancelled transaction failed their condition.
fn failed_conditions(e: &TransactWriteItemsError) -> Vec<bool> {
    match e {
        TransactWriteItemsError::TransactionCanceledException(c) => c
            .cancellation_reasons()
            .iter()
            .map(|r| r.code() == Some("ConditionalCheckFailed"))
            .collect(),
        _ => Vec::new(),
    }
}

/// The first item of a settle is the state's update: its condition failing means the causes
/// moved.
fn lost_on_condition(e: &TransactWriteItemsError) -> bool {
    match e {
        TransactWriteItemsError::TransactionCanceledException(c) => c
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}

fn build_error(thing: &ThingName, e: impl std::fmt::Display) -> ActionError {
    ActionError::permanent(
        "TransactWriteItems",
        thing.to_string(),
        "ConstructionFailure",
        e.to_string(),
    )
}

fn with_table_hint(mut e: ActionError, table: &str) -> ActionError {
    if e.code == "ResourceNotFoundException" {
        e.hint = Some(format!(
            "the ledger table {table} (LEDGER_TABLE) does not exist in this account and region: check the variable, or deploy the stack's LedgerTable; redrive the record once fixed"
        ));
    } else if matches!(
        e.code.as_str(),
        "AccessDeniedException" | "UnauthorizedException"
    ) {
        e.hint = Some(format!(
            "the function's role may not call {} on the ledger table {table} (LEDGER_TABLE): fix its IAM policy, then redrive the record",
            e.operation
        ));
    }
    e
}

/// One UpdateItem's expressions.
struct Expression {
    update: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn base() -> Expression {
        Expression {
            update: String::new(),
            condition: String::new(),
            names: HashMap::from([
                ("#v".to_owned(), "version".to_owned()),
                ("#a".to_owned(), "applied".to_owned()),
            ]),
            values: HashMap::from([
                (":zero".to_owned(), number(0)),
                (":one".to_owned(), number(1)),
                (":false".to_owned(), AttributeValue::Bool(false)),
            ]),
        }
    }

    const BUMP: &'static str =
        "#v = if_not_exists(#v, :zero) + :one, #a = if_not_exists(#a, :false)";

    fn add(cause: &mitigation::ledger::Cause) -> Expression {
        let mut e = Expression::base();
        e.names
            .insert("#c".into(), format!("{CAUSE_PREFIX}{}", cause.id));
        e.names
            .insert("#x".into(), format!("{CLEARED_PREFIX}{}", cause.id));
        e.values.insert(":cause".into(), items::cause_value(cause));
        e.values.insert(":occ".into(), number(cause.occurred_at));
        e.update = format!("SET #c = :cause, {}", Self::BUMP);
        e.names.insert("#occ".into(), "occurredAt".into());
        e.condition =
            "(attribute_not_exists(#c) OR #c.#occ < :occ) AND (attribute_not_exists(#x) OR #x < :occ)"
                .into();
        e
    }

    fn clear(id: &str, at: i64, settled_before: i64) -> Expression {
        let mut e = Expression::base();
        e.names.insert("#c".into(), format!("{CAUSE_PREFIX}{id}"));
        e.names.insert("#x".into(), format!("{CLEARED_PREFIX}{id}"));
        e.names.insert("#occ".into(), "occurredAt".into());
        e.names.insert("#rec".into(), "recordedAt".into());
        e.values.insert(":at".into(), number(at));
        e.values.insert(":settled".into(), number(settled_before));
        e.update = format!("REMOVE #c SET #x = :at, {}", Self::BUMP);
        e.condition = "(attribute_not_exists(#c) OR (#c.#occ <= :at AND #c.#rec <= :settled)) AND (attribute_not_exists(#x) OR #x < :at)".into();
        e
    }

    /// Remove these tombstones, each only if it still has the time it was read with. Not
    /// from [`Expression::base`]: it bumps no version, and DynamoDB refuses unused names.
    fn forget(tombstones: &[(String, i64)]) -> Expression {
        let mut e = Expression {
            update: String::new(),
            condition: String::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        };
        let mut removes = Vec::new();
        let mut conditions = Vec::new();
        for (i, (id, at)) in tombstones.iter().enumerate() {
            e.names
                .insert(format!("#x{i}"), format!("{CLEARED_PREFIX}{id}"));
            e.values.insert(format!(":x{i}"), number(*at));
            removes.push(format!("#x{i}"));
            conditions.push(format!("#x{i} = :x{i}"));
        }
        e.update = format!("REMOVE {}", removes.join(", "));
        e.condition = conditions.join(" AND ");
        e
    }

    fn clear_all(state: &FunctionState, at: i64) -> Expression {
        let mut e = Expression::base();
        let mut removes = Vec::new();
        let mut sets = Vec::new();
        for (i, id) in state.causes.keys().enumerate() {
            e.names
                .insert(format!("#c{i}"), format!("{CAUSE_PREFIX}{id}"));
            e.names
                .insert(format!("#x{i}"), format!("{CLEARED_PREFIX}{id}"));
            removes.push(format!("#c{i}"));
            sets.push(format!("#x{i} = :at"));
        }
        e.values.insert(":at".into(), number(at));
        e.values
            .insert(":seen".into(), number(state.version as i64));
        e.update = format!(
            "REMOVE {} SET {}, {}",
            removes.join(", "),
            sets.join(", "),
            Self::BUMP
        );
        e.condition = "#v = :seen".into();
        e
    }
}

impl Ledger for DynamoLedger {
    fn record<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        change: &'a CauseChange,
    ) -> BoxFuture<'a, Result<Recorded, ActionError>> {
        Box::pin(self.record_one(thing, function, change))
    }

    fn read<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
    ) -> BoxFuture<'a, Result<FunctionState, ActionError>> {
        Box::pin(self.get(thing, function))
    }

    fn settle<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        applied: bool,
        seen_version: u64,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<Settled, ActionError>> {
        Box::pin(async move {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(state_key(thing.as_str(), function)))
                .update_expression("SET #a = :applied")
                .condition_expression("#v = :seen")
                .expression_attribute_names("#a", "applied")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":applied", AttributeValue::Bool(applied))
                .expression_attribute_values(":seen", number(seen_version as i64))
                .build()
                .map_err(|e| build_error(thing, e))?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            let (now, later) = history.split_at(history.len().min(MAX_TRANSACTION_ITEMS - 1));
            for entry in now {
                items.push(self.put(thing, entry)?);
            }
            let settled = self.transact(thing, items).await?;
            if settled == Settled::Won {
                append_all(self, thing, later).await?;
            }
            Ok(settled)
        })
    }

    fn claim<'a>(
        &'a self,
        thing: &'a ThingName,
        window_start: i64,
        max: u32,
    ) -> BoxFuture<'a, Result<Claim, ActionError>> {
        Box::pin(async move {
            let items = claim_items(&self.table, thing, window_start, max)?;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Claim::Granted),
                Err(SdkError::ServiceError(e)) if !failed_conditions(e.err()).is_empty() => {
                    match failed_conditions(e.err()).as_slice() {
                        // Already counted in this window (by this or another function).
                        [true, ..] => Ok(Claim::Granted),
                        [false, true] => Ok(Claim::Exhausted),
                        _ => {
                            Err(self.error("TransactWriteItems", thing, SdkError::ServiceError(e)))
                        }
                    }
                }
                Err(e) => Err(self.error("TransactWriteItems", thing, e)),
            }
        })
    }

    fn append<'a>(
        &'a self,
        thing: &'a ThingName,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(append_all(self, thing, history))
    }
}

/// History entries: one PutItem for one, transactions of up to 100 for more.
async fn append_all(
    ledger: &DynamoLedger,
    thing: &ThingName,
    history: &[HistoryEntry],
) -> Result<(), ActionError> {
    if let [entry] = history {
        ledger
            .client
            .put_item()
            .table_name(&ledger.table)
            .set_item(Some(history_item(thing.as_str(), entry)))
            .send()
            .await
            .map_err(|e| ledger.error("PutItem", thing, e))?;
        return Ok(());
    }
    for chunk in history.chunks(MAX_TRANSACTION_ITEMS) {
        let items = chunk
            .iter()
            .map(|entry| ledger.put(thing, entry))
            .collect::<Result<Vec<_>, _>>()?;
        ledger.transact(thing, items).await?;
    }
    Ok(())
}
