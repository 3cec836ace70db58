//! Arbitrary bytes as a Lambda invocation payload: decode, decide under two policies, render.
//!
//! Invariants checked on every input that decodes:
//! - one verdict per element of the event's `Records` array, in order;
//! - every verdict names its record (non-empty `record_id`);
//! - a `quarantine` / `release` decision carries a thing name that `ThingName::parse`
//!   accepts and that matches `[a-zA-Z0-9:_-]{1,128}` (checked here independently);
//! - filters are honoured: an action under a restricting policy only for allowed names;
//! - no `release` unless release-on-clear is on;
//! - `to_json()` is an object with `thingName`, `decision` (= `Decision::kind`) and
//!   `reason` (= `reason()`), plus `error` exactly for rejected records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use violation_core::{
    Decision, DecisionPolicy, NameFilter, ThingName, Verdict, decide_event, decode_event_bytes,
};

/// `[a-zA-Z0-9:_-]{1,128}`, written out without reusing `ThingName`.
fn matches_thing_name_pattern(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
}

fn check_verdict(verdict: &Verdict, policy: &DecisionPolicy) {
    assert!(!verdict.record_id.is_empty(), "empty record_id: {verdict:?}");

    if let Decision::Act { action, thing } = &verdict.decision {
        let name = thing.as_str();
        assert!(
            matches_thing_name_pattern(name),
            "{} of an invalid thing name {name:?}",
            action.as_str()
        );
        assert_eq!(ThingName::parse(name).as_ref(), Ok(thing));
        assert_eq!(verdict.thing_name.as_deref(), Some(name), "{verdict:?}");
        assert!(
            policy.release_on_clear || action.as_str() != "release",
            "release with release_on_clear off: {verdict:?}"
        );
        assert!(policy.security_profiles.allows(verdict.security_profile_name.as_deref()));
        assert!(policy.behaviors.allows(verdict.behavior_name.as_deref()));
        assert!(policy.metrics.allows(verdict.metric.as_deref()));
    }

    let reason = verdict.reason();
    let line = verdict.to_json();
    let map = line.as_object().expect("to_json() is an object");
    for key in ["thingName", "decision", "reason"] {
        assert!(map.contains_key(key), "to_json() lacks {key:?}: {line}");
    }
    assert_eq!(map["decision"], verdict.decision.kind());
    assert_eq!(map["reason"].as_str(), Some(reason.as_str()));
    assert_eq!(map["recordId"].as_str(), Some(verdict.record_id.as_str()));
    let rejected = matches!(verdict.decision, Decision::Reject(_));
    assert_eq!(map.contains_key("error"), rejected, "{line}");
    // The line must survive a round trip through text, as the functions log it.
    let text = line.to_string();
    assert_eq!(serde_json::from_str::<Value>(&text).ok().as_ref(), Some(&line));
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = decode_event_bytes(data) else {
        return;
    };
    // decode_event_bytes succeeded, so the bytes are JSON with a `Records` array.
    let raw: Value = serde_json::from_slice(data).expect("decoded event is JSON");
    let record_count = raw["Records"].as_array().expect("Records array").len();
    assert_eq!(event.records.len(), record_count);
    assert_eq!(event.trigger.is_none(), record_count == 0);

    let filtered = DecisionPolicy {
        release_on_clear: true,
        security_profiles: NameFilter::from_comma_list("MySecProfile, P"),
        behaviors: NameFilter::from_comma_list("MessagesPub,B,,"),
        metrics: NameFilter::from_comma_list("aws:num-messages-sent, aws:disconnect-duration"),
    };
    for policy in [DecisionPolicy::default(), filtered] {
        let verdicts = decide_event(&event, &policy);
        assert_eq!(verdicts.len(), record_count, "one verdict per record");
        for (verdict, record) in verdicts.iter().zip(&event.records) {
            assert_eq!(verdict.record_id, record.id);
            check_verdict(verdict, &policy);
        }
    }
});
