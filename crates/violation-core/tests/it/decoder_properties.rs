//! Property tests: the decoder and the decision never panic, whatever the input, every
//! record of an event gets exactly one verdict naming it, and only valid subjects are acted
//! on, as the rules allow.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};
use violation_core::{
    AlertSource, Decision, DecisionPolicy, LocalScope, MetricKind, NameFilter, Subject, ThingName,
    Verdict, classify_metric, decide_event, decode_event, decode_event_bytes,
};

/// Arbitrary JSON, a few levels deep, using the keys and values of every source.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::from),
        prop::sample::select(vec![
            "in-alarm",
            "alarm-cleared",
            "aws:sns",
            "aws:sqs",
            "Notification",
            "dev-1",
            "aws:num-messages-sent",
            "num_child_procs_myapp",
            "quarantine",
            "release",
            "ALARM",
            "OK",
            "ThingName",
            "COMPLETED",
            "COMPLETED_NON_COMPLIANT",
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            "aws.cloudwatch",
            "aws.securityhub",
            "SUPPRESSED",
            "NEW",
            "ACTIVE",
            "RESOLVED",
            "AwsIotRegisteredThing",
            "Security Hub Findings - Imported",
            "Security Hub Findings - Custom Action",
            "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-detect",
            "123456789012",
            "eu-west-1",
            "2026-11-20T10:00:00Z",
            "arn:aws:iot:eu-west-1:1:thing/dev-2",
            "arn:aws:iot:eu-west-1:123456789012:thing/dev-3",
            "arn:aws:iot:eu-west-1:1:cert/5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "THING_GROUP_MEMBERSHIP_EVENT",
            "REMOVED",
            "ADDED",
            "Quarantine",
            "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "thingName",
                    "violationEventType",
                    "violationId",
                    "behavior",
                    "metricValue",
                    "criteria",
                    "value",
                    "count",
                    "violationEventTime",
                    "name",
                    "metric",
                    "action",
                    "certificateId",
                    "thingArn",
                    "taskId",
                    "taskStatus",
                    "auditDetails",
                    "checkName",
                    "checkRunStatus",
                    "findingId",
                    "finding",
                    "nonCompliantResource",
                    "resourceIdentifier",
                    "clientId",
                    "AlarmName",
                    "NewStateValue",
                    "Trigger",
                    "Dimensions",
                    "source",
                    "alarmData",
                    "state",
                    "detail",
                    "findings",
                    "Resources",
                    "Id",
                    "Type",
                    "ProductArn",
                    "AwsAccountId",
                    "Region",
                    "RecordState",
                    "Workflow",
                    "WorkflowState",
                    "Status",
                    "Note",
                    "UpdatedAt",
                    "Details",
                    "Other",
                    "ThingArn",
                    "detail-type",
                    "eventType",
                    "operation",
                    "groupArn",
                    "groupName",
                    "accountId",
                    "membershipId",
                    "x",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A Lambda event whose records carry arbitrary messages in realistic envelopes, or a
/// direct invocation.
fn any_event() -> impl Strategy<Value = Value> {
    let message = prop_oneof![any_json().prop_map(|v| v.to_string()), "\\PC{0,40}"];
    let record = (message, 0..5u8, "[a-z0-9-]{0,12}").prop_map(|(message, shape, id)| match shape {
        0 => json!({"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn",
                    "Sns": {"Type": "Notification", "MessageId": id, "TopicArn": "arn", "Message": message,
                            "Timestamp": "2019-11-15T03:00:36.527Z", "SignatureVersion": "1", "Signature": "s",
                            "SigningCertUrl": "u", "UnsubscribeUrl": "u"}}),
        1 => json!({"messageId": id, "eventSource": "aws:sqs", "body": message}),
        2 => json!({"messageId": id, "eventSource": "aws:sqs", "body": json!({
                    "Type": "Notification", "MessageId": id, "TopicArn": "arn", "Message": message,
                    "Timestamp": "2019-11-15T03:00:36.527Z", "SignatureVersion": "1", "Signature": "s",
                    "SigningCertURL": "u", "UnsubscribeURL": "u"}).to_string()}),
        // A FIFO topic: no signature fields; odd attributes.
        3 => json!({"EventSource": "aws:sns", "Sns": {"Type": "Notification", "MessageId": id,
                    "Message": message, "MessageAttributes": {"a": 1}, "SequenceNumber": "1"}}),
        _ => json!({"eventSource": "aws:sqs", "messageId": id, "body": null}),
    });
    prop::collection::vec(record, 0..6).prop_map(|records| json!({ "Records": records }))
}

/// One well-formed alert of each source, as a direct invocation would carry it.
fn base_alerts() -> Vec<Value> {
    let cert = "5a3d2e1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
    vec![
        json!({"thingName": "dev-1", "violationId": "v-1", "violationEventType": "alarm-cleared",
               "securityProfileName": "P", "violationEventTime": 1,
               "behavior": {"name": "B", "metric": "num_child_procs_myapp"}, "metricValue": {"count": 1}}),
        json!({"taskId": "t-1", "taskStatus": "COMPLETED", "taskStartTime": 1,
               "auditDetails": [{"checkName": "DEVICE_CERTIFICATE_SHARED_CHECK",
                                 "checkRunStatus": "COMPLETED_NON_COMPLIANT"}]}),
        json!({"finding": {"findingId": "f-1", "checkName": "CONFLICTING_CLIENT_IDS_CHECK", "isSuppressed": false,
               "nonCompliantResource": {"resourceIdentifier": {"clientId": "dev-1", "deviceCertificateId": cert}}}}),
        json!({"AlarmName": "a", "NewStateValue": "OK", "AlarmArn": "arn",
               "Trigger": {"Dimensions": [{"name": "ThingName", "value": "dev-1"}]}}),
        json!({"source": "aws.cloudwatch", "alarmData": {"alarmName": "a", "state": {"value": "ALARM"},
               "configuration": {"metrics": [{"metricStat": {"metric": {"dimensions": {"ThingName": "dev-1"}}}}]}}}),
        json!({"thingName": "dev-1", "certificateId": cert, "action": "release", "reason": "r", "source": "s"}),
        json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
               "detail": {"findings": [{"Id": "f", "Title": "t", "Workflow": {"Status": "NEW"},
                 "RecordState": "ACTIVE", "AwsAccountId": "123456789012",
                 "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-detect",
                 "Resources": [{"Type": "AwsIotRegisteredThing", "Id": "dev-1", "Region": "eu-west-1"}]}]}}),
        json!({"eventType": "THING_GROUP_MEMBERSHIP_EVENT", "eventId": "e-1", "timestamp": 1,
               "operation": "REMOVED", "accountId": "123456789012",
               "groupArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine",
               "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/dev-1"}),
    ]
}

