//! Configuration from environment variables, parsed once at start-up. Every bad value is
//! reported with the variable's name, the value and what is expected.

use std::time::Duration;

use violation_core::{DecisionPolicy, is_iot_name};

use crate::ledger::Budget;
use crate::settings::{self, Reader};
use crate::trust::{ProtectedThings, ReleaseSources};

/// Default static thing group that carries the deny policy.
pub const DEFAULT_QUARANTINE_GROUP: &str = "Quarantine";
/// Default number of records of one batch processed at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

/// How the SDK retries a failed call before the record counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    Standard,
    /// Standard plus client-side rate limiting once throttled.
    Adaptive,
}

/// Settings for the AWS SDK clients. Retries are aws-config's (its environment variables
/// and the profile) unless `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE` or a tool's `--max-attempts`
/// set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_MAX_ATTEMPTS`: attempts per call including the first.
    pub max_attempts: Option<u32>,
    /// `AWS_RETRY_MODE`.
    pub retry_mode: Option<RetryMode>,
    /// `AWS_ATTEMPT_TIMEOUT_MS`: one attempt's limit (default 2000).
    pub attempt_timeout: Duration,
    /// `AWS_OPERATION_TIMEOUT_MS`: one call's limit, retries included (default 10000).
    pub operation_timeout: Duration,
    /// An endpoint for every service (the tools' `--endpoint-url`); the standard
    /// `AWS_ENDPOINT_URL*` variables are read by the SDK itself.
    pub endpoint_url: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            max_attempts: None,
            retry_mode: None,
            attempt_timeout: Duration::from_millis(2000),
            operation_timeout: Duration::from_millis(10_000),
            endpoint_url: None,
        }
    }
}

/// Everything the functions and replay are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub policy: DecisionPolicy,
    /// `DRY_RUN`: log decisions, call nothing.
    pub dry_run: bool,
    /// `MAX_CONCURRENCY`: records of one batch processed at once.
    pub max_concurrency: usize,
    /// `QUARANTINE_GROUP`: the static thing group (quarantine-group).
    pub quarantine_group: String,
    /// `SHADOW_NAME`: a named shadow instead of the classic one (quarantine-shadow).
    pub shadow_name: Option<String>,
    /// `IOT_DATA_ENDPOINT`: the account's data-plane endpoint (quarantine-shadow, and
    /// quarantine-group when it disconnects); resolved with DescribeEndpoint at start-up
    /// when absent.
    pub iot_data_endpoint: Option<String>,
    /// `DISCONNECT`: after adding a thing to the quarantine group, cut its live MQTT
    /// connection (DeleteConnection) so its next connect is authorized under the quarantine
    /// policy (quarantine-group; default true).
    pub disconnect: bool,
    /// `VERIFY_VIOLATION`: before quarantining on a Detect in-alarm, confirm with
    /// ListActiveViolations that the violation is active for that thing (default false).
    pub verify_violation: bool,
    /// `CERTIFICATE_RECORD_ATTRIBUTE`: the thing attribute in which quarantine-certificate
    /// records the certificates it deactivated (default `quarantineDeactivatedCerts`).
    pub certificate_record_attribute: String,
    /// `CERTIFICATE_ACTION`: what quarantine-certificate does to the certificates only the
    /// thing uses (default: attach the quarantine policy to them).
    pub certificate_action: CertificateAction,
    /// `QUARANTINE_POLICY`: the quarantine IoT policy's name, which `attach-policy` attaches
    /// to the thing's own certificates (required for it), stack-setup to the quarantine
    /// group, and quarantinectl doctor looks for on the group.
    pub quarantine_policy: Option<String>,
    /// `CERTIFICATE_POLICY_ATTRIBUTE`: the thing attribute in which quarantine-certificate
    /// records the certificates it attached the quarantine policy to.
    pub certificate_policy_attribute: String,
    /// `FANOUT_QUEUE_URL`: the function's own SQS queue; an audit's devices are sent there
    /// as mitigation requests of their own instead of being mitigated in one invocation.
    pub fan_out_queue_url: Option<String>,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the functions' EMF figures
    /// (default `IotQuarantine`).
    pub metrics_namespace: String,
    pub stack: StackSettings,
    pub doctor: DoctorSettings,
    /// `LEDGER_TABLE`: the DynamoDB table of the quarantine ledger; none: no ledger.
    pub ledger_table: Option<String>,
    /// `MIN_QUARANTINE_MINUTES`: a clear sooner than this after its cause was recorded does
    /// not release (default 10 minutes).
    pub min_quarantine: Duration,
    /// `MAX_NEW_QUARANTINES` per `BUDGET_WINDOW_MINUTES` (100 per 60 minutes); none for an
    /// operator's own requests (quarantinectl).
    pub budget: Option<Budget>,
    /// `MAX_THINGS_PER_RECORD`: with the ledger, a record naming more things is held (100).
    pub max_things_per_record: usize,
    /// `RELEASE_SOURCES`: the mitigation request sources trusted to release (none by default).
    pub release_sources: ReleaseSources,
    /// `PROTECTED_THINGS`: things never quarantined automatically (names, `prefix*`).
    pub protected_things: ProtectedThings,
    pub aws: AwsSettings,
}

