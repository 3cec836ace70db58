//! Every file in events/ has its expected decisions here: a new sample cannot be added
//! without saying what must happen to each of its records.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use violation_core::{DecisionPolicy, LocalScope, Verdict, decide_event, decode_event_bytes};

/// What must happen to one record: its source (`None` when unreadable), the subject as
/// the alert wrote it, and the decision kind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    source: Option<String>,
    subject: Option<String>,
    decision: String,
}

fn want(source: Option<&str>, subject: Option<&str>, decision: &str) -> Want {
    Want {
        source: source.map(str::to_owned),
        subject: subject.map(str::to_owned),
        decision: decision.to_owned(),
    }
}

fn got(verdict: &Verdict) -> Want {
    Want {
        source: verdict.source.map(|s| s.as_str().to_owned()),
        subject: verdict.facts.subject.clone(),
        decision: verdict.decision.kind().to_owned(),
    }
}

const DETECT: Option<&str> = Some("detect-violation");
const AUDIT_TASK: Option<&str> = Some("audit-task");
const AUDIT_FINDING: Option<&str> = Some("audit-finding");
const CLOUDWATCH: Option<&str> = Some("cloudwatch-alarm");
const REQUEST: Option<&str> = Some("mitigation-request");
const SECURITY_HUB: Option<&str> = Some("security-hub");
const MEMBERSHIP: Option<&str> = Some("thing-group-membership");
const CERT: &str = "5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
const LOCAL_CERT_ARN: &str = "arn:aws:iot:eu-west-1:123456789012:cert/5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
const FOREIGN_CERT_ARN: &str = "arn:aws:iot:eu-west-1:999999999999:cert/5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
const CAM_30: &str = "arn:aws:iot:eu-west-1:123456789012:thing/cam-30";
const FOREIGN_THING_ARN: &str = "arn:aws:iot:us-east-1:999999999999:thing/gw-01";

/// The subjects of the sample naming 101 things, as the log line cuts them.
fn many_things() -> String {
    let all: Vec<String> = (0..101)
        .map(|i| format!("arn:aws:iot:eu-west-1:123456789012:thing/cam-{i:03}"))
        .collect();
    let joined = all.join(", ");
    format!("{}…", joined.chars().take(1_000).collect::<String>())
}

/// The expected records of every sample, in order, with the default policy.
fn expected() -> BTreeMap<&'static str, Vec<Want>> {
    expected_with(&[])
}

