//! `quarantine` and `release`: one mitigation request per thing, through the functions'
//! handler on the real adapters (or the dry-run handler), logged with who asked and why.

use aws_config::SdkConfig;
use mitigation::{
    ActionOutcome, FunctionConfig, FunctionKind, Handler, RecordOutcome, RecordReport,
    dry_run_handler, log_record,
    logging::{capped, capped_list},
    report::LOG_FIELD_MAX,
};
use serde_json::json;
use violation_core::{Action, ThingName};

use crate::ActArgs;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Usage or configuration: exit status 2.
    Usage(String),
    /// An action failed or a request was rejected: exit status 1.
    Failed(String),
}

/// The operator: the ARN of the credentials in use (STS GetCallerIdentity), which the
/// operator cannot choose; without an answer from STS (a dry run, an emulator without STS),
/// the local user name, said to be unverified in the log.
pub async fn caller(sdk: Option<&SdkConfig>) -> String {
    if let Some(sdk) = sdk {
        match aws_sdk_sts::Client::new(sdk)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(identity) => {
                if let Some(arn) = identity.arn() {
                    return arn.to_owned();
                }
            }
            Err(e) => tracing::warn!(
                error = %mitigation_aws::errors::error_chain(&e),
                "STS GetCallerIdentity failed: the operator is named by the local user name, unverified"
            ),
        }
    }
    operator()
}

/// The local user: `$USER`, `$LOGNAME`, else `id -un`.
pub fn operator() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|u| u.trim().to_owned())
        .find(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The mitigation request the functions accept, as quarantinectl sends it. Its time makes
/// each operator quarantine a cause of its own in the ledger.
pub fn request(action: Action, thing: &ThingName, reason: &str, user: &str) -> serde_json::Value {
    let now = mitigation::ledger::time::now_millis();
    json!({
        "id": format!("quarantinectl-{}-{thing}", action.as_str()),
        "thingName": thing.as_str(),
        "action": action.as_str(),
        "reason": reason,
        "source": format!("quarantinectl:{user}"),
        "time": mitigation::ledger::time::format_rfc3339_millis(now),
    })
}

/// A release of one cause (`release --cause ID`) names it in the request.
fn with_cause(mut request: serde_json::Value, cause: Option<&str>) -> serde_json::Value {
    if let (Some(id), Some(map)) = (cause, request.as_object_mut()) {
        map.insert("causeId".into(), json!(id));
    }
    request
}

/// The handlers a request goes through: with the ledger (`LEDGER_TABLE`) one per function,
/// each acting from its own place in it and with no budget (the operator is the authority);
/// else one performing them all.
async fn handlers(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
    sdk: Option<SdkConfig>,
    force: bool,
) -> Result<Vec<Handler>, Failure> {
    let Some(sdk) = sdk else {
        return Ok(vec![dry_run_handler(kinds, config)]);
    };
    let config = FunctionConfig {
        budget: None,
        ..config.clone()
    };
    Ok(mitigation_aws::build_per_function(kinds, &config, &sdk)
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?
        .into_iter()
        .map(|(_, handler)| handler.with_override_protection(force))
        .collect())
}

pub async fn run(
    action: Action,
    args: &ActArgs,
    things: &[ThingName],
    config: &FunctionConfig,
    sdk: Option<SdkConfig>,
) -> Result<(), Failure> {
    let mut kinds = vec![FunctionKind::ThingGroup, FunctionKind::Shadow];
    if args.certificates {
        kinds.push(FunctionKind::Certificate);
    }
    let user = caller(sdk.as_ref()).await;
    if args.cause.is_some() && (action != Action::Release || config.ledger_table.is_none()) {
        return Err(Failure::Usage(
            "--cause goes with release and the ledger (--ledger-table)".into(),
        ));
    }
    let marking = match (&args.verification_state, &sdk) {
        (Some(state), Some(sdk)) if action == Action::Release => {
            let mut violations = Vec::new();
            for thing in things {
                violations.extend(crate::ledger::violations_of(sdk, config, thing).await?);
            }
            Some((sdk.clone(), state.clone(), violations))
        }
        (Some(_), _) if action != Action::Release => {
            return Err(Failure::Usage(
                "--verification-state goes with release".into(),
            ));
        }
        _ => None,
    };
    let handlers = handlers(&kinds, config, sdk, args.force).await?;
    let names: Vec<&str> = things.iter().map(ThingName::as_str).collect();
    tracing::info!(
        operator = %capped(&user, LOG_FIELD_MAX),
        reason = %capped(&args.reason, LOG_FIELD_MAX),
        action = action.as_str(),
        things = %capped_list(names, ",", LOG_FIELD_MAX),
        certificates = args.certificates,
        disconnect = config.disconnect,
        dry_run = config.dry_run,
        "operator request"
    );
    let mut failed = Vec::new();
    for thing in things {
        let event = with_cause(
            request(action, thing, &args.reason, &user),
            args.cause.as_deref(),
        );
        let mut records = Vec::new();
        for handler in &handlers {
            let report = handler
                .handle(&event)
                .await
                .map_err(|e| Failure::Failed(format!("{thing}: {e}")))?;
            records.extend(report.records);
        }
        for record in &records {
            log_record(record);
            if args.json {
                println!("{}", record.to_json());
            } else {
                println!("{}", sentence(thing, action, record));
            }
            // Once per thing, however many of its functions failed.
            if matches!(
                record.outcome,
                RecordOutcome::Failed { .. } | RecordOutcome::Rejected(_)
            ) && failed.last() != Some(&thing.to_string())
            {
                failed.push(thing.to_string());
            }
        }
    }
    // Only once released: a violation marked benign does not fire again.
    if let (true, Some((sdk, state, violations))) = (failed.is_empty(), &marking) {
        crate::ledger::mark_violations(sdk, violations, state, &args.reason).await?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} of {} thing(s) not {}: {}",
            failed.len(),
            things.len(),
            match action {
                Action::Quarantine => "quarantined",
                Action::Release => "released",
            },
            failed.join(", ")
        )))
    }
}

/// `dev-1: quarantine done (thing-group done, disconnect done, shadow done)`.
fn sentence(thing: &ThingName, action: Action, record: &RecordReport) -> String {
    let actions: Vec<String> = record
        .actions
        .iter()
        .map(|a| match &a.outcome {
            ActionOutcome::Failed(e) => format!("{} failed: {e}", a.action),
            ActionOutcome::Kept { because, held_by } => format!(
                "{} kept ({}: {})",
                a.action,
                because.as_str(),
                held_by.join(", ")
            ),
            ActionOutcome::DoneKeeping { because, held_by } => format!(
                "{} done, some kept ({}: {})",
                a.action,
                because.as_str(),
                held_by.join(", ")
            ),
            other => format!("{} {}", a.action, other.as_str()),
        })
        .collect();
    let mut line = format!("{thing}: {} {}", action.as_str(), record.outcome.as_str());
    if let RecordOutcome::Rejected(_) = &record.outcome {
        line.push_str(&format!(": {}", record.verdict.reason()));
    }
    if !actions.is_empty() {
        line.push_str(&format!(" ({})", actions.join("; ")));
    }
    line
}
