//! `quarantine-group`: the Lambda function that adds a thing in violation to the static quarantine thing group. Triggered by SNS or SQS.
//! All the work is in the `mitigation` crate; configuration: docs/configuration.md.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mitigation_aws::lambda::run(mitigation::FunctionKind::ThingGroup).await
}
