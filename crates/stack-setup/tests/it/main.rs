//! stack-setup's integration tests: the response URL, the IoT adapter against moto, and the binary through the Lambda Runtime API.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod against_moto;
mod against_stand_in;
mod binary;
mod common;
mod response_url;
