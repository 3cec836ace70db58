//! The mitigation traits on the real AWS SDK clients:
//!
//! - [`sdk`]: the SDK configuration, loaded once, and the data-plane client on the account's
//!   endpoint;
//! - [`errors`]: error classification by AWS error code;
//! - one adapter per mitigation: [`group`] (the quarantine thing group), `disconnect` and
//!   `shadow` (on the data plane);
//! - [`violations`]: a thing's active Device Defender violations;
//! - [`certificates`]: the certificate mitigation's registry calls (its rules are in
//!   `mitigation::certificates`);
//! - [`lookups`]: certificates to things, audit findings (what resolves a record's
//!   subjects);
//! - `fan_out` (feature `fan-out`): an audit's devices sent through the function's own
//!   SQS queue;
//! - `ledger` (feature `ledger`): the quarantine ledger on DynamoDB (`LEDGER_TABLE`);
//! - [`startup`]: a [`mitigation::Handler`] built from configuration, once per process;
//! - [`warm_up`]: the mitigations' connections opened during init;
//! - [`lambda`]: the Lambda start-up shared by the function binaries.
//!
//! The data-plane client is behind the `data-plane` feature, so a binary that never calls
//! it does not link it.

pub mod certificates;
#[cfg(feature = "data-plane")]
pub mod disconnect;
pub mod errors;
#[cfg(feature = "fan-out")]
pub mod fan_out;
pub mod group;
pub mod https;
pub mod lambda;
#[cfg(feature = "ledger")]
pub mod ledger;
pub mod lookups;
pub mod paging;
pub mod sdk;
#[cfg(feature = "data-plane")]
pub mod shadow;
pub mod startup;
pub mod violations;
pub mod warm_up;

pub use errors::classify;
pub use startup::{StartupError, build_handler, build_handler_on, build_per_function};
