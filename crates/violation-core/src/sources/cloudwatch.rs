//! CloudWatch alarm state changes, in the three shapes they arrive in:
//! - the SNS message of an alarm action (`AlarmName`, `NewStateValue`, `Trigger.Dimensions`
//!   as a list of `{name, value}`; metric-math alarms carry `Trigger.Metrics[]` instead);
//! - the Lambda alarm action event (`source` `aws.cloudwatch`, `alarmData`, whose metrics'
//!   dimensions are a map);
//! - the EventBridge "CloudWatch Alarm State Change" event (the same data under `detail`).
//!
//! ALARM quarantines the thing named by the dimension `THING_DIMENSION`; OK releases it
//! when release on clear is on; INSUFFICIENT_DATA is ignored. An alarm without that
//! dimension cannot name a thing and is rejected, naming the alarm.

use std::collections::BTreeSet;

use crate::decision::{Action, Decision, DecisionPolicy, IgnoreReason};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::subject::Subject;
use crate::verdict::{AlertFacts, AlertTime};

/// One alarm state change, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AlarmChange {
    name: Option<String>,
    arn: Option<String>,
    state: Option<String>,
    reason: Option<String>,
    time: Option<String>,
    /// Distinct values of the thing dimension, in the order found.
    things: Vec<String>,
}

pub(crate) fn looks_like(f: Fields<'_>) -> bool {
    let sns = f.has("AlarmName") && f.has("NewStateValue");
    let event =
        f.str("source") == Some("aws.cloudwatch") && (f.has("alarmData") || f.has("detail"));
    sns || event
}

pub(crate) fn decide(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let change = if f.has("NewStateValue") {
        read_sns(f, &policy.thing_dimension, notes)
    } else {
        read_event(f, &policy.thing_dimension, notes)
    };
    let facts = AlertFacts {
        subject: (!change.things.is_empty()).then(|| change.things.join(", ")),
        thing_name: change.things.first().cloned(),
        event_type: change.state.clone(),
        time: change.time.clone().map(AlertTime::Text),
        alert_reason: change.reason.clone(),
        alarm_name: change.name.clone(),
        alarm_arn: change.arn.clone(),
        ..AlertFacts::default()
    };
    let decision = decide_change(&change, policy).unwrap_or_else(Decision::Reject);
    Decided { facts, decision }
}

