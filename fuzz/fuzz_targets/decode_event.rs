//! Arbitrary bytes as a Lambda invocation payload: decode, decide under three policies,
//! render.
//!
//! Invariants checked on every input (the expectations are worked out here from the raw
//! JSON, without the decoder):
//! - the event is refused exactly when it can never be handled, with the right
//!   `EventError`: `NotJson` (bytes that are not JSON), `NotAnObject`, `RecordsNotArray`
//!   (`Records` present but not an array), `UnknownSource` (a non-empty `Records` in which
//!   no record has `EventSource` `aws:sns` or `eventSource` `aws:sqs`);
//! - an object without `Records` is a direct invocation: one record, trigger `Direct`,
//!   envelope `direct`, whose message is the event itself, named by its `id` (cut to 200
//!   characters) or `event`;
//! - otherwise one record per element of `Records`, in order (`index` = position); the
//!   trigger is that of the first record naming a source (SNS looked at first), `None`
//!   only for an empty `Records`; each record named by its SQS `messageId` verbatim, its SNS
//!   `MessageId` cut to 200 characters, else `Records[i]`;
//! - one verdict per record, in order, with the record's id and envelope;
//! - only a rejected record may have no source;
//! - an `Act` decision has subjects, no two alike, each a valid `Subject`: a thing name
//!   matching `[a-zA-Z0-9:_-]{1,128}`, a certificate id of 64 hex digits (both checked here
//!   independently, and `ThingName::parse` / `CertificateId::parse` agree);
//! - releases: a Detect violation releases only with release-on-clear on, on a cleared
//!   alarm, and never on a cloud-side or unknown `aws:` metric (release without flapping);
//!   a CloudWatch alarm releases only with release-on-clear on, when `OK`; a mitigation
//!   request releases when it asks (release-on-clear does not matter); audit findings and
//!   Security Hub never release;
//! - a CloudWatch alarm quarantines only when `ALARM`; a request does what its `action`
//!   says;
//! - filters are honoured for Detect records (security profile, behavior, metric); only a
//!   Detect record is ever excluded by a filter;
//! - `ExpandAudit` comes from an audit task, names a valid task id (`[a-zA-Z0-9-]{1,40}`)
//!   and only non-empty checks of `AUDIT_CHECKS`; `LookupFinding` comes from an audit
//!   finding and names a valid finding id (`[a-zA-Z0-9_-]{1,128}`);
//! - `to_json()` is an object with `recordId`, `envelope`, `source`, `thingName`, `subjects`
//!   (the `Act` subjects as `thing/NAME` / `cert/ID`), `decision` (= `Decision::kind`),
//!   `reason` (= `reason()`, never empty) and `notes`, plus `error` (the reject code)
//!   exactly for rejected records; it survives a round trip through text.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use violation_core::reject::excerpt;
use violation_core::{
    Action, AlertSource, CertificateId, Decision, DecisionPolicy, Envelope, EventError,
    IgnoreReason, NameFilter, Subject, ThingName, Trigger, Verdict, decide_event,
    decode_event_bytes,
};

/// `[a-zA-Z0-9:_-]{1,128}`, written out without reusing `ThingName`.
fn matches_thing_name_pattern(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
}

