//! The alert sources, each recognised from the message itself, whatever delivered it.
//!
//! One module per source reads its message tolerantly and decides; this module only tells
//! the sources apart. Recognition looks at keys that only one source uses, in this order:
//! a registry thing-group membership event (first: it can never act, so a message that
//! claims to be one is never read as anything that can); a mitigation request with an
//! `action`; a Detect violation; an audit-completed
//! notification; an audit finding (PUBLISH_FINDING_TO_SNS); a CloudWatch alarm (SNS
//! message, Lambda alarm action or EventBridge event); a Security Hub EventBridge event; and
//! last, an object naming a subject without an action (a request missing its action).

pub mod audit;
pub mod cloudwatch;
pub mod detect;
pub mod membership;
pub mod request;
pub mod securityhub;

use crate::decision::{Decision, DecisionPolicy};
use crate::lenient::{Fields, Notes};
use crate::verdict::AlertFacts;

/// Where an alert comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertSource {
    /// A Device Defender Detect violation.
    DetectViolation,
    /// A Device Defender audit-completed notification (auditnotification/1.0).
    AuditTask,
    /// An audit finding, as the PUBLISH_FINDING_TO_SNS mitigation action sends it.
    AuditFinding,
    /// A CloudWatch alarm state change (SNS message, Lambda alarm action, EventBridge).
    CloudWatchAlarm,
    /// A mitigation request `{"thingName", "action", "reason", "source"}`.
    MitigationRequest,
    /// Security Hub findings sent by EventBridge (ASFF).
    SecurityHub,
    /// A registry event: a thing added to or removed from a thing group.
    ThingGroupMembership,
}

impl AlertSource {
    /// Every source, in the order they are tried.
    pub const ALL: [AlertSource; 7] = [
        AlertSource::DetectViolation,
        AlertSource::AuditTask,
        AlertSource::AuditFinding,
        AlertSource::CloudWatchAlarm,
        AlertSource::MitigationRequest,
        AlertSource::SecurityHub,
        AlertSource::ThingGroupMembership,
    ];

    /// A short stable name for logs: `detect-violation`, `audit-task`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::DetectViolation => "detect-violation",
            AlertSource::AuditTask => "audit-task",
            AlertSource::AuditFinding => "audit-finding",
            AlertSource::CloudWatchAlarm => "cloudwatch-alarm",
            AlertSource::MitigationRequest => "mitigation-request",
            AlertSource::SecurityHub => "security-hub",
            AlertSource::ThingGroupMembership => "thing-group-membership",
        }
    }

    /// The source in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            AlertSource::DetectViolation => "Device Defender Detect violation",
            AlertSource::AuditTask => "Device Defender audit notification",
            AlertSource::AuditFinding => "Device Defender audit finding",
            AlertSource::CloudWatchAlarm => "CloudWatch alarm",
            AlertSource::MitigationRequest => "mitigation request",
            AlertSource::SecurityHub => "Security Hub finding event",
            AlertSource::ThingGroupMembership => "thing-group membership event",
        }
    }
}

/// A source's reading of one alert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decided {
    pub facts: AlertFacts,
    pub decision: Decision,
}

/// Which source sent this message, if any.
pub(crate) fn recognise(fields: Fields<'_>) -> Option<AlertSource> {
    if membership::looks_like(fields) {
        Some(AlertSource::ThingGroupMembership)
    } else if request::has_action(fields) {
        Some(AlertSource::MitigationRequest)
    } else if detect::looks_like(fields) {
        Some(AlertSource::DetectViolation)
    } else if audit::looks_like_task(fields) {
        Some(AlertSource::AuditTask)
    } else if audit::looks_like_finding(fields) {
        Some(AlertSource::AuditFinding)
    } else if cloudwatch::looks_like(fields) {
        Some(AlertSource::CloudWatchAlarm)
    } else if securityhub::looks_like(fields) {
        Some(AlertSource::SecurityHub)
    } else if request::names_a_subject(fields) {
        Some(AlertSource::MitigationRequest)
    } else {
        None
    }
}

/// Read and decide a message of a recognised source.
pub(crate) fn decide(
    source: AlertSource,
    fields: Fields<'_>,
    policy: &DecisionPolicy,
    notes: &mut Notes,
) -> Decided {
    match source {
        AlertSource::DetectViolation => detect::decide(fields, policy, notes),
        AlertSource::AuditTask => audit::decide_task(fields, policy, notes),
        AlertSource::AuditFinding => audit::decide_finding_message(fields, notes),
        AlertSource::CloudWatchAlarm => cloudwatch::decide(fields, policy, notes),
        AlertSource::MitigationRequest => request::decide(fields, policy, notes),
        AlertSource::SecurityHub => securityhub::decide(fields, policy, notes),
        AlertSource::ThingGroupMembership => membership::decide(fields, policy, notes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn source_of(message: Value) -> Option<AlertSource> {
        match &message {
            Value::Object(object) => recognise(Fields::root(object)),
            _ => None,
        }
    }

    #[test]
    fn each_source_is_recognised_by_keys_only_it_uses() {
        let cases = [
            (
                json!({"thingName": "a", "violationEventType": "in-alarm"}),
                Some(AlertSource::DetectViolation),
            ),
            (
                json!({"violationId": "v"}),
                Some(AlertSource::DetectViolation),
            ),
            (
                json!({"taskId": "t", "taskStatus": "COMPLETED"}),
                Some(AlertSource::AuditTask),
            ),
            (
                json!({"taskId": "t", "findingId": "f"}),
                Some(AlertSource::AuditFinding),
            ),
            (
                json!({"AlarmName": "a", "NewStateValue": "OK"}),
                Some(AlertSource::CloudWatchAlarm),
            ),
            (
                json!({"source": "aws.cloudwatch", "alarmData": {}}),
                Some(AlertSource::CloudWatchAlarm),
            ),
            (
                json!({"source": "aws.securityhub", "detail": {}}),
                Some(AlertSource::SecurityHub),
            ),
            (
                json!({"detail-type": "Security Hub Findings - Imported"}),
                Some(AlertSource::SecurityHub),
            ),
            (
                json!({"certificateId": "c"}),
                Some(AlertSource::MitigationRequest),
            ),
            (
                json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
                None,
            ),
            (
                json!({"eventType": "THING_GROUP_MEMBERSHIP_EVENT"}),
                Some(AlertSource::ThingGroupMembership),
            ),
            (
                json!({"operation": "REMOVED", "groupName": "g", "thingName": "t"}),
                Some(AlertSource::ThingGroupMembership),
            ),
            (
                json!({"eventType": "THING_EVENT", "operation": "CREATED", "thingName": "t"}),
                Some(AlertSource::MitigationRequest),
            ),
            (json!({}), None),
        ];
        for (message, expected) in cases {
            assert_eq!(source_of(message.clone()), expected, "{message}");
        }
    }

    #[test]
    fn a_request_with_extra_violation_fields_is_still_a_request() {
        let request = json!({"thingName": "a", "action": "quarantine", "violationId": "v-1",
                             "metricValue": {"count": 3}});
        assert_eq!(source_of(request), Some(AlertSource::MitigationRequest));
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<&str> = AlertSource::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "detect-violation",
                "audit-task",
                "audit-finding",
                "cloudwatch-alarm",
                "mitigation-request",
                "security-hub",
                "thing-group-membership"
            ]
        );
    }
}
