//! `stack-setup`: the Lambda function behind the CloudFormation custom resource
//! `Custom::QuarantineSetup` (attach the quarantine policy to the Quarantine group, detach it
//! on stack deletion, optionally turn on fleet indexing). All the work is in the library;
//! see docs/stack-setup.md.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use stack_setup::Handler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mitigation::init_function_logging();
    let handler = Arc::new(Handler::from_env().await.inspect_err(|e| {
        tracing::error!(error = %e, "start-up failed: no TLS client for the answers");
    })?);
    tracing::info!("ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle_event(event).await }
    }))
    .await
}
