//! The Lambda entry point shared by the function binaries.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use mitigation::handler::Deadline;
use mitigation::metrics::MetricsSink;
use mitigation::{FunctionConfig, FunctionKind};
use serde_json::Value;

use crate::startup::build_function;
use crate::warm_up::{WARM_UP_DEADLINE, warm_up};

/// Read the configuration, build the clients once and open their connections, then serve
/// events until Lambda stops the process. Logs are JSON when the function's log format is JSON.
pub async fn run(kind: FunctionKind) -> Result<(), lambda_runtime::Error> {
    mitigation::init_function_logging();
    let config = FunctionConfig::from_env(kind.into()).inspect_err(|e| {
        tracing::error!(error = %e, variable = e.variable, "invalid configuration");
    })?;
    let function = build_function(&[kind], &config).await.inspect_err(|e| {
        tracing::error!(error = %e, "start-up failed");
    })?;
    let warmed = warm_up(&function.warm_up, WARM_UP_DEADLINE).await;
    tracing::info!(
        warmed = ?warmed.warmed,
        unanswered = ?warmed.unanswered,
        took_ms = warmed.took.as_secs_f64() * 1000.0,
        tls_prepared = function.prepared_tls.taken(),
        "connections opened during init"
    );
    let handler = function.handler;
    tracing::info!(
        action = kind.mitigation().name(),
        dry_run = config.dry_run,
        release_on_clear = config.policy.release_on_clear,
        quarantine_group = %config.quarantine_group,
        shadow_name = config.shadow_name.as_deref().unwrap_or(""),
        max_concurrency = config.max_concurrency,
        disconnect = config.disconnect && kind == FunctionKind::ThingGroup,
        ledger_table = config.ledger_table.as_deref().unwrap_or(""),
        certificate_record_attribute = if kind == FunctionKind::Certificate {
            config.certificate_record_attribute.as_str()
        } else {
            ""
        },
        certificate_action = if kind == FunctionKind::Certificate {
            config.certificate_action.as_str()
        } else {
            ""
        },
        quarantine_policy = config.quarantine_policy.as_deref().unwrap_or(""),
        "ready"
    );
    // The Function dimension is the deployed function's name, as in its alarms.
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| kind.mitigation().name().to_owned());
    let handler = Arc::new(
        handler
            .with_release_sources(config.release_sources.clone())
            .with_metrics(MetricsSink {
                namespace: config.metrics_namespace.clone(),
                function,
            }),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        let deadline = Deadline(Some(event.context.deadline()));
        async move {
            handler
                .handle_request(event.payload, deadline, &event.context.request_id)
                .await
        }
    }))
    .await
}
