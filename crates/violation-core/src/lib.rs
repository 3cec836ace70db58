//! The pure core of the quarantine functions: it knows Device Defender and the SNS/SQS
//! envelopes, and decides what to do with each record. It has no AWS SDK dependency.
//!
//! Where things happen:
//! - [`envelope`]: a Lambda event (SNS, SQS with SNS envelopes, SQS raw delivery) becomes
//!   one [`InboundRecord`] per record;
//! - [`violation`]: the typed violation notification;
//! - [`decision`]: each record becomes a [`Verdict`] whose [`Decision`] is quarantine,
//!   release, ignore or reject;
//! - [`reject`]: why a record can never succeed;
//! - [`thing_name`]: the only thing names that may reach an AWS call.

pub mod decision;
pub mod envelope;
pub mod fixtures;
pub mod reject;
pub mod thing_name;
pub mod violation;

pub use decision::{
    Action, Decision, DecisionPolicy, EventType, FilterKind, IgnoreReason, NameFilter, Verdict,
    decide, decide_event,
};
pub use envelope::{
    DecodedEvent, Envelope, EventError, InboundRecord, Trigger, decode_event, decode_event_bytes,
    parse_violation_json,
};
pub use reject::RejectReason;
pub use thing_name::{InvalidThingName, ThingName};
pub use violation::ViolationNotification;
