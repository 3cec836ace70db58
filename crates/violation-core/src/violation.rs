//! Typed model of the Device Defender Detect violation notification: the JSON that
//! Device Defender publishes to SNS (the SNS `Message` string, once parsed).
//!
//! Every field is optional, `null` is read as absent and unknown fields are ignored, because
//! AWS adds fields over time and a new field must never stop a device from being quarantined.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::reject::excerpt;

/// One violation notification.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationNotification {
    pub violation_id: Option<String>,
    /// Thing name as sent. For a profile attached to unregistered things this is the MQTT client id,
    /// which need not be a valid thing name: see [`crate::ThingName`].
    pub thing_name: Option<String>,
    pub security_profile_name: Option<String>,
    pub behavior: Option<Behavior>,
    pub metric_value: Option<MetricValue>,
    /// `in-alarm`, `alarm-cleared` or `alarm-invalidated`, kept as sent; [`crate::decide`] validates it.
    pub violation_event_type: Option<String>,
    pub violation_event_time: Option<EventTime>,
    pub verification_state: Option<VerificationState>,
    pub verification_state_description: Option<String>,
    pub violation_event_additional_info: Option<AdditionalInfo>,
}

/// A behavior of a security profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    pub name: Option<String>,
    /// `aws:num-messages-sent`, `aws:disconnect-duration`, or a custom metric name such as `num_child_procs_myapp`.
    pub metric: Option<String>,
    pub metric_dimension: Option<MetricDimension>,
    pub criteria: Option<BehaviorCriteria>,
    pub suppress_alerts: Option<bool>,
    pub export_metric: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDimension {
    pub dimension_name: Option<String>,
    /// `IN` or `NOT_IN`.
    pub operator: Option<String>,
}

/// Rule-based, statistical and ML Detect criteria. ML Detect criteria carry neither
/// operator nor value, only the datapoint counts and `mlDetectionConfig`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BehaviorCriteria {
    pub comparison_operator: Option<ComparisonOperator>,
    pub value: Option<MetricValue>,
    pub duration_seconds: Option<u64>,
    pub consecutive_datapoints_to_alarm: Option<u64>,
    pub consecutive_datapoints_to_clear: Option<u64>,
    pub statistical_threshold: Option<StatisticalThreshold>,
    pub ml_detection_config: Option<MlDetectionConfig>,
}

