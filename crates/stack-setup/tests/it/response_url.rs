#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Integration tests may unwrap and panic: a failed assertion is the point.

//! The answer as CloudFormation receives it: the handler with the real HTTP responder
//! against a local server playing the presigned S3 `ResponseURL`.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_iot::types::ThingIndexingConfiguration;
use futures::future::BoxFuture;
use mitigation::{ActionError, Retry};
use serde_json::json;
use stack_setup::handler::{HandlerError, Invocation};
use stack_setup::respond::{HttpResponder, RespondError, Responder, RetryPolicy};
use stack_setup::response::Status;
use stack_setup::{Handler, IotSetup};

use common::{Receiver, STACK_ID, event, properties};

const ARN: &str = "arn:aws:iot:us-east-1:123456789012:thinggroup/Quarantine";

/// AttachPolicy and DetachPolicy succeed, or all fail with `code`.
struct Iot {
    fail_with: Option<&'static str>,
}

impl Iot {
    fn result(&self, operation: &'static str) -> Result<(), ActionError> {
        match self.fail_with {
            None => Ok(()),
            Some(code) => Err(ActionError {
                operation,
                thing: format!("policy s-quarantine on {ARN}"),
                retry: Retry::Permanent,
                code: code.into(),
                message: "User is not authorized".into(),
                hint: None,
            }),
        }
    }
}

impl IotSetup for Iot {
    fn attach_policy<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move { self.result("AttachPolicy") })
    }
    fn detach_policy<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move { self.result("DetachPolicy") })
    }
    fn thing_indexing_configuration(
        &self,
    ) -> BoxFuture<'_, Result<Option<ThingIndexingConfiguration>, ActionError>> {
        Box::pin(async move { self.result("GetIndexingConfiguration").map(|()| None) })
    }
    fn update_thing_indexing_configuration(
        &self,
        _: ThingIndexingConfiguration,
    ) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move { self.result("UpdateIndexingConfiguration") })
    }
    fn thing_index_status(&self) -> BoxFuture<'_, Result<Option<String>, ActionError>> {
        Box::pin(async move { Ok(Some("ACTIVE".into())) })
    }
    fn membership_events_enabled(&self) -> BoxFuture<'_, Result<bool, ActionError>> {
        Box::pin(async move { self.result("DescribeEventConfigurations").map(|()| true) })
    }
    fn enable_membership_events(&self) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move { self.result("UpdateEventConfigurations") })
    }
    fn policy_targets<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            self.result("ListTargetsForPolicy")
                .map(|()| vec![ARN.into()])
        })
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        attempt_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(20),
    }
}

fn handler(fail_with: Option<&'static str>) -> Handler {
    Handler::new(
        Arc::new(Iot { fail_with }),
        Arc::new(common::Leaving),
        common::target("s-quarantine", ARN),
        common::trust(),
        Arc::new(HttpResponder::new(fast_retries()).unwrap()),
    )
}

