//! Property tests: the decoder and the decision never panic, whatever the input, and every
//! record of an event gets exactly one verdict naming it.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};
use violation_core::{
    DecisionPolicy, NameFilter, ThingName, decide_event, decode_event, decode_event_bytes,
};

/// Arbitrary JSON, a few levels deep.
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
            "dev-1"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
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
                    "ports",
                    "numbers",
                    "violationEventTime",
                    "name",
                    "metric",
                    "x",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A Lambda event whose records carry arbitrary messages in realistic envelopes.
fn any_event() -> impl Strategy<Value = Value> {
    let message = prop_oneof![any_json().prop_map(|v| v.to_string()), "\\PC{0,40}"];
    let record = (message, 0..4u8, "[a-z0-9-]{0,12}").prop_map(|(message, shape, id)| match shape {
        0 => json!({"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn",
                    "Sns": {"Type": "Notification", "MessageId": id, "TopicArn": "arn", "Message": message,
                            "Timestamp": "2019-11-15T03:00:36.527Z", "SignatureVersion": "1", "Signature": "s",
                            "SigningCertUrl": "u", "UnsubscribeUrl": "u"}}),
        1 => json!({"messageId": id, "eventSource": "aws:sqs", "body": message}),
        2 => json!({"messageId": id, "eventSource": "aws:sqs", "body": json!({
                    "Type": "Notification", "MessageId": id, "TopicArn": "arn", "Message": message,
                    "Timestamp": "2019-11-15T03:00:36.527Z", "SignatureVersion": "1", "Signature": "s",
                    "SigningCertURL": "u", "UnsubscribeURL": "u"}).to_string()}),
        _ => json!({"eventSource": "aws:sqs", "messageId": id, "body": null}),
    });
    prop::collection::vec(record, 0..6).prop_map(|records| json!({ "Records": records }))
}

fn policies() -> [DecisionPolicy; 2] {
    [
        DecisionPolicy::default(),
        DecisionPolicy {
            release_on_clear: true,
            behaviors: NameFilter::only(["B"]),
            ..Default::default()
        },
    ]
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
        let _ = decode_event(&value);
        let _ = decode_event(&json!({ "Records": [value] }));
    }

    #[test]
    fn every_record_gets_one_verdict_and_only_valid_names_are_acted_on(event in any_event()) {
        let records = event["Records"].as_array().map_or(0, Vec::len);
        let Ok(decoded) = decode_event(&event) else {
            return Err(TestCaseError::fail("an event of SNS/SQS records must decode"));
        };
        prop_assert_eq!(decoded.records.len(), records);
        for policy in policies() {
            for verdict in decide_event(&decoded, &policy) {
                prop_assert!(!verdict.record_id.is_empty());
                let line = verdict.to_json();
                prop_assert!(line["reason"].is_string() && line["decision"].is_string());
                if matches!(verdict.decision.kind(), "quarantine" | "release") {
                    let name = verdict.thing_name.as_deref().unwrap_or_default();
                    prop_assert!(ThingName::parse(name).is_ok(), "acted on invalid name {:?}", name);
                }
            }
        }
    }
}
