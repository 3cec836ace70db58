//! Acting on the core's decisions, without the AWS SDK (the adapters on the SDK clients are
//! in the `mitigation-aws` crate):
//!
//! - [`action`]: the narrow traits a mitigation sits behind, and [`ActionError`];
//! - [`certificates`]: the certificate mitigation's rules (which certificates to deactivate,
//!   the record of them, what a release reactivates), on a registry trait;
//! - [`handler`]: the batch handler shared by the functions, replay and quarantinectl
//!   (de-duplication, bounded concurrency, the release check, a tracing span per record);
//! - [`targets`]: a record's subjects resolved to things (certificates, audit findings,
//!   verification of Detect alarms);
//! - [`ledger`]: the quarantine ledger (causes, applied, history) the functions act from;
//! - [`trust`]: who may release through a request (`RELEASE_SOURCES`), and the things never
//!   quarantined automatically (`PROTECTED_THINGS`);
//! - [`report`]: what happened to each record, its JSON line and its log line;
//! - [`answer`]: the answer to Lambda (SQS partial batch response, SNS summary or failure);
//! - [`metrics`]: CloudWatch embedded-metric-format figures per invocation;
//! - [`settings`]: every setting declared once (the configuration, the tools' flags, the
//!   reference page and the template checks come from it);
//! - [`config`]: the configuration the settings are parsed into, once;
//! - [`function`]: which mitigation a function performs, and the dry-run handler;
//! - `testing` (feature `testing`): in-memory actions for tests and fuzzing, not compiled
//!   into the functions.

pub mod action;
pub mod answer;
pub mod certificates;
pub mod config;
pub mod function;
pub mod handler;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod report;
pub mod settings;
pub mod targets;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;

pub use action::{
    ActionError, ActiveViolations, Applied, AuditFindings, CertificateThings, FanOut, FindingsPage,
    GroupMembership, KeptBecause, MitigationAction, MitigationKind, Retry,
};
pub use answer::{EventReport, InvocationFailure, InvocationSummary, LambdaAnswer};
pub use config::{
    AwsSettings, CertificateAction, ConfigError, DoctorSettings, FunctionConfig, RetryMode,
    StackSettings, ThingGroupArn,
};
pub use function::{FunctionKind, dry_run_handler};
pub use handler::Handler;
pub use logging::{init_cli_logging, init_function_logging};
pub use report::{
    ActionOutcome, ActionReport, Failure, Mitigation, RecordOutcome, RecordReport, log_record,
};
pub use settings::Reader;
