//! Fault tests at small scale: the real `quarantine-group` and `quarantine-shadow` binaries,
//! through a local Lambda Runtime API, against a local AWS stand-in that throttles, fails,
//! hangs or has lost the thing. Every record ends done or reported; nothing is lost.

use std::time::Duration;

use integration_tests::fake_aws::{FakeAws, FakeAwsConfig, Fault, op};
use integration_tests::runtime_api::{FunctionProcess, Invocation, RuntimeApi, binary_path};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

fn sqs_batch(things: &[&str]) -> Value {
    let records: Vec<Value> = things
        .iter()
        .map(|thing| {
            let body = json!({"thingName": thing, "violationEventType": "in-alarm", "violationId": format!("v-{thing}"),
                              "securityProfileName": "P", "behavior": {"name": "B", "metric": "aws:num-messages-sent"}});
            json!({"messageId": format!("m-{thing}"), "receiptHandle": "rh", "body": body.to_string(),
                   "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

fn failures(things: &[&str]) -> Invocation {
    let items: Vec<Value> = things
        .iter()
        .map(|t| json!({"itemIdentifier": format!("m-{t}")}))
        .collect();
    Invocation::Response(json!({ "batchItemFailures": items }))
}

fn start(function: &str, fake: &FakeAws) -> (RuntimeApi, FunctionProcess) {
    let runtime = RuntimeApi::start();
    let endpoint = fake.endpoint();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "3"),
        ("AWS_ATTEMPT_TIMEOUT_MS", "500"),
        ("AWS_OPERATION_TIMEOUT_MS", "15000"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ];
    let process = FunctionProcess::spawn(&binary_path(function), &runtime, &env);
    (runtime, process)
}

fn invoke(runtime: &RuntimeApi, process: &FunctionProcess, event: Value) -> Invocation {
    let result = runtime.invoke(event, TIMEOUT);
    assert_ne!(
        result,
        Invocation::TimedOut,
        "function did not answer:\n{}",
        process.log_tail(40)
    );
    result
}

fn calls_for(fake: &FakeAws, operation: &str, thing: &str) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c.op == operation && c.thing.as_deref() == Some(thing))
        .count()
}

#[test]
fn throttling_then_success_ends_in_success() {
    let fake =
        FakeAws::start(FakeAwsConfig::new().fault_for_thing("busy", Fault::ThrottleTimes(2)));
    let (runtime, process) = start("quarantine-group", &fake);
    assert_eq!(
        invoke(&runtime, &process, sqs_batch(&["busy"])),
        failures(&[])
    );
    assert_eq!(
        calls_for(&fake, op::ADD_THING_TO_THING_GROUP, "busy"),
        3,
        "two throttled attempts, then success"
    );
    assert!(fake.group_members("Quarantine").contains("busy"));
}

#[test]
fn data_plane_throttling_then_success_ends_in_success() {
    let fake =
        FakeAws::start(FakeAwsConfig::new().fault_for_thing("busy", Fault::ThrottleTimes(1)));
    let (runtime, process) = start("quarantine-shadow", &fake);
    assert_eq!(
        invoke(&runtime, &process, sqs_batch(&["busy"])),
        failures(&[])
    );
    assert_eq!(
        fake.shadow_desired("busy", None),
        Some(json!({"quarantine": true}))
    );
}

#[test]
fn persistent_5xx_reports_the_record_failed() {
    let fake = FakeAws::start(FakeAwsConfig::new().fault_for_thing("broken", Fault::Always5xx));
    let (runtime, process) = start("quarantine-group", &fake);
    assert_eq!(
        invoke(&runtime, &process, sqs_batch(&["broken"])),
        failures(&["broken"])
    );
    assert_eq!(
        calls_for(&fake, op::ADD_THING_TO_THING_GROUP, "broken"),
        3,
        "retried up to AWS_MAX_ATTEMPTS"
    );
    // On SNS the invocation fails, saying a retry can help.
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
        "Sns": {"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                "Subject": null, "Message": json!({"thingName": "broken", "violationEventType": "in-alarm"}).to_string(),
                "Timestamp": "2019-11-15T03:00:36.527Z", "SignatureVersion": "1", "Signature": "c2ln",
                "SigningCertUrl": "https://example.invalid/c.pem", "UnsubscribeUrl": "https://example.invalid/u",
                "MessageAttributes": {}}}]});
    match invoke(&runtime, &process, sns) {
        Invocation::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Retryable.InternalFailureException");
            assert!(
                error_message.contains("record sns-1") && error_message.contains("thing broken"),
                "{error_message}"
            );
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[test]
fn a_timeout_is_retried() {
    let fake = FakeAws::start(
        FakeAwsConfig::new().fault_for_thing("slow", Fault::HangFirst(1, Duration::from_secs(3))),
    );
    let (runtime, process) = start("quarantine-group", &fake);
    assert_eq!(
        invoke(&runtime, &process, sqs_batch(&["slow"])),
        failures(&[])
    );
    assert_eq!(
        calls_for(&fake, op::ADD_THING_TO_THING_GROUP, "slow"),
        2,
        "one timed-out attempt, one retry"
    );
}

#[test]
fn a_deleted_thing_is_a_permanent_failure_with_a_clear_message() {
    let fake = FakeAws::start(FakeAwsConfig::new().fault_for_thing("gone", Fault::NotFound));
    let (runtime, process) = start("quarantine-group", &fake);
    assert_eq!(
        invoke(&runtime, &process, sqs_batch(&["gone"])),
        failures(&["gone"])
    );
    assert_eq!(
        calls_for(&fake, op::ADD_THING_TO_THING_GROUP, "gone"),
        1,
        "a permanent error is not retried"
    );
    let log = std::fs::read_to_string(&process.log_path).expect("log");
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["thing"] == "gone")
        .unwrap_or_else(|| panic!("no record log line for the thing:\n{log}"));
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
    let fake = FakeAws::start(
        FakeAwsConfig::new()
            .fault_for_thing("busy", Fault::ThrottleTimes(1))
            .fault_for_thing("broken", Fault::Always5xx)
            .fault_for_thing("slow", Fault::HangFirst(1, Duration::from_secs(3)))
            .fault_for_thing("gone", Fault::NotFound),
    );
    let (runtime, process) = start("quarantine-group", &fake);
    let mut event = sqs_batch(&["ok-1", "busy", "broken", "slow", "gone", "ok-2"]);
    if let Some(records) = event["Records"].as_array_mut() {
        records.push(json!({"messageId": "m-malformed", "body": "{\"thingName\": ", "eventSource": "aws:sqs"}));
    }
    assert_eq!(
        invoke(&runtime, &process, event),
        Invocation::Response(json!({"batchItemFailures": [
            {"itemIdentifier": "m-broken"}, {"itemIdentifier": "m-gone"}, {"itemIdentifier": "m-malformed"}
        ]}))
    );
    let members = fake.group_members("Quarantine");
    for thing in ["ok-1", "busy", "slow", "ok-2"] {
        assert!(members.contains(thing), "{thing} quarantined: {members:?}");
    }
}
