#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Integration tests may unwrap and panic: a failed assertion is the point.

//! The real `stack-setup` binary end to end: started against the harness's local Lambda
//! Runtime API with the environment a deployed function has, talking to moto, answering a
//! local `ResponseURL` receiver.

mod common;

use serde_json::Value;
use test_harness::moto::Moto;
use test_harness::sdk::{ClientSettings, iot_client};
use test_harness::{Invocation, LocalFunction, local_aws_env};

use common::{Receiver, event, properties};

const POLICY_DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]}"#;

fn answered(invocation: Invocation) -> Value {
    match invocation {
        Invocation::Response(body) => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn the_binary_attaches_on_create_answers_the_response_url_and_detaches_on_delete() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start();
    let iot = iot_client(&moto.endpoint, ClientSettings::attempts(1));
    let group_arn = runtime.block_on(async {
        iot.create_policy()
            .policy_name("s-quarantine")
            .policy_document(POLICY_DOCUMENT)
            .send()
            .await
            .unwrap();
        iot.create_thing_group()
            .thing_group_name("Quarantine")
            .send()
            .await
            .unwrap()
            .thing_group_arn
            .unwrap()
    });
    let attached = || {
        runtime.block_on(async {
            iot.list_attached_policies()
                .target(&group_arn)
                .send()
                .await
                .unwrap()
                .policies
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.policy_name)
                .collect::<Vec<_>>()
        })
    };
    let receiver = runtime.block_on(Receiver::start(&[]));
    let function = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &local_aws_env(Some(&moto.endpoint)).set("RUST_LOG", "info"),
    );
    let props = properties("s-quarantine", "Quarantine", &group_arn, false);

    // Create: the policy is attached, CloudFormation gets SUCCESS.
    let url = receiver.url("create");
    let result =
        answered(function.invoke(&event("Create", "req-create", &url, None, props.clone())));
    assert_eq!(
        result["Status"],
        "SUCCESS",
        "{result}\n{}",
        function.process.log_tail(30)
    );
    assert_eq!(attached(), ["s-quarantine"]);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].content_type.as_deref(), Some(&b""[..]));
    let put = got[0].json();
    assert_eq!(put, result, "the invocation's result is the body sent");
    assert_eq!(put["PhysicalResourceId"], "s-quarantine|Quarantine");
    assert_eq!(put["RequestId"], "req-create");

    // A Create that cannot work: FAILED, naming the call and the function's log stream.
    let mut missing = props.clone();
    missing["PolicyName"] = "no-such-policy".into();
    let url = receiver.url("create-missing");
    let result = answered(function.invoke(&event("Create", "req-missing", &url, None, missing)));
    assert_eq!(result["Status"], "FAILED");
    let reason = result["Reason"].as_str().unwrap();
    assert!(reason.contains("AttachPolicy"), "{reason}");
    assert!(reason.contains("ResourceNotFoundException"), "{reason}");
    assert!(reason.contains("[$LATEST]"), "the log stream: {reason}");
    assert_eq!(receiver.received().len(), 2);

    // Delete: detached, SUCCESS.
    let url = receiver.url("delete");
    let result = answered(function.invoke(&event(
        "Delete",
        "req-delete",
        &url,
        Some("s-quarantine|Quarantine"),
        props,
    )));
    assert_eq!(result["Status"], "SUCCESS", "{result}");
    assert!(attached().is_empty());
    assert_eq!(receiver.received().len(), 3);

    // The function logs JSON (the Lambda log format of the template).
    assert!(
        function
            .process
            .json_log_lines()
            .iter()
            .any(|l| l.to_string().contains("answering CloudFormation")),
        "{}",
        function.process.log_tail(30)
    );
}

#[test]
fn an_event_without_response_url_is_an_invocation_error() {
    let function = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &local_aws_env(Some("http://127.0.0.1:9")),
    );
    match function.invoke(&serde_json::json!({"RequestType": "Create"})) {
        Invocation::Error { error_message, .. } => {
            assert!(error_message.contains("ResponseURL"), "{error_message}");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[test]
fn a_bad_configuration_is_answered_failed_not_left_waiting() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(Receiver::start(&[]));
    let function = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &local_aws_env(Some("http://127.0.0.1:9")).set("AWS_RETRY_MODE", "sometimes"),
    );
    let props = properties(
        "s-quarantine",
        "Quarantine",
        "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine",
        false,
    );
    let url = receiver.url("bad-config");
    let result = answered(function.invoke(&event("Create", "req-bad", &url, None, props)));
    assert_eq!(result["Status"], "FAILED");
    let reason = result["Reason"].as_str().unwrap();
    assert!(reason.contains("AWS_RETRY_MODE"), "{reason}");
    assert_eq!(receiver.received().len(), 1);
}
