#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Integration tests may unwrap and panic: a failed assertion is the point.

//! The real `stack-setup` binary end to end: started against the harness's local Lambda
//! Runtime API with the environment a deployed function has, talking to moto, answering a
//! local `ResponseURL` receiver.

use crate::common;

use serde_json::Value;
use test_harness::moto::Moto;
use test_harness::sdk::{ClientSettings, iot_client};
use test_harness::{Invocation, LocalFunction, local_aws_env};

use common::{Receiver, TestPki, event, properties};

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

#[test]
fn the_answer_goes_over_https_to_a_server_the_system_roots_vouch_for_and_no_other() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stack-setup-pki-{}", std::process::id()));
    let pki = TestPki::create(&dir);
    let receiver = runtime.block_on(Receiver::start_tls(&[], pki.server.clone()));
    // The rollback Delete of a resource that was never created: its best-effort detach
    // fails against a closed port, and the answer is SUCCESS anyway. No IoT needed.
    let props = properties(
        "s-quarantine",
        "Quarantine",
        "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine",
        false,
    );
    let rollback = |url: &str| {
        event(
            "Delete",
            "req-tls",
            url,
            Some("create-failed:req-0"),
            props.clone(),
        )
    };

    // The test CA among the trusted roots (SSL_CERT_FILE, as the system's roots are read).
    let trusting = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &local_aws_env(Some("http://127.0.0.1:9"))
            .set("SSL_CERT_FILE", pki.ca_file.to_string_lossy()),
    );
    let url = receiver.url("tls");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let result = answered(trusting.invoke(&rollback(&url)));
    assert_eq!(result["Status"], "SUCCESS", "{result}");
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{}", trusting.process.log_tail(20));
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].content_type.as_deref(), Some(&b""[..]));
    assert_eq!(got[0].json(), result);

    // Without it, the server's certificate is refused and nothing is delivered.
    let distrusting = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &local_aws_env(Some("http://127.0.0.1:9")),
    );
    match distrusting.invoke(&rollback(&url)) {
        Invocation::Error { error_message, .. } => {
            assert!(error_message.contains("certificate"), "{error_message}");
            assert!(!error_message.contains("Signature"), "{error_message}");
        }
        other => panic!("expected the answer to fail, got {other:?}"),
    }
    assert_eq!(receiver.received().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
