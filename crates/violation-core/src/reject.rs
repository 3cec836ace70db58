//! Why a record can never be acted on. A rejected record is not retried: on SQS it is
//! listed in `batchItemFailures` and ends in the dead-letter queue, on SNS it fails the
//! invocation, which ends at the on-failure destination.

use crate::audit_ids::InvalidAuditId;
use crate::sources::AlertSource;
use crate::subject::InvalidSubject;
use crate::thing_name::InvalidThingName;

/// What was wrong with one record. Pair it with the record's id (see
/// [`crate::Verdict`]) to name the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("malformed record: {detail}")]
    MalformedRecord { detail: String },
    /// `VERIFY_VIOLATION`: Device Defender does not list the violation as active for the
    /// thing, so the alert was not sent by Device Defender or is no longer true.
    #[error(
        "violation {violation_id} is not active for thing {thing} (ListActiveViolations): not quarantining on an unverified alarm"
    )]
    UnverifiedViolation { thing: String, violation_id: String },
    #[error("SQS record has no body")]
    MissingBody,
    #[error("SQS body is not JSON ({detail}): {excerpt:?}")]
    BodyNotJson { detail: String, excerpt: String },
    #[error("SQS body looks like an SNS envelope but is not a valid one: {detail}")]
    MalformedSnsEnvelope { detail: String },
    #[error("SNS message of Type {sns_type:?} is not a Notification")]
    NotANotification { sns_type: String },
    #[error("message is not JSON ({detail}): {excerpt:?}")]
    MessageNotJson { detail: String, excerpt: String },
    #[error("message is {found}, not a JSON object")]
    MessageNotObject { found: &'static str },
    #[error("message is none of the known alerts (tried: {}); its top-level keys: {}", list_sources(.tried), list_keys(.keys))]
    UnknownAlert {
        tried: Vec<AlertSource>,
        keys: Vec<String>,
    },
    #[error("violation has no thingName")]
    MissingThingName,
    #[error("invalid thingName {name:?}: {problem}")]
    InvalidThingName {
        name: String,
        problem: InvalidThingName,
    },
    #[error("violation has no violationEventType")]
    MissingEventType,
    #[error(
        "unknown violationEventType {value:?}; expected in-alarm, alarm-cleared or alarm-invalidated"
    )]
    UnknownEventType { value: String },
    #[error("{field} is {found}, not text")]
    FieldNotText {
        field: &'static str,
        found: &'static str,
    },
    #[error("{} has no {field}", alert.describe())]
    MissingField {
        alert: AlertSource,
        field: &'static str,
    },
    #[error("{} names no subject; expected {expected}", alert.describe())]
    MissingSubject {
        alert: AlertSource,
        expected: &'static str,
    },
    #[error("invalid {field} {value:?}: {problem}")]
    InvalidSubject {
        field: String,
        value: String,
        problem: InvalidSubject,
    },
    #[error("invalid {field} {value:?}: {problem}")]
    InvalidAuditId {
        field: &'static str,
        value: String,
        problem: InvalidAuditId,
    },
    #[error("mitigation request has no action; expected \"quarantine\" or \"release\"")]
    MissingRequestAction,
    #[error("unknown mitigation request action {value:?}; expected \"quarantine\" or \"release\"")]
    UnknownRequestAction { value: String },
    #[error(
        "CloudWatch alarm {alarm:?} has unknown state {value:?}; expected ALARM, OK or INSUFFICIENT_DATA"
    )]
    UnknownAlarmState { alarm: String, value: String },
    #[error(
        "CloudWatch alarm {alarm:?} has no dimension {dimension:?} naming the thing (THING_DIMENSION) in its metric or metrics"
    )]
    AlarmWithoutThingDimension { alarm: String, dimension: String },
    /// One record may not act on more than `MAX_THINGS_PER_RECORD` subjects: a mistaken
    /// detector must not quarantine a fleet in one message.
    #[error(
        "record names {count} subjects; at most {max} are acted on per record (MAX_THINGS_PER_RECORD): not acting on any"
    )]
    TooManySubjects { count: usize, max: usize },
    /// A release asked for by a mitigation request whose `source` is not trusted to release
    /// (`RELEASE_SOURCES`, checked by the functions, not by the decision).
    #[error(
        "release requested by {sender:?} refused: only the sources listed in RELEASE_SOURCES may release through a mitigation request (an operator releases with quarantinectl release)"
    )]
    ReleaseNotAllowed { sender: String },
    #[error(
        "registry event of type {event_type:?} is not a thing-group membership event (THING_GROUP_MEMBERSHIP_EVENT)"
    )]
    UnknownRegistryEvent { event_type: String },
    #[error("thing-group membership event has operation {value:?}; expected ADDED or REMOVED")]
    UnknownMembershipOperation { value: String },
    #[error("invalid {field} {value:?}: expected arn:PARTITION:iot:REGION:ACCOUNT:{expected}NAME")]
    InvalidRegistryArn {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "invalid thing group name {value:?}: expected 1 to 128 letters, digits, ':', '_' or '-'"
    )]
    InvalidGroupName { value: String },
    #[error("{field} {named:?} disagrees with the name {in_arn:?} in the ARN")]
    ConflictingNames {
        field: &'static str,
        named: String,
        in_arn: String,
    },
}