/// What stack-setup acts on and whom it answers, from the template, never from the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSettings {
    /// `QUARANTINE_GROUP_ARN`: the group the quarantine policy is attached to.
    pub quarantine_group_arn: Option<ThingGroupArn>,
    /// `STACK_ID`: the only stack whose requests are answered.
    pub stack_id: Option<String>,
    /// `TEST_ONLY_RESPONSE_URL_PREFIX`: a `ResponseURL` starting with this is accepted too
    /// (the tests' local receiver). The template never sets it.
    pub test_response_url_prefix: Option<String>,
}

/// A thing group ARN, `arn:PARTITION:iot:REGION:ACCOUNT:thinggroup/NAME`, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingGroupArn {
    pub arn: String,
    pub name: String,
}

/// What `quarantinectl doctor` inspects besides the group and its policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorSettings {
    /// `DEVICE_POLICY_NAME`: the devices' own IoT policy.
    pub device_policy: Option<String>,
    /// `DEAD_LETTER_QUEUE_URLS`: the queues whose depth is reported.
    pub dead_letter_queues: Vec<String>,
}

/// Default thing attribute that records the certificates quarantine-certificate deactivated.
pub const DEFAULT_CERTIFICATE_RECORD_ATTRIBUTE: &str = "quarantineDeactivatedCerts";
/// Default thing attribute that records the certificates quarantine-certificate attached the
/// quarantine policy to.
pub const DEFAULT_CERTIFICATE_POLICY_ATTRIBUTE: &str = "quarantinePolicyCerts";

/// What quarantine-certificate does to the certificates that only the thing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateAction {
    /// Attach the quarantine policy to them: it binds every connection made with the
    /// certificate, whatever its client id; a release detaches it.
    #[default]
    AttachPolicy,
    /// Deactivate them: no connection at all; a release reactivates them.
    Deactivate,
}

impl CertificateAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateAction::AttachPolicy => "attach-policy",
            CertificateAction::Deactivate => "deactivate",
        }
    }
}

impl Default for FunctionConfig {
    fn default() -> Self {
        FunctionConfig {
            policy: DecisionPolicy {
                quarantine_group: Some(DEFAULT_QUARANTINE_GROUP.to_owned()),
                ..DecisionPolicy::default()
            },
            dry_run: false,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            quarantine_group: DEFAULT_QUARANTINE_GROUP.to_owned(),
            shadow_name: None,
            iot_data_endpoint: None,
            disconnect: true,
            verify_violation: false,
            certificate_record_attribute: DEFAULT_CERTIFICATE_RECORD_ATTRIBUTE.to_owned(),
            certificate_action: CertificateAction::default(),
            quarantine_policy: None,
            certificate_policy_attribute: DEFAULT_CERTIFICATE_POLICY_ATTRIBUTE.to_owned(),
            fan_out_queue_url: None,
            metrics_namespace: crate::metrics::DEFAULT_NAMESPACE.to_owned(),
            stack: StackSettings::default(),
            doctor: DoctorSettings::default(),
            ledger_table: None,
            min_quarantine: Duration::from_secs(600),
            budget: Some(Budget {
                max_new: 100,
                window_ms: 3_600_000,
            }),
            max_things_per_record: 100,
            release_sources: ReleaseSources::default(),
            protected_things: ProtectedThings::default(),
            aws: AwsSettings::default(),
        }
    }
}

