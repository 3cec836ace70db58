//! `list`, `held`, `approve`, `protect` and `history`: the quarantine ledger for the operator
//! (`--ledger-table` or `LEDGER_TABLE`).

use aws_config::SdkConfig;
use mitigation::FunctionConfig;
use mitigation_aws::ledger::read;
use serde_json::Value;
use violation_core::ThingName;

use crate::act::Failure;

/// The quarantine group's attribute in which the stack names its ledger table
/// (infra/template.yaml).
pub const GROUP_LEDGER_ATTRIBUTE: &str = "quarantineLedgerTable";

/// The ledger table the quarantine group names, for when neither `--ledger-table` nor
/// `LEDGER_TABLE` is given: an operator's quarantine or release then goes through the same
/// ledger as the functions instead of around it. `Ok(None)`: the group names none (a stack
/// without the attribute, or no stack).
pub async fn table_of_group(sdk: &SdkConfig, group: &str) -> Result<Option<String>, String> {
    let out = aws_sdk_iot::Client::new(sdk)
        .describe_thing_group()
        .thing_group_name(group)
        .send()
        .await
        .map_err(|e| {
            format!(
                "DescribeThingGroup {group}: {}",
                mitigation_aws::errors::error_chain(&e)
            )
        })?;
    let named = out
        .thing_group_properties()
        .and_then(|p| p.attribute_payload())
        .and_then(|p| p.attributes())
        .and_then(|a| a.get(GROUP_LEDGER_ATTRIBUTE))
        .filter(|v| !v.is_empty());
    match named {
        None => Ok(None),
        Some(v) => mitigation::config::table_name(GROUP_LEDGER_ATTRIBUTE, v.clone())
            .map(Some)
            .map_err(|e| format!("thing group {group}: {e}")),
    }
}

fn table(config: &FunctionConfig) -> Result<&str, Failure> {
    config.ledger_table.as_deref().ok_or_else(|| {
        Failure::Usage("this command reads the ledger: give --ledger-table or LEDGER_TABLE".into())
    })
}

/// Every function state with a cause or in force; `held`: only those with a cause and not in
/// force (what the budget held).
async fn states(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    held: bool,
) -> Result<Vec<Value>, Failure> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let states = read::states(&client, table(config)?)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    Ok(states
        .into_iter()
        .filter(|s| !held || s["inForce"] == Value::Bool(false))
        .collect())
}

/// Every thing a function holds quarantined or has causes for (`held`: only the held ones),
/// with its causes.
pub async fn list(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    json: bool,
    held: bool,
) -> Result<(), Failure> {
    for state in &states(sdk, config, held).await? {
        if json {
            println!("{state}");
        } else {
            println!("{}", state_line(state));
        }
    }
    Ok(())
}

