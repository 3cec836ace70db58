//! The SDK configuration: the standard AWS chain (environment, profiles, SSO), with the
//! command line's --region, --profile and --endpoint-url on top, and the functions' retry
//! and timeout settings.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use mitigation::{AwsSettings, RetryMode};

/// Load the configuration once. Fails (a configuration error) when no region is known.
pub async fn load(
    settings: &AwsSettings,
    region: Option<String>,
    profile: Option<String>,
) -> Result<SdkConfig, String> {
    let retry = match settings.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    }
    .with_max_attempts(settings.max_attempts);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.attempt_timeout.min(Duration::from_secs(2)))
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(
            "no AWS region: pass --region, set AWS_REGION, or give the profile a region".into(),
        );
    }
    Ok(sdk)
}
