//! Which cause a record adds or clears. A cause id is stable across the alert's deliveries
//! and shared by its clear:
//! - Detect: the violation id (in-alarm and alarm-cleared carry the same);
//! - CloudWatch: the alarm ARN (its name when the ARN is missing) and the thing;
//! - Security Hub: the record's finding ids;
//! - audit: the finding id (the audit task and the thing for an expanded task);
//! - mitigation request: its source and a hash of its reason and time; a release request
//!   clears the cause its `causeId` names, or every cause.

use violation_core::{Action, AlertSource, AlertTime, ThingName, Verdict};

use super::state::{Cause, CauseChange};
use super::time::parse_rfc3339_millis;

/// What the ledger needs to know about the record beyond its verdict.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Now (epoch ms).
    pub now: i64,
    /// `MIN_QUARANTINE_MINUTES` in milliseconds.
    pub min_quarantine_ms: i64,
    /// The Lambda request id, when there is one.
    pub request_id: &'a str,
}

/// The cause id of `verdict` for `thing`.
pub fn cause_id(verdict: &Verdict, thing: &ThingName) -> String {
    let f = &verdict.facts;
    let joined_findings = || (!f.finding_ids.is_empty()).then(|| f.finding_ids.join(","));
    match verdict.source {
        Some(AlertSource::DetectViolation) => f
            .violation_id
            .clone()
            .unwrap_or_else(|| format!("record:{}", verdict.record_id)),
        Some(AlertSource::CloudWatchAlarm) => {
            let alarm = f
                .alarm_arn
                .as_deref()
                .or(f.alarm_name.as_deref())
                .unwrap_or("?");
            format!("{alarm}|{thing}")
        }
        Some(AlertSource::SecurityHub | AlertSource::AuditFinding) => {
            joined_findings().unwrap_or_else(|| format!("record:{}", verdict.record_id))
        }
        Some(AlertSource::AuditTask) => {
            format!("audit-task:{}|{thing}", f.task_id.as_deref().unwrap_or("?"))
        }
        Some(AlertSource::MitigationRequest) => {
            let source = f.request_source.as_deref().unwrap_or("");
            let time = match &f.time {
                Some(AlertTime::Text(t)) => t.as_str(),
                _ => "",
            };
            let reason = f.alert_reason.as_deref().unwrap_or("");
            format!("request:{source}:{:016x}", fnv1a(&[source, reason, time]))
        }
        // A membership event adds and clears no cause (handler/drift.rs); named for
        // completeness.
        Some(AlertSource::ThingGroupMembership) | None => format!("record:{}", verdict.record_id),
    }
}

/// FNV-1a over the parts, each followed by a separator: a stable id for requests that
/// carry none (std's hashers are not stable across releases).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// When the alert says it happened, in epoch ms.
pub fn occurred_at(verdict: &Verdict) -> Option<i64> {
    match &verdict.facts.time {
        Some(AlertTime::EpochMillis(ms)) => Some(*ms),
        Some(AlertTime::Text(text)) => parse_rfc3339_millis(text),
        None => None,
    }
}

