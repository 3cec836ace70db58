//! violation-core's integration tests: the sample events with their expected outcomes, and decoder properties.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decoder_properties;
mod sample_events;