/// 64 hex digits, written out without reusing `CertificateId`.
fn matches_certificate_pattern(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn matches_id_pattern(id: &str, max: usize, extra: &[u8]) -> bool {
    (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Device-side metrics (reported by the agent): the only `aws:` metrics whose clearing
/// may release. Restated here from the Device Defender documentation.
const DEVICE_SIDE: [&str; 10] = [
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

/// What the decoder must make of the event, worked out from the raw JSON.
enum Expected {
    Refused(&'static str),
    Direct,
    Records(Option<Trigger>),
}

fn expected(raw: &Value) -> Expected {
    let Some(object) = raw.as_object() else {
        return Expected::Refused("NotAnObject");
    };
    let records = match object.get("Records") {
        None => return Expected::Direct,
        Some(Value::Array(records)) => records,
        Some(_) => return Expected::Refused("RecordsNotArray"),
    };
    if records.is_empty() {
        return Expected::Records(None);
    }
    let trigger = records.iter().find_map(|r| {
        if r.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
            Some(Trigger::Sns)
        } else if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
            Some(Trigger::Sqs)
        } else {
            None
        }
    });
    match trigger {
        None => Expected::Refused("UnknownSource"),
        some => Expected::Records(some),
    }
}

fn error_name(e: &EventError) -> &'static str {
    match e {
        EventError::NotJson(_) => "NotJson",
        EventError::NotAnObject { .. } => "NotAnObject",
        EventError::RecordsNotArray { .. } => "RecordsNotArray",
        EventError::UnknownSource => "UnknownSource",
    }
}

/// The id a record must carry, worked out from the raw record.
fn expected_id(trigger: Trigger, index: usize, record: &Value) -> String {
    let id = match trigger {
        Trigger::Sqs => record.get("messageId"),
        _ => record.get("Sns").and_then(|s| s.get("MessageId")),
    };
    match id.and_then(Value::as_str) {
        // An SQS messageId must come back verbatim (batchItemFailures); an SNS MessageId is
        // only logged and named in the error message, cut to 200 characters by design.
        Some(id) if !id.is_empty() && trigger == Trigger::Sqs => id.to_owned(),
        Some(id) if !id.is_empty() => excerpt(id, 200),
        _ => format!("Records[{index}]"),
    }
}

fn check_subjects(verdict: &Verdict, subjects: &[Subject]) {
    assert!(!subjects.is_empty(), "Act without subjects: {verdict:?}");
    let mut seen = HashSet::new();
    for subject in subjects {
        assert!(seen.insert(subject), "subject {subject} twice: {verdict:?}");
        match subject {
            Subject::Thing(thing) => {
                let name = thing.as_str();
                assert!(
                    matches_thing_name_pattern(name),
                    "act on an invalid thing name {name:?}"
                );
                assert_eq!(ThingName::parse(name).as_ref(), Ok(thing));
                assert_eq!(subject.to_string(), format!("thing/{name}"));
            }
            Subject::Certificate(cert) => {
                let id = cert.as_str();
                assert!(
                    matches_certificate_pattern(id),
                    "act on an invalid certificate id {id:?}"
                );
                assert_eq!(CertificateId::parse(id).as_ref(), Ok(cert));
                assert_eq!(subject.to_string(), format!("cert/{id}"));
            }
        }
    }
}

fn check_act(verdict: &Verdict, action: Action, subjects: &[Subject], policy: &DecisionPolicy) {
    check_subjects(verdict, subjects);
    let facts = &verdict.facts;
    let release = action == Action::Release;
    match verdict.source {
        Some(AlertSource::DetectViolation) => {
            assert!(
                policy
                    .security_profiles
                    .allows(facts.security_profile_name.as_deref())
            );
            assert!(policy.behaviors.allows(facts.behavior_name.as_deref()));
            assert!(policy.metrics.allows(facts.metric.as_deref()));
            let thing = facts.thing_name.as_deref().unwrap_or_default();
            assert_eq!(subjects.len(), 1, "{verdict:?}");
            assert_eq!(subjects[0].thing_name().map(ThingName::as_str), Some(thing));
            let expected_type = if release { "alarm-cleared" } else { "in-alarm" };
            assert_eq!(
                facts.event_type.as_deref(),
                Some(expected_type),
                "{verdict:?}"
            );
            if release {
                assert!(
                    policy.release_on_clear,
                    "release on clear is off: {verdict:?}"
                );
                let metric = facts.metric.as_deref();
                assert!(
                    metric.is_some_and(|m| !m.starts_with("aws:") || DEVICE_SIDE.contains(&m)),
                    "released on a cleared alarm of metric {metric:?}, which may flap"
                );
            }
        }
        Some(AlertSource::CloudWatchAlarm) => {
            let state = if release { "OK" } else { "ALARM" };
            assert_eq!(facts.event_type.as_deref(), Some(state), "{verdict:?}");
            assert!(
                !release || policy.release_on_clear,
                "alarm OK released with release on clear off: {verdict:?}"
            );
            assert!(subjects.iter().all(|s| s.thing_name().is_some()));
        }
        Some(AlertSource::MitigationRequest) => {
            let asked = facts
                .event_type
                .as_deref()
                .map(|a| a.trim().to_ascii_lowercase());
            assert_eq!(asked.as_deref(), Some(action.as_str()), "{verdict:?}");
        }
        Some(AlertSource::AuditTask | AlertSource::AuditFinding | AlertSource::SecurityHub) => {
            assert!(!release, "{verdict:?}");
        }
        Some(AlertSource::ThingGroupMembership) => {
            panic!("a membership event acted: {verdict:?}")
        }
        None => panic!("act without a source: {verdict:?}"),
    }
}

fn check_verdict(verdict: &Verdict, policy: &DecisionPolicy) {
    assert!(
        !verdict.record_id.is_empty(),
        "empty record_id: {verdict:?}"
    );
    if !matches!(verdict.decision, Decision::Reject(_)) {
        assert!(
            verdict.source.is_some(),
            "decided without a source: {verdict:?}"
        );
    }
    match &verdict.decision {
        Decision::Act { action, subjects } => check_act(verdict, *action, subjects, policy),
        Decision::ExpandAudit { task_id, checks } => {
            assert_eq!(verdict.source, Some(AlertSource::AuditTask));
            assert!(matches_id_pattern(task_id.as_str(), 40, b"-"), "{task_id}");
            assert!(!checks.is_empty());
            assert!(
                checks.iter().all(|c| policy.audit_checks.contains(c)),
                "{checks:?}"
            );
        }
        Decision::LookupFinding { finding_id } => {
            assert_eq!(verdict.source, Some(AlertSource::AuditFinding));
            assert!(
                matches_id_pattern(finding_id.as_str(), 128, b"-_"),
                "{finding_id}"
            );
        }
        Decision::Reconcile { thing } => {
            assert_eq!(verdict.source, Some(AlertSource::ThingGroupMembership));
            assert!(policy.quarantine_group.is_some(), "{thing}");
        }
        Decision::Ignore(IgnoreReason::Excluded { .. }) => {
            assert_eq!(verdict.source, Some(AlertSource::DetectViolation));
        }
        Decision::Ignore(_) | Decision::Reject(_) => {}
    }

    let reason = verdict.reason();
    assert!(!reason.is_empty());
    let line = verdict.to_json();
    let map = line.as_object().expect("to_json() is an object");
    for key in [
        "recordId",
        "envelope",
        "source",
        "thingName",
        "subjects",
        "decision",
        "reason",
        "notes",
    ] {
        assert!(map.contains_key(key), "to_json() lacks {key:?}: {line}");
    }
    assert_eq!(map["recordId"].as_str(), Some(verdict.record_id.as_str()));
    assert_eq!(map["envelope"].as_str(), Some(verdict.envelope.as_str()));
    assert_eq!(
        map["source"].as_str(),
        verdict.source.map(AlertSource::as_str)
    );
    assert_eq!(map["decision"], verdict.decision.kind());
    assert_eq!(map["reason"].as_str(), Some(reason.as_str()));
    let subjects: Vec<String> = verdict
        .decision
        .subjects()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(map["subjects"], Value::from(subjects), "{line}");
    match &verdict.decision {
        Decision::Reject(r) => assert_eq!(map.get("error").and_then(Value::as_str), Some(r.code())),
        _ => assert!(!map.contains_key("error"), "{line}"),
    }
    // The line must survive a round trip through text, as the functions log it.
    let text = line.to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&text).ok().as_ref(),
        Some(&line)
    );
}