fn decide_change(change: &AlarmChange, policy: &DecisionPolicy) -> Result<Decision, RejectReason> {
    let alarm = change
        .name
        .clone()
        .or_else(|| change.arn.clone())
        .unwrap_or_else(|| "?".to_owned());
    let action = match change.state.as_deref() {
        None => {
            return Err(RejectReason::MissingField {
                alert: AlertSource::CloudWatchAlarm,
                field: "state (NewStateValue, alarmData.state.value or detail.state.value)",
            });
        }
        Some("ALARM") => Action::Quarantine,
        Some("OK") if policy.release_on_clear => Action::Release,
        Some("OK") => {
            return Ok(Decision::Ignore(IgnoreReason::AlarmOkWithoutRelease {
                alarm,
            }));
        }
        Some("INSUFFICIENT_DATA") => {
            return Ok(Decision::Ignore(IgnoreReason::AlarmInsufficientData {
                alarm,
            }));
        }
        Some(other) => {
            return Err(RejectReason::UnknownAlarmState {
                alarm: excerpt(&alarm, 200),
                value: excerpt(other, 60),
            });
        }
    };
    let subjects = change
        .things
        .iter()
        .map(|value| {
            Subject::thing(value).map_err(|problem| RejectReason::InvalidSubject {
                field: format!("dimension {}", policy.thing_dimension),
                value: excerpt(value, 140),
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Decision::act(action, subjects).ok_or_else(|| RejectReason::AlarmWithoutThingDimension {
        alarm: excerpt(&alarm, 200),
        dimension: policy.thing_dimension.clone(),
    })
}

/// The SNS message of an alarm action.
fn read_sns(f: Fields<'_>, dimension: &str, notes: &mut Notes) -> AlarmChange {
    let mut things = Vec::new();
    if let Some(trigger) = f.object("Trigger", notes) {
        collect_list_dimensions(trigger, "Dimensions", dimension, &mut things, notes);
        for metric in trigger.objects("Metrics", notes) {
            let dims_holder = metric
                .object("MetricStat", notes)
                .and_then(|s| s.object("Metric", notes));
            if let Some(holder) = dims_holder {
                collect_list_dimensions(holder, "Dimensions", dimension, &mut things, notes);
            }
        }
    }
    AlarmChange {
        name: f.text("AlarmName", notes),
        arn: f.text("AlarmArn", notes),
        state: f.str("NewStateValue").map(str::to_owned),
        reason: f.text("NewStateReason", notes),
        time: f.text("StateChangeTime", notes),
        things: dedup(things),
    }
}

/// `[{"name": N, "value": V}]` (also `Name` / `Value`).
fn collect_list_dimensions(
    holder: Fields<'_>,
    key: &'static str,
    dimension: &str,
    things: &mut Vec<String>,
    notes: &mut Notes,
) {
    for d in holder.objects(key, notes) {
        let name = d.str("name").or_else(|| d.str("Name"));
        if name == Some(dimension)
            && let Some(value) = d.str("value").or_else(|| d.str("Value"))
        {
            things.push(value.to_owned());
        }
    }
}

/// The Lambda alarm action event (`alarmData`) or the EventBridge event (`detail`).
fn read_event(f: Fields<'_>, dimension: &str, notes: &mut Notes) -> AlarmChange {
    let data = f
        .object("alarmData", notes)
        .or_else(|| f.object("detail", notes));
    let state = data.and_then(|d| d.object("state", notes));
    let mut things = Vec::new();
    let metrics = data
        .and_then(|d| d.object("configuration", notes))
        .map(|c| c.objects("metrics", notes))
        .unwrap_or_default();
    for metric in metrics {
        let dims = metric
            .object("metricStat", notes)
            .and_then(|s| s.object("metric", notes))
            .and_then(|m| m.object("dimensions", notes));
        if let Some(value) = dims.and_then(|d| d.text(dimension, notes)) {
            things.push(value);
        }
    }
    AlarmChange {
        name: data.and_then(|d| d.text("alarmName", notes)),
        // EventBridge names the alarm's ARN in `resources`.
        arn: f.text("alarmArn", notes).or_else(|| {
            f.raw("resources")
                .and_then(|r| r.get(0))
                .and_then(|r| r.as_str())
                .map(str::to_owned)
        }),
        state: state.and_then(|s| s.str("value")).map(str::to_owned),
        reason: state.and_then(|s| s.text("reason", notes)),
        time: f
            .text("time", notes)
            .or_else(|| state.and_then(|s| s.text("timestamp", notes))),
        things: dedup(things),
    }
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::verdict_of;
    use serde_json::{Value, json};

    fn sns(state: &str, dimensions: Value) -> Value {
        json!({"AlarmName": "dev-1-child-procs", "AlarmDescription": null,
               "AWSAccountId": "123456789012", "NewStateValue": state,
               "NewStateReason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).",
               "StateChangeTime": "2026-11-20T10:15:00.000+0000", "Region": "EU (Ireland)",
               "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:dev-1-child-procs",
               "OldStateValue": "OK",
               "Trigger": {"MetricName": "num_child_procs_myapp", "Namespace": "Fleet",
                           "Statistic": "MAXIMUM", "Dimensions": dimensions, "Period": 60,
                           "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
                           "Threshold": 0.0}})
    }

    fn thing_dimension(value: &str) -> Value {
        json!([{"value": value, "name": "ThingName"}, {"value": "prod", "name": "Stage"}])
    }

    fn dev1() -> Vec<Subject> {
        vec![Subject::thing("dev-1").expect("thing")]
    }

    #[test]
    fn alarm_quarantines_the_thing_of_the_dimension() {
        let verdict = verdict_of(
            sns("ALARM", thing_dimension("dev-1")),
            &DecisionPolicy::default(),
        );
        assert_eq!(verdict.source, Some(AlertSource::CloudWatchAlarm));
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                subjects: dev1()
            }
        );
        assert!(
            verdict
                .reason()
                .starts_with("CloudWatch alarm dev-1-child-procs is ALARM: Threshold Crossed")
        );
        let line = verdict.to_json();
        assert_eq!(line["alarmName"], "dev-1-child-procs");
        assert_eq!(line["thingName"], "dev-1");
        assert_eq!(line["time"], "2026-11-20T10:15:00.000+0000");
    }

    #[test]
    fn ok_releases_only_when_enabled_and_insufficient_data_is_ignored() {
        let policy = DecisionPolicy::default();
        assert!(matches!(
            verdict_of(sns("OK", thing_dimension("dev-1")), &policy).decision,
            Decision::Ignore(IgnoreReason::AlarmOkWithoutRelease { .. })
        ));
        let release = DecisionPolicy {
            release_on_clear: true,
            ..Default::default()
        };
        assert_eq!(
            verdict_of(sns("OK", thing_dimension("dev-1")), &release).decision,
            Decision::Act {
                action: Action::Release,
                subjects: dev1()
            }
        );
        assert!(matches!(
            verdict_of(sns("INSUFFICIENT_DATA", json!([])), &release).decision,
            Decision::Ignore(IgnoreReason::AlarmInsufficientData { .. })
        ));
        assert!(matches!(
            verdict_of(sns("PANIC", thing_dimension("dev-1")), &release).decision,
            Decision::Reject(RejectReason::UnknownAlarmState { .. })
        ));
    }

    #[test]
    fn an_alarm_without_the_dimension_is_rejected_naming_it() {
        let verdict = verdict_of(
            sns("ALARM", json!([{"name": "Stage", "value": "prod"}])),
            &DecisionPolicy::default(),
        );
        assert_eq!(
            verdict.reason(),
            "record m-1: CloudWatch alarm \"dev-1-child-procs\" has no dimension \"ThingName\" naming the thing (THING_DIMENSION) in its metric or metrics"
        );
        let custom = DecisionPolicy {
            thing_dimension: "Stage".into(),
            ..Default::default()
        };
        let staged = verdict_of(
            sns("ALARM", json!([{"name": "Stage", "value": "prod"}])),
            &custom,
        );
        assert_eq!(
            staged.decision.subjects(),
            [Subject::thing("prod").expect("thing")]
        );
    }

    #[test]
    fn metric_math_alarms_name_things_in_their_metrics() {
        let mut message = sns("ALARM", json!([]));
        message["Trigger"] = json!({"Metrics": [
            {"Id": "e1", "Expression": "m1 + m2", "ReturnData": true},
            {"Id": "m1", "MetricStat": {"Metric": {"MetricName": "a", "Namespace": "Fleet",
                "Dimensions": [{"name": "ThingName", "value": "dev-1"}]}, "Period": 60, "Stat": "Sum"}},
            {"Id": "m2", "MetricStat": {"Metric": {"MetricName": "b", "Namespace": "Fleet",
                "Dimensions": [{"name": "ThingName", "value": "dev-1"}]}, "Period": 60, "Stat": "Sum"}}]});
        assert_eq!(
            verdict_of(message, &DecisionPolicy::default())
                .decision
                .subjects(),
            dev1()
        );
    }

    #[test]
    fn the_lambda_alarm_action_and_eventbridge_events_are_read() {
        let metrics = json!([{"id": "m1", "metricStat": {"metric": {"namespace": "Fleet",
            "name": "num_child_procs_myapp", "dimensions": {"ThingName": "dev-1"}},
            "period": 60, "stat": "Maximum"}, "returnData": true}]);
        let action = json!({"source": "aws.cloudwatch",
            "alarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:procs",
            "accountId": "123456789012", "time": "2026-11-20T10:15:00.000+0000", "region": "eu-west-1",
            "alarmData": {"alarmName": "procs", "state": {"value": "ALARM", "reason": "r",
                "timestamp": "2026-11-20T10:15:00.000+0000"}, "previousState": {"value": "OK"},
                "configuration": {"metrics": metrics}}});
        let verdict = verdict_of(action, &DecisionPolicy::default());
        assert_eq!(verdict.decision.subjects(), dev1());
        assert_eq!(verdict.facts.alarm_name.as_deref(), Some("procs"));
        let eventbridge = json!({"version": "0", "id": "e-1", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "time": "2026-11-20T10:15:00Z",
            "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:procs"],
            "detail": {"alarmName": "procs", "state": {"value": "ALARM"},
                "configuration": {"metrics": metrics}}});
        let verdict = verdict_of(eventbridge, &DecisionPolicy::default());
        assert_eq!(verdict.decision.subjects(), dev1());
        assert_eq!(
            verdict.facts.alarm_arn.as_deref(),
            Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:procs")
        );
    }

    #[test]
    fn an_invalid_thing_in_the_dimension_is_rejected() {
        let verdict = verdict_of(
            sns("ALARM", thing_dimension("a/../b")),
            &DecisionPolicy::default(),
        );
        assert!(matches!(
            verdict.decision,
            Decision::Reject(RejectReason::InvalidSubject { .. })
        ));
    }
}
