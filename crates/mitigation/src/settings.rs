//! Every setting, declared once. The functions' configuration ([`FunctionConfig`]), the
//! flags of replay and quarantinectl, the configuration reference (docs/configuration.md) and
//! the checks of the template's and the crates' environment blocks all come from [`SETTINGS`]:
//! a new setting is one entry here plus its use.

use std::fmt::Write as _;
use std::time::Duration;

use violation_core::{NameFilter, SecurityHubProducts};

use crate::config::{self, ConfigError, FunctionConfig};
use crate::trust::{ProtectedThings, ReleaseSources};

/// A program that reads settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Group,
    Shadow,
    Certificate,
    StackSetup,
    Replay,
    Quarantinectl,
}

impl Reader {
    pub const ALL: [Reader; 6] = [
        Reader::Group,
        Reader::Shadow,
        Reader::Certificate,
        Reader::StackSetup,
        Reader::Replay,
        Reader::Quarantinectl,
    ];

    /// The binary's name (the template's `BuildProperties: Binary`).
    pub fn binary(self) -> &'static str {
        match self {
            Reader::Group => "quarantine-group",
            Reader::Shadow => "quarantine-shadow",
            Reader::Certificate => "quarantine-certificate",
            Reader::StackSetup => "stack-setup",
            Reader::Replay => "replay",
            Reader::Quarantinectl => "quarantinectl",
        }
    }

    /// Deployed as a Lambda function (by the template).
    pub fn is_function(self) -> bool {
        !matches!(self, Reader::Replay | Reader::Quarantinectl)
    }
}

/// The three mitigating functions, replay and quarantinectl.
const MITIGATORS: &[Reader] = &[
    Reader::Group,
    Reader::Shadow,
    Reader::Certificate,
    Reader::Replay,
    Reader::Quarantinectl,
];
/// The three functions and replay: the settings that shape decisions, which quarantinectl
/// deliberately ignores (an operator's request is acted on as asked).
const DECIDERS: &[Reader] = &[
    Reader::Group,
    Reader::Shadow,
    Reader::Certificate,
    Reader::Replay,
];
const FUNCTIONS: &[Reader] = &[Reader::Group, Reader::Shadow, Reader::Certificate];
const EVERYONE: &[Reader] = &Reader::ALL;

/// A setting's value when the variable is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value (parsing it gives the default configuration).
    Value(&'static str),
    /// No value; the text says what happens then.
    Unset(&'static str),
}

/// The command-line flag of a setting, on the tools that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// No flag: environment only.
    None,
    /// `--NAME VALUE`.
    Value {
        long: &'static str,
        value_name: &'static str,
    },
    /// `--NAME` alone sets the variable to `sets`.
    Switch {
        long: &'static str,
        sets: &'static str,
    },
}

/// Parses a value into the configuration; `None`: read by another library as it documents
/// (the AWS SDK, tracing) and not checked here.
pub type Parser = Option<fn(&mut FunctionConfig, &'static str, String) -> Result<(), ConfigError>>;

/// One setting.
#[derive(Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: DefaultValue,
    /// One line for the reference and `--help`.
    pub doc: &'static str,
    pub read_by: &'static [Reader],
    /// The template sets it on every Lambda function that reads it (and on no other).
    pub in_template: bool,
    pub flag: Flag,
    pub parser: Parser,
}

impl Setting {
    pub fn is_read_by(&self, reader: Reader) -> bool {
        self.read_by.contains(&reader)
    }
}

