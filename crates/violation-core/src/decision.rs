//! What to do with each record: quarantine, release, ignore or reject.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Value, json};

use crate::envelope::{DecodedEvent, Envelope, InboundRecord};
use crate::reject::{RejectReason, excerpt};
use crate::thing_name::ThingName;
use crate::violation::{VerificationState, ViolationNotification};

/// `violationEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    InAlarm,
    AlarmCleared,
    AlarmInvalidated,
}

impl EventType {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "in-alarm" => Some(EventType::InAlarm),
            "alarm-cleared" => Some(EventType::AlarmCleared),
            "alarm-invalidated" => Some(EventType::AlarmInvalidated),
            _ => None,
        }
    }
}

/// A set of names a record must match, or no restriction at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter(Option<BTreeSet<String>>);

impl NameFilter {
    /// No restriction.
    pub fn any() -> Self {
        NameFilter(None)
    }

    /// Only these names. An empty list means no restriction.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        NameFilter((!set.is_empty()).then_some(set))
    }

    /// Parse a comma-separated list such as `MySecProfile, Disconnect_duration_5m`.
    pub fn from_comma_list(list: &str) -> Self {
        Self::only(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    pub fn is_restricted(&self) -> bool {
        self.0.is_some()
    }

    /// A record without the field does not pass a restricting filter.
    pub fn allows(&self, value: Option<&str>) -> bool {
        match (&self.0, value) {
            (None, _) => true,
            (Some(set), Some(v)) => set.contains(v),
            (Some(_), None) => false,
        }
    }
}

/// The settings that shape decisions, shared by the functions and replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionPolicy {
    /// Release a thing when its alarm clears (`RELEASE_ON_CLEAR`). Off by default: a
    /// quarantined device stays quarantined until an operator releases it.
    pub release_on_clear: bool,
    /// Only act on violations of these security profiles (`SECURITY_PROFILE_FILTER`).
    pub security_profiles: NameFilter,
    /// Only act on violations of these behaviors (`BEHAVIOR_FILTER`).
    pub behaviors: NameFilter,
    /// Only act on violations of these metrics (`METRIC_FILTER`).
    pub metrics: NameFilter,
}

/// What a function does to a thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quarantine,
    Release,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Quarantine => "quarantine",
            Action::Release => "release",
        }
    }
}

/// Which filter excluded a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    SecurityProfile,
    Behavior,
    Metric,
}

impl FilterKind {
    fn field(self) -> &'static str {
        match self {
            FilterKind::SecurityProfile => "securityProfileName",
            FilterKind::Behavior => "behavior.name",
            FilterKind::Metric => "behavior.metric",
        }
    }
}

/// Why a well-formed record needs no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Device Defender invalidated the alarm (e.g. the device stopped reporting for two days).
    AlarmInvalidated,
    /// The alarm cleared and release-on-clear is off.
    ClearedWithoutRelease,
    /// An optional filter excluded the record.
    Excluded {
        filter: FilterKind,
        value: Option<String>,
    },
    /// An operator marked the violation as not a threat.
    VerifiedNotAThreat(VerificationState),
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::AlarmInvalidated => {
                f.write_str("alarm-invalidated: Device Defender withdrew the alarm; nothing to do")
            }
            IgnoreReason::ClearedWithoutRelease => f.write_str(
                "alarm-cleared: release on clear is off, the thing stays quarantined until released by hand",
            ),
            IgnoreReason::Excluded { filter, value } => match value {
                Some(v) => write!(f, "{} {:?} is not in the configured filter", filter.field(), excerpt(v, 128)),
                None => write!(f, "record has no {} and a filter on it is configured", filter.field()),
            },
            IgnoreReason::VerifiedNotAThreat(state) => {
                write!(f, "violation is marked {state:?} by an operator; not quarantining")
            }
        }
    }
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Act { action: Action, thing: ThingName },
    Ignore(IgnoreReason),
    Reject(RejectReason),
}

impl Decision {
    /// `quarantine`, `release`, `ignore` or `reject`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Act { action, .. } => action.as_str(),
            Decision::Ignore(_) => "ignore",
            Decision::Reject(_) => "reject",
        }
    }
}

/// One record's decision with the facts an operator needs to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub record_id: String,
    pub envelope: Envelope,
    pub thing_name: Option<String>,
    pub violation_id: Option<String>,
    pub security_profile_name: Option<String>,
    pub behavior_name: Option<String>,
    pub metric: Option<String>,
    pub event_type: Option<String>,
    pub event_time_millis: Option<i64>,
    pub decision: Decision,
}

