//! Device Defender Detect violations: the message Device Defender publishes to SNS.
//!
//! The decision needs the thing name and the event type; everything else is read
//! tolerantly (odd values become notes). A cleared alarm releases only when release on
//! clear is on and its metric is one that the quarantine does not itself change.

use serde_json::Value;

use crate::decision::{Action, Decision, DecisionPolicy, EventType, FilterKind, IgnoreReason};
use crate::lenient::{Fields, Notes, json_type};
use crate::reject::{RejectReason, excerpt};
use crate::sources::Decided;
use crate::subject::Subject;
use crate::thing_name::ThingName;
use crate::verdict::{AlertFacts, AlertTime};
use crate::violation::{Behavior, BehaviorCriteria, VerificationState, ViolationNotification};

/// Keys only a violation has (a mitigation request also has `thingName`).
const VIOLATION_KEYS: [&str; 6] = [
    "violationEventType",
    "violationId",
    "securityProfileName",
    "behavior",
    "metricValue",
    "violationEventTime",
];

pub(crate) fn looks_like(fields: Fields<'_>) -> bool {
    VIOLATION_KEYS.iter().any(|k| fields.map().contains_key(*k))
}

/// Cloud-side metrics: measured by AWS IoT, and changed by the quarantine itself (a
/// quarantined device sends, receives and connects differently).
const CLOUD_SIDE_METRICS: [&str; 8] = [
    "aws:num-messages-sent",
    "aws:num-messages-received",
    "aws:message-byte-size",
    "aws:num-authorization-failures",
    "aws:num-connection-attempts",
    "aws:num-disconnects",
    "aws:disconnect-duration",
    "aws:source-ip-address",
];

/// Variants of the cloud-side disconnect metrics (per reason).
const CLOUD_SIDE_PREFIXES: [&str; 2] = ["aws:num-disconnects-", "aws:disconnect-duration-"];

/// Device-side metrics, reported by the device agent.
const DEVICE_SIDE_METRICS: [&str; 10] = [
    "aws:all-bytes-out",
    "aws:all-bytes-in",
    "aws:all-packets-out",
    "aws:all-packets-in",
    "aws:destination-ip-addresses",
    "aws:listening-tcp-ports",
    "aws:listening-udp-ports",
    "aws:num-listening-tcp-ports",
    "aws:num-listening-udp-ports",
    "aws:num-established-tcp-connections",
];

/// Who measures a metric, which says whether its clearing can be trusted after a quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Measured by AWS IoT; the quarantine itself changes it: its clearing never releases.
    CloudSide,
    /// Reported by the device agent.
    DeviceSide,
    /// A custom metric (no `aws:` prefix), reported by the device.
    Custom,
    /// An `aws:` metric this version does not know: treated like a cloud-side one.
    UnknownAws,
}

pub fn classify_metric(metric: &str) -> MetricKind {
    if CLOUD_SIDE_METRICS.contains(&metric)
        || CLOUD_SIDE_PREFIXES.iter().any(|p| metric.starts_with(p))
    {
        MetricKind::CloudSide
    } else if DEVICE_SIDE_METRICS.contains(&metric) {
        MetricKind::DeviceSide
    } else if metric.starts_with("aws:") {
        MetricKind::UnknownAws
    } else {
        MetricKind::Custom
    }
}

/// Parse the violation JSON text (an SNS `Message` string or a raw SQS body), tolerantly:
/// only text that is not a JSON object is refused.
pub fn parse_violation_json(text: &str) -> Result<ViolationNotification, RejectReason> {
    let value: Value = serde_json::from_str(text).map_err(|e| RejectReason::MessageNotJson {
        detail: e.to_string(),
        excerpt: excerpt(text, 120),
    })?;
    match &value {
        Value::Object(object) => Ok(read_violation(Fields::root(object), &mut Notes::default())),
        other => Err(RejectReason::MessageNotObject {
            found: json_type(other),
        }),
    }
}

