//! The `quarantine-group` binary acting from the quarantine ledger: IoT in the AWS stand-in
//! (which counts the calls), the ledger in moto's DynamoDB.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::{Value, json};
use test_harness::fixtures::{batch_item_failures, sqs_event, violation_on_metric};
use test_harness::moto;
use test_harness::scenarios::GROUP;
use test_harness::stand_in::Disconnect;
use test_harness::{Invocation, LocalFunction, Op, StandIn, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-group");
const TABLE: &str = "ledger";

fn sqs(id: &str, message: &Value) -> Value {
    sqs_event(&[(id, &message.to_string())])
}

fn detect(event_type: &str) -> Value {
    violation_on_metric("dev-1", event_type, "v-1", "num_child_procs_myapp")
}

fn request(action: &str, source: &str) -> Value {
    json!({"thingName": "dev-1", "action": action, "source": source, "reason": "by hand"})
}

#[tokio::test]
async fn causes_keep_a_thing_duplicates_call_nothing_and_the_history_names_who() {
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let env = local_aws_env(Some(&aws.endpoint()))
        .set("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
        .set("LEDGER_TABLE", TABLE)
        .set("RELEASE_ON_CLEAR", "true")
        .set("MIN_QUARANTINE_MINUTES", "0");
    let function = LocalFunction::start(Path::new(BINARY), &env);
    // Init opened the ledger's connection too (an operation DynamoDB does not have).
    let warm_up = function
        .process
        .json_log_lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "connections opened during init")
        .map(|l| l["fields"].clone())
        .expect("a warm-up log line");
    assert_eq!(
        warm_up["warmed"], r#"["dynamodb", "iot", "iot-data"]"#,
        "{warm_up}"
    );
    let done = Invocation::Response(batch_item_failures(&[]));

    assert_eq!(function.invoke(&sqs("m-1", &detect("in-alarm"))), done);
    assert_eq!(function.invoke(&sqs("m-2", &detect("in-alarm"))), done);
    assert_eq!(
        aws.count(Op::AddThingToThingGroup),
        1,
        "a duplicate makes no call"
    );
    assert_eq!(
        aws.disconnects(),
        [Disconnect {
            client_id: "dev-1".into(),
            clean_session: None,
            prevent_will_message: Some(true)
        }],
        "one disconnect per quarantine, its last will not published"
    );

    // An operator's quarantine (quarantinectl's request) survives the clear of the alarm.
    assert_eq!(
        function.invoke(&sqs("m-3", &request("quarantine", "quarantinectl:alice"))),
        done
    );
    assert_eq!(function.invoke(&sqs("m-4", &detect("alarm-cleared"))), done);
    // A release request on the topic from an untrusted source is refused.
    assert_eq!(
        function.invoke(&sqs("m-5", &request("release", "anyone"))),
        Invocation::Response(batch_item_failures(&["m-5"]))
    );
    assert_eq!(aws.count(Op::RemoveThingFromThingGroup), 0);
    assert!(aws.group_members(GROUP).contains("dev-1"));
    assert_eq!(aws.count(Op::AddThingToThingGroup), 1);

    let history = moto::ledger_history(&dynamodb, TABLE, "dev-1").await;
    let entries: Vec<[String; 4]> = history
        .iter()
        .map(|entry| {
            let text = |k: &str| entry.get(k).cloned().unwrap_or_default();
            [
                text("recordId"),
                text("cause"),
                text("outcome"),
                text("caller"),
            ]
        })
        .collect();
    let expected = [
        ["m-1", "recorded", "done", ""],
        ["m-3", "recorded", "done", "quarantinectl:alice"],
        ["m-4", "recorded", "kept", ""],
    ];
    for want in expected {
        assert!(
            entries
                .iter()
                .any(|e| e.iter().zip(&want).all(|(a, b)| a == b)),
            "no history entry {want:?} in {entries:?}"
        );
    }
    assert!(
        !entries.iter().any(|e| e[0] == "m-2"),
        "a duplicate that did nothing is not history: {entries:?}"
    );
    let cause_ids: Vec<String> = history
        .iter()
        .filter_map(|entry| entry.get("causeId").cloned())
        .collect();
    assert!(cause_ids.contains(&"v-1".to_owned()), "{cause_ids:?}");
    assert!(
        history.iter().all(|entry| entry.contains_key("requestId")),
        "the Lambda request id is kept"
    );
}

#[tokio::test]
async fn with_a_budget_of_five_eight_alarms_quarantine_five_and_hold_three() {
    let (moto, _) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    let env = local_aws_env(Some(&aws.endpoint()))
        .set("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
        .set("LEDGER_TABLE", TABLE)
        .set("DISCONNECT", "false")
        .set("MAX_NEW_QUARANTINES", "5")
        // One record at a time: moto runs concurrent transactions without isolation (DynamoDB
        // serializes them), so concurrent claims could overrun its counter.
        .set("MAX_CONCURRENCY", "1");
    let function = LocalFunction::start(Path::new(BINARY), &env);
    let bodies: Vec<(String, String)> = (1..=8)
        .map(|n| {
            let message =
                violation_on_metric(&format!("dev-{n}"), "in-alarm", &format!("v-{n}"), "m");
            (format!("m-{n}"), message.to_string())
        })
        .collect();
    let records: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(i, b)| (i.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        function.invoke(&sqs_event(&records)),
        Invocation::Response(batch_item_failures(&[])),
        "held records are not failures: nothing is lost, the causes are in the ledger"
    );
    assert_eq!(aws.group_members(GROUP).len(), 5);
    assert_eq!(aws.count(Op::AddThingToThingGroup), 5);
    let held: Vec<Value> = function
        .process
        .json_log_lines()
        .into_iter()
        .filter(|line| line.get("_aws").is_some())
        .map(|emf| emf["Held"].clone())
        .collect();
    assert_eq!(held, [json!(3)], "the EMF figure Held");
}
