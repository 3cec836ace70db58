//! mitigation-aws's integration tests: the adapters against the AWS stand-in, and the ledger against moto's DynamoDB.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adapters;
mod https;
mod ledger;