/// Every setting, in the order of the reference.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "DRY_RUN",
        default: DefaultValue::Value("false"),
        doc: "Decide and log, call nothing.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Switch {
            long: "dry-run",
            sets: "true",
        },
        parser: Some(|c, name, v| {
            c.dry_run = config::parse_bool(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "RELEASE_ON_CLEAR",
        default: DefaultValue::Value("false"),
        doc: "Release a thing when its alarm clears and no other violation of it is active. Device-reported metrics then decide a release.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Switch {
            long: "release-on-clear",
            sets: "true",
        },
        parser: Some(|c, name, v| {
            c.policy.release_on_clear = config::parse_bool(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "SECURITY_PROFILE_FILTER",
        default: DefaultValue::Unset("every security profile"),
        doc: "Act only on Detect violations of these security profiles, comma-separated.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "security-profile-filter",
            value_name: "NAMES",
        },
        parser: Some(|c, _, v| {
            c.policy.security_profiles = NameFilter::from_comma_list(&v);
            Ok(())
        }),
    },
    Setting {
        name: "BEHAVIOR_FILTER",
        default: DefaultValue::Unset("every behavior"),
        doc: "Act only on Detect violations of these behaviors, comma-separated.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "behavior-filter",
            value_name: "NAMES",
        },
        parser: Some(|c, _, v| {
            c.policy.behaviors = NameFilter::from_comma_list(&v);
            Ok(())
        }),
    },
    Setting {
        name: "METRIC_FILTER",
        default: DefaultValue::Unset("every metric"),
        doc: "Act only on Detect violations of these metrics, comma-separated (e.g. aws:num-messages-sent).",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "metric-filter",
            value_name: "NAMES",
        },
        parser: Some(|c, _, v| {
            c.policy.metrics = NameFilter::from_comma_list(&v);
            Ok(())
        }),
    },
    Setting {
        name: "AUDIT_CHECKS",
        default: DefaultValue::Value(
            "DEVICE_CERTIFICATE_SHARED_CHECK,REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK,INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK,CONFLICTING_CLIENT_IDS_CHECK",
        ),
        doc: "Audit checks whose non-compliant devices are quarantined, comma-separated.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "audit-checks",
            value_name: "CHECKS",
        },
        parser: Some(|c, name, v| {
            c.policy.audit_checks = config::audit_checks(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "THING_DIMENSION",
        default: DefaultValue::Value("ThingName"),
        doc: "The CloudWatch alarm dimension that names the thing.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "thing-dimension",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.policy.thing_dimension = config::dimension_name(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "VERIFY_VIOLATION",
        default: DefaultValue::Value("false"),
        doc: "Before quarantining on a Detect in-alarm, confirm with ListActiveViolations that it is active.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Switch {
            long: "verify-violation",
            sets: "true",
        },
        parser: Some(|c, name, v| {
            c.verify_violation = config::parse_bool(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "RELEASE_SOURCES",
        default: DefaultValue::Unset("no mitigation request may release"),
        doc: "The mitigation request `source`s trusted to release, comma-separated; a release request from any other source is refused (Permanent.ReleaseNotAllowed), whatever the delivery.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "release-sources",
            value_name: "SOURCES",
        },
        parser: Some(|c, _, v| {
            c.release_sources = ReleaseSources::from_comma_list(&v);
            Ok(())
        }),
    },
    Setting {
        name: "PROTECTED_THINGS",
        default: DefaultValue::Unset("no thing is protected"),
        doc: "Things never quarantined by an alert, comma-separated; a trailing `*` makes a prefix (`gw-*`). Their records report kept.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "protected-things",
            value_name: "NAMES",
        },
        parser: Some(|c, _, v| {
            c.protected_things = ProtectedThings::from_comma_list(&v);
            Ok(())
        }),
    },
    Setting {
        name: "SECURITY_HUB_PRODUCTS",
        default: DefaultValue::Value(
            "aws/iot-device-defender-detect,aws/iot-device-defender-audit,custom-action",
        ),
        doc: "The Security Hub products (COMPANY/PRODUCT or full ProductArns) whose findings may act, and `custom-action` for findings an analyst sends to the stack's custom action, comma-separated. Empty: none.",
        read_by: DECIDERS,
        in_template: false,
        flag: Flag::Value {
            long: "security-hub-products",
            value_name: "LIST",
        },
        parser: Some(|c, name, v| {
            c.policy.security_hub_products = SecurityHubProducts::from_comma_list(&v)
                .map_err(|e| config::bad(name, v, e.to_string()))?;
            Ok(())
        }),
    },
    Setting {
        name: "ACCOUNT_ID",
        default: DefaultValue::Unset("not checked"),
        doc: "This account's id. With it, an ARN or a Security Hub finding of another account, or of another region than AWS_REGION, is refused, naming it.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "account-id",
            value_name: "ID",
        },
        parser: Some(|c, name, v| {
            c.policy.scope.account = Some(config::account_id(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "MAX_THINGS_PER_RECORD",
        default: DefaultValue::Value("100"),
        doc: "A record naming more things (or certificates) than this is not acted on: without the ledger it is rejected, naming the count; with it, its quarantines are held for approval and its causes recorded (1 to 100000).",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "max-things-per-record",
            value_name: "N",
        },
        parser: Some(|c, name, v| {
            let max = config::parse_number(name, v, 1, 100_000)? as usize;
            c.policy.max_things_per_record = max;
            c.max_things_per_record = max;
            Ok(())
        }),
    },
    Setting {
        name: "MAX_CONCURRENCY",
        default: DefaultValue::Value("10"),
        doc: "Records of one batch processed at once (1 to 100).",
        read_by: MITIGATORS,
        in_template: true,
        flag: Flag::Value {
            long: "max-concurrency",
            value_name: "N",
        },
        parser: Some(|c, name, v| {
            c.max_concurrency = config::parse_number(name, v, 1, 100)? as usize;
            Ok(())
        }),
    },
    Setting {
        name: "QUARANTINE_GROUP",
        default: DefaultValue::Value("Quarantine"),
        doc: "The static thing group (not a dynamic one) that carries the quarantine policy. With the ledger, quarantine-group puts back a thing removed from it while its causes are active (registry membership events).",
        read_by: &[Reader::Group, Reader::Replay, Reader::Quarantinectl],
        in_template: true,
        flag: Flag::Value {
            long: "quarantine-group",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.quarantine_group = config::iot_name(name, v, 128)?;
            Ok(())
        }),
    },
    Setting {
        name: "DISCONNECT",
        default: DefaultValue::Value("true"),
        doc: "After adding a thing to the group, cut its live MQTT connection (DeleteConnection) so it reconnects under the quarantine policy.",
        read_by: &[Reader::Group, Reader::Replay, Reader::Quarantinectl],
        in_template: true,
        flag: Flag::Switch {
            long: "no-disconnect",
            sets: "false",
        },
        parser: Some(|c, name, v| {
            c.disconnect = config::parse_bool(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "SHADOW_NAME",
        default: DefaultValue::Unset("the classic shadow"),
        doc: "A named shadow that carries the quarantine flag.",
        read_by: &[Reader::Shadow, Reader::Replay, Reader::Quarantinectl],
        in_template: true,
        flag: Flag::Value {
            long: "shadow-name",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.shadow_name = Some(config::iot_name(name, v, 64)?);
            Ok(())
        }),
    },
    Setting {
        name: "IOT_DATA_ENDPOINT",
        default: DefaultValue::Unset("looked up once at start-up with DescribeEndpoint"),
        doc: "The account's IoT data-plane endpoint (host name or URL), for the shadow and DeleteConnection.",
        read_by: &[
            Reader::Group,
            Reader::Shadow,
            Reader::Replay,
            Reader::Quarantinectl,
        ],
        in_template: true,
        flag: Flag::Value {
            long: "iot-data-endpoint",
            value_name: "HOST_OR_URL",
        },
        parser: Some(|c, name, v| {
            c.iot_data_endpoint = Some(config::endpoint(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "CERTIFICATE_RECORD_ATTRIBUTE",
        default: DefaultValue::Value("quarantineDeactivatedCerts"),
        doc: "The thing attribute in which the certificates the quarantine deactivated are recorded.",
        read_by: &[Reader::Certificate, Reader::Quarantinectl],
        in_template: true,
        flag: Flag::Value {
            long: "certificate-record-attribute",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.certificate_record_attribute = config::attribute_name(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "CERTIFICATE_ACTION",
        default: DefaultValue::Value("attach-policy"),
        doc: "What quarantine-certificate does to the certificates only the thing uses: `attach-policy` attaches QUARANTINE_POLICY to them (it binds every connection made with the certificate, whatever its client id; a release detaches it), `deactivate` deactivates them (a release reactivates them). Shared certificates are never touched.",
        read_by: &[Reader::Certificate, Reader::Quarantinectl],
        in_template: true,
        flag: Flag::Value {
            long: "certificate-action",
            value_name: "ACTION",
        },
        parser: Some(|c, name, v| {
            c.certificate_action = config::certificate_action(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "QUARANTINE_POLICY",
        default: DefaultValue::Unset(
            "required by CERTIFICATE_ACTION=attach-policy and by stack-setup; doctor accepts any policy attached to the group",
        ),
        doc: "The quarantine IoT policy's name (the template's `<stack>-quarantine`, output QuarantinePolicyName), which `attach-policy` attaches to the thing's own certificates, stack-setup to the quarantine group, and doctor looks for on the group.",
        read_by: &[
            Reader::Certificate,
            Reader::StackSetup,
            Reader::Quarantinectl,
        ],
        in_template: true,
        flag: Flag::Value {
            long: "quarantine-policy",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.quarantine_policy = Some(config::policy_name(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "CERTIFICATE_POLICY_ATTRIBUTE",
        default: DefaultValue::Value("quarantinePolicyCerts"),
        doc: "The thing attribute in which the certificates the quarantine attached QUARANTINE_POLICY to are recorded (a release detaches it from those only).",
        read_by: &[Reader::Certificate, Reader::Quarantinectl],
        in_template: false,
        flag: Flag::Value {
            long: "certificate-policy-attribute",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.certificate_policy_attribute = config::attribute_name(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "FANOUT_QUEUE_URL",
        default: DefaultValue::Unset("an audit's devices are mitigated in the invocation"),
        doc: "The function's own SQS queue: an audit's devices are sent there as mitigation requests of their own.",
        read_by: FUNCTIONS,
        in_template: true,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.fan_out_queue_url = Some(config::queue_url(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "LEDGER_TABLE",
        default: DefaultValue::Unset(
            "no ledger: each record is acted on as it comes, as before the ledger",
        ),
        doc: "The DynamoDB table of the quarantine ledger: the functions record each thing's causes and history there and quarantine a thing exactly while a cause is active; quarantinectl's quarantine and release go through it too (unset, quarantinectl uses the table the quarantine group's `quarantineLedgerTable` attribute names, which the stack sets), and replay acts from it as each function would (not with --dry-run).",
        read_by: &[
            Reader::Group,
            Reader::Shadow,
            Reader::Certificate,
            Reader::Replay,
            Reader::Quarantinectl,
        ],
        in_template: true,
        flag: Flag::Value {
            long: "ledger-table",
            value_name: "TABLE",
        },
        parser: Some(|c, name, v| {
            c.ledger_table = Some(config::table_name(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "MIN_QUARANTINE_MINUTES",
        default: DefaultValue::Value("10"),
        doc: "With the ledger: a clear that comes less than this long after its cause was recorded does not release; the cause stays until an operator releases the thing (0 to 10080).",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "min-quarantine-minutes",
            value_name: "MINUTES",
        },
        parser: Some(|c, name, v| {
            c.min_quarantine = Duration::from_secs(config::parse_number(name, v, 0, 10_080)? * 60);
            Ok(())
        }),
    },
    Setting {
        name: "MAX_NEW_QUARANTINES",
        default: DefaultValue::Value("100"),
        doc: "With the ledger: at most this many things go from free to quarantined per budget window, across all functions and invocations (each thing counted once); beyond, records are held (outcome held, metric Held) and nothing is acted on (1 to 1000000).",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "max-new-quarantines",
            value_name: "N",
        },
        parser: Some(|c, name, v| {
            let max_new = config::parse_number(name, v, 1, 1_000_000)? as u32;
            if let Some(budget) = &mut c.budget {
                budget.max_new = max_new;
            }
            Ok(())
        }),
    },
    Setting {
        name: "BUDGET_WINDOW_MINUTES",
        default: DefaultValue::Value("60"),
        doc: "The window of MAX_NEW_QUARANTINES, in minutes (1 to 10080); windows are aligned on the clock.",
        read_by: DECIDERS,
        in_template: true,
        flag: Flag::Value {
            long: "budget-window-minutes",
            value_name: "MINUTES",
        },
        parser: Some(|c, name, v| {
            let window_ms = config::parse_number(name, v, 1, 10_080)? as i64 * 60_000;
            if let Some(budget) = &mut c.budget {
                budget.window_ms = window_ms;
            }
            Ok(())
        }),
    },
    Setting {
        name: "METRICS_NAMESPACE",
        default: DefaultValue::Value("IotQuarantine"),
        doc: "The CloudWatch namespace of the functions' embedded-metric-format figures.",
        read_by: &[
            Reader::Group,
            Reader::Shadow,
            Reader::Certificate,
            Reader::StackSetup,
        ],
        in_template: false,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.metrics_namespace = config::namespace(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "QUARANTINE_GROUP_ARN",
        default: DefaultValue::Unset("stack-setup answers every request FAILED"),
        doc: "The ARN of the group stack-setup attaches the quarantine policy to; the request's properties must name the same.",
        read_by: &[Reader::StackSetup],
        in_template: true,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.stack.quarantine_group_arn = Some(config::thing_group_arn(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "STACK_ID",
        default: DefaultValue::Unset("stack-setup answers no request"),
        doc: "The stack (its ARN) whose custom resource requests stack-setup acts on and answers; any other request is ignored.",
        read_by: &[Reader::StackSetup],
        in_template: true,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.stack.stack_id = Some(config::stack_id(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "TEST_ONLY_RESPONSE_URL_PREFIX",
        default: DefaultValue::Unset(
            "only https://cloudformation-custom-resource-response-*.s3*.amazonaws.com(.cn) URLs are answered",
        ),
        doc: "Tests only, never set in a deployment: a ResponseURL starting with this (the tests' local receiver) is answered too.",
        read_by: &[Reader::StackSetup],
        in_template: false,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.stack.test_response_url_prefix = Some(config::url_prefix(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "DEVICE_POLICY_NAME",
        default: DefaultValue::Unset(
            "doctor reads the policies of the certificates of up to 10 things",
        ),
        doc: "The devices' own IoT policy, which doctor checks pins the client id to the thing name.",
        read_by: &[Reader::Quarantinectl],
        in_template: false,
        flag: Flag::Value {
            long: "device-policy",
            value_name: "NAME",
        },
        parser: Some(|c, name, v| {
            c.doctor.device_policy = Some(config::policy_name(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "DEAD_LETTER_QUEUE_URLS",
        default: DefaultValue::Unset("doctor reports no queue"),
        doc: "The stack's dead-letter queue URLs (its outputs ending in QueueUrl), comma-separated, whose depth doctor reports.",
        read_by: &[Reader::Quarantinectl],
        in_template: false,
        flag: Flag::Value {
            long: "dead-letter-queues",
            value_name: "URLS",
        },
        parser: Some(|c, name, v| {
            c.doctor.dead_letter_queues = v
                .split(',')
                .filter(|u| !u.trim().is_empty())
                .map(|u| config::queue_url(name, u.to_owned()))
                .collect::<Result<_, _>>()?;
            Ok(())
        }),
    },
    Setting {
        name: "AWS_ATTEMPT_TIMEOUT_MS",
        default: DefaultValue::Value("2000"),
        doc: "One attempt of an AWS call may take this long (milliseconds).",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.aws.attempt_timeout = config::millis(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "AWS_OPERATION_TIMEOUT_MS",
        default: DefaultValue::Value("10000"),
        doc: "One AWS call, retries included, may take this long (milliseconds).",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.aws.operation_timeout = config::millis(name, v)?;
            Ok(())
        }),
    },
    Setting {
        name: "AWS_MAX_ATTEMPTS",
        default: DefaultValue::Unset("the profile's max_attempts, else 3"),
        doc: "Attempts per AWS call, the first included (1 to 10).",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::Value {
            long: "max-attempts",
            value_name: "N",
        },
        parser: Some(|c, name, v| {
            c.aws.max_attempts = Some(config::parse_number(name, v, 1, 10)? as u32);
            Ok(())
        }),
    },
    Setting {
        name: "AWS_RETRY_MODE",
        default: DefaultValue::Unset("the profile's retry_mode, else standard"),
        doc: "`standard` or `adaptive` (client-side rate limiting once throttled).",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::None,
        parser: Some(|c, name, v| {
            c.aws.retry_mode = Some(config::retry_mode(name, v)?);
            Ok(())
        }),
    },
    Setting {
        name: "RUST_LOG",
        default: DefaultValue::Unset("info (the command-line tools: warn or info)"),
        doc: "The log filter (tracing's EnvFilter syntax, e.g. `info,mitigation=debug`).",
        read_by: EVERYONE,
        in_template: true,
        flag: Flag::None,
        parser: None,
    },
    Setting {
        name: "AWS_REGION",
        default: DefaultValue::Unset("the profile's region (Lambda sets it)"),
        doc: "The AWS region.",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::None,
        parser: None,
    },
    Setting {
        name: "AWS_PROFILE",
        default: DefaultValue::Unset("the default profile"),
        doc: "The named profile of ~/.aws/config for credentials, region and retries (quarantinectl's --profile).",
        read_by: &[Reader::Replay, Reader::Quarantinectl],
        in_template: false,
        flag: Flag::None,
        parser: None,
    },
    Setting {
        name: "AWS_ENDPOINT_URL",
        default: DefaultValue::Unset("the AWS endpoints"),
        doc: "One endpoint for every AWS service (and AWS_ENDPOINT_URL_<SERVICE> per service), e.g. a local emulator.",
        read_by: EVERYONE,
        in_template: false,
        flag: Flag::None,
        parser: None,
    },
];

/// The setting named `name`.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The configuration `reader` runs with: every setting it reads, through `lookup` (the
/// environment, or a tool's flags then the environment). Empty values count as unset.
pub fn configure(
    reader: Reader,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<FunctionConfig, ConfigError> {
    read(|s| s.is_read_by(reader), lookup)
}

/// Every setting any program reads, through `lookup` (tests, and tools that build a
/// function's configuration by hand).
pub fn configure_all(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<FunctionConfig, ConfigError> {
    read(|_| true, lookup)
}

fn read(
    wanted: impl Fn(&Setting) -> bool,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<FunctionConfig, ConfigError> {
    let mut config = FunctionConfig::default();
    let mut reads_region = false;
    let mut reads_group = false;
    for setting in SETTINGS.iter().filter(|s| wanted(s)) {
        reads_region |= setting.name == "AWS_REGION";
        reads_group |= setting.name == "QUARANTINE_GROUP";
        let Some(value) = lookup(setting.name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        if let Some(apply) = setting.parser {
            apply(&mut config, setting.name, value)?;
        }
    }
    // ACCOUNT_ID turns the scope check on; the region is then the one the program runs in.
    if reads_region && config.policy.scope.account.is_some() {
        config.policy.scope.region = lookup("AWS_REGION").filter(|v| !v.trim().is_empty());
    }
    // Only the program that manages the group re-checks a thing taken out of it (drift).
    config.policy.quarantine_group = reads_group.then(|| config.quarantine_group.clone());
    Ok(config)
}

/// docs/configuration.md, generated from [`SETTINGS`].
pub fn reference_markdown() -> String {
    let mut page = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/mitigation/src/settings.rs by \
         `UPDATE_REFERENCE=1 cargo test -p mitigation settings`; do not edit by hand. -->\n\n\
         The functions read environment variables, once at start-up; a bad value stops the start \
         with an error naming the variable, the value and what was expected. Empty counts as \
         unset. replay and quarantinectl read the same variables, and take a flag for most of them \
         (a flag wins over the variable). The template sets the variables marked *template* \
         from its parameters.\n\n\
         | Variable | Default | Read by | Flag | Meaning |\n|---|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let default = match setting.default {
            DefaultValue::Value(v) => format!("`{v}`"),
            DefaultValue::Unset(text) => format!("unset: {text}"),
        };
        let mut readers: Vec<&str> = setting.read_by.iter().map(|r| r.binary()).collect();
        if setting.in_template {
            readers.push("*template*");
        }
        let flag = match setting.flag {
            Flag::None => String::new(),
            Flag::Value { long, value_name } => format!("`--{long} {value_name}`"),
            Flag::Switch { long, sets } => format!("`--{long}` (= {sets})"),
        };
        let meaning = match setting.parser {
            Some(_) => setting.doc.to_owned(),
            None => format!("{} Read by its library, as it documents.", setting.doc),
        };
        let _ = writeln!(
            page,
            "| `{}` | {default} | {} | {flag} | {meaning} |",
            setting.name,
            readers.join(", "),
        );
    }
    page.push_str(
        "\nAWS credentials come from the standard chain (the Lambda role; on an operator's \
         machine the environment, profiles, SSO). Retries: aws-config reads `AWS_MAX_ATTEMPTS`, \
         `AWS_RETRY_MODE` and the profile's `max_attempts` and `retry_mode`; when either \
         variable (or `--max-attempts`) is set, both are taken from there, the unset one at the \
         SDK's default.\n",
    );
    page
}

#[cfg(feature = "cli")]
pub mod cli {
    //! The settings as command-line flags of replay and quarantinectl.

    use clap::{Arg, ArgAction, ArgMatches, Command};

    use super::{Flag, Reader, SETTINGS, Setting};
    use crate::config::{ConfigError, FunctionConfig};

    fn flagged(reader: Reader) -> impl Iterator<Item = (&'static Setting, &'static str)> {
        SETTINGS
            .iter()
            .filter(move |s| s.is_read_by(reader))
            .filter_map(|s| match s.flag {
                Flag::None => None,
                Flag::Value { long, .. } | Flag::Switch { long, .. } => Some((s, long)),
            })
    }

    /// `command` with a flag for every setting `reader` reads that has one (global: for
    /// every subcommand).
    pub fn add_flags(mut command: Command, reader: Reader, global: bool) -> Command {
        for (setting, long) in flagged(reader) {
            let default = match setting.default {
                super::DefaultValue::Value(v) => format!(" [default: {v}]"),
                super::DefaultValue::Unset(_) => String::new(),
            };
            let arg = Arg::new(setting.name)
                .long(long)
                .global(global)
                .help(format!("{} [env: {}]{default}", setting.doc, setting.name));
            command = command.arg(match setting.flag {
                Flag::Value { value_name, .. } => arg.value_name(value_name),
                _ => arg.action(ArgAction::SetTrue),
            });
        }
        command
    }

    /// The configuration from the flags of `matches`, then the environment.
    pub fn configure(matches: &ArgMatches, reader: Reader) -> Result<FunctionConfig, ConfigError> {
        let given: Vec<(&str, String)> = flagged(reader)
            .filter_map(|(setting, _)| {
                let value = match setting.flag {
                    Flag::Switch { sets, .. } => {
                        matches.get_flag(setting.name).then(|| sets.to_owned())
                    }
                    _ => matches.get_one::<String>(setting.name).cloned(),
                };
                value.map(|v| (setting.name, v))
            })
            .collect();
        super::configure(reader, |name| {
            given
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        })
    }
}

#[cfg(test)]
mod tests;
