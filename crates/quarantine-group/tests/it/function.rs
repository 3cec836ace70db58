//! The `quarantine-group` binary, driven through a local Lambda Runtime API: against the moto
//! emulator, and against the AWS stand-in that throttles, fails, hangs or has lost the thing.
//! Every record ends done or reported; nothing is lost.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use test_harness::fixtures::{
    batch_item_failures, sample_event, sqs_alarms, sqs_event, sqs_message, violation,
};
use test_harness::moto::{self, Moto};
use test_harness::scenarios::{self, GROUP, Mitigation, retrying_env};
use test_harness::stand_in::Disconnect;
use test_harness::{Fault, Invocation, LocalFunction, Op, StandIn, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-group");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[tokio::test]
async fn on_sns_and_sqs_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    for thing in ["dev-IZWB", "pump-01", "pump-03"] {
        moto::create_thing(&iot, thing).await;
    }
    // moto has no DeleteConnection.
    let env = local_aws_env(Some(&moto.endpoint)).set("DISCONNECT", "false");
    let function = LocalFunction::start(binary(), &env);

    assert_eq!(
        function.invoke(&sample_event("sns-num-messages-sent-in-alarm.json")),
        Invocation::Response(
            json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1})
        )
    );
    match function.invoke(&sample_event("sns-malformed-missing-thing-name.json")) {
        Invocation::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Permanent.MissingThingName");
            assert!(
                error_message.contains("c2be04f3-4702-d6ba-0a32-52bb5657c53f"),
                "{error_message}"
            );
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
    assert_eq!(
        function.invoke(&sample_event("sqs-mixed-batch.json")),
        Invocation::Response(batch_item_failures(&[
            "3e9f8daf-4253-4b6e-bdcf-304152637e02"
        ]))
    );
    for thing in ["dev-IZWB", "pump-01", "pump-03"] {
        assert_eq!(
            moto::groups_for_thing(&iot, thing).await,
            [GROUP],
            "{thing}"
        );
    }

    // One JSON log line per record, naming the thing, the violation and the outcome.
    let records: Vec<_> = function
        .process
        .json_log_lines()
        .into_iter()
        .filter(|l| l["fields"]["record_id"].is_string())
        .collect();
    assert_eq!(records.len(), 5, "{records:#?}");
    let izwb = records
        .iter()
        .find(|l| l["fields"]["thing"] == "dev-IZWB")
        .expect("a log line for dev-IZWB");
    assert_eq!(
        izwb["fields"]["violation_id"],
        "37e18651d207bbc74236c13faf146127"
    );
    assert_eq!(izwb["fields"]["behavior"], "MessagesPub");
    assert_eq!(izwb["fields"]["decision"], "quarantine");
    assert_eq!(izwb["fields"]["outcome"], "done");
}

#[test]
fn a_connected_thing_is_disconnected_after_joining_the_group() {
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let function = LocalFunction::start(binary(), &local_aws_env(Some(&aws.endpoint())));
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-1", "offline"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));
    assert!(!aws.is_connected("dev-1"));
    assert_eq!(
        aws.disconnects(),
        [Disconnect {
            client_id: "dev-1".into(),
            clean_session: None,
            prevent_will_message: Some(true)
        }],
        "the persistent session is kept; the last will is not published"
    );
    let order: Vec<Op> = aws
        .calls()
        .iter()
        .filter(|c| c.subject.as_deref() == Some("dev-1"))
        .map(|c| c.op)
        .collect();
    assert_eq!(order, [Op::AddThingToThingGroup, Op::DeleteConnection]);
    assert_eq!(
        aws.count_status(Op::DeleteConnection, 404),
        1,
        "offline: not connected counts as done"
    );
}

#[test]
fn with_disconnect_off_a_connected_thing_keeps_its_connection() {
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let env = local_aws_env(Some(&aws.endpoint())).set("DISCONNECT", "false");
    let function = LocalFunction::start(binary(), &env);
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-1"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));
    assert_eq!(
        aws.count(Op::DeleteConnection),
        0,
        "DISCONNECT=false: no call"
    );
    assert!(aws.is_connected("dev-1"));
}

#[test]
fn throttling_then_success() {
    scenarios::throttling_then_success(binary(), Mitigation::ThingGroup);
}

#[test]
fn persistent_5xx_reports_the_record() {
    scenarios::persistent_5xx_reports_the_record(binary(), Mitigation::ThingGroup);
}

#[test]
fn a_timeout_is_retried() {
    scenarios::a_timeout_is_retried(binary(), Mitigation::ThingGroup);
}

#[test]
fn bad_configuration_stops_the_function() {
    scenarios::bad_configuration_stops_the_function(binary());
}

#[test]
fn a_deleted_thing_is_a_permanent_failure_with_a_clear_message() {
    let aws = StandIn::start();
    aws.set_fault("gone", Fault::NotFound);
    let function = LocalFunction::start(binary(), &retrying_env(&aws));
    assert_eq!(
        function.invoke(&sqs_alarms(&["gone"])),
        Invocation::Response(batch_item_failures(&["m-gone"]))
    );
    assert_eq!(
        aws.count_for(Op::AddThingToThingGroup, "gone"),
        1,
        "a permanent error is not retried"
    );
    assert_eq!(
        aws.count(Op::DeleteConnection),
        0,
        "no disconnect after a failed group change"
    );
    let line = function
        .process
        .json_log_lines()
        .into_iter()
        .find(|l| l["fields"]["thing"] == "gone")
        .unwrap_or_else(|| {
            panic!(
                "no record log line for the thing:\n{}",
                function.process.log()
            )
        });
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["fields"]["error_type"],
        "Permanent.ResourceNotFoundException"
    );
    let error = line["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("AddThingToThingGroup for thing gone failed"),
        "{error}"
    );
    assert!(
        error.contains("describe-thing --thing-name gone"),
        "{error}"
    );
}

