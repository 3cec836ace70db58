//! AWS SDK clients for local endpoints (the stand-in or moto): static credentials, the test
//! region, and retries with a 1 ms initial backoff so that retry tests run fast.

use std::time::Duration;

use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::config::timeout::TimeoutConfig;
use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};

use crate::env::REGION;

/// How a test client retries and times out.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    pub max_attempts: u32,
    pub attempt_timeout: Option<Duration>,
}

impl ClientSettings {
    /// `max_attempts` attempts per call, no timeout.
    pub fn attempts(max_attempts: u32) -> ClientSettings {
        ClientSettings {
            max_attempts,
            attempt_timeout: None,
        }
    }

    pub fn attempt_timeout(mut self, timeout: Duration) -> ClientSettings {
        self.attempt_timeout = Some(timeout);
        self
    }

    fn retry(self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Duration::from_millis(1))
    }

    fn timeouts(self) -> TimeoutConfig {
        let builder = TimeoutConfig::builder();
        match self.attempt_timeout {
            Some(timeout) => builder.operation_attempt_timeout(timeout).build(),
            None => builder.build(),
        }
    }
}

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "local-static")
}

/// An IoT control-plane client on `endpoint`.
pub fn iot_client(endpoint: &str, settings: ClientSettings) -> aws_sdk_iot::Client {
    let config = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(settings.retry())
        .timeout_config(settings.timeouts())
        .build();
    aws_sdk_iot::Client::from_conf(config)
}

/// An IoT data-plane client on `endpoint`.
pub fn data_client(endpoint: &str, settings: ClientSettings) -> aws_sdk_iotdataplane::Client {
    let config = aws_sdk_iotdataplane::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(settings.retry())
        .timeout_config(settings.timeouts())
        .build();
    aws_sdk_iotdataplane::Client::from_conf(config)
}

/// A DynamoDB client on `endpoint` (moto's, for the quarantine ledger).
pub fn dynamodb_client(endpoint: &str, settings: ClientSettings) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(settings.retry())
        .timeout_config(settings.timeouts())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Shared SDK configuration on `endpoint` with one attempt per call: what the functions'
/// start-up builds its clients from (`mitigation_aws::startup::build_handler_on`).
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_iot::config::SharedCredentialsProvider::new(
            credentials(),
        ))
        .endpoint_url(endpoint)
        .retry_config(ClientSettings::attempts(1).retry())
        .build()
}