/// `dev-1 group in force: v-1 (detect-violation, by -, recorded 2026-...)`.
fn state_line(state: &Value) -> String {
    let causes: Vec<String> = state["causes"]
        .as_object()
        .map(|causes| {
            causes
                .iter()
                .map(|(id, c)| {
                    let recorded = c["recordedAt"].as_i64().map_or_else(
                        || "?".into(),
                        mitigation::ledger::time::format_rfc3339_millis,
                    );
                    let by = c["sender"].as_str().unwrap_or("-");
                    format!(
                        "{id} ({}, by {by}, recorded {recorded})",
                        c["kind"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let force = if state["inForce"] == Value::Bool(true) {
        "in force"
    } else {
        "not in force"
    };
    format!(
        "{} {} {force}: {}",
        state["thingName"].as_str().unwrap_or("?"),
        state["function"].as_str().unwrap_or("?"),
        if causes.is_empty() {
            "no cause".to_owned()
        } else {
            causes.join("; ")
        }
    )
}

/// Quarantine `things`, or with `all` every held thing, by hand.
pub async fn approve(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    things: &[ThingName],
    all: bool,
    reason: &str,
    json: bool,
) -> Result<(), Failure> {
    let things: Vec<ThingName> = if all {
        let mut names: Vec<ThingName> = states(sdk, config, true)
            .await?
            .iter()
            .filter_map(|s| {
                s["thingName"]
                    .as_str()
                    .and_then(|n| ThingName::parse(n).ok())
            })
            .collect();
        names.dedup();
        names
    } else {
        things.to_vec()
    };
    if things.is_empty() {
        println!("nothing is held");
        return Ok(());
    }
    let args = crate::ActArgs {
        things: things.iter().map(ToString::to_string).collect(),
        reason: reason.to_owned(),
        certificates: false,
        dry_run: false,
        json,
        force: false,
        verification_state: None,
        cause: None,
    };
    crate::act::run(
        violation_core::Action::Quarantine,
        &args,
        &things,
        config,
        Some(sdk.clone()),
    )
    .await
}

/// `protect` (with a reason) or `unprotect` (`None`) things in every function's place.
pub async fn protect(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    things: &[ThingName],
    reason: Option<&str>,
) -> Result<(), Failure> {
    let ledger = mitigation_aws::ledger::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(sdk),
        table(config)?,
    );
    let by = format!("quarantinectl:{}", crate::act::caller(Some(sdk)).await);
    for thing in things {
        ledger
            .set_protection(thing, reason.map(|r| (r, by.as_str())))
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        let done = if reason.is_some() {
            "protected"
        } else {
            "unprotected"
        };
        println!("{thing}: {done}");
    }
    Ok(())
}

/// The Device Defender violations among `thing`'s active causes, over every function.
pub async fn violations_of(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    thing: &ThingName,
) -> Result<Vec<String>, Failure> {
    use mitigation::FunctionKind;
    use mitigation::ledger::Ledger;
    let ledger = mitigation_aws::ledger::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(sdk),
        table(config)?,
    );
    let mut ids = Vec::new();
    for function in [
        FunctionKind::ThingGroup,
        FunctionKind::Shadow,
        FunctionKind::Certificate,
    ] {
        let state = ledger
            .read(thing, function)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        ids.extend(
            state
                .causes
                .into_values()
                .filter(|c| c.kind == violation_core::AlertSource::DetectViolation.as_str())
                .map(|c| c.id),
        );
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// PutVerificationStateOnViolation on each violation, with the operator's reason.
pub async fn mark_violations(
    sdk: &SdkConfig,
    ids: &[String],
    state: &str,
    reason: &str,
) -> Result<(), Failure> {
    let iot = aws_sdk_iot::Client::new(sdk);
    for id in ids {
        iot.put_verification_state_on_violation()
            .violation_id(id)
            .verification_state(aws_sdk_iot::types::VerificationState::from(state))
            .verification_state_description(reason)
            .send()
            .await
            .map_err(|e| {
                Failure::Failed(
                    mitigation_aws::classify("PutVerificationStateOnViolation", id, e).to_string(),
                )
            })?;
        println!("violation {id}: {state}");
    }
    Ok(())
}

/// The history of one thing, oldest first.
pub async fn history(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    thing: &ThingName,
    json: bool,
) -> Result<(), Failure> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let entries = read::history(&client, table(config)?, thing.as_str())
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    for entry in &entries {
        if json {
            println!("{entry}");
        } else {
            let text = |k: &str| entry[k].as_str().unwrap_or("").to_owned();
            let actions: Vec<&str> = entry["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            println!(
                "{} {} {} {} cause {} {}: {}{} (record {}, {}{})",
                text("at"),
                text("function"),
                text("asked"),
                text("outcome"),
                text("causeId"),
                text("cause"),
                text("reason"),
                if actions.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", actions.join(", "))
                },
                text("recordId"),
                text("delivery"),
                match text("caller").as_str() {
                    "" => String::new(),
                    caller => format!(", by {caller}"),
                }
            );
        }
    }
    Ok(())
}
