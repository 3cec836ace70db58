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

use common::{Receiver, STACK_ID, StackApi, TestPki, event, function_env, properties};

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
    let stack = runtime.block_on(StackApi::start(STACK_ID, "CREATE_COMPLETE"));
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
        &function_env(
            &moto.endpoint,
            STACK_ID,
            "s-quarantine",
            &group_arn,
            "http://127.0.0.1:",
        )
        .set("AWS_ENDPOINT_URL_CLOUDFORMATION", stack.endpoint())
        .set("RUST_LOG", "info"),
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

    // A Create naming another policy: FAILED, naming the variable and the log stream.
    let mut other = props.clone();
    other["PolicyName"] = "no-such-policy".into();
    let url = receiver.url("create-other");
    let result = answered(function.invoke(&event("Create", "req-other", &url, None, other)));
    assert_eq!(result["Status"], "FAILED");
    let reason = result["Reason"].as_str().unwrap();
    assert!(reason.contains("QUARANTINE_POLICY"), "{reason}");
    assert!(reason.contains("[$LATEST]"), "the log stream: {reason}");
    assert_eq!(receiver.received().len(), 2);

    // A Delete while the stack stands (CREATE_COMPLETE): FAILED, still attached.
    let url = receiver.url("delete-early");
    let result = answered(function.invoke(&event(
        "Delete",
        "req-early",
        &url,
        Some("s-quarantine|Quarantine"),
        props.clone(),
    )));
    assert_eq!(result["Status"], "FAILED", "{result}");
    let reason = result["Reason"].as_str().unwrap();
    assert!(reason.contains("CREATE_COMPLETE"), "{reason}");
    assert_eq!(attached(), ["s-quarantine"]);

    // Delete while CloudFormation deletes the stack: detached, SUCCESS.
    stack.set_status("DELETE_IN_PROGRESS");
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
    assert_eq!(receiver.received().len(), 4);

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
        &function_env(
            "http://127.0.0.1:9",
            STACK_ID,
            "s-quarantine",
            "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine",
            "http://127.0.0.1:",
        )
        .set("AWS_RETRY_MODE", "sometimes"),
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
    // The rollback Delete of a resource that was never created: nothing to detach, the
    // answer is SUCCESS. No IoT needed.
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

    let env = || {
        function_env(
            "http://127.0.0.1:9",
            STACK_ID,
            "s-quarantine",
            "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine",
            "https://127.0.0.1:",
        )
    };
    // The test CA among the trusted roots (SSL_CERT_FILE, as the system's roots are read).
    let trusting = LocalFunction::start(
        env!("CARGO_BIN_EXE_stack-setup"),
        &env().set("SSL_CERT_FILE", pki.ca_file.to_string_lossy()),
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
    let distrusting = LocalFunction::start(env!("CARGO_BIN_EXE_stack-setup"), &env());
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

/// moto with the policy attached to the group, and the binary configured for them.
struct Attached {
    runtime: tokio::runtime::Runtime,
    _moto: Moto,
    iot: aws_sdk_iot::Client,
    group_arn: String,
    stack: StackApi,
    function: LocalFunction,
}

impl Attached {
    fn start() -> Attached {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let moto = Moto::start();
        let iot = iot_client(&moto.endpoint, ClientSettings::attempts(1));
        let stack = runtime.block_on(StackApi::start(STACK_ID, "CREATE_COMPLETE"));
        let group_arn = runtime.block_on(async {
            iot.create_policy()
                .policy_name("s-quarantine")
                .policy_document(POLICY_DOCUMENT)
                .send()
                .await
                .unwrap();
            let arn = iot
                .create_thing_group()
                .thing_group_name("Quarantine")
                .send()
                .await
                .unwrap()
                .thing_group_arn
                .unwrap();
            iot.attach_policy()
                .policy_name("s-quarantine")
                .target(&arn)
                .send()
                .await
                .unwrap();
            arn
        });
        let function = LocalFunction::start(
            env!("CARGO_BIN_EXE_stack-setup"),
            &function_env(
                &moto.endpoint,
                STACK_ID,
                "s-quarantine",
                &group_arn,
                "http://127.0.0.1:",
            )
            .set("AWS_ENDPOINT_URL_CLOUDFORMATION", stack.endpoint()),
        );
        Attached {
            runtime,
            _moto: moto,
            iot,
            group_arn,
            stack,
            function,
        }
    }

    fn attached(&self) -> Vec<String> {
        self.runtime.block_on(async {
            self.iot
                .list_attached_policies()
                .target(&self.group_arn)
                .send()
                .await
                .unwrap()
                .policies
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.policy_name)
                .collect()
        })
    }
}

