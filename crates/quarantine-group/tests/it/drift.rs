//! Drift through the `quarantine-group` binary: a thing removed from the quarantine group
//! behind the tools' back is put back when the registry's membership event arrives, and the
//! ledger's history says so. IoT in the AWS stand-in, the ledger in moto's DynamoDB.

use std::path::Path;

use serde_json::{Value, json};
use test_harness::fixtures::{
    batch_item_failures, membership_event, sqs_event, violation_on_metric,
};
use test_harness::moto;
use test_harness::scenarios::GROUP;
use test_harness::sdk::{ClientSettings, iot_client};
use test_harness::{Invocation, LocalFunction, Op, StandIn, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-group");
const TABLE: &str = "ledger";

/// The registry's event of the quarantine group, as the stack's topic rule hands it to the
/// function.
fn membership(event_id: &str, operation: &str, thing: &str) -> Value {
    membership_event(event_id, operation, GROUP, thing)
}

/// The thing's history entries as (asked, outcome, caller, record id, delivery, request id).
async fn history(dynamodb: &aws_sdk_dynamodb::Client, thing: &str) -> Vec<[String; 6]> {
    moto::ledger_history(dynamodb, TABLE, thing)
        .await
        .iter()
        .map(|entry| {
            let text = |k: &str| entry.get(k).cloned().unwrap_or_default();
            [
                text("asked"),
                text("outcome"),
                text("caller"),
                text("recordId"),
                text("delivery"),
                text("requestId"),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_thing_removed_behind_the_tools_back_is_put_back_and_the_history_says_so() {
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let env = local_aws_env(Some(&aws.endpoint()))
        .set("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
        .set("LEDGER_TABLE", TABLE)
        .set("RELEASE_SOURCES", "soc");
    let function = LocalFunction::start(Path::new(BINARY), &env);
    let alarm = violation_on_metric("dev-1", "in-alarm", "v-1", "num_child_procs_myapp");
    assert_eq!(
        function.invoke(&sqs_event(&[("m-1", &alarm.to_string())])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));

    // Someone with iot:RemoveThingFromThingGroup frees it, and it reconnects.
    iot_client(&aws.endpoint(), ClientSettings::attempts(1))
        .remove_thing_from_thing_group()
        .thing_group_name(GROUP)
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    aws.connect("dev-1", Some("dev-1"));
    assert!(!aws.group_members(GROUP).contains("dev-1"));

    let answer = function.invoke(&membership("evt-removed-1", "REMOVED", "dev-1"));
    assert!(
        matches!(&answer, Invocation::Response(summary) if summary["reconciled"] == 1),
        "{answer:?}"
    );
    assert!(aws.group_members(GROUP).contains("dev-1"), "put back");
    assert_eq!(aws.count(Op::AddThingToThingGroup), 2);
    assert_eq!(
        aws.disconnects().len(),
        2,
        "the connection made while outside the group is cut too"
    );

    // The put-back's own ADDED event changes nothing: no loop.
    function.invoke(&membership("evt-added-1", "ADDED", "dev-1"));
    assert_eq!(aws.count(Op::AddThingToThingGroup), 2);
    // The REMOVED event again (registry events come at least once): the thing is back in the
    // group, so nothing is done twice, the device's connection is left alone.
    function.invoke(&membership("evt-removed-1", "REMOVED", "dev-1"));
    assert_eq!(aws.count(Op::AddThingToThingGroup), 2, "no second put-back");
    assert_eq!(aws.disconnects().len(), 2, "no second disconnect");

    let entries = history(&dynamodb, "dev-1").await;
    let put_back: Vec<&[String; 6]> = entries.iter().filter(|e| e[0] == "reconcile").collect();
    assert_eq!(put_back.len(), 1, "{entries:?}");
    let [_, outcome, caller, record_id, delivery, request_id] = put_back[0];
    assert_eq!(
        (
            outcome.as_str(),
            caller.as_str(),
            record_id.as_str(),
            delivery.as_str()
        ),
        ("put back", "registry event", "evt-removed-1", "direct")
    );
    assert!(!request_id.is_empty(), "the Lambda request id is kept");

    // Released by a trusted request: its removal is not drift, the thing stays free.
    let release = json!({"thingName": "dev-1", "action": "release", "source": "soc"});
    assert_eq!(
        function.invoke(&sqs_event(&[("m-2", &release.to_string())])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(!aws.group_members(GROUP).contains("dev-1"));
    function.invoke(&membership("evt-removed-2", "REMOVED", "dev-1"));
    assert!(
        !aws.group_members(GROUP).contains("dev-1"),
        "a released thing is not put back"
    );
    assert_eq!(aws.count(Op::AddThingToThingGroup), 2);
    let log = function.process.json_log_lines();
    let ignored = log
        .iter()
        .find(|l| l["fields"]["record_id"] == "evt-removed-2")
        .expect("one log line per record");
    assert_eq!(ignored["fields"]["outcome"], "ignored", "{ignored}");
    assert!(
        ignored["fields"]["notes"]
            .as_str()
            .is_some_and(|n| n.contains("no active cause")),
        "{ignored}"
    );
}