/// Read every field that has the documented shape; note the others.
pub(crate) fn read_violation(f: Fields<'_>, notes: &mut Notes) -> ViolationNotification {
    ViolationNotification {
        violation_id: f.text("violationId", notes),
        // The two fields the decision needs are checked by `decide`, not noted here.
        thing_name: f.str("thingName").map(str::to_owned),
        security_profile_name: f.text("securityProfileName", notes),
        behavior: f.object("behavior", notes).map(|b| read_behavior(b, notes)),
        metric_value: f.get("metricValue", notes),
        violation_event_type: f.str("violationEventType").map(str::to_owned),
        violation_event_time: f.get("violationEventTime", notes),
        verification_state: f.get("verificationState", notes),
        verification_state_description: f.text("verificationStateDescription", notes),
        violation_event_additional_info: f.get("violationEventAdditionalInfo", notes),
    }
}

fn read_behavior(b: Fields<'_>, notes: &mut Notes) -> Behavior {
    Behavior {
        name: b.text("name", notes),
        metric: b.text("metric", notes),
        metric_dimension: b.get("metricDimension", notes),
        criteria: b.get("criteria", notes),
        suppress_alerts: b.get("suppressAlerts", notes),
        export_metric: b.get("exportMetric", notes),
    }
}

pub(crate) fn decide(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let v = read_violation(f, notes);
    let behavior = v.behavior.as_ref();
    let facts = AlertFacts {
        subject: v.thing_name.clone(),
        thing_name: v.thing_name.clone(),
        event_type: v.violation_event_type.clone(),
        time: v
            .violation_event_time
            .map(|t| AlertTime::EpochMillis(t.epoch_millis)),
        violation_id: v.violation_id.clone(),
        security_profile_name: v.security_profile_name.clone(),
        behavior_name: behavior.and_then(|b| b.name.clone()),
        metric: behavior.and_then(|b| b.metric.clone()),
        criteria: criteria_text(&v),
        verification_state: v
            .verification_state
            .and(f.str("verificationState"))
            .map(str::to_owned),
        ..AlertFacts::default()
    };
    let decision = decide_violation(&v, f, policy).unwrap_or_else(Decision::Reject);
    Decided { facts, decision }
}

/// The behavior's criteria in words; for ML Detect, with the violation's own confidence
/// when it differs from the behavior's.
fn criteria_text(v: &ViolationNotification) -> Option<String> {
    let criteria = v
        .behavior
        .as_ref()
        .and_then(|b| b.criteria.as_ref())
        .and_then(BehaviorCriteria::describe);
    let confidence = v
        .violation_event_additional_info
        .as_ref()
        .and_then(|i| i.confidence_level)
        .map(|c| c.as_str());
    match (criteria, confidence) {
        (Some(c), Some(level)) if !c.ends_with(level) => {
            Some(format!("{c}, violation confidence {level}"))
        }
        (None, Some(level)) => Some(format!("ML Detect, violation confidence {level}")),
        (criteria, _) => criteria,
    }
}

/// Validation first (a malformed record is rejected whatever its type), then the operator's
/// verification and filters, then the event type.
fn decide_violation(
    v: &ViolationNotification,
    f: Fields<'_>,
    policy: &DecisionPolicy,
) -> Result<Decision, RejectReason> {
    let raw_type = f.required_text("violationEventType", RejectReason::MissingEventType)?;
    let event_type = EventType::parse(raw_type).ok_or_else(|| RejectReason::UnknownEventType {
        value: excerpt(raw_type, 60),
    })?;
    let raw_thing = f.required_text("thingName", RejectReason::MissingThingName)?;
    let thing = ThingName::parse(raw_thing).map_err(|problem| RejectReason::InvalidThingName {
        name: excerpt(raw_thing, 140),
        problem,
    })?;
    if let Some(excluded) = excluded_by_filters(v, policy) {
        return Ok(Decision::Ignore(excluded));
    }
    let act = |action| Decision::Act {
        action,
        subjects: vec![Subject::Thing(thing.clone())],
    };
    Ok(match event_type {
        EventType::InAlarm => match v.verification_state {
            Some(
                state @ (VerificationState::FalsePositive | VerificationState::BenignPositive),
            ) => Decision::Ignore(IgnoreReason::VerifiedNotAThreat(state)),
            _ => act(Action::Quarantine),
        },
        EventType::AlarmCleared if policy.release_on_clear => {
            let metric = v.behavior.as_ref().and_then(|b| b.metric.as_deref());
            match cleared_without_release(metric) {
                Some(reason) => Decision::Ignore(reason),
                None => act(Action::Release),
            }
        }
        EventType::AlarmCleared => Decision::Ignore(IgnoreReason::ClearedWithoutRelease),
        EventType::AlarmInvalidated => Decision::Ignore(IgnoreReason::AlarmInvalidated),
    })
}

