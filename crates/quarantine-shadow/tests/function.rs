//! The `quarantine-shadow` binary, driven through a local Lambda Runtime API: against the
//! moto emulator, against the AWS stand-in's faults, and how it finds its endpoints
//! (AWS_ENDPOINT_URL_* variables, IOT_DATA_ENDPOINT, else one DescribeEndpoint at start-up).

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::json;
use test_harness::fixtures::{batch_item_failures, sample_event, sqs_alarms};
use test_harness::moto::{self, Moto};
use test_harness::scenarios::{self, Mitigation};
use test_harness::{Invocation, LocalFunction, Op, StandIn, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-shadow");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[tokio::test]
async fn on_sns_and_sqs_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    let data = moto::data_client(&moto.endpoint).await;
    let things = [
        "dev-IZWB", "pump-01", "pump-03", "sensor-a", "sensor-b", "sensor-c",
    ];
    for thing in things {
        moto::create_thing(&iot, thing).await;
    }
    let function = LocalFunction::start(binary(), &local_aws_env(Some(&moto.endpoint)));

    assert_eq!(
        function.invoke(&sample_event("sns-num-messages-sent-in-alarm.json")),
        Invocation::Response(
            json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1})
        )
    );
    assert!(matches!(
        function.invoke(&sample_event("sns-malformed-message-not-json.json")),
        Invocation::Error { error_type, .. } if error_type == "Permanent.MessageNotJson"
    ));
    assert_eq!(
        function.invoke(&sample_event("sqs-mixed-batch.json")),
        Invocation::Response(batch_item_failures(&[
            "3e9f8daf-4253-4b6e-bdcf-304152637e02"
        ]))
    );
    assert_eq!(
        function.invoke(&sample_event("sqs-sns-envelope-batch.json")),
        Invocation::Response(batch_item_failures(&[]))
    );
    for thing in &things[..5] {
        assert_eq!(
            moto::desired_shadow(&data, thing, None).await,
            Some(json!({"quarantine": true})),
            "{thing}"
        );
        assert!(
            moto::groups_for_thing(&iot, thing).await.is_empty(),
            "the shadow function touches no group"
        );
    }
    assert_eq!(
        moto::desired_shadow(&data, "sensor-c", None).await,
        None,
        "a cleared alarm is ignored"
    );
}

#[test]
fn throttling_then_success() {
    scenarios::throttling_then_success(binary(), Mitigation::Shadow);
}

#[test]
fn persistent_5xx_reports_the_record() {
    scenarios::persistent_5xx_reports_the_record(binary(), Mitigation::Shadow);
}

#[test]
fn a_timeout_is_retried() {
    scenarios::a_timeout_is_retried(binary(), Mitigation::Shadow);
}

#[test]
fn bad_configuration_stops_the_function() {
    scenarios::bad_configuration_stops_the_function(binary());
}

#[test]
fn service_specific_endpoint_variables_are_honoured() {
    let aws = StandIn::start();
    let env = local_aws_env(None)
        .set("AWS_ENDPOINT_URL_IOT", aws.endpoint())
        .set("AWS_ENDPOINT_URL_IOT_DATA_PLANE", aws.endpoint());
    let function = LocalFunction::start(binary(), &env);
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-2"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(Mitigation::Shadow.is_applied(&aws, "dev-2"));
    assert_eq!(
        aws.count(Op::DescribeEndpoint),
        0,
        "a configured data-plane endpoint needs no lookup"
    );
}

#[test]
fn iot_data_endpoint_is_used_without_a_lookup() {
    let control = StandIn::start();
    let data = StandIn::start();
    let env = local_aws_env(None)
        .set("AWS_ENDPOINT_URL_IOT", control.endpoint())
        .set("IOT_DATA_ENDPOINT", data.endpoint());
    let function = LocalFunction::start(binary(), &env);
    assert_eq!(
        function.invoke(&sqs_alarms(&["dev-3"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert!(Mitigation::Shadow.is_applied(&data, "dev-3"));
    assert_eq!(
        control.calls().len(),
        0,
        "no lookup, and the shadow went to IOT_DATA_ENDPOINT"
    );
}

#[test]
fn without_a_data_endpoint_describe_endpoint_runs_once_at_start_up() {
    let aws = StandIn::start();
    let env = local_aws_env(None).set("AWS_ENDPOINT_URL_IOT", aws.endpoint());
    let function = LocalFunction::start(binary(), &env);
    assert_eq!(
        aws.count(Op::DescribeEndpoint),
        1,
        "resolved before the first event"
    );
    // The stand-in answers DescribeEndpoint with its own plain-HTTP address, which the function
    // calls over https as AWS requires: the call fails, and the record is reported, not lost.
    for _ in 0..2 {
        assert_eq!(
            function.invoke(&sqs_alarms(&["dev-4"])),
            Invocation::Response(batch_item_failures(&["m-dev-4"])),
            "{}",
            function.process.log_tail(10)
        );
    }
    assert_eq!(
        aws.count(Op::DescribeEndpoint),
        1,
        "never looked up again per event"
    );
}
