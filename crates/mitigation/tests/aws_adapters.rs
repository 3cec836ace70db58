//! The AWS adapters through the real SDK clients with mocked responses (aws-smithy-mocks):
//! error classification by AWS code, the SDK's retries, the exact requests sent, and the
//! release-on-clear path (ListActiveViolations), which the moto emulator lacks.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_iot::operation::add_thing_to_thing_group::AddThingToThingGroupOutput;
use aws_sdk_iot::operation::list_active_violations::ListActiveViolationsOutput;
use aws_sdk_iot::operation::remove_thing_from_thing_group::RemoveThingFromThingGroupOutput;
use aws_sdk_iot::types::ActiveViolation;
use aws_sdk_iotdataplane::operation::update_thing_shadow::UpdateThingShadowOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use mitigation::aws::{DeviceDefenderViolations, ShadowFlag, ThingGroupMembership};
use mitigation::{Handler, MitigationAction, RecordOutcome, Retry};
use serde_json::json;
use violation_core::{Action, DecisionPolicy, ThingName};

/// An AWS restJson error: the code travels in a header, the status is only a hint.
fn aws_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(json!({ "message": message }).to_string()),
    );
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", code.to_owned());
    response
        .headers_mut()
        .insert("Content-Type", "application/json");
    response
}

fn thing(name: &str) -> ThingName {
    ThingName::parse(name).expect("valid thing name")
}

fn retries(attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_succeeds() {
    let rule = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .sequence()
        .http_response(|| aws_error(400, "ThrottlingException", "Rate exceeded"))
        .times(2)
        .output(|| AddThingToThingGroupOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_iot, RuleMode::Sequential, [&rule], |c| c
        .retry_config(retries(3)));
    let group = ThingGroupMembership::new(client, "Quarantine");
    assert_eq!(
        group.apply(Action::Quarantine, &thing("dev-1")).await,
        Ok(())
    );
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn throttling_with_status_400_is_classified_retryable_by_its_code() {
    let rule = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .then_http_response(|| aws_error(400, "ThrottlingException", "Rate exceeded"));
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(retries(1)));
    let err = ThingGroupMembership::new(client, "Quarantine")
        .apply(Action::Quarantine, &thing("dev-1"))
        .await
        .expect_err("throttled");
    assert_eq!(err.retry, Retry::Retryable);
    assert_eq!(err.code, "ThrottlingException");
    assert_eq!(err.operation, "AddThingToThingGroup");
    assert_eq!(err.thing, "dev-1");
}

#[tokio::test]
async fn missing_thing_or_group_is_permanent_and_says_what_to_check() {
    let rule = mock!(aws_sdk_iot::Client::add_thing_to_thing_group).then_http_response(|| {
        aws_error(
            404,
            "ResourceNotFoundException",
            "Thing dev-9 cannot be found.",
        )
    });
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(retries(3)));
    let err = ThingGroupMembership::new(client, "Quarantine")
        .apply(Action::Quarantine, &thing("dev-9"))
        .await
        .expect_err("not found");
    assert_eq!(err.retry, Retry::Permanent);
    assert_eq!(rule.num_calls(), 1, "a permanent error is not retried");
    let text = err.to_string();
    assert!(text.contains("thing dev-9"), "{text}");
    assert!(text.contains("Thing dev-9 cannot be found."), "{text}");
    assert!(
        text.contains("describe-thing-group --thing-group-name Quarantine"),
        "{text}"
    );
}