fn list_sources(sources: &[AlertSource]) -> String {
    sources
        .iter()
        .map(|s| s.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_keys(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.join(", ")
    }
}

impl RejectReason {
    /// A short, stable name for logs, metrics and the `errorType` of a failed invocation.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::MalformedRecord { .. } => "MalformedRecord",
            RejectReason::UnverifiedViolation { .. } => "UnverifiedViolation",
            RejectReason::MissingBody => "MissingBody",
            RejectReason::BodyNotJson { .. } => "BodyNotJson",
            RejectReason::MalformedSnsEnvelope { .. } => "MalformedSnsEnvelope",
            RejectReason::NotANotification { .. } => "NotANotification",
            RejectReason::MessageNotJson { .. } => "MessageNotJson",
            RejectReason::MessageNotObject { .. } => "MessageNotObject",
            RejectReason::UnknownAlert { .. } => "UnknownAlert",
            RejectReason::MissingThingName => "MissingThingName",
            RejectReason::InvalidThingName { .. } => "InvalidThingName",
            RejectReason::MissingEventType => "MissingEventType",
            RejectReason::UnknownEventType { .. } => "UnknownEventType",
            RejectReason::FieldNotText { .. } => "FieldNotText",
            RejectReason::MissingField { .. } => "MissingField",
            RejectReason::MissingSubject { .. } => "MissingSubject",
            RejectReason::InvalidSubject {
                problem: InvalidSubject::Foreign { .. },
                ..
            } => "ForeignResource",
            RejectReason::InvalidSubject { .. } => "InvalidSubject",
            RejectReason::InvalidAuditId { .. } => "InvalidAuditId",
            RejectReason::MissingRequestAction => "MissingRequestAction",
            RejectReason::UnknownRequestAction { .. } => "UnknownRequestAction",
            RejectReason::UnknownAlarmState { .. } => "UnknownAlarmState",
            RejectReason::AlarmWithoutThingDimension { .. } => "AlarmWithoutThingDimension",
            RejectReason::TooManySubjects { .. } => "TooManySubjects",
            RejectReason::ReleaseNotAllowed { .. } => "ReleaseNotAllowed",
            RejectReason::UnknownRegistryEvent { .. } => "UnknownRegistryEvent",
            RejectReason::UnknownMembershipOperation { .. } => "UnknownMembershipOperation",
            RejectReason::InvalidRegistryArn { .. } => "InvalidRegistryArn",
            RejectReason::InvalidGroupName { .. } => "InvalidGroupName",
            RejectReason::ConflictingNames { .. } => "ConflictingNames",
        }
    }
}

/// At most `max` characters of untrusted text, marked when cut, for error messages and logs.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_character_boundaries() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn messages_say_what_was_wrong() {
        let r = RejectReason::InvalidThingName {
            name: "a/b".into(),
            problem: InvalidThingName::BadCharacter {
                found: '/',
                position: 2,
            },
        };
        assert_eq!(
            r.to_string(),
            "invalid thingName \"a/b\": thing name contains '/' at character 2; only letters, digits, ':', '_' and '-' are allowed"
        );
        assert_eq!(r.code(), "InvalidThingName");
    }
}
