//! How the functions find their endpoints: the standard AWS_ENDPOINT_URL_* variables,
//! IOT_DATA_ENDPOINT, and otherwise one DescribeEndpoint (iot:Data-ATS) at start-up, never
//! per event.

use std::time::Duration;

use integration_tests::fake_aws::{FakeAws, FakeAwsConfig, op};
use integration_tests::runtime_api::{FunctionProcess, Invocation, RuntimeApi, binary_path};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

fn batch(thing: &str) -> Value {
    let body = json!({"thingName": thing, "violationEventType": "in-alarm", "violationId": "v1"});
    json!({"Records": [{"messageId": "m1", "body": body.to_string(), "eventSource": "aws:sqs"}]})
}

fn start(function: &str, env: &[(&str, &str)]) -> (RuntimeApi, FunctionProcess) {
    let runtime = RuntimeApi::start();
    let mut all = vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    all.extend_from_slice(env);
    let process = FunctionProcess::spawn(&binary_path(function), &runtime, &all);
    assert!(
        runtime.wait_first_poll(TIMEOUT).is_some(),
        "function did not start:\n{}",
        process.log_tail(30)
    );
    (runtime, process)
}

fn ok() -> Invocation {
    Invocation::Response(json!({"batchItemFailures": []}))
}

#[test]
fn service_specific_endpoint_variables_are_honoured() {
    let fake = FakeAws::start(FakeAwsConfig::new());
    let url = fake.endpoint();
    let (runtime, _group) = start(
        "quarantine-group",
        &[("AWS_ENDPOINT_URL_IOT", url.as_str())],
    );
    assert_eq!(runtime.invoke(batch("dev-1"), TIMEOUT), ok());
    assert!(fake.group_members("Quarantine").contains("dev-1"));

    let (runtime, _shadow) = start(
        "quarantine-shadow",
        &[
            ("AWS_ENDPOINT_URL_IOT", url.as_str()),
            ("AWS_ENDPOINT_URL_IOT_DATA_PLANE", url.as_str()),
        ],
    );
    assert_eq!(runtime.invoke(batch("dev-2"), TIMEOUT), ok());
    assert_eq!(
        fake.shadow_desired("dev-2", None),
        Some(json!({"quarantine": true}))
    );
    assert_eq!(
        fake.count(op::DESCRIBE_ENDPOINT),
        0,
        "a configured data-plane endpoint needs no lookup"
    );
}

#[test]
fn iot_data_endpoint_is_used_without_a_lookup() {
    let control = FakeAws::start(FakeAwsConfig::new());
    let data = FakeAws::start(FakeAwsConfig::new());
    let (runtime, _shadow) = start(
        "quarantine-shadow",
        &[
            ("AWS_ENDPOINT_URL_IOT", control.endpoint().as_str()),
            ("IOT_DATA_ENDPOINT", data.endpoint().as_str()),
        ],
    );
    assert_eq!(runtime.invoke(batch("dev-3"), TIMEOUT), ok());
    assert_eq!(
        data.shadow_desired("dev-3", None),
        Some(json!({"quarantine": true}))
    );
    assert_eq!(control.count(op::DESCRIBE_ENDPOINT), 0);
    assert_eq!(
        control.count(op::UPDATE_THING_SHADOW),
        0,
        "the shadow went to IOT_DATA_ENDPOINT"
    );
}

#[test]
fn without_a_data_endpoint_describe_endpoint_runs_once_at_start_up() {
    let fake = FakeAws::start(FakeAwsConfig::new());
    let (runtime, process) = start(
        "quarantine-shadow",
        &[("AWS_ENDPOINT_URL_IOT", fake.endpoint().as_str())],
    );
    assert_eq!(
        fake.count(op::DESCRIBE_ENDPOINT),
        1,
        "resolved before the first event"
    );
    // The stand-in answers DescribeEndpoint with its own plain-HTTP address, which the function
    // calls over https as AWS requires: the call fails, and the record is reported, not lost.
    for _ in 0..2 {
        assert_eq!(
            runtime.invoke(batch("dev-4"), TIMEOUT),
            Invocation::Response(json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})),
            "{}",
            process.log_tail(10)
        );
    }
    assert_eq!(
        fake.count(op::DESCRIBE_ENDPOINT),
        1,
        "never looked up again per event"
    );
}
