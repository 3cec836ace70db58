//! The mitigation traits on the real AWS SDK clients:
//!
//! - [`adapters`]: one adapter per mitigation on the IoT and IoT data-plane clients, SDK
//!   configuration, and error classification by AWS error code;
//! - [`certificates`]: the certificate mitigation's registry calls (its rules are in
//!   `mitigation::certificates`);
//! - [`lookups`]: certificates to things, audit findings (what resolves a record's
//!   subjects);
//! - `fan_out` (feature `fan-out`): an audit's devices sent through the function's own
//!   SQS queue;
//! - [`startup`]: a [`mitigation::Handler`] built from configuration, once per process;
//! - [`lambda`]: the Lambda start-up shared by the function binaries.
//!
//! The data-plane client is behind the `data-plane` feature, so a binary that never calls
//! it does not link it.

pub mod adapters;
pub mod certificates;
#[cfg(feature = "fan-out")]
pub mod fan_out;
pub mod lambda;
pub mod lookups;
pub mod startup;

pub use adapters::classify;
pub use startup::{StartupError, build_handler, build_handler_on};
