//! `quarantine-shadow`: the Lambda function that sets the desired `quarantine` flag in a thing's shadow. Triggered by SNS or SQS.
//! All the work is in the `mitigation` crate; configuration: docs/configuration.md.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mitigation_aws::lambda::run(mitigation::FunctionKind::Shadow).await
}