#[tokio::test]
async fn group_limit_and_server_errors_are_classified() {
    let limit = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .match_requests(|r| r.thing_name() == Some("crowded"))
        .then_http_response(|| {
            aws_error(
                400,
                "InvalidRequestException",
                "Thing crowded cannot be added to more than 10 thing groups",
            )
        });
    let unavailable = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .match_requests(|r| r.thing_name() == Some("unlucky"))
        .then_http_response(|| aws_error(503, "ServiceUnavailableException", "try later"));
    let bare_500 = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .match_requests(|r| r.thing_name() == Some("bare"))
        .then_http_response(|| {
            HttpResponse::new(
                StatusCode::try_from(500).expect("status"),
                SdkBody::from(""),
            )
        });
    let client = mock_client!(
        aws_sdk_iot,
        RuleMode::MatchAny,
        [&limit, &unavailable, &bare_500],
        |c| c.retry_config(retries(1))
    );
    let group = ThingGroupMembership::new(client, "Quarantine");
    let crowded = group
        .apply(Action::Quarantine, &thing("crowded"))
        .await
        .expect_err("limit");
    assert_eq!(
        (crowded.retry, crowded.code.as_str()),
        (Retry::Permanent, "InvalidRequestException")
    );
    let text = crowded.to_string();
    assert!(
        text.contains("already in 10 thing groups: remove it from one"),
        "{text}"
    );
    let unlucky = group
        .apply(Action::Quarantine, &thing("unlucky"))
        .await
        .expect_err("503");
    assert_eq!(
        (unlucky.retry, unlucky.code.as_str()),
        (Retry::Retryable, "ServiceUnavailableException")
    );
    let bare = group
        .apply(Action::Quarantine, &thing("bare"))
        .await
        .expect_err("500");
    assert_eq!(bare.retry, Retry::Retryable);
}

#[tokio::test]
async fn shadow_flag_sends_exactly_the_desired_document() {
    let quarantine = mock!(aws_sdk_iotdataplane::Client::update_thing_shadow)
        .match_requests(|r| {
            r.thing_name() == Some("dev-1")
                && r.shadow_name() == Some("security")
                && r.payload().map(|p| p.as_ref())
                    == Some(br#"{"state":{"desired":{"quarantine":true}}}"#.as_slice())
        })
        .then_output(|| UpdateThingShadowOutput::builder().build());
    let release = mock!(aws_sdk_iotdataplane::Client::update_thing_shadow)
        .match_requests(|r| {
            r.payload().map(|p| p.as_ref())
                == Some(br#"{"state":{"desired":{"quarantine":false}}}"#.as_slice())
        })
        .then_output(|| UpdateThingShadowOutput::builder().build());
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        [&quarantine, &release]
    );
    let shadow = ShadowFlag::new(client, Some("security".into()));
    assert_eq!(
        shadow.apply(Action::Quarantine, &thing("dev-1")).await,
        Ok(())
    );
    assert_eq!(shadow.apply(Action::Release, &thing("dev-1")).await, Ok(()));
    assert_eq!((quarantine.num_calls(), release.num_calls()), (1, 1));
}

fn cleared(thing: &str, id: &str) -> serde_json::Value {
    let message =
        json!({"thingName": thing, "violationEventType": "alarm-cleared", "violationId": id,
                         "behavior": {"name": "B", "metric": "aws:num-messages-sent"}})
        .to_string();
    json!({"Records": [{"messageId": format!("m-{thing}"), "body": message, "eventSource": "aws:sqs"}]})
}

fn violation(id: &str) -> ActiveViolation {
    ActiveViolation::builder()
        .violation_id(id)
        .thing_name("x")
        .build()
}

#[tokio::test]
async fn release_on_clear_checks_active_violations_first() {
    let busy = mock!(aws_sdk_iot::Client::list_active_violations)
        .match_requests(|r| r.thing_name() == Some("busy"))
        .then_output(|| {
            ListActiveViolationsOutput::builder()
                .active_violations(violation("v-cleared"))
                .active_violations(violation("v-still-active"))
                .build()
        });
    let calm = mock!(aws_sdk_iot::Client::list_active_violations)
        .match_requests(|r| r.thing_name() == Some("calm"))
        .then_output(|| ListActiveViolationsOutput::builder().build());
    let throttled = mock!(aws_sdk_iot::Client::list_active_violations)
        .match_requests(|r| r.thing_name() == Some("throttled"))
        .then_http_response(|| aws_error(400, "ThrottlingException", "Rate exceeded"));
    let remove = mock!(aws_sdk_iot::Client::remove_thing_from_thing_group)
        .match_requests(|r| r.thing_group_name() == Some("Quarantine"))
        .then_output(|| RemoveThingFromThingGroupOutput::builder().build());
    let client = mock_client!(
        aws_sdk_iot,
        RuleMode::MatchAny,
        [&busy, &calm, &throttled, &remove],
        |c| c.retry_config(retries(1))
    );
    let policy = DecisionPolicy {
        release_on_clear: true,
        ..Default::default()
    };
    let handler = Handler::new(
        policy,
        vec![
            Arc::new(ThingGroupMembership::new(client.clone(), "Quarantine"))
                as Arc<dyn MitigationAction>,
        ],
    )
    .with_active_violations(Arc::new(DeviceDefenderViolations::new(client)));

    let report = handler
        .handle(&cleared("busy", "v-cleared"))
        .await
        .expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Kept {
            other_violations: vec!["v-still-active".into()]
        }
    );
    assert_eq!(
        remove.num_calls(),
        0,
        "a thing with another active violation stays quarantined"
    );

    let report = handler
        .handle(&cleared("calm", "v-cleared"))
        .await
        .expect("decoded");
    assert_eq!(report.records[0].outcome, RecordOutcome::Done);
    assert_eq!(remove.num_calls(), 1);

    let report = handler
        .handle(&cleared("throttled", "v-cleared"))
        .await
        .expect("decoded");
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Failed {
            retry: Retry::Retryable
        }
    );
    assert_eq!(remove.num_calls(), 1, "no release without the check");
    assert_eq!(
        report.into_response(),
        Ok(json!({"batchItemFailures": [{"itemIdentifier": "m-throttled"}]}))
    );
}

