//! quarantine-group's integration tests: the binary against moto and the stand-in, audits, and acting from the ledger.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod drift;
mod function;
mod ledger;
