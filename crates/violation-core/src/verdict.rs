//! One record's verdict: which source sent it, what it asks, and the facts an operator
//! needs to read the decision at 3 a.m.

use serde_json::{Map, Value, json};

use crate::decision::{Action, Decision, DecisionPolicy};
use crate::envelope::{DecodedEvent, Envelope, InboundRecord};
use crate::lenient::{Fields, Notes, json_type};
use crate::reject::{RejectReason, excerpt};
use crate::sources::audit::{AuditFindingFields, decide_audit_finding};
use crate::sources::{self, AlertSource, Decided};

/// When the alert says it happened, in the form it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTime {
    /// Epoch milliseconds (Detect `violationEventTime`, audit `taskStartTime`).
    EpochMillis(i64),
    /// A timestamp as sent, e.g. ISO 8601 (CloudWatch, EventBridge, requests).
    Text(String),
}

/// What the alert says, as sent (never validated; `None` when the alert does not say).
/// Only the fields of its source are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFacts {
    /// The subjects as the alert wrote them (thing name, ARN, client id, certificate id),
    /// several joined with `, `.
    pub subject: Option<String>,
    /// The thing name as sent: Detect and request `thingName`, the alarm's thing dimension.
    pub thing_name: Option<String>,
    /// The alert's state: `violationEventType`, `NewStateValue`, `taskStatus`, the request's
    /// `action`, the EventBridge `detail-type`.
    pub event_type: Option<String>,
    pub time: Option<AlertTime>,
    /// The alert's own words: `NewStateReason`, the request's `reason`, finding titles.
    pub alert_reason: Option<String>,
    pub violation_id: Option<String>,
    pub security_profile_name: Option<String>,
    pub behavior_name: Option<String>,
    pub metric: Option<String>,
    /// The behavior's criteria in words: a threshold, a statistical threshold, or ML Detect
    /// with its confidence level.
    pub criteria: Option<String>,
    /// The violation's `verificationState`, as an operator set it.
    pub verification_state: Option<String>,
    pub alarm_name: Option<String>,
    pub alarm_arn: Option<String>,
    pub task_id: Option<String>,
    pub check_name: Option<String>,
    /// Audit finding ids, or Security Hub finding ids.
    pub finding_ids: Vec<String>,
    /// Who sent a mitigation request (its `source`).
    pub request_source: Option<String>,
    /// A release request's `causeId`: the one cause of the quarantine ledger it clears.
    pub request_cause: Option<String>,
    /// A registry event's `eventId`.
    pub event_id: Option<String>,
    /// The thing group of a membership event.
    pub group_name: Option<String>,
}

/// Longest text of one fact in a log line, and most finding ids listed.
const MAX_FACT_CHARS: usize = 1_000;
const MAX_FINDING_IDS: usize = 50;

impl AlertFacts {
    /// The facts cut to a size one log line can carry, whatever the alert sent.
    fn bounded(mut self) -> Self {
        for text in [
            &mut self.subject,
            &mut self.thing_name,
            &mut self.event_type,
            &mut self.alert_reason,
            &mut self.violation_id,
            &mut self.security_profile_name,
            &mut self.behavior_name,
            &mut self.metric,
            &mut self.criteria,
            &mut self.verification_state,
            &mut self.alarm_name,
            &mut self.alarm_arn,
            &mut self.task_id,
            &mut self.check_name,
            &mut self.request_source,
            &mut self.request_cause,
            &mut self.event_id,
            &mut self.group_name,
        ]
        .into_iter()
        .flatten()
        {
            *text = excerpt(text, MAX_FACT_CHARS);
        }
        if let Some(AlertTime::Text(time)) = &mut self.time {
            *time = excerpt(time, 100);
        }
        let extra = self.finding_ids.len().saturating_sub(MAX_FINDING_IDS);
        if extra > 0 {
            self.finding_ids.truncate(MAX_FINDING_IDS);
            self.finding_ids.push(format!("… and {extra} more"));
        }
        self
    }

    /// Epoch milliseconds, when the alert gave its time so.
    pub fn event_time_millis(&self) -> Option<i64> {
        match self.time {
            Some(AlertTime::EpochMillis(ms)) => Some(ms),
            _ => None,
        }
    }
}

/// One record's decision with the facts an operator needs to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub record_id: String,
    pub envelope: Envelope,
    /// `None` when the record could not be read far enough to tell.
    pub source: Option<AlertSource>,
    pub facts: AlertFacts,
    pub decision: Decision,
    /// What tolerant decoding skipped or found odd (fields the decision does not need).
    pub notes: Vec<String>,
}