/// What `verdict` asks of `thing`'s causes when it comes to `action`.
pub fn change_of(
    verdict: &Verdict,
    action: Action,
    thing: &ThingName,
    arrival: Arrival<'_>,
) -> CauseChange {
    let at = occurred_at(verdict).unwrap_or(arrival.now);
    match action {
        Action::Quarantine => CauseChange::Add(Cause {
            id: cause_id(verdict, thing),
            kind: verdict
                .source
                .map_or("unknown", AlertSource::as_str)
                .to_owned(),
            sender: verdict.facts.request_source.clone().unwrap_or_default(),
            occurred_at: at,
            recorded_at: arrival.now,
            record_id: verdict.record_id.clone(),
            delivery: verdict.envelope.as_str().to_owned(),
            request_id: arrival.request_id.to_owned(),
        }),
        // A release request, let through by RELEASE_SOURCES: the cause it names (no minimum
        // time: the sender is trusted), else every cause.
        Action::Release if verdict.source == Some(AlertSource::MitigationRequest) => {
            match &verdict.facts.request_cause {
                Some(id) => CauseChange::Clear {
                    id: id.clone(),
                    at,
                    settled_before: i64::MAX,
                },
                None => CauseChange::ClearAll { at },
            }
        }
        Action::Release => CauseChange::Clear {
            id: cause_id(verdict, thing),
            at,
            settled_before: arrival.now - arrival.min_quarantine_ms,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use violation_core::{DecisionPolicy, Envelope, InboundRecord, decide, fixtures};

    fn verdict(message: serde_json::Value) -> Verdict {
        let record = InboundRecord {
            index: 0,
            id: "m-1".into(),
            envelope: Envelope::SqsRaw,
            message: Ok(message),
            notes: Vec::new(),
        };
        decide(&record, &DecisionPolicy::default())
    }

    fn thing(name: &str) -> ThingName {
        ThingName::parse(name).expect("thing")
    }

    const ARRIVAL: Arrival<'static> = Arrival {
        now: 1_000_000,
        min_quarantine_ms: 600_000,
        request_id: "req-1",
    };

    #[test]
    fn a_detect_alarm_and_its_clear_share_the_violation_id() {
        let alarm = verdict(fixtures::violation_on_metric(
            "dev-1", "in-alarm", "v-9", "m",
        ));
        let cleared = verdict(fixtures::violation_on_metric(
            "dev-1",
            "alarm-cleared",
            "v-9",
            "m",
        ));
        let dev = thing("dev-1");
        let CauseChange::Add(cause) = change_of(&alarm, Action::Quarantine, &dev, ARRIVAL) else {
            panic!("a quarantine adds")
        };
        assert_eq!(
            (cause.id.as_str(), cause.kind.as_str()),
            ("v-9", "detect-violation")
        );
        assert_eq!(
            (cause.record_id.as_str(), cause.delivery.as_str()),
            ("m-1", "sqs-raw")
        );
        assert_eq!(cause.request_id, "req-1");
        assert_eq!(Some(cause.occurred_at), occurred_at(&alarm));
        assert_eq!(
            change_of(&cleared, Action::Release, &dev, ARRIVAL),
            CauseChange::Clear {
                id: "v-9".into(),
                at: occurred_at(&cleared).expect("Detect gives its time"),
                settled_before: 400_000,
            }
        );
    }

    #[test]
    fn requests_get_a_stable_id_and_a_release_request_clears_everything() {
        let request = json!({"thingName": "dev-1", "action": "quarantine", "reason": "r",
            "source": "soc", "time": "2025-12-04T20:49:14Z"});
        let dev = thing("dev-1");
        let a = cause_id(&verdict(request.clone()), &dev);
        assert_eq!(
            a,
            cause_id(&verdict(request), &dev),
            "stable across deliveries"
        );
        assert!(a.starts_with("request:soc:"), "{a}");
        let other = json!({"thingName": "dev-1", "action": "quarantine", "reason": "other",
            "source": "soc"});
        assert_ne!(a, cause_id(&verdict(other), &dev));
        let release = verdict(
            json!({"thingName": "dev-1", "action": "release", "source": "soc",
            "time": "2025-12-04T20:49:14Z"}),
        );
        assert_eq!(
            change_of(&release, Action::Release, &dev, ARRIVAL),
            CauseChange::ClearAll {
                at: 1_764_881_354_000
            }
        );
    }

    #[test]
    fn an_alert_without_a_time_counts_from_its_arrival() {
        let request = verdict(json!({"thingName": "dev-1", "action": "quarantine"}));
        let CauseChange::Add(cause) =
            change_of(&request, Action::Quarantine, &thing("dev-1"), ARRIVAL)
        else {
            panic!("a quarantine adds")
        };
        assert_eq!(
            (cause.occurred_at, cause.recorded_at),
            (1_000_000, 1_000_000)
        );
    }
}
