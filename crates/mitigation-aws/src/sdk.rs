//! The SDK set-up: the shared configuration (credentials, region, retries, timeouts,
//! endpoint), loaded once per process, and the IoT data-plane client on the account's
//! endpoint.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use mitigation::{ActionError, AwsSettings, RetryMode};

use crate::errors::classify;
use crate::https::{PreparedUse, prepared_https_client};

/// Load the shared SDK configuration once: credentials, region, retries, timeouts, and
/// endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IOT`,
/// `AWS_ENDPOINT_URL_IOT_DATA_PLANE`, or `settings.endpoint_url`).
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    sdk_config_loader(settings).load().await
}

/// The timeouts of every SDK call: `settings`' attempt and operation timeouts, and a connect
/// timeout of at most 2 s.
fn timeout_config(settings: &AwsSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(
            settings
                .attempt_timeout
                .min(std::time::Duration::from_secs(2)),
        )
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build()
}

/// What a function's init loads ([`load_sdk_config`] for Lambda): the same configuration, on
/// an HTTPS client whose TLS set-up is already under way on a thread of its own
/// ([`crate::https`]). With the credentials and region Lambda puts in the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`), those are taken from there
/// without building the rest of the default chains (profiles, web identity, ECS, IMDS),
/// which would only ever reach the environment first: that building is most of what loading
/// the configuration costs.
pub async fn load_function_sdk_config(settings: &AwsSettings) -> (SdkConfig, PreparedUse) {
    let timeouts = timeout_config(settings);
    let mut connector = HttpConnectorSettings::builder();
    connector.set_connect_timeout(timeouts.connect_timeout());
    connector.set_read_timeout(timeouts.read_timeout());
    let (client, prepared) = prepared_https_client(connector.build());
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut loader = sdk_config_loader(settings).http_client(client);
    if set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    (loader.load().await, prepared)
}

/// The standard AWS configuration chain (environment, profiles, SSO) with `settings`'
/// timeouts and endpoint; a command line adds its region or profile before loading it.
/// Retries are aws-config's own (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, the profile) unless
/// `settings` set them: then both come from `settings`, the unset one at the SDK's default.
pub fn sdk_config_loader(settings: &AwsSettings) -> ConfigLoader {
    let timeouts = timeout_config(settings);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if settings.max_attempts.is_some() || settings.retry_mode.is_some() {
        let retry = match settings.retry_mode {
            Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
            Some(RetryMode::Standard) | None => RetryConfig::standard(),
        };
        // The SDK's own default when only the mode is set.
        let attempts = settings
            .max_attempts
            .unwrap_or(RetryConfig::standard().max_attempts());
        loader = loader.retry_config(retry.with_max_attempts(attempts));
    }
    match &settings.endpoint_url {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
}

/// True when the data plane's endpoint is already set by configuration, so that
/// DescribeEndpoint is not needed.
pub fn data_plane_endpoint_configured(sdk: &SdkConfig) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    sdk.endpoint_url().is_some() || set("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
}

/// The account's data-plane endpoint (`iot:Data-ATS`), looked up once at start-up.
pub async fn describe_data_endpoint(iot: &aws_sdk_iot::Client) -> Result<String, ActionError> {
    let out = iot
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .map_err(|e| classify("DescribeEndpoint", "-", e))?;
    match out.endpoint_address() {
        Some(address) if !address.is_empty() => Ok(format!("https://{address}")),
        _ => Err(ActionError::retryable(
            "DescribeEndpoint",
            "-",
            "EmptyEndpoint",
            "DescribeEndpoint returned no endpointAddress",
        )
        .with_hint(
            "set IOT_DATA_ENDPOINT to the output of `aws iot describe-endpoint --endpoint-type iot:Data-ATS`",
        )),
    }
}

#[cfg(feature = "data-plane")]
/// A data-plane client on `endpoint` (or on the configured endpoint when `None`).
pub fn data_plane_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_iotdataplane::Client {
    let mut builder = aws_sdk_iotdataplane::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_iotdataplane::Client::from_conf(builder.build())
}
