//! mitigation's integration tests: the handler on in-memory actions, the resolution of subjects, and the ledger's rules on the in-memory ledger.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod drift;
mod handler;
mod ledger;
mod resolution;