impl Verdict {
    /// Why this decision was taken, in words.
    pub fn reason(&self) -> String {
        match &self.decision {
            Decision::Act { action, .. } => self.act_reason(*action),
            Decision::ExpandAudit { task_id, checks } => format!(
                "audit task {task_id} completed with non-compliant checks {}: its findings are listed and decided one by one",
                checks.join(", ")
            ),
            Decision::LookupFinding { finding_id } => format!(
                "audit finding {finding_id} (PUBLISH_FINDING_TO_SNS, whose message schema AWS does not document): its details are read with DescribeAuditFinding"
            ),
            Decision::Reconcile { thing } => format!(
                "thing {thing} was removed from the quarantine group {} (registry event {}): quarantine-group puts it back if the ledger holds it quarantined (active causes, quarantine in force)",
                self.facts
                    .group_name
                    .as_deref()
                    .map_or_else(|| "?".to_owned(), |g| excerpt(g, 140)),
                self.facts
                    .event_id
                    .as_deref()
                    .map_or_else(|| "?".to_owned(), |e| excerpt(e, 140)),
            ),
            Decision::Ignore(reason) => reason.to_string(),
            Decision::Reject(reason) => format!("record {}: {reason}", self.record_id),
        }
    }

    fn act_reason(&self, action: Action) -> String {
        let f = &self.facts;
        let or_q = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "?".to_owned(), |v| excerpt(v, 200))
        };
        match (self.source, action) {
            (Some(AlertSource::DetectViolation), Action::Quarantine) => format!(
                "in-alarm: behavior {} ({}{}) of security profile {}",
                or_q(&f.behavior_name),
                or_q(&f.metric),
                f.criteria
                    .as_deref()
                    .map_or_else(String::new, |c| format!(", {}", excerpt(c, 200))),
                or_q(&f.security_profile_name),
            ),
            (Some(AlertSource::DetectViolation), Action::Release) => format!(
                "alarm-cleared: behavior {} ({}, not a cloud-side metric) and release on clear is on",
                or_q(&f.behavior_name),
                or_q(&f.metric),
            ),
            (Some(AlertSource::CloudWatchAlarm), _) => format!(
                "CloudWatch alarm {} is {}: {}",
                or_q(&f.alarm_name),
                or_q(&f.event_type),
                or_q(&f.alert_reason),
            ),
            (Some(AlertSource::MitigationRequest), _) => format!(
                "{} requested by {}: {}",
                action.as_str(),
                or_q(&f.request_source),
                or_q(&f.alert_reason),
            ),
            (Some(AlertSource::SecurityHub), _) => format!(
                "Security Hub finding {}: {}",
                f.finding_ids.join(", "),
                or_q(&f.alert_reason),
            ),
            // Never acts (its decision is a reconcile); named for completeness.
            (Some(AlertSource::ThingGroupMembership), _) => action.as_str().to_owned(),
            (Some(AlertSource::AuditFinding | AlertSource::AuditTask), _) => format!(
                "audit finding {} of check {} (audit task {})",
                f.finding_ids.join(", "),
                or_q(&f.check_name),
                or_q(&f.task_id),
            ),
            (None, _) => action.as_str().to_owned(),
        }
    }

    /// The record as one JSON object: what replay prints and the functions log. The keys
    /// of a Detect violation are always present; those of other sources when set.
    pub fn to_json(&self) -> Value {
        let f = &self.facts;
        let mut out = json!({
            "recordId": self.record_id,
            "envelope": self.envelope.as_str(),
            "source": self.source.map(AlertSource::as_str),
            "thingName": f.thing_name,
            "subjects": self.decision.subjects().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "violationId": f.violation_id,
            "securityProfileName": f.security_profile_name,
            "behavior": f.behavior_name,
            "metric": f.metric,
            "eventType": f.event_type,
            "decision": self.decision.kind(),
            "reason": self.reason(),
            "notes": self.notes,
        });
        if let Some(map) = out.as_object_mut() {
            self.insert_source_keys(map);
        }
        out
    }

    fn insert_source_keys(&self, map: &mut Map<String, Value>) {
        let f = &self.facts;
        let optional = [
            ("subject", &f.subject),
            ("alertReason", &f.alert_reason),
            ("alarmName", &f.alarm_name),
            ("alarmArn", &f.alarm_arn),
            ("taskId", &f.task_id),
            ("checkName", &f.check_name),
            ("requestSource", &f.request_source),
            ("causeId", &f.request_cause),
            ("criteria", &f.criteria),
            ("verificationState", &f.verification_state),
            ("eventId", &f.event_id),
            ("groupName", &f.group_name),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                map.insert(key.into(), Value::from(v.as_str()));
            }
        }
        if !f.finding_ids.is_empty() {
            map.insert("findingIds".into(), Value::from(f.finding_ids.clone()));
        }
        match &f.time {
            Some(AlertTime::EpochMillis(ms)) => map.insert("time".into(), Value::from(*ms)),
            Some(AlertTime::Text(t)) => map.insert("time".into(), Value::from(t.as_str())),
            None => None,
        };
        match &self.decision {
            Decision::ExpandAudit { task_id, checks } => {
                map.insert("taskId".into(), Value::from(task_id.as_str()));
                map.insert("checks".into(), Value::from(checks.clone()));
            }
            Decision::LookupFinding { finding_id } => {
                map.insert("findingId".into(), Value::from(finding_id.as_str()));
            }
            Decision::Reject(reason) => {
                map.insert("error".into(), Value::from(reason.code()));
            }
            Decision::Act { .. } | Decision::Reconcile { .. } | Decision::Ignore(_) => {}
        }
    }
}

