//! quarantinectl's integration tests: the command line, against moto and against the AWS stand-in, containment end to end, doctor, and the ledger verbs.
//!
//! One test binary for the package (each binary links the dependencies once); one
//! module per subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod against_moto;
mod against_stand_in;
mod cli;
mod containment_against_moto;
mod doctor_against_moto;
mod ledger;