impl Verdict {
    /// Why this decision was taken, in words.
    pub fn reason(&self) -> String {
        match &self.decision {
            Decision::Act {
                action: Action::Quarantine,
                ..
            } => format!(
                "in-alarm: behavior {} ({}) of security profile {}",
                self.behavior_name.as_deref().unwrap_or("?"),
                self.metric.as_deref().unwrap_or("?"),
                self.security_profile_name.as_deref().unwrap_or("?"),
            ),
            Decision::Act {
                action: Action::Release,
                ..
            } => format!(
                "alarm-cleared: behavior {} ({}) and release on clear is on",
                self.behavior_name.as_deref().unwrap_or("?"),
                self.metric.as_deref().unwrap_or("?"),
            ),
            Decision::Ignore(reason) => reason.to_string(),
            Decision::Reject(reason) => format!("record {}: {reason}", self.record_id),
        }
    }

    /// The record as one JSON object: what replay prints and the functions log.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "recordId": self.record_id,
            "envelope": self.envelope.as_str(),
            "thingName": self.thing_name,
            "violationId": self.violation_id,
            "securityProfileName": self.security_profile_name,
            "behavior": self.behavior_name,
            "metric": self.metric,
            "eventType": self.event_type,
            "decision": self.decision.kind(),
            "reason": self.reason(),
        });
        if let (Decision::Reject(reason), Some(map)) = (&self.decision, out.as_object_mut()) {
            map.insert("error".into(), Value::from(reason.code()));
        }
        out
    }
}

/// Decide every record of a decoded event.
pub fn decide_event(event: &DecodedEvent, policy: &DecisionPolicy) -> Vec<Verdict> {
    event.records.iter().map(|r| decide(r, policy)).collect()
}

/// Decide one record.
pub fn decide(record: &InboundRecord, policy: &DecisionPolicy) -> Verdict {
    let mut verdict = Verdict {
        record_id: record.id.clone(),
        envelope: record.envelope,
        thing_name: None,
        violation_id: None,
        security_profile_name: None,
        behavior_name: None,
        metric: None,
        event_type: None,
        event_time_millis: None,
        decision: Decision::Ignore(IgnoreReason::AlarmInvalidated),
    };
    verdict.decision = match &record.violation {
        Err(reason) => Decision::Reject(reason.clone()),
        Ok(v) => {
            verdict.thing_name = v.thing_name.clone();
            verdict.violation_id = v.violation_id.clone();
            verdict.security_profile_name = v.security_profile_name.clone();
            verdict.behavior_name = v.behavior.as_ref().and_then(|b| b.name.clone());
            verdict.metric = v.behavior.as_ref().and_then(|b| b.metric.clone());
            verdict.event_type = v.violation_event_type.clone();
            verdict.event_time_millis = v.violation_event_time.map(|t| t.epoch_millis);
            decide_violation(v, policy).unwrap_or_else(Decision::Reject)
        }
    };
    verdict
}