fn excluded_by_filters(v: &ViolationNotification, policy: &DecisionPolicy) -> Option<IgnoreReason> {
    let behavior = v.behavior.as_ref();
    [
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
    ]
    .into_iter()
    .find(|(_, names, value)| !names.allows(*value))
    .map(|(filter, _, value)| IgnoreReason::Excluded {
        filter,
        value: value.map(str::to_owned),
    })
}

/// Release without flapping: why a cleared alarm must not release, if it must not.
fn cleared_without_release(metric: Option<&str>) -> Option<IgnoreReason> {
    let Some(metric) = metric else {
        return Some(IgnoreReason::ClearedWithoutMetric);
    };
    match classify_metric(metric) {
        MetricKind::CloudSide => Some(IgnoreReason::ClearedOnCloudSideMetric {
            metric: metric.to_owned(),
        }),
        MetricKind::UnknownAws => Some(IgnoreReason::ClearedOnUnknownAwsMetric {
            metric: metric.to_owned(),
        }),
        MetricKind::DeviceSide | MetricKind::Custom => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::NameFilter;
    use crate::verdict::{Verdict, verdict_of};
    use serde_json::{Value, json};

    fn alarm(event_type: &str) -> Value {
        json!({"thingName": "dev-1", "violationId": "v-1", "violationEventType": event_type,
               "securityProfileName": "P", "behavior": {"name": "B", "metric": "aws:num-messages-sent"}})
    }

    fn cleared(metric: Option<&str>) -> Value {
        let mut v = alarm("alarm-cleared");
        v["behavior"]["metric"] = metric.map_or(Value::Null, Value::from);
        v
    }

    fn release_on() -> DecisionPolicy {
        DecisionPolicy {
            release_on_clear: true,
            ..Default::default()
        }
    }

    fn verdict(v: Value, policy: &DecisionPolicy) -> Verdict {
        verdict_of(v, policy)
    }

    fn kind(v: Value, policy: &DecisionPolicy) -> &'static str {
        verdict(v, policy).decision.kind()
    }

    fn dev1() -> Vec<Subject> {
        vec![Subject::Thing(ThingName::parse("dev-1").expect("valid"))]
    }

    #[test]
    fn in_alarm_quarantines_the_thing() {
        let verdict = verdict(alarm("in-alarm"), &DecisionPolicy::default());
        assert_eq!(verdict.source, Some(crate::AlertSource::DetectViolation));
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                subjects: dev1()
            }
        );
        assert_eq!(
            verdict.reason(),
            "in-alarm: behavior B (aws:num-messages-sent) of security profile P"
        );
        assert_eq!(verdict.facts.violation_id.as_deref(), Some("v-1"));
        assert!(verdict.notes.is_empty());
    }

    #[test]
    fn cleared_releases_only_when_enabled_and_never_on_a_cloud_side_metric() {
        let custom = cleared(Some("num_child_procs_myapp"));
        assert_eq!(kind(custom.clone(), &DecisionPolicy::default()), "ignore");
        let released = verdict(custom, &release_on());
        assert_eq!(
            released.decision,
            Decision::Act {
                action: Action::Release,
                subjects: dev1()
            }
        );
        assert_eq!(
            released.reason(),
            "alarm-cleared: behavior B (num_child_procs_myapp, not a cloud-side metric) and release on clear is on"
        );
        assert_eq!(
            kind(cleared(Some("aws:listening-tcp-ports")), &release_on()),
            "release"
        );
        assert_eq!(kind(alarm("alarm-invalidated"), &release_on()), "ignore");
        let flap = verdict(cleared(Some("aws:num-messages-sent")), &release_on());
        assert_eq!(
            flap.decision,
            Decision::Ignore(IgnoreReason::ClearedOnCloudSideMetric {
                metric: "aws:num-messages-sent".into()
            })
        );
        assert!(
            flap.reason()
                .contains("the quarantine itself changes this metric")
        );
    }

    #[test]
    fn a_cleared_alarm_without_metric_or_with_an_unknown_aws_metric_does_not_release() {
        assert_eq!(
            verdict(cleared(None), &release_on()).decision,
            Decision::Ignore(IgnoreReason::ClearedWithoutMetric)
        );
        assert_eq!(
            verdict(cleared(Some("aws:all-new-thing")), &release_on()).decision,
            Decision::Ignore(IgnoreReason::ClearedOnUnknownAwsMetric {
                metric: "aws:all-new-thing".into()
            })
        );
    }

    #[test]
    fn metrics_are_classified_by_who_measures_them() {
        for m in CLOUD_SIDE_METRICS {
            assert_eq!(classify_metric(m), MetricKind::CloudSide, "{m}");
        }
        assert_eq!(
            classify_metric("aws:num-disconnects-connection-lost"),
            MetricKind::CloudSide
        );
        for m in DEVICE_SIDE_METRICS {
            assert_eq!(classify_metric(m), MetricKind::DeviceSide, "{m}");
        }
        assert_eq!(classify_metric("num_child_procs_myapp"), MetricKind::Custom);
        assert_eq!(classify_metric("aws:something-new"), MetricKind::UnknownAws);
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
        assert_eq!(
            verdict(other, &policy).decision,
            Decision::Ignore(IgnoreReason::Excluded {
                filter: FilterKind::SecurityProfile,
                value: Some("R".into())
            })
        );
        let mut no_behavior = alarm("in-alarm");
        no_behavior["behavior"] = Value::Null;
        assert_eq!(
            verdict(no_behavior, &policy).reason(),
            "record has no behavior.name and a filter on it is configured"
        );
    }

    #[test]
    fn malformed_records_are_rejected_naming_the_record() {
        let mut missing = alarm("in-alarm");
        missing["thingName"] = Value::Null;
        let v = verdict(missing, &DecisionPolicy::default());
        assert_eq!(v.decision, Decision::Reject(RejectReason::MissingThingName));
        assert_eq!(v.reason(), "record m-1: violation has no thingName");

        let mut invalid = alarm("in-alarm");
        invalid["thingName"] = json!("../etc/passwd");
        assert_eq!(kind(invalid, &DecisionPolicy::default()), "reject");

        let mut number = alarm("in-alarm");
        number["thingName"] = json!(42);
        assert_eq!(
            verdict(number, &DecisionPolicy::default()).decision,
            Decision::Reject(RejectReason::FieldNotText {
                field: "thingName",
                found: "a number"
            })
        );

        let unknown = verdict(alarm("in-trouble"), &DecisionPolicy::default());
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
    fn odd_values_in_unneeded_fields_are_noted_not_blocking() {
        let mut v = alarm("in-alarm");
        v["violationEventTime"] = json!("yesterday");
        v["metricValue"] = json!({"count": -3});
        v["behavior"]["criteria"] = json!({"comparisonOperator": 5});
        v["verificationState"] = json!(["TRUE_POSITIVE"]);
        v["behavior"]["suppressAlerts"] = json!("no");
        let verdict = verdict(v, &DecisionPolicy::default());
        assert_eq!(verdict.decision.kind(), "quarantine");
        // The behavior's metric still counts for filters and the release rule.
        assert_eq!(
            verdict.facts.metric.as_deref(),
            Some("aws:num-messages-sent")
        );
        let fields: Vec<&str> = verdict
            .notes
            .iter()
            .filter_map(|n| n.split(':').next())
            .collect();
        assert_eq!(
            fields,
            [
                "behavior.criteria",
                "behavior.suppressAlerts",
                "metricValue",
                "violationEventTime",
                "verificationState"
            ]
        );
    }

    #[test]
    fn float_seconds_and_unknown_metric_value_kinds_are_read() {
        let mut v = alarm("in-alarm");
        v["violationEventTime"] = json!(1574254500.5);
        v["metricValue"] = json!({"bytes": [1, 2]});
        let verdict = verdict(v, &DecisionPolicy::default());
        assert_eq!(verdict.facts.event_time_millis(), Some(1_574_254_500_500));
        assert!(verdict.notes.is_empty(), "{:?}", verdict.notes);
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
    fn ml_detect_criteria_and_verification_reach_the_log_line() {
        let mut v = alarm("in-alarm");
        v["behavior"]["criteria"] = json!({"consecutiveDatapointsToAlarm": 1,
            "consecutiveDatapointsToClear": 1, "mlDetectionConfig": {"confidenceLevel": "HIGH"}});
        v["violationEventAdditionalInfo"] = json!({"confidenceLevel": "HIGH"});
        let verdict = verdict(v.clone(), &DecisionPolicy::default());
        assert!(verdict.notes.is_empty(), "{:?}", verdict.notes);
        assert_eq!(
            verdict.reason(),
            "in-alarm: behavior B (aws:num-messages-sent, ML Detect, confidence HIGH) of security profile P"
        );
        assert_eq!(verdict.to_json()["criteria"], "ML Detect, confidence HIGH");
        v["violationEventAdditionalInfo"] = json!({"confidenceLevel": "LOW"});
        v["verificationState"] = json!("TRUE_POSITIVE");
        let line = verdict_of(v, &DecisionPolicy::default()).to_json();
        assert_eq!(
            line["criteria"],
            "ML Detect, confidence HIGH, violation confidence LOW"
        );
        assert_eq!(line["verificationState"], "TRUE_POSITIVE");
        assert_eq!(line["decision"], "quarantine");
        let mut rule = alarm("in-alarm");
        rule["behavior"]["criteria"] = json!({"comparisonOperator": "greater-than",
            "value": {"count": 100}, "durationSeconds": 300});
        assert_eq!(
            verdict_of(rule, &DecisionPolicy::default()).to_json()["criteria"],
            "greater-than 100 (300 s)"
        );
    }

    #[test]
    fn benign_and_false_positives_never_quarantine_even_with_ml_detect() {
        for state in ["FALSE_POSITIVE", "BENIGN_POSITIVE"] {
            let mut v = alarm("in-alarm");
            v["behavior"]["criteria"] = json!({"mlDetectionConfig": {"confidenceLevel": "HIGH"}});
            v["verificationState"] = json!(state);
            v["verificationStateDescription"] = json!("lab device");
            let verdict = verdict(v, &DecisionPolicy::default());
            assert!(
                matches!(
                    verdict.decision,
                    Decision::Ignore(IgnoreReason::VerifiedNotAThreat(_))
                ),
                "{state}: {:?}",
                verdict.decision
            );
            assert_eq!(verdict.to_json()["verificationState"], state);
        }
        for state in ["TRUE_POSITIVE", "UNKNOWN", "SOMETHING_NEW"] {
            let mut v = alarm("in-alarm");
            v["verificationState"] = json!(state);
            assert_eq!(kind(v, &DecisionPolicy::default()), "quarantine", "{state}");
        }
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let line = verdict(alarm("in-alarm"), &DecisionPolicy::default()).to_json();
        assert_eq!(line["thingName"], "dev-1");
        assert_eq!(line["decision"], "quarantine");
        assert_eq!(line["recordId"], "m-1");
        assert_eq!(line["source"], "detect-violation");
        assert_eq!(line["subjects"], json!(["thing/dev-1"]));
        assert_eq!(line["violationId"], "v-1");
        assert!(
            line["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("in-alarm"))
        );
        assert!(line.get("error").is_none());
        let mut missing = alarm("in-alarm");
        missing["thingName"] = Value::Null;
        let rejected = verdict(missing, &DecisionPolicy::default()).to_json();
        assert_eq!(rejected["thingName"], Value::Null);
        assert_eq!(rejected["error"], "MissingThingName");
    }

    #[test]
    fn parse_violation_json_is_tolerant_but_needs_an_object() {
        let v = parse_violation_json(r#"{"thingName": "a", "violationEventTime": "x"}"#)
            .expect("tolerant");
        assert_eq!(v.thing_name.as_deref(), Some("a"));
        assert_eq!(v.violation_event_time, None);
        assert!(matches!(
            parse_violation_json("[1]"),
            Err(RejectReason::MessageNotObject { found: "an array" })
        ));
        assert!(matches!(
            parse_violation_json("nope"),
            Err(RejectReason::MessageNotJson { .. })
        ));
    }
}