impl BehaviorCriteria {
    /// The criteria in words, for logs: `ML Detect, confidence HIGH`, `greater-than 100
    /// (300 s)`, `greater-than-equals statistical p90`; `None` when there is nothing to say.
    pub fn describe(&self) -> Option<String> {
        if let Some(ml) = &self.ml_detection_config {
            let level = ml.confidence_level.map_or("?", ConfidenceLevel::as_str);
            return Some(format!("ML Detect, confidence {level}"));
        }
        let operator = self.comparison_operator.map(ComparisonOperator::as_str);
        let threshold = match (&self.statistical_threshold, &self.value) {
            (Some(stat), _) => Some(format!(
                "statistical {}",
                stat.statistic
                    .as_deref()
                    .map_or("?".to_owned(), |s| excerpt(s, 20))
            )),
            (None, Some(value)) => Some(value.describe()),
            (None, None) => None,
        };
        let mut words: Vec<String> = operator
            .map(str::to_owned)
            .into_iter()
            .chain(threshold)
            .collect();
        if words.is_empty() {
            return None;
        }
        if let Some(seconds) = self.duration_seconds {
            words.push(format!("({seconds} s)"));
        }
        Some(words.join(" "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparisonOperator {
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
    InCidrSet,
    NotInCidrSet,
    InPortSet,
    NotInPortSet,
    InSet,
    NotInSet,
    /// An operator this version does not know yet.
    #[serde(other)]
    Unrecognized,
}

impl ComparisonOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::LessThan => "less-than",
            ComparisonOperator::LessThanEquals => "less-than-equals",
            ComparisonOperator::GreaterThan => "greater-than",
            ComparisonOperator::GreaterThanEquals => "greater-than-equals",
            ComparisonOperator::InCidrSet => "in-cidr-set",
            ComparisonOperator::NotInCidrSet => "not-in-cidr-set",
            ComparisonOperator::InPortSet => "in-port-set",
            ComparisonOperator::NotInPortSet => "not-in-port-set",
            ComparisonOperator::InSet => "in-set",
            ComparisonOperator::NotInSet => "not-in-set",
            ComparisonOperator::Unrecognized => "an unknown operator",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatisticalThreshold {
    /// `p0` .. `p100`, e.g. `p90`, `p99.9`.
    pub statistic: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MlDetectionConfig {
    pub confidence_level: Option<ConfidenceLevel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfidenceLevel {
    Low,
    Medium,
    High,
    #[serde(other)]
    Unrecognized,
}

impl ConfidenceLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfidenceLevel::Low => "LOW",
            ConfidenceLevel::Medium => "MEDIUM",
            ConfidenceLevel::High => "HIGH",
            ConfidenceLevel::Unrecognized => "unknown",
        }
    }
}

/// A metric value: exactly one field is set by AWS, but all are read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValue {
    pub count: Option<u64>,
    pub cidrs: Option<Vec<String>>,
    pub ports: Option<Vec<u16>>,
    pub number: Option<f64>,
    pub numbers: Option<Vec<f64>>,
    pub strings: Option<Vec<String>>,
}

impl MetricValue {
    /// The value in words, lists cut short.
    pub fn describe(&self) -> String {
        fn list<T: ToString>(items: &[T]) -> String {
            let shown: Vec<String> = items
                .iter()
                .take(5)
                .map(|i| excerpt(&i.to_string(), 60))
                .collect();
            let more = items.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            };
            format!("[{}{tail}]", shown.join(", "))
        }
        if let Some(count) = self.count {
            count.to_string()
        } else if let Some(number) = self.number {
            number.to_string()
        } else if let Some(v) = &self.numbers {
            list(v)
        } else if let Some(v) = &self.ports {
            list(v)
        } else if let Some(v) = &self.cidrs {
            list(v)
        } else if let Some(v) = &self.strings {
            list(v)
        } else {
            "?".to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationState {
    FalsePositive,
    BenignPositive,
    TruePositive,
    Unknown,
    #[serde(other)]
    Unrecognized,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalInfo {
    pub confidence_level: Option<ConfidenceLevel>,
}

/// When the violation happened, in epoch milliseconds.
///
/// SNS sends an integer number of epoch milliseconds; the API and CLI show epoch seconds as a
/// decimal number. Both are accepted: an integer is read as milliseconds, a number with a
/// fraction or exponent as seconds. It serialises as integer milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventTime {
    pub epoch_millis: i64,
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        if let Some(ms) = number.as_i64() {
            return Ok(EventTime { epoch_millis: ms });
        }
        if number.is_u64() {
            return Err(serde::de::Error::custom(
                "violationEventTime is out of range",
            ));
        }
        let seconds = number
            .as_f64()
            .ok_or_else(|| serde::de::Error::custom("violationEventTime is not a number"))?;
        let millis = (seconds * 1000.0).round();
        // i64::MAX as f64 rounds up to 2^63, so compare strictly below it.
        if !millis.is_finite() || millis < i64::MIN as f64 || millis >= i64::MAX as f64 {
            return Err(serde::de::Error::custom(
                "violationEventTime is out of range",
            ));
        }
        Ok(EventTime {
            epoch_millis: millis as i64,
        })
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.epoch_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> ViolationNotification {
        serde_json::from_value(value).expect("valid notification")
    }

    #[test]
    fn seed_example_parses_every_field() {
        let v = parse(json!({
            "violationEventTime": 1573786800000u64,
            "thingName": "dev-IZWB",
            "behavior": {
                "criteria": {"consecutiveDatapointsToClear": 1, "value": {"count": 10},
                    "durationSeconds": 300, "consecutiveDatapointsToAlarm": 1, "comparisonOperator": "less-than"},
                "name": "MessagesPub", "metric": "aws:num-messages-sent"
            },
            "violationEventType": "in-alarm",
            "metricValue": {"count": 54},
            "violationId": "37e18651d207bbc74236c13faf146127",
            "securityProfileName": "MySecProfile"
        }));
        assert_eq!(v.thing_name.as_deref(), Some("dev-IZWB"));
        assert_eq!(
            v.violation_event_time,
            Some(EventTime {
                epoch_millis: 1573786800000
            })
        );
        let criteria = v
            .behavior
            .as_ref()
            .and_then(|b| b.criteria.as_ref())
            .expect("criteria");
        assert_eq!(
            criteria.comparison_operator,
            Some(ComparisonOperator::LessThan)
        );
        assert_eq!(criteria.value.as_ref().and_then(|m| m.count), Some(10));
        assert_eq!(criteria.duration_seconds, Some(300));
        assert_eq!(v.metric_value.and_then(|m| m.count), Some(54));
    }

    #[test]
    fn every_metric_value_kind_is_read() {
        let m: MetricValue = serde_json::from_value(json!({
            "count": 3, "cidrs": ["10.0.0.0/8"], "ports": [22, 443], "number": -71.5,
            "numbers": [1.0, 2.5], "strings": ["a", "b"]
        }))
        .expect("metric value");
        assert_eq!(m.count, Some(3));
        assert_eq!(m.cidrs, Some(vec!["10.0.0.0/8".to_string()]));
        assert_eq!(m.ports, Some(vec![22, 443]));
        assert_eq!(m.number, Some(-71.5));
        assert_eq!(m.numbers, Some(vec![1.0, 2.5]));
        assert_eq!(m.strings, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn statistical_ml_dimension_and_verification_fields_are_read() {
        let v = parse(json!({
            "behavior": {
                "name": "ml", "metric": "aws:all-bytes-out",
                "metricDimension": {"dimensionName": "TopicFilter", "operator": "NOT_IN"},
                "criteria": {"consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1,
                    "mlDetectionConfig": {"confidenceLevel": "HIGH"},
                    "statisticalThreshold": {"statistic": "p99.9"}},
                "suppressAlerts": false, "exportMetric": true
            },
            "verificationState": "BENIGN_POSITIVE",
            "verificationStateDescription": "lab device",
            "violationEventAdditionalInfo": {"confidenceLevel": "MEDIUM"}
        }));
        let b = v.behavior.expect("behavior");
        assert_eq!(
            b.metric_dimension.and_then(|d| d.operator).as_deref(),
            Some("NOT_IN")
        );
        let c = b.criteria.expect("criteria");
        assert_eq!(c.comparison_operator, None);
        assert_eq!(
            c.ml_detection_config.and_then(|m| m.confidence_level),
            Some(ConfidenceLevel::High)
        );
        assert_eq!(
            c.statistical_threshold.and_then(|s| s.statistic).as_deref(),
            Some("p99.9")
        );
        assert_eq!(b.export_metric, Some(true));
        assert_eq!(
            v.verification_state,
            Some(VerificationState::BenignPositive)
        );
        assert_eq!(
            v.violation_event_additional_info
                .and_then(|a| a.confidence_level),
            Some(ConfidenceLevel::Medium)
        );
    }

    #[test]
    fn criteria_are_described_for_every_kind_of_behavior() {
        let criteria = |value: serde_json::Value| -> BehaviorCriteria {
            serde_json::from_value(value).expect("criteria")
        };
        let ml = criteria(json!({"consecutiveDatapointsToAlarm": 1,
            "mlDetectionConfig": {"confidenceLevel": "HIGH"}}));
        assert_eq!(ml.describe().as_deref(), Some("ML Detect, confidence HIGH"));
        let rule = criteria(
            json!({"comparisonOperator": "greater-than", "value": {"count": 100},
            "durationSeconds": 300}),
        );
        assert_eq!(rule.describe().as_deref(), Some("greater-than 100 (300 s)"));
        let stat = criteria(json!({"comparisonOperator": "greater-than-equals",
            "statisticalThreshold": {"statistic": "p90"}}));
        assert_eq!(
            stat.describe().as_deref(),
            Some("greater-than-equals statistical p90")
        );
        let ports = criteria(json!({"comparisonOperator": "not-in-port-set",
            "value": {"ports": [22, 80, 443, 8080, 8443, 9000, 9001]}}));
        assert_eq!(
            ports.describe().as_deref(),
            Some("not-in-port-set [22, 80, 443, 8080, 8443, … 2 more]")
        );
        assert_eq!(
            criteria(json!({"consecutiveDatapointsToClear": 1})).describe(),
            None
        );
    }

    #[test]
    fn nulls_are_absent_and_unknown_fields_are_tolerated() {
        let v = parse(json!({
            "thingName": null, "behavior": null, "metricValue": {"count": null},
            "brandNewField": {"x": 1}, "violationEventType": "in-alarm"
        }));
        assert_eq!(v.thing_name, None);
        assert_eq!(v.behavior, None);
        assert_eq!(v.metric_value, Some(MetricValue::default()));
    }

    #[test]
    fn unknown_enum_values_do_not_fail_the_parse() {
        let v = parse(json!({
            "verificationState": "SOMETHING_NEW",
            "behavior": {"criteria": {"comparisonOperator": "roughly-equals"}}
        }));
        assert_eq!(v.verification_state, Some(VerificationState::Unrecognized));
        assert_eq!(
            v.behavior
                .and_then(|b| b.criteria)
                .and_then(|c| c.comparison_operator),
            Some(ComparisonOperator::Unrecognized)
        );
    }

    #[test]
    fn event_time_accepts_integer_millis_and_float_seconds() {
        let ms: EventTime = serde_json::from_str("1573786800000").expect("millis");
        assert_eq!(ms.epoch_millis, 1_573_786_800_000);
        let s: EventTime = serde_json::from_str("1574254500.0").expect("seconds");
        assert_eq!(s.epoch_millis, 1_574_254_500_000);
        let frac: EventTime = serde_json::from_str("1574254500.123").expect("seconds");
        assert_eq!(frac.epoch_millis, 1_574_254_500_123);
        assert_eq!(
            serde_json::to_string(&frac).expect("serialise"),
            "1574254500123"
        );
    }

    #[test]
    fn event_time_rejects_strings_and_overflow() {
        assert!(serde_json::from_str::<EventTime>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<EventTime>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<EventTime>("1e300").is_err());
    }
}
