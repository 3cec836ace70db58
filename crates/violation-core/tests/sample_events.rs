//! Every file in events/ has its expected decisions here: a new sample cannot be added
//! without saying what must happen to each of its records.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use violation_core::{DecisionPolicy, decide_event, decode_event_bytes};

/// (thingName, decision) per record, in order, with the default policy.
fn expected() -> BTreeMap<&'static str, Vec<(Option<&'static str>, &'static str)>> {
    BTreeMap::from([
        (
            "sns-num-messages-sent-in-alarm.json",
            vec![(Some("dev-IZWB"), "quarantine")],
        ),
        (
            "sns-num-messages-sent-alarm-cleared.json",
            vec![(Some("dev-IZWB"), "ignore")],
        ),
        (
            "sns-alarm-invalidated.json",
            vec![(Some("dev-OLD1"), "ignore")],
        ),
        (
            "sns-ml-detect-in-alarm.json",
            vec![(Some("ml-camera-07"), "quarantine")],
        ),
        (
            "sns-custom-metric-in-alarm.json",
            vec![(Some("mything1"), "quarantine")],
        ),
        (
            "sns-disconnect-duration-in-alarm.json",
            vec![(Some("test_thing"), "quarantine")],
        ),
        (
            "sns-statistical-in-alarm.json",
            vec![(Some("meter-42"), "quarantine")],
        ),
        (
            "sqs-sns-envelope-batch.json",
            vec![
                (Some("sensor-a"), "quarantine"),
                (Some("sensor-b"), "quarantine"),
                (Some("sensor-c"), "ignore"),
            ],
        ),
        (
            "sqs-raw-delivery-batch.json",
            vec![
                (Some("gateway-01"), "quarantine"),
                (Some("gateway-02"), "ignore"),
                (Some("gateway-03"), "quarantine"),
                (Some("gateway-04"), "quarantine"),
            ],
        ),
        (
            "sqs-mixed-batch.json",
            vec![
                (Some("pump-01"), "quarantine"),
                (None, "reject"),
                (Some("pump-03"), "quarantine"),
            ],
        ),
        (
            "sns-malformed-message-not-json.json",
            vec![(None, "reject")],
        ),
        (
            "sns-malformed-missing-thing-name.json",
            vec![(None, "reject")],
        ),
        (
            "sns-malformed-invalid-thing-name.json",
            vec![(Some("dev/../admin?x=1"), "reject")],
        ),
        (
            "sns-malformed-unknown-event-type.json",
            vec![(Some("dev-IZWB"), "reject")],
        ),
    ])
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn sample_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn decisions(file: &str, policy: &DecisionPolicy) -> Vec<(Option<String>, &'static str)> {
    let bytes = std::fs::read(events_dir().join(file)).expect("sample is readable");
    let event = decode_event_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    decide_event(&event, policy)
        .into_iter()
        .map(|v| (v.thing_name.clone(), v.decision.kind()))
        .collect()
}

#[test]
fn every_sample_has_an_expected_outcome_and_gets_it() {
    let expected = expected();
    let files = sample_files();
    assert!(files.len() >= 14, "events/ holds {} samples", files.len());
    for file in &files {
        let want = expected
            .get(file.as_str())
            .unwrap_or_else(|| panic!("events/{file} has no expected decisions in {}", file!()));
        let want: Vec<(Option<String>, &str)> = want
            .iter()
            .map(|(t, d)| (t.map(str::to_owned), *d))
            .collect();
        assert_eq!(
            decisions(file, &DecisionPolicy::default()),
            want,
            "events/{file}"
        );
    }
    for name in expected.keys() {
        assert!(
            files.iter().any(|f| f == name),
            "expected outcome for missing file events/{name}"
        );
    }
}

#[test]
fn with_release_on_clear_cleared_alarms_release() {
    let policy = DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    };
    assert_eq!(
        decisions("sns-num-messages-sent-alarm-cleared.json", &policy),
        vec![(Some("dev-IZWB".to_owned()), "release")]
    );
    let batch = decisions("sqs-sns-envelope-batch.json", &policy);
    assert_eq!(batch[2], (Some("sensor-c".to_owned()), "release"));
    // Invalidated alarms are never acted on.
    assert_eq!(
        decisions("sns-alarm-invalidated.json", &policy),
        vec![(Some("dev-OLD1".to_owned()), "ignore")]
    );
}