fn invocation() -> Invocation {
    Invocation {
        lambda_request_id: "8f5e0f4b-lambda".into(),
        log_group: "/aws/lambda/s-stack-setup".into(),
        log_stream: "2026/11/22/[$LATEST]0123456789abcdef".into(),
        deadline: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

#[tokio::test]
async fn success_is_put_with_an_empty_content_type_and_every_field() {
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("create-ok");
    let props = properties("s-quarantine", "Quarantine", ARN, false);
    let body = handler(None)
        .handle(
            event("Create", "req-create", &url, None, props),
            &invocation(),
        )
        .await
        .unwrap();
    assert_eq!(body.status, Status::Success);

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let put = &got[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.path_and_query,
        "/cloudformation-custom-resource-response/create-ok?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcd"
    );
    // Present and empty: the presigned URL was signed without a content type.
    assert_eq!(put.content_type.as_deref(), Some(&b""[..]));
    assert_eq!(put.content_length, Some(put.body.len().to_string()));
    let json = put.json();
    assert_eq!(json["Status"], "SUCCESS");
    assert_eq!(json["PhysicalResourceId"], "s-quarantine|Quarantine");
    assert_eq!(json["StackId"], STACK_ID);
    assert_eq!(json["RequestId"], "req-create");
    assert_eq!(json["LogicalResourceId"], "QuarantineSetup");
    assert_eq!(
        json["Data"],
        json!({"PolicyName": "s-quarantine", "ThingGroupArn": ARN, "FleetIndexing": "not-requested",
               "MembershipEvents": "not-requested"})
    );
    assert!(
        json["Reason"]
            .as_str()
            .unwrap()
            .contains("attached policy s-quarantine")
    );
}

#[tokio::test]
async fn failure_is_put_with_a_reason_naming_the_call_the_error_and_the_log_stream() {
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("create-denied");
    let props = properties("s-quarantine", "Quarantine", ARN, false);
    handler(Some("AccessDeniedException"))
        .handle(
            event("Create", "req-denied", &url, None, props),
            &invocation(),
        )
        .await
        .unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let json = got[0].json();
    assert_eq!(json["Status"], "FAILED");
    let reason = json["Reason"].as_str().unwrap();
    assert!(reason.contains("AttachPolicy"), "{reason}");
    assert!(
        reason.contains("AccessDeniedException: User is not authorized"),
        "{reason}"
    );
    assert!(
        reason.contains("2026/11/22/[$LATEST]0123456789abcdef"),
        "{reason}"
    );
    assert_eq!(json["PhysicalResourceId"], "create-failed:req-denied");
    assert_eq!(json["RequestId"], "req-denied");
    assert_eq!(got[0].content_type.as_deref(), Some(&b""[..]));
}

#[tokio::test]
async fn a_malformed_event_with_a_response_url_is_answered_failed() {
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("malformed");
    let e = json!({
        "RequestType": "Create",
        "ResponseURL": url,
        "StackId": STACK_ID,
        "RequestId": "req-malformed",
        "LogicalResourceId": "QuarantineSetup",
        // No ResourceType, no ResourceProperties.
    });
    handler(None).handle(e, &invocation()).await.unwrap();
    let json = receiver.received()[0].json();
    assert_eq!(json["Status"], "FAILED");
    assert_eq!(json["RequestId"], "req-malformed");
    assert!(
        json["Reason"].as_str().unwrap().contains("missing field"),
        "{json}"
    );
}

#[tokio::test]
async fn a_500_is_retried_and_the_answer_arrives() {
    let receiver = Receiver::start(&[500]).await;
    let url = receiver.url("retry");
    let props = properties("s-quarantine", "Quarantine", ARN, false);
    let body = handler(None)
        .handle(
            event(
                "Delete",
                "req-del",
                &url,
                Some("s-quarantine|Quarantine"),
                props,
            ),
            &invocation(),
        )
        .await
        .unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 2, "one 500, then the retry");
    assert_eq!(got[0].body, got[1].body, "the same answer twice");
    assert_eq!(got[1].json()["Status"], "SUCCESS");
    assert_eq!(body.status, Status::Success);
}

#[tokio::test]
async fn a_403_is_not_retried_and_fails_the_invocation() {
    let receiver = Receiver::start(&[403]).await;
    let url = receiver.url("expired");
    let props = properties("s-quarantine", "Quarantine", ARN, false);
    let err = handler(None)
        .handle(event("Create", "req-403", &url, None, props), &invocation())
        .await
        .unwrap_err();
    assert_eq!(receiver.received().len(), 1);
    match err {
        HandlerError::NotAnswered {
            error: RespondError::Refused { status, body, .. },
            ..
        } => {
            assert_eq!(status, 403);
            assert!(body.contains("scripted"), "{body}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt() {
    let receiver = Receiver::start(&[503, 503, 503, 503]).await;
    let responder = HttpResponder::new(fast_retries()).unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let err = responder
        .put(&receiver.url("down"), b"{}".to_vec(), until)
        .await
        .unwrap_err();
    assert_eq!(receiver.received().len(), 3);
    match err {
        RespondError::Failed {
            attempts,
            problem,
            url,
        } => {
            assert_eq!(attempts, 3);
            assert!(problem.contains("HTTP 503"), "{problem}");
            assert!(
                !url.contains("Signature"),
                "the signature stays out of errors: {url}"
            );
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let responder = HttpResponder::new(fast_retries()).unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let err = responder
        .put(
            &format!("http://127.0.0.1:{port}/r?X-Amz-Signature=s"),
            b"{}".to_vec(),
            until,
        )
        .await
        .unwrap_err();
    match err {
        RespondError::Failed {
            attempts, problem, ..
        } => {
            assert_eq!(attempts, 3);
            assert!(problem.to_lowercase().contains("connect"), "{problem}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_response_url_that_is_not_a_url_is_reported() {
    let responder = HttpResponder::new(fast_retries()).unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    let err = responder
        .put("not a url", b"{}".to_vec(), until)
        .await
        .unwrap_err();
    assert!(matches!(err, RespondError::BadUrl { .. }), "{err}");
}