fn policies() -> [DecisionPolicy; 4] {
    [
        DecisionPolicy::default(),
        DecisionPolicy {
            release_on_clear: true,
            behaviors: NameFilter::only(["B"]),
            ..Default::default()
        },
        DecisionPolicy {
            release_on_clear: true,
            quarantine_group: Some("Quarantine".into()),
            ..Default::default()
        },
        DecisionPolicy {
            scope: LocalScope::new(Some("123456789012"), Some("eu-west-1")),
            max_things_per_record: 2,
            quarantine_group: Some("Quarantine".into()),
            ..Default::default()
        },
    ]
}

/// What every verdict must satisfy, whatever its input.
fn check_verdict(verdict: &Verdict, policy: &DecisionPolicy) -> Result<(), TestCaseError> {
    prop_assert!(!verdict.record_id.is_empty());
    let line = verdict.to_json();
    prop_assert!(line["reason"].is_string() && line["decision"].is_string());
    prop_assert_eq!(
        line.get("error").is_some(),
        matches!(verdict.decision, Decision::Reject(_))
    );
    // A membership event never acts: it can neither quarantine nor release.
    if verdict.source == Some(AlertSource::ThingGroupMembership) {
        prop_assert!(
            matches!(
                verdict.decision,
                Decision::Reconcile { .. } | Decision::Ignore(_) | Decision::Reject(_)
            ),
            "a membership event decided {:?}",
            verdict.decision
        );
    }
    if let Decision::Reconcile { thing } = &verdict.decision {
        prop_assert_eq!(verdict.source, Some(AlertSource::ThingGroupMembership));
        let reparsed = ThingName::parse(thing.as_str());
        prop_assert_eq!(reparsed.as_ref(), Ok(thing));
        prop_assert!(policy.quarantine_group.is_some());
    }
    if let Decision::Act { action, subjects } = &verdict.decision {
        prop_assert!(!subjects.is_empty(), "an action without subject");
        prop_assert!(
            subjects.len() <= policy.max_things_per_record,
            "too many subjects"
        );
        let mut unique = subjects.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), subjects.len(), "duplicate subjects");
        for subject in subjects {
            if let Subject::Thing(name) = subject {
                let reparsed = ThingName::parse(name.as_str());
                prop_assert_eq!(reparsed.as_ref(), Ok(name));
            }
        }
        if action.as_str() == "release" {
            // Only an explicit request releases when release on clear is off.
            prop_assert!(
                policy.release_on_clear || verdict.source == Some(AlertSource::MitigationRequest),
                "release with release on clear off: {:?}",
                verdict
            );
            // A cleared Detect alarm never releases on a metric the quarantine changes.
            if verdict.source == Some(AlertSource::DetectViolation) {
                let metric = verdict.facts.metric.as_deref().unwrap_or("");
                prop_assert!(
                    matches!(
                        classify_metric(metric),
                        MetricKind::DeviceSide | MetricKind::Custom
                    ) && !metric.is_empty(),
                    "released on {:?}",
                    metric
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(event) = decode_event_bytes(&bytes) {
            for policy in policies() {
                prop_assert_eq!(decide_event(&event, &policy).len(), event.records.len());
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let _ = decode_event(&json!({ "Records": [value.clone()] }));
        if let Ok(event) = decode_event(&value) {
            for policy in policies() {
                for verdict in decide_event(&event, &policy) {
                    check_verdict(&verdict, &policy)?;
                }
            }
        }
    }

    #[test]
    fn a_well_formed_alert_with_one_field_changed_is_decided_by_the_rules(
        which in 0..8usize,
        key in prop::sample::select(vec![0usize, 1, 2, 3, 4, 5]),
        replacement in prop::option::of(any_json()),
    ) {
        let mut alert = base_alerts()[which].clone();
        if let Some(object) = alert.as_object_mut() {
            let keys: Vec<String> = object.keys().cloned().collect();
            let key = &keys[key % keys.len()];
            match replacement {
                Some(value) => object.insert(key.clone(), value),
                None => object.remove(key),
            };
        }
        let decoded = decode_event(&alert);
        prop_assert!(decoded.is_ok());
        if let Ok(event) = decoded {
            for policy in policies() {
                for verdict in decide_event(&event, &policy) {
                    check_verdict(&verdict, &policy)?;
                }
            }
        }
    }

    #[test]
    fn any_object_without_records_is_one_direct_record(value in any_json()) {
        let Value::Object(mut object) = value else { return Ok(()) };
        object.remove("Records");
        let decoded = decode_event(&Value::Object(object));
        prop_assert!(decoded.as_ref().is_ok_and(|d| d.records.len() == 1), "{:?}", decoded);
    }

    #[test]
    fn every_record_gets_one_verdict_and_only_valid_subjects_are_acted_on(event in any_event()) {
        let records = event["Records"].as_array().map_or(0, Vec::len);
        let Ok(decoded) = decode_event(&event) else {
            return Err(TestCaseError::fail("an event of SNS/SQS records must decode"));
        };
        prop_assert_eq!(decoded.records.len(), records);
        for policy in policies() {
            for verdict in decide_event(&decoded, &policy) {
                check_verdict(&verdict, &policy)?;
            }
        }
    }
}

/// The alerts the property above mutates are decided as their sources say, unchanged.
#[test]
fn base_alerts_are_acted_on_before_mutation() {
    let kinds: Vec<&str> = base_alerts()
        .iter()
        .map(|alert| {
            let event = decode_event(alert).expect("direct invocation");
            decide_event(&event, &policies()[2])[0].decision.kind()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "release",
            "expand-audit",
            "lookup-finding",
            "release",
            "quarantine",
            "release",
            "quarantine",
            "reconcile"
        ]
    );
}

/// Whatever a Security Hub event says, only a NEW, ACTIVE finding of a trusted product, this
/// account and region quarantines, and nothing is taken from a foreign ARN.
fn trusted_finding() -> impl Strategy<Value = (Value, bool)> {
    let product = prop::sample::select(vec![
        (
            "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-detect",
            true,
        ),
        (
            "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-audit",
            true,
        ),
        (
            "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-detect",
            false,
        ),
        (
            "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default",
            false,
        ),
        (
            "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
            false,
        ),
    ]);
    let account = prop::sample::select(vec![("123456789012", true), ("999999999999", false)]);
    let record = prop::sample::select(vec![("ACTIVE", true), ("ARCHIVED", false)]);
    let workflow = prop::sample::select(vec![
        ("NEW", true),
        ("NOTIFIED", false),
        ("RESOLVED", false),
        ("SUPPRESSED", false),
    ]);
    let note = prop::sample::select(vec![
        (None, true),
        (Some("2026-11-20T09:00:00Z"), true),
        (Some("2026-11-20T11:00:00Z"), false),
    ]);
    let resource = prop::sample::select(vec![
        (
            json!({"Type": "AwsIotRegisteredThing", "Id": "dev-1", "Region": "eu-west-1"}),
            true,
        ),
        (
            json!({"Type": "Other", "Id": "arn:aws:iot:eu-west-1:123456789012:thing/dev-1"}),
            true,
        ),
        (
            json!({"Type": "Other", "Id": "arn:aws:iot:eu-west-1:999999999999:thing/dev-1"}),
            false,
        ),
        (
            json!({"Type": "Other", "Id": "arn:aws:iot:us-east-1:123456789012:thing/dev-1"}),
            false,
        ),
        (
            json!({"Type": "AwsIotRegisteredThing", "Id": "dev-1", "Region": "us-east-1"}),
            false,
        ),
    ]);
    (product, account, record, workflow, note, resource).prop_map(
        |((p, p_ok), (a, a_ok), (r, r_ok), (w, w_ok), (n, n_ok), (res, res_ok))| {
            let mut finding = json!({"Id": "f-1", "ProductArn": p, "AwsAccountId": a,
                "RecordState": r, "Workflow": {"Status": w}, "UpdatedAt": "2026-11-20T10:00:00Z",
                "Resources": [res]});
            if let Some(at) = n {
                finding["Note"] = json!({"Text": "x", "UpdatedBy": "alice", "UpdatedAt": at});
            }
            let event = json!({"source": "aws.securityhub",
                "detail-type": "Security Hub Findings - Imported", "detail": {"findings": [finding]}});
            (event, p_ok && a_ok && r_ok && w_ok && n_ok && res_ok)
        },
    )
}

proptest! {
    #[test]
    fn a_security_hub_finding_quarantines_only_when_every_rule_allows((event, trusted) in trusted_finding()) {
        let policy = &policies()[3];
        let decoded = decode_event(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let verdict = &decide_event(&decoded, policy)[0];
        prop_assert_eq!(verdict.decision.kind() == "quarantine", trusted, "{:?}", verdict);
        check_verdict(verdict, policy)?;
    }
}