#[tokio::test]
async fn quarantine_is_one_call_per_record_and_no_lookups() {
    let add = mock!(aws_sdk_iot::Client::add_thing_to_thing_group)
        .then_output(|| AddThingToThingGroupOutput::builder().build());
    let list = mock!(aws_sdk_iot::Client::list_active_violations)
        .then_output(|| ListActiveViolationsOutput::builder().build());
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, [&add, &list]);
    let handler = Handler::new(
        DecisionPolicy::default(),
        vec![
            Arc::new(ThingGroupMembership::new(client.clone(), "Quarantine"))
                as Arc<dyn MitigationAction>,
        ],
    )
    .with_active_violations(Arc::new(DeviceDefenderViolations::new(client)));
    let records: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let body = json!({"thingName": format!("dev-{i}"), "violationEventType": "in-alarm", "violationId": format!("v{i}")});
            json!({"messageId": format!("m{i}"), "body": body.to_string(), "eventSource": "aws:sqs"})
        })
        .collect();
    let response = handler.handle_lambda(json!({ "Records": records })).await;
    assert_eq!(response, Ok(json!({"batchItemFailures": []})));
    assert_eq!((add.num_calls(), list.num_calls()), (10, 0));
}

#[tokio::test]
async fn describe_endpoint_gives_the_account_data_ats_address() {
    use aws_sdk_iot::operation::describe_endpoint::DescribeEndpointOutput;
    let found = mock!(aws_sdk_iot::Client::describe_endpoint)
        .match_requests(|r| r.endpoint_type() == Some("iot:Data-ATS"))
        .sequence()
        .output(|| {
            DescribeEndpointOutput::builder()
                .endpoint_address("a1b2c3-ats.iot.eu-west-1.amazonaws.com")
                .build()
        })
        .output(|| DescribeEndpointOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_iot, RuleMode::Sequential, [&found]);
    assert_eq!(
        mitigation::aws::describe_data_endpoint(&client).await,
        Ok("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com".to_string())
    );
    let empty = mitigation::aws::describe_data_endpoint(&client)
        .await
        .expect_err("no address");
    assert!(empty.to_string().contains("IOT_DATA_ENDPOINT"), "{empty}");
}
