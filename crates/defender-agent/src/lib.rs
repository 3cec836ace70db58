#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
//! AWS IoT Device Defender metrics agent for Linux devices, with the quarantine flag of the
//! thing's shadow. See docs/device-agent.md.

pub mod agent;
pub mod collect;
pub mod config;
pub mod custom;
pub mod decision;
pub mod mqtt;
pub mod names;
pub mod report;
pub mod shadow;
pub mod state;

pub use agent::{AgentError, run};
pub use config::{Cli, Config};