fuzz_target!(|data: &[u8]| {
    let decoded = decode_event_bytes(data);
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        assert!(
            matches!(decoded, Err(EventError::NotJson(_))),
            "bytes that are not JSON decoded as {decoded:?}"
        );
        return;
    };
    let expected = expected(&raw);
    let event = match (decoded, &expected) {
        (Err(e), Expected::Refused(name)) => {
            assert_eq!(error_name(&e), *name, "{e}");
            assert!(!e.to_string().is_empty());
            return;
        }
        (Err(e), _) => panic!("event refused ({e}) though it can be handled"),
        (Ok(event), Expected::Refused(name)) => {
            panic!("event decoded though it is {name}: {event:?}")
        }
        (Ok(event), _) => event,
    };

    match expected {
        Expected::Refused(_) => unreachable!("handled above"),
        Expected::Direct => {
            assert_eq!(event.trigger, Some(Trigger::Direct));
            assert_eq!(event.records.len(), 1, "a direct event is one record");
            let record = &event.records[0];
            assert_eq!(record.index, 0);
            assert_eq!(record.envelope, Envelope::Direct);
            assert_eq!(
                record.message.as_ref(),
                Ok(&raw),
                "the message is the event"
            );
            let id = match raw.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => excerpt(id, 200),
                _ => "event".to_owned(),
            };
            assert_eq!(record.id, id);
        }
        Expected::Records(trigger) => {
            let raw_records = raw["Records"].as_array().expect("Records array");
            assert_eq!(event.trigger, trigger, "event read as the wrong kind");
            assert_eq!(
                event.records.len(),
                raw_records.len(),
                "one record per element"
            );
            for (i, (record, raw_record)) in event.records.iter().zip(raw_records).enumerate() {
                assert_eq!(record.index, i);
                let trigger = trigger.expect("a record means a trigger");
                assert_eq!(record.id, expected_id(trigger, i, raw_record));
                let envelopes: &[Envelope] = match trigger {
                    Trigger::Sqs => &[Envelope::Sqs, Envelope::SqsSns, Envelope::SqsRaw],
                    _ => &[Envelope::Sns],
                };
                assert!(envelopes.contains(&record.envelope), "{record:?}");
            }
        }
    }

    let filtered = DecisionPolicy {
        release_on_clear: true,
        security_profiles: NameFilter::from_comma_list("MySecProfile, P"),
        behaviors: NameFilter::from_comma_list("MessagesPub,B,,"),
        metrics: NameFilter::from_comma_list("aws:num-messages-sent, aws:all-bytes-out, m"),
        ..DecisionPolicy::default()
    };
    let other_checks = DecisionPolicy {
        release_on_clear: true,
        audit_checks: vec!["LOGGING_DISABLED_CHECK".into(), "C".into()],
        thing_dimension: "ClientId".into(),
        quarantine_group: Some("Quarantine".into()),
        ..DecisionPolicy::default()
    };
    for policy in [DecisionPolicy::default(), filtered, other_checks] {
        let verdicts = decide_event(&event, &policy);
        assert_eq!(
            verdicts.len(),
            event.records.len(),
            "one verdict per record"
        );
        for (verdict, record) in verdicts.iter().zip(&event.records) {
            assert_eq!(verdict.record_id, record.id);
            assert_eq!(verdict.envelope, record.envelope);
            check_verdict(verdict, &policy);
        }
    }
});