#[test]
fn a_mixed_batch_reports_exactly_the_failed_records() {
    let aws = StandIn::start();
    aws.set_fault("busy", Fault::ThrottleTimes(1));
    aws.set_fault("broken", Fault::Always5xx);
    aws.set_fault("slow", Fault::HangFirst(1, Duration::from_secs(3)));
    aws.set_fault("gone", Fault::NotFound);
    let function = LocalFunction::start(binary(), &retrying_env(&aws));
    let mut event = sqs_alarms(&["ok-1", "busy", "broken", "slow", "gone", "ok-2"]);
    let malformed = sqs_message("m-malformed", "{\"thingName\": ");
    if let Some(records) = event["Records"].as_array_mut() {
        records.push(serde_json::to_value(malformed).unwrap());
    }
    assert_eq!(
        function.invoke(&event),
        Invocation::Response(batch_item_failures(&["m-broken", "m-gone", "m-malformed"]))
    );
    let members = aws.group_members(GROUP);
    for thing in ["ok-1", "busy", "slow", "ok-2"] {
        assert!(members.contains(thing), "{thing} quarantined: {members:?}");
    }
    assert_eq!(members.len(), 4);
}

#[test]
fn service_specific_endpoint_variables_are_honoured() {
    let aws = StandIn::start();
    let env = local_aws_env(None)
        .set("AWS_ENDPOINT_URL_IOT", aws.endpoint())
        .set("AWS_ENDPOINT_URL_IOT_DATA_PLANE", aws.endpoint());
    let function = LocalFunction::start(binary(), &env);
    let message = violation("dev-1", "in-alarm", "v1").to_string();
    let event = sqs_event(&[("m1", &message)]);
    assert_eq!(
        function.invoke(&event),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));
    assert_eq!(aws.count(Op::DeleteConnection), 1);
    assert_eq!(
        aws.count(Op::DescribeEndpoint),
        0,
        "a configured data-plane endpoint needs no lookup"
    );
}

/// The `connections opened during init` log line's fields.
pub(crate) fn warm_up_line(function: &LocalFunction) -> serde_json::Value {
    function
        .process
        .json_log_lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "connections opened during init")
        .map(|l| l["fields"].clone())
        .expect("a warm-up log line")
}

#[test]
fn init_opens_the_connection_of_each_client_before_the_first_event() {
    let aws = StandIn::start();
    let function = LocalFunction::start(binary(), &local_aws_env(Some(&aws.endpoint())));
    // One warm-up request per client (IoT, and the data plane for DeleteConnection), each on
    // a path no operation has: answered 404, nothing changed, no operation called.
    let calls: Vec<(Op, u16)> = aws.calls().iter().map(|c| (c.op, c.status)).collect();
    assert_eq!(calls, [(Op::Unknown, 404), (Op::Unknown, 404)]);
    let line = warm_up_line(&function);
    assert_eq!(line["warmed"], r#"["iot", "iot-data"]"#, "{line}");
    assert_eq!(line["unanswered"], "[]", "{line}");
    // The HTTPS connector whose root certificates were loaded on a thread of their own, while
    // init built the clients, is the one the warm-up used.
    assert_eq!(line["tls_prepared"], true, "{line}");
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-1"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));
}

#[test]
fn init_signs_with_the_credentials_and_region_lambda_puts_in_the_environment() {
    let aws = StandIn::start();
    // Lambda sets both region variables; AWS_REGION wins, as in the SDK's default chain.
    let env = local_aws_env(Some(&aws.endpoint()))
        .set("AWS_REGION", "eu-west-1")
        .set("AWS_DEFAULT_REGION", "us-east-1");
    let function = LocalFunction::start(binary(), &env);
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-1"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    let mut signers = aws.signers();
    signers.sort();
    signers.dedup();
    assert_eq!(
        signers,
        [
            "AKIDLOCALTESTING0000/eu-west-1/iot",
            "AKIDLOCALTESTING0000/eu-west-1/iotdata"
        ]
    );
}

#[test]
fn an_endpoint_that_does_not_answer_delays_init_by_the_warm_up_deadline_only() {
    let aws = StandIn::start();
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let env = local_aws_env(None)
        .set("AWS_ENDPOINT_URL_IOT", aws.endpoint())
        .set(
            "AWS_ENDPOINT_URL_IOT_DATA_PLANE",
            format!("http://{}", silent.local_addr().unwrap()),
        );
    let started = std::time::Instant::now();
    let function = LocalFunction::start(binary(), &env);
    let took = started.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(5)).contains(&took),
        "ready after {took:?}"
    );
    let line = warm_up_line(&function);
    assert_eq!(line["warmed"], r#"["iot"]"#, "{line}");
    assert_eq!(line["unanswered"], r#"["iot-data"]"#, "{line}");
}
