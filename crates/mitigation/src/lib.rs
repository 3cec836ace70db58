//! Acting on the core's decisions.
//!
//! - [`action`]: the narrow traits a mitigation sits behind, and [`ActionError`];
//! - [`aws`]: their adapters on the AWS SDK clients, and error classification by AWS code;
//! - [`handler`]: the batch handler shared by the functions and replay (concurrency, SQS
//!   partial batch responses, SNS invocation failures, per-record logs);
//! - [`config`]: environment variables, parsed once;
//! - [`function`] and [`lambda`]: start-up of the `quarantine-group` and `quarantine-shadow`
//!   binaries.

pub mod action;
pub mod aws;
pub mod config;
pub mod function;
pub mod handler;
pub mod lambda;

pub use action::{ActionError, ActiveViolations, MitigationAction, Retry};
pub use config::{AwsSettings, ConfigError, FunctionConfig, RetryMode};
pub use function::{FunctionKind, StartupError, build_handler, dry_run_handler};
pub use handler::{
    ActionOutcome, ActionReport, EventReport, Handler, InvocationFailure, RecordOutcome,
    RecordReport, log_record,
};
