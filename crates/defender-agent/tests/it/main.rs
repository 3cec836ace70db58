//! defender-agent's integration tests: the command line, the collectors, and the agent against a real MQTT broker with mutual TLS.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod broker;
mod cli;
mod collectors;
mod common;
