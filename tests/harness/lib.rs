//! Test harness shared by the integration tests of every package and the benchmark:
//! - [`stand_in`]: a scriptable local AWS IoT / IoT data-plane stand-in (state and faults);
//! - [`runtime_api`]: a local Lambda Runtime API that drives the real function binaries;
//! - [`process`]: the one function process spawner ([`FunctionProcess`], [`LocalFunction`]);
//! - [`env`](mod@env): the environment of a function talking to local AWS;
//! - [`fixtures`]: event builders on `aws_lambda_events` types, and the sample events;
//! - [`sdk`]: SDK clients for local endpoints;
//! - [`moto`]: the moto emulator from the project virtualenv, and helpers that drive it;
//! - [`scenarios`]: test bodies shared by both function binaries.
//!
//! The servers run on their own thread and runtime, so synchronous tests can use them.

// Fixtures and shared test bodies fail a test by panicking with a message; the servers answer
// bad requests with errors instead.
#![allow(clippy::panic)]

pub mod env;
pub mod fixtures;
pub mod moto;
pub mod process;
pub mod runtime_api;
pub mod scenarios;
pub mod sdk;
mod server;
pub mod stand_in;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use env::{Env, local_aws_env};
pub use process::{FunctionProcess, LocalFunction};
pub use runtime_api::{Invocation, RuntimeApi};
pub use stand_in::{Fault, Op, StandIn, StandInConfig};

/// The workspace root (the folder holding the top-level Cargo.toml, `events/`, `.venv`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A lock whose poisoning (a panicking test thread) does not matter: the state stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