/// Validation first (a malformed record is rejected whatever its type), then the operator's
/// verification and filters, then the event type.
fn decide_violation(
    v: &ViolationNotification,
    policy: &DecisionPolicy,
) -> Result<Decision, RejectReason> {
    let event_type = match v.violation_event_type.as_deref() {
        None => return Err(RejectReason::MissingEventType),
        Some(raw) => EventType::parse(raw).ok_or_else(|| RejectReason::UnknownEventType {
            value: excerpt(raw, 60),
        })?,
    };
    let thing = match v.thing_name.as_deref() {
        None => return Err(RejectReason::MissingThingName),
        Some(raw) => ThingName::parse(raw).map_err(|problem| RejectReason::InvalidThingName {
            name: excerpt(raw, 140),
            problem,
        })?,
    };
    let behavior = v.behavior.as_ref();
    let checks = [
        (
            FilterKind::SecurityProfile,
            &policy.security_profiles,
            v.security_profile_name.as_deref(),
        ),
        (
            FilterKind::Behavior,
            &policy.behaviors,
            behavior.and_then(|b| b.name.as_deref()),
        ),
        (
            FilterKind::Metric,
            &policy.metrics,
            behavior.and_then(|b| b.metric.as_deref()),
        ),
    ];
    for (filter, names, value) in checks {
        if !names.allows(value) {
            return Ok(Decision::Ignore(IgnoreReason::Excluded {
                filter,
                value: value.map(str::to_owned),
            }));
        }
    }
    Ok(match event_type {
        EventType::InAlarm => match v.verification_state {
            Some(
                state @ (VerificationState::FalsePositive | VerificationState::BenignPositive),
            ) => Decision::Ignore(IgnoreReason::VerifiedNotAThreat(state)),
            _ => Decision::Act {
                action: Action::Quarantine,
                thing,
            },
        },
        EventType::AlarmCleared if policy.release_on_clear => Decision::Act {
            action: Action::Release,
            thing,
        },
        EventType::AlarmCleared => Decision::Ignore(IgnoreReason::ClearedWithoutRelease),
        EventType::AlarmInvalidated => Decision::Ignore(IgnoreReason::AlarmInvalidated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::parse_violation_json;
    use serde_json::json;

    fn record(violation: Value) -> InboundRecord {
        InboundRecord {
            index: 0,
            id: "m-1".into(),
            envelope: Envelope::Sns,
            violation: parse_violation_json(&violation.to_string()),
        }
    }

    fn alarm(event_type: &str) -> Value {
        json!({"thingName": "dev-1", "violationId": "v-1", "violationEventType": event_type,
               "securityProfileName": "P", "behavior": {"name": "B", "metric": "aws:num-messages-sent"}})
    }

    fn kind(v: Value, policy: &DecisionPolicy) -> &'static str {
        decide(&record(v), policy).decision.kind()
    }

    #[test]
    fn in_alarm_quarantines_the_thing() {
        let verdict = decide(&record(alarm("in-alarm")), &DecisionPolicy::default());
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                thing: ThingName::parse("dev-1").expect("valid")
            }
        );
        assert_eq!(
            verdict.reason(),
            "in-alarm: behavior B (aws:num-messages-sent) of security profile P"
        );
        assert_eq!(verdict.violation_id.as_deref(), Some("v-1"));
    }

    #[test]
    fn cleared_releases_only_when_enabled() {
        assert_eq!(
            kind(alarm("alarm-cleared"), &DecisionPolicy::default()),
            "ignore"
        );
        let release = DecisionPolicy {
            release_on_clear: true,
            ..Default::default()
        };
        assert_eq!(kind(alarm("alarm-cleared"), &release), "release");
        assert_eq!(kind(alarm("alarm-invalidated"), &release), "ignore");
    }

    #[test]
    fn filters_exclude_records_that_do_not_match() {
        let policy = DecisionPolicy {
            security_profiles: NameFilter::from_comma_list("P, Q"),
            behaviors: NameFilter::only(["B"]),
            metrics: NameFilter::from_comma_list(""),
            ..Default::default()
        };
        assert!(!policy.metrics.is_restricted());
        assert_eq!(kind(alarm("in-alarm"), &policy), "quarantine");
        let mut other = alarm("in-alarm");
        other["securityProfileName"] = json!("R");
        let verdict = decide(&record(other), &policy);
        assert_eq!(
            verdict.decision,
            Decision::Ignore(IgnoreReason::Excluded {
                filter: FilterKind::SecurityProfile,
                value: Some("R".into())
            })
        );
        let mut no_behavior = alarm("in-alarm");
        no_behavior["behavior"] = Value::Null;
        assert_eq!(
            decide(&record(no_behavior), &policy).reason(),
            "record has no behavior.name and a filter on it is configured"
        );
    }

    #[test]
    fn malformed_records_are_rejected_naming_the_record() {
        let mut missing = alarm("in-alarm");
        missing["thingName"] = Value::Null;
        let verdict = decide(&record(missing), &DecisionPolicy::default());
        assert_eq!(
            verdict.decision,
            Decision::Reject(RejectReason::MissingThingName)
        );
        assert_eq!(verdict.reason(), "record m-1: violation has no thingName");

        let mut invalid = alarm("in-alarm");
        invalid["thingName"] = json!("../etc/passwd");
        assert_eq!(kind(invalid, &DecisionPolicy::default()), "reject");

        let unknown = decide(&record(alarm("in-trouble")), &DecisionPolicy::default());
        assert_eq!(
            unknown.decision,
            Decision::Reject(RejectReason::UnknownEventType {
                value: "in-trouble".into()
            })
        );
        let mut no_type = alarm("in-alarm");
        no_type["violationEventType"] = Value::Null;
        assert_eq!(kind(no_type, &DecisionPolicy::default()), "reject");
    }

    #[test]
    fn operator_verified_false_positives_are_not_quarantined() {
        let mut v = alarm("in-alarm");
        v["verificationState"] = json!("FALSE_POSITIVE");
        assert_eq!(kind(v.clone(), &DecisionPolicy::default()), "ignore");
        v["verificationState"] = json!("TRUE_POSITIVE");
        assert_eq!(kind(v, &DecisionPolicy::default()), "quarantine");
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let line = decide(&record(alarm("in-alarm")), &DecisionPolicy::default()).to_json();
        assert_eq!(line["thingName"], "dev-1");
        assert_eq!(line["decision"], "quarantine");
        assert_eq!(line["recordId"], "m-1");
        assert!(
            line["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("in-alarm"))
        );
        assert!(line.get("error").is_none());
        let mut missing = alarm("in-alarm");
        missing["thingName"] = Value::Null;
        let rejected = decide(&record(missing), &DecisionPolicy::default()).to_json();
        assert_eq!(rejected["thingName"], Value::Null);
        assert_eq!(rejected["error"], "MissingThingName");
    }
}