/// Decide every record of a decoded event.
pub fn decide_event(event: &DecodedEvent, policy: &DecisionPolicy) -> Vec<Verdict> {
    event.records.iter().map(|r| decide(r, policy)).collect()
}

/// Decide one record: recognise its source from the message, then let the source decide.
pub fn decide(record: &InboundRecord, policy: &DecisionPolicy) -> Verdict {
    let mut notes = Notes::default();
    record.notes.iter().for_each(|n| notes.push(n.as_str()));
    let (source, decided) = match &record.message {
        Err(reason) => (None, unread(reason.clone())),
        Ok(Value::Object(object)) => {
            let fields = Fields::root(object);
            match sources::recognise(fields) {
                None => (None, unread(unknown_alert(object))),
                Some(source) => (
                    Some(source),
                    bounded(sources::decide(source, fields, policy, &mut notes), policy),
                ),
            }
        }
        Ok(other) => (
            None,
            unread(RejectReason::MessageNotObject {
                found: json_type(other),
            }),
        ),
    };
    Verdict {
        record_id: record.id.clone(),
        envelope: record.envelope,
        source,
        facts: decided.facts,
        decision: decided.decision,
        notes: notes.into_vec(),
    }
}

/// A record may act on at most `max_things_per_record` subjects, and its facts are cut to
/// what a log line can carry.
fn bounded(decided: Decided, policy: &DecisionPolicy) -> Decided {
    let count = decided.decision.subjects().len();
    let decision = if count > policy.max_things_per_record {
        Decision::Reject(RejectReason::TooManySubjects {
            count,
            max: policy.max_things_per_record,
        })
    } else {
        decided.decision
    };
    Decided {
        facts: decided.facts.bounded(),
        decision,
    }
}

fn unread(reason: RejectReason) -> Decided {
    Decided {
        facts: AlertFacts::default(),
        decision: Decision::Reject(reason),
    }
}

impl Verdict {
    /// The verdict on one finding of an expanded audit ([`Decision::ExpandAudit`]) or a
    /// looked-up finding ([`Decision::LookupFinding`]), named by the record that led to it.
    pub fn for_audit_finding(
        record_id: String,
        envelope: Envelope,
        finding: &AuditFindingFields,
        policy: &DecisionPolicy,
    ) -> Verdict {
        let decided = bounded(
            Decided {
                facts: finding.facts(),
                decision: decide_audit_finding(finding, policy),
            },
            policy,
        );
        Verdict {
            record_id,
            envelope,
            source: Some(AlertSource::AuditFinding),
            facts: decided.facts,
            decision: decided.decision,
            notes: Vec::new(),
        }
    }
}

fn unknown_alert(object: &Map<String, Value>) -> RejectReason {
    RejectReason::UnknownAlert {
        tried: AlertSource::ALL.to_vec(),
        keys: object.keys().take(8).map(|k| excerpt(k, 40)).collect(),
    }
}