#[test]
fn a_forged_delete_changes_nothing() {
    let a = Attached::start();
    let receiver = a.runtime.block_on(Receiver::start(&[]));
    let props = properties("s-quarantine", "Quarantine", &a.group_arn, false);
    let delete = |url: &str, props: serde_json::Value| {
        event(
            "Delete",
            "req-forged",
            url,
            Some("s-quarantine|Quarantine"),
            props,
        )
    };

    // Another stack's request: no call, no answer, an invocation error.
    let mut other_stack = delete(&receiver.url("other-stack"), props.clone());
    other_stack["StackId"] = "arn:aws:cloudformation:us-east-1:123456789012:stack/evil/1".into();
    match a.function.invoke(&other_stack) {
        Invocation::Error { error_message, .. } => {
            assert!(error_message.contains("stack"), "{error_message}");
        }
        other => panic!("expected the request to be refused, got {other:?}"),
    }

    // This stack's id, but an answer URL that is not CloudFormation's (http, then https).
    for url in [
        "http://192.0.2.1/cloudformation-custom-resource-response/x?X-Amz-Signature=s",
        "https://attacker.example/cloudformation-custom-resource-response-useast1/x",
    ] {
        match a.function.invoke(&delete(url, props.clone())) {
            Invocation::Error { error_message, .. } => {
                assert!(error_message.contains("ResponseURL"), "{error_message}");
                assert!(!error_message.contains("Signature=s"), "{error_message}");
            }
            other => panic!("expected the request to be refused, got {other:?}"),
        }
    }

    // Everything right (this stack, the resource's id, its properties, an accepted URL),
    // but the stack stands: FAILED, nothing detached.
    let result = answered(
        a.function
            .invoke(&delete(&receiver.url("perfect"), props.clone())),
    );
    assert_eq!(result["Status"], "FAILED", "{result}");
    assert!(
        result["Reason"]
            .as_str()
            .unwrap()
            .contains("CREATE_COMPLETE"),
        "{result}"
    );

    // This stack, an accepted URL, but properties naming another pair: FAILED, nothing done.
    let mut other_group = props.clone();
    other_group["ThingGroupArn"] = "arn:aws:iot:us-east-1:123456789012:thinggroup/Other".into();
    let result = answered(
        a.function
            .invoke(&delete(&receiver.url("other-group"), other_group)),
    );
    assert_eq!(result["Status"], "FAILED", "{result}");

    // A Delete of any other id: nothing of this function's to detach.
    let mut other_id = delete(&receiver.url("other-id"), props);
    other_id["PhysicalResourceId"] = "s-quarantine|Other".into();
    assert_eq!(answered(a.function.invoke(&other_id))["Status"], "SUCCESS");

    assert_eq!(
        a.attached(),
        ["s-quarantine"],
        "{}",
        a.function.process.log_tail(30)
    );
    // Only the Delete that got past every other check asked CloudFormation.
    assert_eq!(a.stack.calls(), 1);
    // Only the three requests it may answer were answered.
    assert_eq!(receiver.received().len(), 3);
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.json()["StackId"] == STACK_ID)
    );
}

#[test]
fn the_scheduled_check_writes_policy_attached_1_then_0_once_detached() {
    let a = Attached::start();
    let check = serde_json::json!({"check": "quarantine-policy-attached"});
    let figures = || -> Vec<i64> {
        a.function
            .process
            .json_log_lines()
            .iter()
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "PolicyAttached")
            .map(|l| {
                assert_eq!(l["QuarantinePolicy"], "s-quarantine");
                l["PolicyAttached"].as_i64().unwrap()
            })
            .collect()
    };

    let found = answered(a.function.invoke(&check));
    assert_eq!(found["policyAttached"], true, "{found}");
    assert_eq!(figures(), [1]);

    a.runtime.block_on(async {
        a.iot
            .detach_policy()
            .policy_name("s-quarantine")
            .target(&a.group_arn)
            .send()
            .await
            .unwrap()
    });
    let found = answered(a.function.invoke(&check));
    assert_eq!(found["policyAttached"], false, "{found}");
    assert_eq!(figures(), [1, 0], "{}", a.function.process.log_tail(20));
}
