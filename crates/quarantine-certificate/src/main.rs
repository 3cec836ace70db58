//! `quarantine-certificate`: the optional Lambda function that deactivates the X.509
//! certificates only the thing in violation uses (a certificate other things share is kept
//! ACTIVE and reported), records them in a thing attribute, and on release reactivates
//! exactly those. Triggered by SNS or SQS. The rules are in `mitigation::certificates`, the
//! registry calls in `mitigation_aws::certificates`;
//! configuration: docs/configuration.md.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mitigation_aws::lambda::run(mitigation::FunctionKind::Certificate).await
}
