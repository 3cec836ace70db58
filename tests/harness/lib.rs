//! Test harness shared by the integration tests and the benchmarks:
//! - [`moto`]: the moto emulator in server mode, from the project-local virtualenv;
//! - [`runtime_api`]: a local implementation of the Lambda Runtime API that drives the real
//!   function binaries;
//! - [`fake_aws`]: a scriptable stand-in for the IoT and IoT data-plane endpoints (latency,
//!   throttling, 5xx, timeouts) for fault tests and benchmarks.

pub mod fake_aws;
pub mod moto;
pub mod runtime_api;

use std::path::PathBuf;

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