impl FunctionConfig {
    /// The settings `reader` reads, from the process environment.
    pub fn from_env(reader: Reader) -> Result<Self, ConfigError> {
        settings::configure(reader, |name| std::env::var(name).ok())
    }

    /// Every setting, read through `lookup`. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        settings::configure_all(lookup)
    }
}

impl AwsSettings {
    /// The SDK settings of `reader`, from the process environment.
    pub fn from_env(reader: Reader) -> Result<Self, ConfigError> {
        FunctionConfig::from_env(reader).map(|c| c.aws)
    }
}

pub(crate) fn bad(
    variable: &'static str,
    value: String,
    problem: impl Into<String>,
) -> ConfigError {
    ConfigError {
        variable,
        value,
        problem: problem.into(),
    }
}

pub(crate) fn parse_bool(variable: &'static str, value: String) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(bad(variable, value, "expected true or false")),
    }
}

pub(crate) fn parse_number(
    variable: &'static str,
    value: String,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            variable,
            value,
            format!("expected a whole number from {min} to {max}"),
        )),
    }
}

/// A 12-digit AWS account id.
pub(crate) fn account_id(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let id = value.trim();
    if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(variable, value, "expected a 12-digit AWS account id"));
    }
    Ok(id.to_owned())
}

/// Milliseconds, 1 to 900000 (Lambda's 15 minutes).
pub(crate) fn millis(variable: &'static str, value: String) -> Result<Duration, ConfigError> {
    parse_number(variable, value, 1, 900_000).map(Duration::from_millis)
}

pub(crate) fn retry_mode(variable: &'static str, value: String) -> Result<RetryMode, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "standard" => Ok(RetryMode::Standard),
        "adaptive" => Ok(RetryMode::Adaptive),
        _ => Err(bad(variable, value, "expected standard or adaptive")),
    }
}

pub(crate) fn certificate_action(
    variable: &'static str,
    value: String,
) -> Result<CertificateAction, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "attach-policy" => Ok(CertificateAction::AttachPolicy),
        "deactivate" => Ok(CertificateAction::Deactivate),
        _ => Err(bad(variable, value, "expected attach-policy or deactivate")),
    }
}

/// An IoT policy name: 1 to 128 of `[a-zA-Z0-9_+=,.@-]`.
pub(crate) fn policy_name(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        let problem = "expected 1 to 128 letters, digits or any of _+=,.@-";
        return Err(bad(variable, value, problem));
    }
    Ok(name.to_owned())
}

/// Thing group and shadow names: 1 to `max_len` of `[a-zA-Z0-9:_-]` ([`is_iot_name`]).
pub(crate) fn iot_name(
    variable: &'static str,
    value: String,
    max_len: usize,
) -> Result<String, ConfigError> {
    let name = value.trim();
    if !is_iot_name(name, max_len) {
        let problem = format!("expected 1 to {max_len} letters, digits, ':', '_' or '-'");
        return Err(bad(variable, value, problem));
    }
    Ok(name.to_owned())
}

/// Audit check names, comma-separated: `DEVICE_CERTIFICATE_SHARED_CHECK, ...`.
pub(crate) fn audit_checks(
    variable: &'static str,
    value: String,
) -> Result<Vec<String>, ConfigError> {
    let checks: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let valid = |c: &String| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if checks.is_empty() || !checks.iter().all(valid) {
        let problem =
            "expected audit check names such as DEVICE_CERTIFICATE_SHARED_CHECK, comma-separated";
        return Err(bad(variable, value, problem));
    }
    Ok(checks)
}