/// The expected records, with some files' outcomes replaced.
fn expected_with(changes: &[(&'static str, Vec<Want>)]) -> BTreeMap<&'static str, Vec<Want>> {
    let mut all = default_outcomes();
    all.extend(changes.iter().cloned());
    all
}

fn default_outcomes() -> BTreeMap<&'static str, Vec<Want>> {
    let cert_arn = format!("arn:aws:iot:eu-west-1:123456789012:cert/{CERT}");
    let custom_action_subjects =
        format!("arn:aws:iot:eu-west-1:123456789012:thing/cam-06, {cert_arn}");
    let many_things = many_things();
    BTreeMap::from([
        // Device Defender Detect.
        (
            "sns-num-messages-sent-in-alarm.json",
            vec![want(DETECT, Some("dev-IZWB"), "quarantine")],
        ),
        (
            "sns-num-messages-sent-alarm-cleared.json",
            vec![want(DETECT, Some("dev-IZWB"), "ignore")],
        ),
        (
            "sns-num-child-procs-alarm-cleared.json",
            vec![want(DETECT, Some("mything1"), "ignore")],
        ),
        (
            "sns-alarm-invalidated.json",
            vec![want(DETECT, Some("dev-OLD1"), "ignore")],
        ),
        (
            "sns-ml-detect-in-alarm.json",
            vec![want(DETECT, Some("ml-camera-07"), "quarantine")],
        ),
        (
            "sns-ml-detect-benign-positive.json",
            vec![want(DETECT, Some("ml-camera-08"), "ignore")],
        ),
        (
            "sns-custom-metric-in-alarm.json",
            vec![want(DETECT, Some("mything1"), "quarantine")],
        ),
        (
            "sns-disconnect-duration-in-alarm.json",
            vec![want(DETECT, Some("test_thing"), "quarantine")],
        ),
        (
            "sns-statistical-in-alarm.json",
            vec![want(DETECT, Some("meter-42"), "quarantine")],
        ),
        (
            "sns-fifo-in-alarm-no-signature.json",
            vec![want(DETECT, Some("dev-FIFO1"), "quarantine")],
        ),
        (
            "sns-in-alarm-odd-unneeded-fields.json",
            vec![want(DETECT, Some("dev-ODD1"), "quarantine")],
        ),
        (
            "sqs-sns-envelope-batch.json",
            vec![
                want(DETECT, Some("sensor-a"), "quarantine"),
                want(DETECT, Some("sensor-b"), "quarantine"),
                want(DETECT, Some("sensor-c"), "ignore"),
            ],
        ),
        (
            "sqs-raw-delivery-batch.json",
            vec![
                want(DETECT, Some("gateway-01"), "quarantine"),
                want(DETECT, Some("gateway-02"), "ignore"),
                want(DETECT, Some("gateway-03"), "quarantine"),
                want(DETECT, Some("gateway-04"), "quarantine"),
            ],
        ),
        (
            "sqs-mixed-batch.json",
            vec![
                want(DETECT, Some("pump-01"), "quarantine"),
                want(None, None, "reject"),
                want(DETECT, Some("pump-03"), "quarantine"),
            ],
        ),
        (
            "sns-malformed-message-not-json.json",
            vec![want(None, None, "reject")],
        ),
        (
            "sns-malformed-missing-thing-name.json",
            vec![want(DETECT, None, "reject")],
        ),
        (
            "sns-malformed-invalid-thing-name.json",
            vec![want(DETECT, Some("dev/../admin?x=1"), "reject")],
        ),
        (
            "sns-malformed-unknown-event-type.json",
            vec![want(DETECT, Some("dev-IZWB"), "reject")],
        ),
        // Device Defender Audit.
        (
            "sns-audit-completed-non-compliant.json",
            vec![want(AUDIT_TASK, None, "expand-audit")],
        ),
        (
            "sqs-sns-audit-batch.json",
            vec![
                want(AUDIT_TASK, None, "expand-audit"),
                want(AUDIT_TASK, None, "ignore"),
                // It carries its nonCompliantResource, which is not trusted: looked up.
                want(AUDIT_FINDING, None, "lookup-finding"),
            ],
        ),
        (
            "sns-publish-finding-to-sns.json",
            vec![want(AUDIT_FINDING, None, "lookup-finding")],
        ),
        // CloudWatch alarms.
        (
            "sns-cloudwatch-alarm.json",
            vec![want(CLOUDWATCH, Some("cam-01"), "quarantine")],
        ),
        (
            "sns-cloudwatch-ok.json",
            vec![want(CLOUDWATCH, Some("cam-01"), "ignore")],
        ),
        (
            "sns-cloudwatch-insufficient-data.json",
            vec![want(CLOUDWATCH, Some("cam-02"), "ignore")],
        ),
        (
            "sns-cloudwatch-alarm-missing-dimension.json",
            vec![want(CLOUDWATCH, None, "reject")],
        ),
        (
            "sqs-sns-cloudwatch-alarm-batch.json",
            vec![
                want(CLOUDWATCH, Some("cam-03"), "quarantine"),
                want(CLOUDWATCH, Some("cam-01"), "ignore"),
            ],
        ),
        (
            "direct-cloudwatch-alarm-lambda-action.json",
            vec![want(CLOUDWATCH, Some("cam-04"), "quarantine")],
        ),
        (
            "direct-eventbridge-cloudwatch-alarm-state-change.json",
            vec![want(CLOUDWATCH, Some("cam-05"), "quarantine")],
        ),
        // Mitigation requests.
        (
            "direct-mitigation-request-quarantine.json",
            vec![want(REQUEST, Some("mything1"), "quarantine")],
        ),
        (
            "direct-mitigation-request-release.json",
            vec![want(REQUEST, Some("mything1"), "release")],
        ),
        (
            "direct-mitigation-request-foreign-account.json",
            vec![want(REQUEST, Some(FOREIGN_THING_ARN), "quarantine")],
        ),
        (
            "direct-mitigation-request-certificate.json",
            vec![want(REQUEST, Some(CERT), "quarantine")],
        ),
        (
            "sns-mitigation-request.json",
            vec![want(REQUEST, Some("gateway-07"), "quarantine")],
        ),
        (
            "sqs-raw-mitigation-requests.json",
            vec![
                want(
                    REQUEST,
                    Some("arn:aws:iot:eu-west-1:123456789012:thing/gateway-08"),
                    "quarantine",
                ),
                want(REQUEST, Some("gateway-08"), "release"),
                want(REQUEST, Some("gateway-09"), "reject"),
            ],
        ),
        // Security Hub.
        (
            "direct-securityhub-custom-action.json",
            vec![want(
                SECURITY_HUB,
                Some(custom_action_subjects.as_str()),
                "quarantine",
            )],
        ),
        (
            "direct-securityhub-custom-action-too-many-things.json",
            vec![want(SECURITY_HUB, Some(many_things.as_str()), "reject")],
        ),
        // Imported findings of the account's own product: anyone allowed BatchImportFindings
        // can write them, so they are not trusted (SECURITY_HUB_PRODUCTS).
        (
            "direct-securityhub-imported.json",
            vec![want(SECURITY_HUB, None, "ignore")],
        ),
        (
            "sqs-raw-eventbridge-securityhub-batch.json",
            vec![
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
            ],
        ),
        // AWS IoT Device Defender's own findings: the thing by name, its ARN in the details.
        (
            "direct-securityhub-imported-device-defender.json",
            vec![want(
                SECURITY_HUB,
                Some("arn:aws:iot:eu-west-1:123456789012:thing/MyThing"),
                "quarantine",
            )],
        ),
        // A finding created, noted by an analyst, resolved, notified, archived; an audit finding.
        (
            "sqs-raw-eventbridge-securityhub-device-defender-batch.json",
            vec![
                want(
                    SECURITY_HUB,
                    Some("arn:aws:iot:eu-west-1:123456789012:thing/cam-20"),
                    "quarantine",
                ),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, None, "ignore"),
                want(SECURITY_HUB, Some(LOCAL_CERT_ARN), "quarantine"),
            ],
        ),
        // Another account's finding and certificate: acted on only while the account is
        // unknown (see `with_the_stacks_account_and_region_foreign_resources_are_refused`).
        (
            "sqs-raw-eventbridge-securityhub-foreign-batch.json",
            vec![
                want(
                    SECURITY_HUB,
                    Some("arn:aws:iot:eu-west-1:999999999999:thing/gw-01"),
                    "quarantine",
                ),
                want(SECURITY_HUB, Some(FOREIGN_CERT_ARN), "quarantine"),
            ],
        ),
        (
            "sns-eventbridge-securityhub-custom-action.json",
            vec![want(
                SECURITY_HUB,
                Some("arn:aws:iot:eu-west-1:123456789012:thing/cam-13"),
                "quarantine",
            )],
        ),
        // Several sources in one queue with raw delivery; a request through SNS to SQS.
        (
            "sqs-raw-mixed-sources-batch.json",
            vec![
                want(AUDIT_TASK, None, "expand-audit"),
                want(AUDIT_FINDING, None, "lookup-finding"),
                want(CLOUDWATCH, Some("cam-10"), "quarantine"),
                want(REQUEST, Some("cam-11"), "quarantine"),
            ],
        ),
        (
            "sqs-sns-mitigation-request.json",
            vec![want(REQUEST, Some("gateway-12"), "quarantine")],
        ),
        // Registry membership events: ignored by a program that manages no quarantine group
        // (the default policy); see `a_thing_removed_from_the_quarantine_group_is_reconciled`.
        (
            "direct-registry-removed-from-quarantine.json",
            vec![want(
                MEMBERSHIP,
                Some("arn:aws:iot:eu-west-1:123456789012:thing/pump-01"),
                "ignore",
            )],
        ),
        (
            "sqs-raw-registry-membership-batch.json",
            vec![
                want(MEMBERSHIP, Some(CAM_30), "ignore"),
                want(MEMBERSHIP, Some(CAM_30), "ignore"),
                want(
                    MEMBERSHIP,
                    Some("arn:aws:iot:eu-west-1:123456789012:thing/cam-31"),
                    "ignore",
                ),
            ],
        ),
        // None of the above.
        ("sns-unknown-alert.json", vec![want(None, None, "reject")]),
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

fn verdicts(file: &str, policy: &DecisionPolicy) -> Vec<Verdict> {
    let bytes = std::fs::read(events_dir().join(file)).expect("sample is readable");
    let event = decode_event_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    decide_event(&event, policy)
}

fn decisions(file: &str, policy: &DecisionPolicy) -> Vec<Want> {
    verdicts(file, policy).iter().map(got).collect()
}

fn release_on_clear() -> DecisionPolicy {
    DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    }
}

#[test]
fn every_sample_has_an_expected_outcome_and_gets_it() {
    let expected = expected();
    let files = sample_files();
    assert!(files.len() >= 45, "events/ holds {} samples", files.len());
    for file in &files {
        let want = expected
            .get(file.as_str())
            .unwrap_or_else(|| panic!("events/{file} has no expected decisions in {}", file!()));
        assert_eq!(
            &decisions(file, &DecisionPolicy::default()),
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
fn a_thing_removed_from_the_quarantine_group_is_reconciled() {
    // What quarantine-group decides (it reads QUARANTINE_GROUP, default Quarantine).
    let policy = DecisionPolicy {
        quarantine_group: Some("Quarantine".into()),
        ..Default::default()
    };
    let direct = verdicts("direct-registry-removed-from-quarantine.json", &policy);
    assert_eq!(direct[0].decision.kind(), "reconcile");
    assert_eq!(direct[0].record_id, "d684bd5f-6678-4c6f-9d4a-2c0a1a5a3b11");
    assert!(
        direct[0].decision.subjects().is_empty(),
        "it names no subject to act on"
    );
    assert_eq!(
        decisions("sqs-raw-registry-membership-batch.json", &policy),
        vec![
            want(MEMBERSHIP, Some(CAM_30), "reconcile"),
            // The put-back's own ADDED event: nothing to do, no loop.
            want(MEMBERSHIP, Some(CAM_30), "ignore"),
            want(
                MEMBERSHIP,
                Some("arn:aws:iot:eu-west-1:123456789012:thing/cam-31"),
                "ignore",
            ),
        ]
    );
    let scoped = DecisionPolicy {
        scope: LocalScope::new(Some("999999999999"), Some("eu-west-1")),
        ..policy
    };
    let foreign = verdicts("direct-registry-removed-from-quarantine.json", &scoped);
    assert_eq!(foreign[0].decision.kind(), "ignore");
    assert!(
        foreign[0].reason().contains("account 123456789012"),
        "{}",
        foreign[0].reason()
    );
}

#[test]
fn with_release_on_clear_only_device_side_and_custom_metrics_release() {
    let policy = release_on_clear();
    let cloud_side = verdicts("sns-num-messages-sent-alarm-cleared.json", &policy);
    assert_eq!(cloud_side[0].decision.kind(), "ignore");
    assert!(
        cloud_side[0]
            .reason()
            .starts_with("alarm-cleared on cloud-side metric aws:num-messages-sent: the quarantine itself changes this metric"),
        "{}",
        cloud_side[0].reason()
    );
    assert_eq!(
        decisions("sns-num-child-procs-alarm-cleared.json", &policy),
        vec![want(DETECT, Some("mything1"), "release")]
    );
    // aws:disconnect-duration is cloud-side too.
    assert_eq!(
        decisions("sqs-sns-envelope-batch.json", &policy)[2],
        want(DETECT, Some("sensor-c"), "ignore")
    );
    // Invalidated alarms are never acted on.
    assert_eq!(
        decisions("sns-alarm-invalidated.json", &policy),
        vec![want(DETECT, Some("dev-OLD1"), "ignore")]
    );
    // A CloudWatch alarm back to OK releases its thing.
    assert_eq!(
        decisions("sns-cloudwatch-ok.json", &policy),
        vec![want(CLOUDWATCH, Some("cam-01"), "release")]
    );
    assert_eq!(
        decisions("sqs-sns-cloudwatch-alarm-batch.json", &policy)[1].decision,
        "release"
    );
}

#[test]
fn samples_name_their_subjects_precisely() {
    let policy = DecisionPolicy::default();
    let subjects = |file: &str| -> Vec<Vec<String>> {
        verdicts(file, &policy)
            .iter()
            .map(|v| {
                v.decision
                    .subjects()
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        subjects("direct-securityhub-custom-action.json"),
        vec![vec!["thing/cam-06".to_owned(), format!("cert/{CERT}")]]
    );
    assert_eq!(
        subjects("direct-mitigation-request-certificate.json"),
        vec![vec![format!("cert/{CERT}")]]
    );
    assert_eq!(
        subjects("sqs-raw-eventbridge-securityhub-device-defender-batch.json")[5],
        vec![format!("cert/{CERT}")]
    );
    assert_eq!(
        subjects("direct-securityhub-imported-device-defender.json"),
        vec![vec!["thing/MyThing".to_owned()]]
    );
    assert_eq!(
        subjects("sqs-raw-mitigation-requests.json")[0],
        vec!["thing/gateway-08".to_owned()]
    );
}

#[test]
fn samples_carry_the_ids_the_handler_needs() {
    let policy = DecisionPolicy::default();
    let audit = verdicts("sns-audit-completed-non-compliant.json", &policy)[0].to_json();
    assert_eq!(audit["taskId"], "4e3b6e8e9c2a7f1d0b5c8a6e2f4d1c3b");
    assert_eq!(
        audit["checks"],
        serde_json::json!(["DEVICE_CERTIFICATE_SHARED_CHECK"])
    );
    let lookup = verdicts("sns-publish-finding-to-sns.json", &policy)[0].to_json();
    assert_eq!(lookup["findingId"], "c7a4d3f2-0e9b-4a8c-9f7e-6d5c4b3a2918");
    let missing = verdicts("sns-cloudwatch-alarm-missing-dimension.json", &policy)[0].reason();
    assert!(missing.contains("\"fleet-child-procs-total\""), "{missing}");
    let unknown = verdicts("sns-unknown-alert.json", &policy)[0].to_json();
    assert_eq!(unknown["error"], "UnknownAlert");
    assert!(
        unknown["reason"]
            .as_str()
            .is_some_and(|r| r.contains("tried: Device Defender Detect violation")),
        "{unknown}"
    );
    let odd = &verdicts("sns-in-alarm-odd-unneeded-fields.json", &policy)[0];
    assert_eq!(odd.notes.len(), 3, "{:?}", odd.notes);
    let fifo = &verdicts("sns-fifo-in-alarm-no-signature.json", &policy)[0];
    assert!(fifo.notes.is_empty(), "{:?}", fifo.notes);
}

/// The functions' own account and region, as the lead wires them.
fn local() -> DecisionPolicy {
    DecisionPolicy {
        scope: LocalScope::new(Some("123456789012"), Some("eu-west-1")),
        ..Default::default()
    }
}

#[test]
fn with_the_stacks_account_and_region_foreign_resources_are_refused() {
    let policy = local();
    let expected = expected_with(&[
        (
            "direct-mitigation-request-foreign-account.json",
            vec![want(REQUEST, Some(FOREIGN_THING_ARN), "reject")],
        ),
        (
            "sqs-raw-eventbridge-securityhub-foreign-batch.json",
            vec![
                // A member account's finding: not this account's, ignored.
                want(SECURITY_HUB, None, "ignore"),
                // This account's finding naming another account's certificate: refused.
                want(SECURITY_HUB, Some(FOREIGN_CERT_ARN), "reject"),
            ],
        ),
    ]);
    for file in sample_files() {
        assert_eq!(
            &decisions(&file, &policy),
            &expected[file.as_str()],
            "events/{file}"
        );
    }
    let request = verdicts("direct-mitigation-request-foreign-account.json", &policy)[0].to_json();
    assert_eq!(request["error"], "ForeignResource");
    let reason = request["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(FOREIGN_THING_ARN)
            && reason.contains("account 999999999999 in region us-east-1")
            && reason.contains("account 123456789012 in region eu-west-1"),
        "{reason}"
    );
    let member = verdicts(
        "sqs-raw-eventbridge-securityhub-foreign-batch.json",
        &policy,
    )[0]
    .reason();
    assert!(
        member.contains("its AwsAccountId is 999999999999, not this account 123456789012"),
        "{member}"
    );
}

#[test]
fn security_hub_samples_say_why_a_finding_does_not_act() {
    let policy = local();
    let reasons: Vec<String> = verdicts(
        "sqs-raw-eventbridge-securityhub-device-defender-batch.json",
        &policy,
    )
    .iter()
    .map(Verdict::reason)
    .collect();
    for (i, why) in [
        (1, "an analyst's update"),
        (2, "its workflow status is RESOLVED; only NEW findings act"),
        (3, "its workflow status is NOTIFIED; only NEW findings act"),
        (4, "its record state is ARCHIVED; only ACTIVE findings act"),
    ] {
        assert!(reasons[i].contains(why), "record {i}: {}", reasons[i]);
    }
    let own = verdicts("direct-securityhub-imported.json", &policy)[0].reason();
    assert!(
        own.contains("product/123456789012/default is not in SECURITY_HUB_PRODUCTS"),
        "{own}"
    );
    let many = verdicts(
        "direct-securityhub-custom-action-too-many-things.json",
        &policy,
    )[0]
    .to_json();
    assert_eq!(many["error"], "TooManySubjects");
    assert!(
        many["reason"]
            .as_str()
            .is_some_and(|r| r.contains("names 101 subjects; at most 100")),
        "{many}"
    );
    let benign = &verdicts("sns-ml-detect-benign-positive.json", &policy)[0];
    assert_eq!(
        benign.facts.verification_state.as_deref(),
        Some("BENIGN_POSITIVE")
    );
    let ml = verdicts("sns-ml-detect-in-alarm.json", &policy)[0].to_json();
    assert_eq!(ml["criteria"], "ML Detect, confidence HIGH");
    assert!(
        ml["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ML Detect, confidence HIGH")),
        "{ml}"
    );
}
