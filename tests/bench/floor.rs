//! `lambda-floor`: the benchmark's floor. The functions' runtime (tokio, lambda_runtime, the
//! default tracing subscriber) answering every event with an empty partial batch response,
//! without any AWS client or call: what init and an invocation cost before our code.

use aws_lambda_events::sqs::SqsBatchResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(SqsBatchResponse::default())
    }))
    .await
}