/// A CloudWatch dimension name: 1 to 255 printable characters, not starting with ':'.
pub(crate) fn dimension_name(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    if name.len() > 255 || name.starts_with(':') || name.chars().any(char::is_control) {
        return Err(bad(variable, value, "expected a CloudWatch dimension name"));
    }
    Ok(name.to_owned())
}

/// An SQS queue URL: `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` (or `http://` for an
/// emulator).
pub(crate) fn queue_url(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let v = value.trim();
    let scheme = v.starts_with("https://") || v.starts_with("http://");
    if !scheme || v.contains(char::is_whitespace) || v.matches('/').count() < 4 {
        return Err(bad(
            variable,
            value,
            "expected an SQS queue URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME",
        ));
    }
    Ok(v.to_owned())
}

/// A CloudWatch namespace: 1 to 255 of letters, digits and `.-_/#:`, not `AWS/...`.
pub(crate) fn namespace(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    let valid = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if name.len() > 255 || name.starts_with("AWS/") || !name.chars().all(valid) {
        return Err(bad(
            variable,
            value,
            "expected a CloudWatch namespace (not AWS/...)",
        ));
    }
    Ok(name.to_owned())
}

/// Thing attribute names: 1 to 128 of `[a-zA-Z0-9_.,@/:#-]`.
pub(crate) fn attribute_name(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    let valid = |c: char| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c);
    if name.len() > 128 || !name.chars().all(valid) {
        let problem = "expected 1 to 128 letters, digits or any of _.,@/:#-";
        return Err(bad(variable, value, problem));
    }
    Ok(name.to_owned())
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:thinggroup/NAME`.
pub(crate) fn thing_group_arn(
    variable: &'static str,
    value: String,
) -> Result<ThingGroupArn, ConfigError> {
    let arn = value.trim();
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let name = match parts.as_slice() {
        ["arn", partition, "iot", region, account, resource]
            if !partition.is_empty() && !region.is_empty() && account.len() == 12 =>
        {
            resource.strip_prefix("thinggroup/")
        }
        _ => None,
    };
    match name {
        Some(name) if iot_name(variable, name.to_owned(), 128).is_ok() => Ok(ThingGroupArn {
            arn: arn.to_owned(),
            name: name.to_owned(),
        }),
        _ => Err(bad(
            variable,
            value,
            "expected a thing group ARN, arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME",
        )),
    }
}

/// `arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/ID`.
pub(crate) fn stack_id(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let id = value.trim();
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    let valid = match parts.as_slice() {
        ["arn", _, "cloudformation", _, account, resource] => {
            account.len() == 12
                && resource
                    .strip_prefix("stack/")
                    .and_then(|r| r.split_once('/'))
                    .is_some_and(|(name, guid)| !name.is_empty() && !guid.is_empty())
        }
        _ => false,
    };
    if !valid || id.contains(char::is_whitespace) {
        return Err(bad(
            variable,
            value,
            "expected a stack id, arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID",
        ));
    }
    Ok(id.to_owned())
}

/// An `http://` or `https://` URL prefix.
pub(crate) fn url_prefix(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let v = value.trim();
    let scheme = v.starts_with("https://") || v.starts_with("http://");
    if !scheme || v.contains(char::is_whitespace) {
        return Err(bad(
            variable,
            value,
            "expected an http:// or https:// URL prefix",
        ));
    }
    Ok(v.to_owned())
}

/// A DynamoDB table name: 3 to 255 of letters, digits, `_`, `-` and `.`.
pub fn table_name(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    let valid = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if !(3..=255).contains(&name.len()) || !name.chars().all(valid) {
        let problem = "expected a DynamoDB table name: 3 to 255 letters, digits or any of _-.";
        return Err(bad(variable, value, problem));
    }
    Ok(name.to_owned())
}

