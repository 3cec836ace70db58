//! (b) The compiled function binaries, driven through a local Lambda Runtime API, against
//! the moto emulator: success for a valid SNS event, an error for a malformed one, and
//! exactly the bad record in batchItemFailures for a mixed SQS batch.

use std::time::Duration;

use integration_tests::moto::{self, Moto};
use integration_tests::runtime_api::{FunctionProcess, Invocation, RuntimeApi, binary_path};
use integration_tests::workspace_root;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

fn event(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("sample event")).expect("JSON")
}

fn start(function: &str, moto: &Moto, extra: &[(&str, &str)]) -> (RuntimeApi, FunctionProcess) {
    let runtime = RuntimeApi::start();
    let mut env = vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", moto::REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ];
    env.extend_from_slice(extra);
    let process = FunctionProcess::spawn(&binary_path(function), &runtime, &env);
    (runtime, process)
}

fn invoke(runtime: &RuntimeApi, process: &FunctionProcess, event: Value) -> Invocation {
    let result = runtime.invoke(event, TIMEOUT);
    if result == Invocation::TimedOut {
        panic!("function did not answer; log:\n{}", process.log_tail(40));
    }
    result
}

fn setup(
    moto: &Moto,
    things: &[&str],
) -> (
    tokio::runtime::Runtime,
    aws_sdk_iot::Client,
    aws_sdk_iotdataplane::Client,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (iot, data) = rt.block_on(async {
        let iot = moto::iot_client(&moto.endpoint).await;
        moto::create_thing_group(&iot, "Quarantine").await;
        for thing in things {
            moto::create_thing(&iot, thing).await;
        }
        (iot, moto::data_client(&moto.endpoint).await)
    });
    (rt, iot, data)
}

#[test]
fn quarantine_group_function_on_sns_and_sqs() {
    let moto = Moto::start();
    let (rt, iot, _) = setup(&moto, &["dev-IZWB", "pump-01", "pump-03"]);
    let (runtime, process) = start(
        "quarantine-group",
        &moto,
        &[("QUARANTINE_GROUP", "Quarantine")],
    );

    let ok = invoke(
        &runtime,
        &process,
        event("sns-num-messages-sent-in-alarm.json"),
    );
    assert_eq!(
        ok,
        Invocation::Response(json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0}))
    );

    match invoke(
        &runtime,
        &process,
        event("sns-malformed-missing-thing-name.json"),
    ) {
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

    let batch = invoke(&runtime, &process, event("sqs-mixed-batch.json"));
    assert_eq!(
        batch,
        Invocation::Response(
            json!({"batchItemFailures": [{"itemIdentifier": "3e9f8daf-4253-4b6e-bdcf-304152637e02"}]})
        )
    );

    rt.block_on(async {
        for thing in ["dev-IZWB", "pump-01", "pump-03"] {
            assert_eq!(
                moto::groups_for_thing(&iot, thing).await,
                vec!["Quarantine".to_string()],
                "{thing}"
            );
        }
    });

    // One JSON log line per record, naming the thing, the violation and the outcome.
    let log = std::fs::read_to_string(&process.log_path).expect("function log");
    let record_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["record_id"].is_string())
        .collect();
    assert_eq!(record_lines.len(), 5, "{log}");
    let izwb = record_lines
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
fn quarantine_shadow_function_on_sns_and_sqs() {
    let moto = Moto::start();
    let (rt, iot, data) = setup(
        &moto,
        &[
            "dev-IZWB", "pump-01", "pump-03", "sensor-a", "sensor-b", "sensor-c",
        ],
    );
    let (runtime, process) = start("quarantine-shadow", &moto, &[]);

    assert!(matches!(
        invoke(
            &runtime,
            &process,
            event("sns-num-messages-sent-in-alarm.json")
        ),
        Invocation::Response(_)
    ));
    assert!(matches!(
        invoke(&runtime, &process, event("sns-malformed-message-not-json.json")),
        Invocation::Error { error_type, .. } if error_type == "Permanent.MessageNotJson"
    ));
    assert_eq!(
        invoke(&runtime, &process, event("sqs-mixed-batch.json")),
        Invocation::Response(
            json!({"batchItemFailures": [{"itemIdentifier": "3e9f8daf-4253-4b6e-bdcf-304152637e02"}]})
        )
    );
    assert_eq!(
        invoke(&runtime, &process, event("sqs-sns-envelope-batch.json")),
        Invocation::Response(json!({"batchItemFailures": []}))
    );
    rt.block_on(async {
        for thing in ["dev-IZWB", "pump-01", "pump-03", "sensor-a", "sensor-b"] {
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
            "cleared alarm is ignored"
        );
    });
}

#[test]
fn bad_configuration_stops_the_function_naming_the_variable() {
    let moto = Moto::start();
    let (_runtime, mut process) = start("quarantine-group", &moto, &[("MAX_CONCURRENCY", "lots")]);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = process.try_exit_status() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "function kept running with a bad variable"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let log = process.log_tail(20);
    assert!(log.contains("MAX_CONCURRENCY"), "{log}");
}
