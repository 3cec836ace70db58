//! The containment chain against moto, end to end, as an operator meets it:
//! 1. the stack's custom resource (stack-setup's handler) attaches the quarantine policy to
//!    the group;
//! 2. a Device Defender in-alarm goes through the functions' own handler (group and shadow,
//!    built on the real SDK clients as the Lambda binaries build it);
//! 3. `quarantinectl status --json` reports the thing quarantined, and the policy is on its
//!    group;
//! 4. `quarantinectl release` returns it to normal.
//!
//! moto has no DeleteConnection: DISCONNECT is off (the stand-in tests cover it).

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use mitigation::{FunctionConfig, FunctionKind, LambdaAnswer};
use serde_json::{Value, json};
use stack_setup::respond::RespondError;
use stack_setup::{AwsIotSetup, Handler as SetupHandler, Invocation, Responder};
use test_harness::local_aws_env;
use test_harness::moto::{self, Moto};
use test_harness::scenarios::GROUP;
use violation_core::fixtures;

const POLICY: &str = "dd-quarantine-quarantine";
const THING: &str = "pump-9";

/// Keeps the body the handler would PUT to CloudFormation's ResponseURL.
#[derive(Default)]
struct Recorded(Mutex<Vec<Value>>);

impl Responder for Recorded {
    fn put<'a>(
        &'a self,
        _url: &'a str,
        body: Vec<u8>,
        _until: Instant,
    ) -> BoxFuture<'a, Result<u32, RespondError>> {
        Box::pin(async move {
            let value = serde_json::from_slice(&body).expect("the response is JSON");
            self.0.lock().unwrap().push(value);
            Ok(1)
        })
    }
}

fn quarantinectl(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarantinectl"))
        .env_remove("QUARANTINE_GROUP")
        .env_remove("SHADOW_NAME")
        .env_remove("AWS_PROFILE")
        .envs(local_aws_env(None).vars())
        .env("USER", "oncall")
        .arg("--endpoint-url")
        .arg(&moto.endpoint)
        .args(args)
        .output()
        .expect("quarantinectl runs")
}

fn status(moto: &Moto) -> Value {
    let out = quarantinectl(moto, &["status", "--json", THING]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

async fn attached_policies(iot: &aws_sdk_iot::Client, target: &str) -> Vec<String> {
    let out = iot
        .list_attached_policies()
        .target(target)
        .send()
        .await
        .expect("ListAttachedPolicies");
    out.policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn custom_resource_attaches_the_policy_the_functions_quarantine_quarantinectl_reads_and_releases()
 {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    let data = moto::data_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    moto::create_thing(&iot, THING).await;
    let group_arn = iot
        .describe_thing_group()
        .thing_group_name(GROUP)
        .send()
        .await
        .expect("DescribeThingGroup")
        .thing_group_arn()
        .expect("group ARN")
        .to_owned();
    iot.create_policy()
        .policy_name(POLICY)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","NotResource":"arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"}]}"#)
        .send()
        .await
        .expect("CreatePolicy");

    // 1. The custom resource's Create.
    let recorded = Arc::new(Recorded::default());
    let target = stack_setup::Target {
        policy_name: POLICY.into(),
        group: mitigation::ThingGroupArn {
            arn: group_arn.clone(),
            name: GROUP.into(),
        },
    };
    let trust = stack_setup::Trust {
        stack_id: Some(STACK_ID.into()),
        test_response_url_prefix: Some("http://127.0.0.1:".into()),
    };
    const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/dd-quarantine/1";
    let setup = SetupHandler::new(
        Arc::new(AwsIotSetup::new(iot.clone())),
        Arc::new(StackCreated),
        target,
        trust,
        recorded.clone(),
    );
    let create = json!({
        "RequestType": "Create", "ResponseURL": "http://127.0.0.1:9/unused",
        "StackId": STACK_ID,
        "RequestId": "req-1", "LogicalResourceId": "QuarantineSetup",
        "ResourceType": "Custom::QuarantineSetup",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:setup",
            "PolicyName": POLICY, "ThingGroupName": GROUP, "ThingGroupArn": group_arn,
            "EnableFleetIndexing": "false"}
    });
    let invocation = Invocation {
        lambda_request_id: "lambda-1".into(),
        log_group: "/aws/lambda/setup".into(),
        log_stream: "stream".into(),
        deadline: Some(std::time::SystemTime::now() + Duration::from_secs(120)),
    };
    let body = setup.handle(create, &invocation).await.expect("answered");
    let body = serde_json::to_value(body).unwrap();
    assert_eq!(body["Status"], "SUCCESS", "{body:#}");
    assert_eq!(attached_policies(&iot, &group_arn).await, [POLICY]);

    // 2. An in-alarm through the functions' handler (group and shadow), on the real clients.
    let config = FunctionConfig::from_lookup(|name| match name {
        "DISCONNECT" => Some("false".into()),
        _ => None,
    })
    .expect("config");
    let sdk = test_harness::sdk::sdk_config(&moto.endpoint);
    let handler = mitigation_aws::startup::build_handler_on(
        &[FunctionKind::ThingGroup, FunctionKind::Shadow],
        &config,
        &sdk,
    )
    .await
    .expect("handler");
    let alarm = fixtures::violation(THING, "in-alarm", "v-e2e").to_string();
    let answer = handler
        .handle_lambda(fixtures::sns_event(&[("m-e2e", &alarm)]))
        .await
        .expect("the in-alarm succeeds");
    assert!(
        matches!(answer, LambdaAnswer::Summary(s) if s.quarantined == 1),
        "{answer:?}"
    );

    // 3. What the operator sees.
    let quarantined = status(&moto);
    assert_eq!(quarantined["thingName"], THING);
    assert_eq!(quarantined["inQuarantineGroup"], true, "{quarantined:#}");
    assert_eq!(quarantined["shadowQuarantine"], true, "{quarantined:#}");
    assert_eq!(moto::groups_for_thing(&iot, THING).await, [GROUP]);

    // 4. Release by hand.
    let out = quarantinectl(
        &moto,
        &[
            "release",
            THING,
            "--reason",
            "INC-7 closed",
            "--no-disconnect",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = status(&moto);
    assert_eq!(released["inQuarantineGroup"], false, "{released:#}");
    assert_eq!(released["shadowQuarantine"], false, "{released:#}");
    let desired = moto::desired_shadow(&data, THING, None)
        .await
        .expect("a shadow");
    assert_eq!(desired["quarantine"], false);
    // The policy stays on the group for the next quarantine.
    assert_eq!(attached_policies(&iot, &group_arn).await, [POLICY]);
}

/// CloudFormation's word on the stack: it stands (the test sends no Delete).
struct StackCreated;

impl stack_setup::StackStatus for StackCreated {
    fn stack_status<'a>(
        &'a self,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, mitigation::ActionError>> {
        Box::pin(async { Ok(Some("CREATE_COMPLETE".to_owned())) })
    }
}