/// `https://` is added to a bare host name such as `abc123-ats.iot.eu-west-1.amazonaws.com`.
pub(crate) fn endpoint(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.contains(char::is_whitespace) {
        return Err(bad(variable, value, "expected a host name or URL"));
    }
    if v.starts_with("https://") || v.starts_with("http://") {
        Ok(v.trim_end_matches('/').to_owned())
    } else if v.contains("://") {
        Err(bad(variable, value, "expected an http:// or https:// URL"))
    } else {
        Ok(format!("https://{}", v.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<FunctionConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FunctionConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        assert_eq!(config(&[]), Ok(FunctionConfig::default()));
        assert_eq!(FunctionConfig::default().quarantine_group, "Quarantine");
        assert!(
            FunctionConfig::default().disconnect,
            "DISCONNECT is on by default"
        );
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("RELEASE_ON_CLEAR", "TRUE"),
            ("SECURITY_PROFILE_FILTER", "A,B"),
            ("BEHAVIOR_FILTER", "MessagesPub"),
            ("METRIC_FILTER", " aws:num-messages-sent "),
            ("DRY_RUN", "1"),
            ("MAX_CONCURRENCY", "4"),
            ("QUARANTINE_GROUP", "Isolated"),
            ("SHADOW_NAME", "security"),
            ("IOT_DATA_ENDPOINT", "abc-ats.iot.eu-west-1.amazonaws.com"),
            ("AWS_MAX_ATTEMPTS", "5"),
            ("AWS_RETRY_MODE", "adaptive"),
            ("AWS_ATTEMPT_TIMEOUT_MS", "700"),
            ("AWS_OPERATION_TIMEOUT_MS", "3000"),
            ("DISCONNECT", "false"),
            ("VERIFY_VIOLATION", "on"),
            (
                "AUDIT_CHECKS",
                "DEVICE_CERTIFICATE_SHARED_CHECK, CONFLICTING_CLIENT_IDS_CHECK",
            ),
            ("THING_DIMENSION", "DeviceName"),
            ("CERTIFICATE_RECORD_ATTRIBUTE", "deactivated"),
            ("CERTIFICATE_ACTION", " Deactivate "),
            ("QUARANTINE_POLICY", "stack-quarantine"),
            ("CERTIFICATE_POLICY_ATTRIBUTE", "policyCerts"),
            (
                "FANOUT_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
            ),
        ])
        .expect("valid");
        assert!(c.policy.release_on_clear && c.dry_run);
        assert!(c.policy.security_profiles.allows(Some("B")));
        assert!(!c.policy.security_profiles.allows(Some("C")));
        assert!(c.policy.metrics.allows(Some("aws:num-messages-sent")));
        assert!(c.policy.behaviors.is_restricted());
        assert_eq!(c.max_concurrency, 4);
        assert_eq!(c.quarantine_group, "Isolated");
        assert_eq!(c.shadow_name.as_deref(), Some("security"));
        assert_eq!(
            c.iot_data_endpoint.as_deref(),
            Some("https://abc-ats.iot.eu-west-1.amazonaws.com")
        );
        assert_eq!(c.aws.max_attempts, Some(5));
        assert_eq!(c.aws.retry_mode, Some(RetryMode::Adaptive));
        assert_eq!(c.aws.attempt_timeout, Duration::from_millis(700));
        assert_eq!(c.aws.operation_timeout, Duration::from_millis(3000));
        assert!(!c.disconnect && c.verify_violation);
        assert_eq!(
            c.policy.audit_checks,
            [
                "DEVICE_CERTIFICATE_SHARED_CHECK",
                "CONFLICTING_CLIENT_IDS_CHECK"
            ]
        );
        assert_eq!(c.policy.thing_dimension, "DeviceName");
        assert_eq!(c.certificate_record_attribute, "deactivated");
        assert_eq!(c.certificate_action, CertificateAction::Deactivate);
        assert_eq!(c.quarantine_policy.as_deref(), Some("stack-quarantine"));
        assert_eq!(c.certificate_policy_attribute, "policyCerts");
        assert_eq!(
            c.fan_out_queue_url.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/q")
        );
    }

    #[test]
    fn the_stack_s_own_settings_are_typed() {
        let c = config(&[
            ("QUARANTINE_POLICY", " s-quarantine "),
            (
                "QUARANTINE_GROUP_ARN",
                "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine",
            ),
            (
                "STACK_ID",
                "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/0f6b8c70",
            ),
            ("TEST_ONLY_RESPONSE_URL_PREFIX", "http://127.0.0.1:"),
            ("DEVICE_POLICY_NAME", "fleet-device"),
            (
                "DEAD_LETTER_QUEUE_URLS",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/a, ,https://sqs.eu-west-1.amazonaws.com/123456789012/b",
            ),
        ])
        .expect("valid");
        assert_eq!(c.quarantine_policy.as_deref(), Some("s-quarantine"));
        let group = c.stack.quarantine_group_arn.expect("group");
        assert_eq!(group.name, "Quarantine");
        assert!(group.arn.ends_with(":thinggroup/Quarantine"));
        assert!(
            c.stack
                .stack_id
                .expect("stack")
                .ends_with("stack/s/0f6b8c70")
        );
        assert_eq!(
            c.stack.test_response_url_prefix.as_deref(),
            Some("http://127.0.0.1:")
        );
        assert_eq!(c.doctor.device_policy.as_deref(), Some("fleet-device"));
        assert_eq!(c.doctor.dead_letter_queues.len(), 2);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("RELEASE_ON_CLEAR", "maybe")]).expect_err("bad bool");
        assert_eq!(err.variable, "RELEASE_ON_CLEAR");
        assert_eq!(
            err.to_string(),
            "invalid configuration: RELEASE_ON_CLEAR=\"maybe\": expected true or false"
        );
        for (var, value) in [
            ("MAX_CONCURRENCY", "0"),
            ("MAX_CONCURRENCY", "ten"),
            ("QUARANTINE_GROUP", "Quarantine group"),
            ("SHADOW_NAME", "a/b"),
            ("IOT_DATA_ENDPOINT", "ftp://x"),
            ("AWS_MAX_ATTEMPTS", "99"),
            ("AWS_RETRY_MODE", "legacy"),
            ("AWS_ATTEMPT_TIMEOUT_MS", "-1"),
            ("DISCONNECT", "sometimes"),
            ("AUDIT_CHECKS", "SHARED CHECK"),
            ("AUDIT_CHECKS", ", ,"),
            ("CERTIFICATE_RECORD_ATTRIBUTE", "a b"),
            ("CERTIFICATE_ACTION", "revoke"),
            ("QUARANTINE_POLICY", "a policy"),
            ("QUARANTINE_POLICY", "p*"),
            ("CERTIFICATE_POLICY_ATTRIBUTE", "a b"),
            ("FANOUT_QUEUE_URL", "my-queue"),
            ("QUARANTINE_POLICY", "a policy"),
            ("QUARANTINE_GROUP_ARN", "Quarantine"),
            (
                "QUARANTINE_GROUP_ARN",
                "arn:aws:iot:us-east-1:123456789012:thing/Quarantine",
            ),
            (
                "QUARANTINE_GROUP_ARN",
                "arn:aws:iot:us-east-1:1234:thinggroup/Q",
            ),
            (
                "QUARANTINE_GROUP_ARN",
                "arn:aws:iot:us-east-1:123456789012:thinggroup/",
            ),
            ("STACK_ID", "s"),
            (
                "STACK_ID",
                "arn:aws:cloudformation:us-east-1:123456789012:stack/s",
            ),
            ("TEST_ONLY_RESPONSE_URL_PREFIX", "127.0.0.1:80"),
            (
                "DEAD_LETTER_QUEUE_URLS",
                "https://sqs.us-east-1.amazonaws.com/1/a,b",
            ),
            ("LEDGER_TABLE", "a b"),
            ("LEDGER_TABLE", "ab"),
            ("MIN_QUARANTINE_MINUTES", "-1"),
            ("MAX_NEW_QUARANTINES", "0"),
            ("BUDGET_WINDOW_MINUTES", "0"),
            ("MAX_THINGS_PER_RECORD", "0"),
        ] {
            assert_eq!(
                config(&[(var, value)]).map_err(|e| e.variable),
                Err(var),
                "{var}={value}"
            );
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(
            config(&[
                ("QUARANTINE_GROUP", ""),
                ("SHADOW_NAME", " "),
                ("DRY_RUN", "")
            ]),
            Ok(FunctionConfig::default())
        );
    }
}
