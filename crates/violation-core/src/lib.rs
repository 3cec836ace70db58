//! The pure core of the quarantine functions: it knows the alert sources and their
//! deliveries, and decides what to do with each record. It has no AWS SDK dependency.
//!
//! Where things happen:
//! - [`envelope`]: a Lambda event (SNS, SQS with SNS envelopes, SQS raw delivery, or a
//!   direct invocation whose event is the alert) becomes one [`InboundRecord`] per record,
//!   carrying the alert message as JSON;
//! - [`sources`]: each alert is recognised from the message itself as one [`AlertSource`]
//!   (Detect violation, audit-completed notification, audit finding, CloudWatch alarm,
//!   mitigation request, Security Hub finding event, registry thing-group membership event)
//!   and read tolerantly by its module;
//! - [`verdict`]: each record becomes a [`Verdict`]: its source, the facts an operator
//!   needs ([`AlertFacts`]), the notes of tolerant decoding, and its [`Decision`];
//! - [`decision`]: a [`Decision`] is [`Decision::Act`] (quarantine or release each
//!   [`Subject`]), [`Decision::ExpandAudit`] (the handler pages ListAuditFindings and
//!   decides each finding with [`decide_audit_finding`]), [`Decision::LookupFinding`]
//!   (DescribeAuditFinding, then [`decide_audit_finding`]), [`Decision::Reconcile`] (a
//!   thing taken out of the quarantine group: quarantine-group checks it against the
//!   ledger), ignore, or reject;
//! - [`reject`]: why a record can never succeed;
//! - `fixtures` (feature `testing`): Lambda events for tests and benchmarks, on the
//!   `aws_lambda_events` types;
//! - `lenient` (private): tolerant reading of JSON objects, with notes;
//! - [`thing_name`], [`certificate`], [`subject`], [`audit_ids`]: the only names and ids
//!   that may reach an AWS call.
//!
//! Tolerant decoding: only what a decision needs is required (for Detect, the thing name
//! and the event type; for the others, their subject and state). An odd value anywhere
//! else is skipped and noted in [`Verdict::notes`]. A message that is none of the known
//! alerts is rejected as [`RejectReason::UnknownAlert`], listing the sources tried.
//!
//! Release without flapping: a cleared Detect alarm on a cloud-side metric (which the
//! quarantine itself changes) never releases; see [`sources::detect::classify_metric`].

pub mod audit_ids;
pub mod certificate;
pub mod decision;
pub mod envelope;
#[cfg(feature = "testing")]
pub mod fixtures;
mod lenient;
pub mod reject;
pub mod sources;
pub mod subject;
pub mod thing_name;
mod timestamp;
pub mod trust;
pub mod verdict;
pub mod violation;

pub use audit_ids::{AuditFindingId, AuditTaskId, InvalidAuditId};
pub use certificate::{CertificateId, InvalidCertificateId};
pub use decision::{
    Action, DEFAULT_AUDIT_CHECKS, DEFAULT_MAX_THINGS_PER_RECORD, DEFAULT_THING_DIMENSION, Decision,
    DecisionPolicy, EventType, FilterKind, IgnoreReason, NameFilter, SkipWhy, SkippedFinding,
};
pub use envelope::{
    DecodedEvent, Envelope, EventError, InboundRecord, Trigger, decode_event, decode_event_bytes,
};
pub use lenient::json_type;
pub use reject::RejectReason;
pub use sources::AlertSource;
pub use sources::audit::{AuditFindingFields, decide_audit_finding};
pub use sources::detect::{MetricKind, classify_metric, parse_violation_json};
pub use subject::{InvalidSubject, Subject};
pub use thing_name::{InvalidThingName, ThingName, is_iot_name};
pub use trust::{
    DEFAULT_SECURITY_HUB_PRODUCTS, FindingOrigin, InvalidOrigin, LocalScope, SecurityHubProducts,
};
pub use verdict::{AlertFacts, AlertTime, Verdict, decide, decide_event};
pub use violation::ViolationNotification;