/// One message decided as an SNS record `m-1`: what the source modules' tests use.
#[cfg(test)]
pub(crate) fn verdict_of(message: Value, policy: &DecisionPolicy) -> Verdict {
    let record = InboundRecord {
        index: 0,
        id: "m-1".into(),
        envelope: Envelope::Sns,
        message: Ok(message),
        notes: Vec::new(),
    };
    decide(&record, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_that_is_no_known_alert_says_what_was_tried() {
        let verdict = verdict_of(
            json!({"alert": "cpu high", "host": "db-1", "severity": 3}),
            &DecisionPolicy::default(),
        );
        assert_eq!(verdict.source, None);
        assert_eq!(verdict.decision.kind(), "reject");
        assert_eq!(
            verdict.reason(),
            "record m-1: message is none of the known alerts (tried: Device Defender Detect violation, \
             Device Defender audit notification, Device Defender audit finding, CloudWatch alarm, \
             mitigation request, Security Hub finding event, thing-group membership event); \
             its top-level keys: alert, host, severity"
        );
        assert_eq!(verdict.to_json()["error"], "UnknownAlert");
    }

    #[test]
    fn an_expanded_audit_finding_gets_a_verdict_of_its_own() {
        let finding = AuditFindingFields {
            finding_id: Some("f-9".into()),
            task_id: Some("t-9".into()),
            check_name: Some("CONFLICTING_CLIENT_IDS_CHECK".into()),
            is_suppressed: Some(false),
            client_id: Some("dev-9".into()),
            ..AuditFindingFields::default()
        };
        let verdict = Verdict::for_audit_finding(
            "m-1".into(),
            Envelope::Sns,
            &finding,
            &DecisionPolicy::default(),
        );
        assert_eq!(verdict.decision.kind(), "quarantine");
        let line = verdict.to_json();
        assert_eq!(line["source"], "audit-finding");
        assert_eq!(line["subjects"], json!(["thing/dev-9"]));
        assert_eq!(line["findingIds"], json!(["f-9"]));
        assert_eq!(line["taskId"], "t-9");
        assert_eq!(
            verdict.reason(),
            "audit finding f-9 of check CONFLICTING_CLIENT_IDS_CHECK (audit task t-9)"
        );
    }

    #[test]
    fn a_record_naming_more_subjects_than_allowed_is_rejected_naming_the_count() {
        let policy = DecisionPolicy {
            max_things_per_record: 2,
            ..Default::default()
        };
        let request = |n: usize| {
            let mut r = json!({"action": "quarantine", "thingName": "dev-0"});
            if n > 1 {
                r["clientId"] = json!("dev-1");
            }
            if n > 2 {
                r["thingArn"] = json!("arn:aws:iot:eu-west-1:123456789012:thing/dev-2");
            }
            r
        };
        assert_eq!(verdict_of(request(2), &policy).decision.subjects().len(), 2);
        let verdict = verdict_of(request(3), &policy);
        assert_eq!(
            verdict.decision,
            Decision::Reject(RejectReason::TooManySubjects { count: 3, max: 2 })
        );
        assert!(
            verdict.reason().contains("names 3 subjects; at most 2"),
            "{}",
            verdict.reason()
        );
        assert_eq!(verdict.to_json()["error"], "TooManySubjects");
        // Duplicates are one subject.
        let mut same = request(2);
        same["clientId"] = json!("dev-0");
        assert_eq!(
            verdict_of(
                same,
                &DecisionPolicy {
                    max_things_per_record: 1,
                    ..Default::default()
                }
            )
            .decision
            .kind(),
            "quarantine"
        );
    }

    #[test]
    fn facts_are_cut_to_what_a_log_line_carries() {
        let long = "x".repeat(5_000);
        let ids: Vec<Value> = (0..80).map(|i| json!({"Id": format!("f-{i}")})).collect();
        let message = json!({"source": "aws.securityhub", "detail-type": long,
                             "detail": {"findings": ids}});
        let verdict = verdict_of(message, &DecisionPolicy::default());
        assert_eq!(
            verdict
                .facts
                .event_type
                .as_deref()
                .map(|t| t.chars().count()),
            Some(1_001)
        );
        assert_eq!(verdict.facts.finding_ids.len(), 51);
        assert_eq!(verdict.facts.finding_ids[50], "… and 30 more");
        let request = json!({"action": "quarantine", "thingName": "dev-1", "reason": long});
        let reason = verdict_of(request, &DecisionPolicy::default())
            .facts
            .alert_reason;
        assert_eq!(reason.map(|r| r.chars().count()), Some(1_001));
    }

    #[test]
    fn a_message_that_is_not_an_object_is_rejected() {
        let verdict = verdict_of(json!([1, 2]), &DecisionPolicy::default());
        assert_eq!(
            verdict.decision,
            Decision::Reject(RejectReason::MessageNotObject { found: "an array" })
        );
    }

    #[test]
    fn envelope_notes_reach_the_verdict() {
        let record = InboundRecord {
            index: 0,
            id: "m-1".into(),
            envelope: Envelope::Sns,
            message: Ok(json!({"thingName": "dev-1", "action": "quarantine"})),
            notes: vec!["SNS Type: absent".into()],
        };
        let verdict = decide(&record, &DecisionPolicy::default());
        assert_eq!(verdict.notes, vec!["SNS Type: absent".to_owned()]);
        assert_eq!(verdict.to_json()["notes"], json!(["SNS Type: absent"]));
    }
}
