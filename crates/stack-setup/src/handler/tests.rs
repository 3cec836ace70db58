//! The handler on an in-memory IoT and responder: every request type, every answer.

use std::sync::Mutex;

use aws_sdk_iot::types::{
    DeviceDefenderIndexingMode, Field, FieldType, ThingConnectivityIndexingMode,
    ThingIndexingConfiguration, ThingIndexingMode,
};
use futures::future::BoxFuture;
use mitigation::Retry;
use serde_json::json;

use super::*;

const ARN: &str = "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine";
const STACK: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid";

fn trust() -> Trust {
    Trust {
        stack_id: Some(STACK.into()),
        test_response_url_prefix: Some("http://127.0.0.1:9/".into()),
    }
}

/// CloudFormation's word on the stack.
struct FakeStack(Option<&'static str>);

impl StackStatus for FakeStack {
    fn stack_status<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ActionError>> {
        Box::pin(async move { Ok(self.0.map(str::to_owned)) })
    }
}

/// A handler whose stack is being deleted (a Delete may act).
fn handler_on(iot: Arc<FakeIot>, responder: Arc<FakeResponder>) -> Handler {
    handler_with_stack(iot, "DELETE_IN_PROGRESS", responder)
}

fn handler_with_stack(
    iot: Arc<FakeIot>,
    status: &'static str,
    responder: Arc<FakeResponder>,
) -> Handler {
    Handler::new(
        iot,
        Arc::new(FakeStack(Some(status))),
        crate::target::tests::target(),
        trust(),
        responder,
    )
}

/// Records every call; answers from a script.
#[derive(Default)]
struct FakeIot {
    calls: Mutex<Vec<String>>,
    /// operation -> error code to fail with
    fail: Mutex<Vec<(&'static str, &'static str)>>,
    indexing: Mutex<Option<ThingIndexingConfiguration>>,
    updated: Mutex<Option<ThingIndexingConfiguration>>,
    index_status: Mutex<Vec<&'static str>>,
    /// AttachPolicy never returns.
    hang: bool,
    /// ListTargetsForPolicy's answer.
    policy_targets: Mutex<Vec<String>>,
    /// Thing-group membership events are on.
    membership_events: Mutex<bool>,
}

impl FakeIot {
    fn failing(operation: &'static str, code: &'static str) -> FakeIot {
        let fake = FakeIot::default();
        fake.fail.lock().unwrap().push((operation, code));
        fake
    }

    fn result(&self, operation: &'static str, subject: String) -> Result<(), ActionError> {
        self.calls.lock().unwrap().push(operation.to_owned());
        match self
            .fail
            .lock()
            .unwrap()
            .iter()
            .find(|(op, _)| *op == operation)
        {
            Some((_, code)) => Err(ActionError {
                operation,
                thing: subject,
                retry: Retry::Permanent,
                code: (*code).to_owned(),
                message: format!("scripted {code}"),
                hint: None,
            }),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl IotSetup for FakeIot {
    fn attach_policy<'a>(
        &'a self,
        policy_name: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            if self.hang {
                self.calls.lock().unwrap().push("AttachPolicy".into());
                std::future::pending::<()>().await;
            }
            self.result("AttachPolicy", format!("policy {policy_name} on {target}"))
        })
    }

    fn detach_policy<'a>(
        &'a self,
        policy_name: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(
            async move { self.result("DetachPolicy", format!("policy {policy_name} on {target}")) },
        )
    }

    fn thing_indexing_configuration(
        &self,
    ) -> BoxFuture<'_, Result<Option<ThingIndexingConfiguration>, ActionError>> {
        Box::pin(async move {
            self.result("GetIndexingConfiguration", "the account".into())?;
            Ok(self.indexing.lock().unwrap().clone())
        })
    }

    fn update_thing_indexing_configuration(
        &self,
        config: ThingIndexingConfiguration,
    ) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            self.result("UpdateIndexingConfiguration", "the account".into())?;
            *self.updated.lock().unwrap() = Some(config);
            Ok(())
        })
    }

    fn policy_targets<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            self.result("ListTargetsForPolicy", policy_name.into())?;
            Ok(self.policy_targets.lock().unwrap().clone())
        })
    }

    fn membership_events_enabled(&self) -> BoxFuture<'_, Result<bool, ActionError>> {
        Box::pin(async move {
            self.result("DescribeEventConfigurations", "the account".into())?;
            Ok(*self.membership_events.lock().unwrap())
        })
    }

    fn enable_membership_events(&self) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            self.result("UpdateEventConfigurations", "the account".into())?;
            *self.membership_events.lock().unwrap() = true;
            Ok(())
        })
    }

    fn thing_index_status(&self) -> BoxFuture<'_, Result<Option<String>, ActionError>> {
        Box::pin(async move {
            self.result("DescribeIndex", THING_INDEX_NAME.into())?;
            let mut statuses = self.index_status.lock().unwrap();
            let status = if statuses.len() > 1 {
                statuses.remove(0)
            } else {
                statuses.first().copied().unwrap_or("ACTIVE")
            };
            Ok(Some(status.to_owned()))
        })
    }
}

const THING_INDEX_NAME: &str = crate::iot::THING_INDEX;

/// Keeps what would have been PUT; optionally refuses.
#[derive(Default)]
struct FakeResponder {
    sent: Mutex<Vec<(String, Value)>>,
    refuse: bool,
}

impl Responder for FakeResponder {
    fn put<'a>(
        &'a self,
        url: &'a str,
        body: Vec<u8>,
        _until: Instant,
    ) -> BoxFuture<'a, Result<u32, RespondError>> {
        Box::pin(async move {
            if self.refuse {
                return Err(RespondError::Refused {
                    url: url.to_owned(),
                    status: 403,
                    attempts: 1,
                    body: "AccessDenied".into(),
                });
            }
            let json: Value = serde_json::from_slice(&body).unwrap();
            self.sent.lock().unwrap().push((url.to_owned(), json));
            Ok(1)
        })
    }
}

fn properties(indexing: bool) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:s-stack-setup",
        "ServiceTimeout": "600",
        "PolicyName": "s-quarantine",
        "ThingGroupName": "Quarantine",
        "ThingGroupArn": ARN,
        "EnableFleetIndexing": if indexing { "true" } else { "false" },
    })
}

fn event(request_type: &str, physical_id: Option<&str>, props: Value) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:s-stack-setup",
        "ResponseURL": "http://127.0.0.1:9/response?X-Amz-Signature=sig",
        "StackId": STACK,
        "RequestId": "req-1",
        "LogicalResourceId": "QuarantineSetup",
        "ResourceType": "Custom::QuarantineSetup",
        "ResourceProperties": props,
    });
    if let Some(id) = physical_id {
        e["PhysicalResourceId"] = json!(id);
    }
    e
}

fn invocation() -> Invocation {
    Invocation {
        lambda_request_id: "lambda-req".into(),
        log_group: "/aws/lambda/s-stack-setup".into(),
        log_stream: "2026/11/22/[$LATEST]abc".into(),
        deadline: Some(SystemTime::now() + Duration::from_secs(300)),
    }
}

async fn run(iot: Arc<FakeIot>, event: Value) -> (ResponseBody, Value) {
    let responder = Arc::new(FakeResponder::default());
    let handler = handler_on(iot, responder.clone());
    let body = handler.handle(event, &invocation()).await.unwrap();
    let sent = responder.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "exactly one answer");
    assert_eq!(sent[0].0, "http://127.0.0.1:9/response?X-Amz-Signature=sig");
    assert_eq!(serde_json::to_value(&body).unwrap(), sent[0].1);
    (body, sent[0].1.clone())
}

#[tokio::test]
async fn create_attaches_the_policy_and_answers_success_with_data() {
    let iot = Arc::new(FakeIot::default());
    let (_, sent) = run(iot.clone(), event("Create", None, properties(false))).await;
    assert_eq!(iot.calls(), ["AttachPolicy"]);
    assert_eq!(sent["Status"], "SUCCESS");
    assert_eq!(sent["PhysicalResourceId"], "s-quarantine|Quarantine");
    assert_eq!(
        sent["StackId"],
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid"
    );
    assert_eq!(sent["RequestId"], "req-1");
    assert_eq!(sent["LogicalResourceId"], "QuarantineSetup");
    assert_eq!(
        sent["Data"],
        json!({"PolicyName": "s-quarantine", "ThingGroupArn": ARN, "FleetIndexing": "not-requested",
               "MembershipEvents": "not-requested"})
    );
}

#[tokio::test]
async fn create_that_fails_answers_failed_naming_the_call_the_code_and_the_log_stream() {
    let iot = Arc::new(FakeIot::failing(
        "AttachPolicy",
        "ResourceNotFoundException",
    ));
    let (body, sent) = run(iot, event("Create", None, properties(true))).await;
    assert_eq!(body.status, Status::Failed);
    let reason = sent["Reason"].as_str().unwrap();
    assert!(reason.contains("AttachPolicy"), "{reason}");
    assert!(
        reason.contains("ResourceNotFoundException: scripted ResourceNotFoundException"),
        "{reason}"
    );
    assert!(reason.contains("2026/11/22/[$LATEST]abc"), "{reason}");
    assert!(reason.contains("/aws/lambda/s-stack-setup"), "{reason}");
    assert_eq!(sent["PhysicalResourceId"], "create-failed:req-1");
    assert!(sent.get("Data").is_none());
}

#[tokio::test]
async fn access_denied_says_which_permission_is_missing() {
    let iot = Arc::new(FakeIot::failing("AttachPolicy", "AccessDeniedException"));
    let (body, _) = run(iot, event("Create", None, properties(false))).await;
    assert!(
        body.reason.contains("must allow iot:AttachPolicy"),
        "{}",
        body.reason
    );
}

#[tokio::test]
async fn create_with_fleet_indexing_merges_into_the_account_configuration() {
    let iot = Arc::new(FakeIot::default());
    *iot.indexing.lock().unwrap() = Some(
        ThingIndexingConfiguration::builder()
            .thing_indexing_mode(ThingIndexingMode::RegistryAndShadow)
            .thing_connectivity_indexing_mode(ThingConnectivityIndexingMode::Status)
            .managed_fields(
                Field::builder()
                    .name("registry.version")
                    .r#type(FieldType::Number)
                    .build(),
            )
            .build()
            .unwrap(),
    );
    iot.index_status
        .lock()
        .unwrap()
        .extend(["REBUILDING", "ACTIVE"]);
    let handler = handler_on(iot.clone(), Arc::new(FakeResponder::default())).with_timing(Timing {
        index_poll: Duration::from_millis(10),
        ..Timing::default()
    });
    let body = handler
        .handle(event("Create", None, properties(true)), &invocation())
        .await
        .unwrap();
    assert_eq!(
        iot.calls(),
        [
            "AttachPolicy",
            "GetIndexingConfiguration",
            "UpdateIndexingConfiguration",
            "DescribeIndex",
            "DescribeIndex"
        ]
    );
    let sent = iot.updated.lock().unwrap().clone().unwrap();
    assert_eq!(
        sent.thing_indexing_mode,
        ThingIndexingMode::RegistryAndShadow
    );
    assert_eq!(
        sent.device_defender_indexing_mode,
        Some(DeviceDefenderIndexingMode::Violations)
    );
    assert_eq!(
        sent.thing_connectivity_indexing_mode,
        Some(ThingConnectivityIndexingMode::Status)
    );
    assert_eq!(sent.managed_fields, None);
    assert_eq!(body.status, Status::Success);
    assert_eq!(body.data.unwrap().fleet_indexing, "enabled");
    assert!(body.reason.contains("ACTIVE"), "{}", body.reason);
}

fn with_membership_events(mut props: Value) -> Value {
    props["EnableMembershipEvents"] = json!("true");
    props
}

#[tokio::test]
async fn membership_events_are_turned_on_once_and_never_off() {
    let iot = Arc::new(FakeIot::default());
    let create = event("Create", None, with_membership_events(properties(false)));
    let (body, sent) = run(iot.clone(), create.clone()).await;
    assert_eq!(
        iot.calls(),
        [
            "AttachPolicy",
            "DescribeEventConfigurations",
            "UpdateEventConfigurations"
        ]
    );
    assert_eq!(sent["Data"]["MembershipEvents"], "enabled");
    assert!(
        body.reason.contains("membership events turned on"),
        "{}",
        body.reason
    );
    assert!(*iot.membership_events.lock().unwrap());
    // Already on (an update, another stack): read, not written.
    let (_, sent) = run(iot.clone(), create).await;
    assert_eq!(sent["Data"]["MembershipEvents"], "already-enabled");
    assert_eq!(
        iot.calls()[3..],
        ["AttachPolicy", "DescribeEventConfigurations"]
    );
    // The stack's Delete leaves the account's registry events as they are.
    let delete = event(
        "Delete",
        Some("s-quarantine|Quarantine"),
        with_membership_events(properties(false)),
    );
    run(iot.clone(), delete).await;
    assert!(
        !iot.calls()[5..]
            .iter()
            .any(|c| c.contains("EventConfigurations")),
        "{:?}",
        iot.calls()
    );
    assert!(*iot.membership_events.lock().unwrap());
}

#[tokio::test]
async fn a_denied_event_configuration_update_fails_naming_the_permission() {
    let iot = Arc::new(FakeIot::failing(
        "UpdateEventConfigurations",
        "AccessDeniedException",
    ));
    let create = event("Create", None, with_membership_events(properties(false)));
    let (body, _) = run(iot, create).await;
    assert_eq!(body.status, Status::Failed);
    assert!(
        body.reason
            .contains("must allow iot:UpdateEventConfigurations"),
        "{}",
        body.reason
    );
}

#[tokio::test]
async fn fleet_indexing_already_on_makes_no_update_call() {
    let iot = Arc::new(FakeIot::default());
    *iot.indexing.lock().unwrap() = Some(
        ThingIndexingConfiguration::builder()
            .thing_indexing_mode(ThingIndexingMode::Registry)
            .device_defender_indexing_mode(DeviceDefenderIndexingMode::Violations)
            .build()
            .unwrap(),
    );
    let (body, _) = run(iot.clone(), event("Create", None, properties(true))).await;
    assert_eq!(iot.calls(), ["AttachPolicy", "GetIndexingConfiguration"]);
    assert_eq!(body.data.unwrap().fleet_indexing, "already-enabled");
}

#[tokio::test]
async fn a_failed_indexing_update_fails_the_request() {
    let iot = Arc::new(FakeIot::failing(
        "UpdateIndexingConfiguration",
        "InvalidRequestException",
    ));
    let (body, _) = run(iot.clone(), event("Create", None, properties(true))).await;
    assert_eq!(body.status, Status::Failed);
    assert!(
        body.reason.starts_with(
            "UpdateIndexingConfiguration for the account failed: InvalidRequestException"
        ),
        "{}",
        body.reason
    );
}

#[tokio::test]
async fn an_index_status_that_cannot_be_read_does_not_fail_the_request() {
    let iot = Arc::new(FakeIot::failing("DescribeIndex", "AccessDeniedException"));
    let (body, _) = run(iot, event("Create", None, properties(true))).await;
    assert_eq!(body.status, Status::Success);
    assert!(
        body.reason.contains("DescribeIndex: AccessDeniedException"),
        "{}",
        body.reason
    );
}

#[tokio::test]
async fn update_without_change_attaches_again_and_keeps_the_id() {
    let iot = Arc::new(FakeIot::default());
    let mut e = event("Update", Some("s-quarantine|Quarantine"), properties(false));
    e["OldResourceProperties"] = properties(true);
    let (body, _) = run(iot.clone(), e).await;
    // true -> false changes nothing about indexing.
    assert_eq!(iot.calls(), ["AttachPolicy"]);
    assert_eq!(body.physical_resource_id, "s-quarantine|Quarantine");
    assert_eq!(body.status, Status::Success);
}

#[tokio::test]
async fn update_naming_another_policy_is_refused_and_keeps_the_old_id() {
    let iot = Arc::new(FakeIot::default());
    let mut props = properties(false);
    props["PolicyName"] = json!("s-quarantine-v2");
    let mut e = event("Update", Some("s-quarantine|Quarantine"), props);
    e["OldResourceProperties"] = properties(false);
    let (body, _) = run(iot.clone(), e).await;
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("QUARANTINE_POLICY"), "{}", body.reason);
    assert_eq!(body.physical_resource_id, "s-quarantine|Quarantine");
}

#[tokio::test]
async fn a_failed_update_keeps_the_old_id() {
    let iot = Arc::new(FakeIot::failing("AttachPolicy", "ThrottlingException"));
    let e = event("Update", Some("s-quarantine|Old"), properties(false));
    let (body, _) = run(iot, e).await;
    assert_eq!(body.status, Status::Failed);
    assert_eq!(body.physical_resource_id, "s-quarantine|Old");
}

#[tokio::test]
async fn delete_detaches_and_never_touches_fleet_indexing() {
    let iot = Arc::new(FakeIot::default());
    let (body, _) = run(
        iot.clone(),
        event("Delete", Some("s-quarantine|Quarantine"), properties(true)),
    )
    .await;
    assert_eq!(iot.calls(), ["DetachPolicy"]);
    assert_eq!(body.status, Status::Success);
    assert_eq!(body.physical_resource_id, "s-quarantine|Quarantine");
}

#[tokio::test]
async fn delete_of_what_is_already_gone_succeeds() {
    let iot = Arc::new(FakeIot::failing(
        "DetachPolicy",
        "ResourceNotFoundException",
    ));
    let (body, _) = run(
        iot,
        event("Delete", Some("s-quarantine|Quarantine"), properties(false)),
    )
    .await;
    assert_eq!(body.status, Status::Success);
    assert!(body.reason.contains("not attached"), "{}", body.reason);
}

#[tokio::test]
async fn delete_that_fails_on_a_resource_we_created_answers_failed() {
    let iot = Arc::new(FakeIot::failing("DetachPolicy", "AccessDeniedException"));
    let (body, _) = run(
        iot,
        event("Delete", Some("s-quarantine|Quarantine"), properties(false)),
    )
    .await;
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("DetachPolicy"), "{}", body.reason);
}

#[tokio::test]
async fn delete_after_a_failed_create_always_succeeds() {
    let iot = Arc::new(FakeIot::default());
    let (body, _) = run(
        iot.clone(),
        event("Delete", Some("create-failed:req-0"), properties(false)),
    )
    .await;
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Success);
    assert_eq!(body.physical_resource_id, "create-failed:req-0");

    // ...even when its properties were never readable.
    let iot = Arc::new(FakeIot::default());
    let (body, _) = run(
        iot.clone(),
        event(
            "Delete",
            Some("create-failed:req-0"),
            json!({"PolicyName": "p"}),
        ),
    )
    .await;
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Success);
}

#[tokio::test]
async fn a_missing_property_is_answered_failed_without_calls() {
    let iot = Arc::new(FakeIot::default());
    let mut props = properties(false);
    props.as_object_mut().unwrap().remove("ThingGroupArn");
    let (body, _) = run(iot.clone(), event("Create", None, props)).await;
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Failed);
    assert!(
        body.reason
            .starts_with("property ThingGroupArn is missing. See CloudWatch Logs"),
        "{}",
        body.reason
    );
}

#[tokio::test]
async fn an_unknown_request_type_is_answered_failed() {
    let iot = Arc::new(FakeIot::default());
    let (body, _) = run(iot.clone(), event("Rename", Some("x"), properties(false))).await;
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("Rename"), "{}", body.reason);
    assert_eq!(body.physical_resource_id, "x");
    assert_eq!(body.request_id, "req-1");
}

#[tokio::test]
async fn an_event_without_response_url_cannot_be_answered() {
    let responder = Arc::new(FakeResponder::default());
    let handler = handler_on(Arc::new(FakeIot::default()), responder.clone());
    let err = handler
        .handle(json!({"RequestType": "Create"}), &invocation())
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::NoResponseUrl(_)));
    assert!(responder.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_configuration_is_answered_failed_naming_it() {
    let responder = Arc::new(FakeResponder::default());
    let handler = Handler::unusable(
        "invalid configuration: AWS_MAX_ATTEMPTS=\"0\": expected a whole number from 1 to 10"
            .into(),
        trust(),
        responder.clone(),
    );
    let body = handler
        .handle(event("Create", None, properties(false)), &invocation())
        .await
        .unwrap();
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("AWS_MAX_ATTEMPTS"), "{}", body.reason);
    assert_eq!(responder.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_configuration_still_lets_a_never_created_resource_be_deleted() {
    let responder = Arc::new(FakeResponder::default());
    let handler = Handler::unusable(
        "invalid configuration: AWS_RETRY_MODE".into(),
        trust(),
        responder.clone(),
    );
    let body = handler
        .handle(
            event("Delete", Some("create-failed:req-0"), properties(false)),
            &invocation(),
        )
        .await
        .unwrap();
    assert_eq!(body.status, Status::Success);
    assert!(body.reason.contains("never created"), "{}", body.reason);
    let body = handler
        .handle(
            event("Delete", Some("s-quarantine|Quarantine"), properties(false)),
            &invocation(),
        )
        .await
        .unwrap();
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("AWS_RETRY_MODE"), "{}", body.reason);
}

#[tokio::test]
async fn a_response_that_cannot_be_delivered_is_an_invocation_error() {
    let handler = handler_on(
        Arc::new(FakeIot::default()),
        Arc::new(FakeResponder {
            refuse: true,
            ..FakeResponder::default()
        }),
    );
    let err = handler
        .handle(event("Create", None, properties(false)), &invocation())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 403"), "{err}");
}

#[tokio::test]
async fn calls_that_outlast_the_budget_are_answered_failed_before_the_lambda_timeout() {
    let iot = Arc::new(FakeIot {
        hang: true,
        ..FakeIot::default()
    });
    let responder = Arc::new(FakeResponder::default());
    let handler = handler_on(iot, responder.clone()).with_timing(Timing {
        response_reserve: Duration::from_millis(700),
        ..Timing::default()
    });
    let mut inv = invocation();
    inv.deadline = Some(SystemTime::now() + Duration::from_secs(1));
    let started = std::time::Instant::now();
    let body = handler
        .handle(event("Create", None, properties(false)), &inv)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(900), "answered after {took:?}");
    assert!(
        took >= Duration::from_millis(250),
        "gave up too early: {took:?}"
    );
    assert_eq!(body.status, Status::Failed);
    assert!(
        body.reason
            .starts_with("AttachPolicy did not finish in time"),
        "{}",
        body.reason
    );
    assert_eq!(responder.sent.lock().unwrap().len(), 1);
}

#[test]
fn deadlines_keep_the_reserve_for_the_answer() {
    let timing = Timing::default();
    let now = Instant::now();
    let inv = Invocation {
        deadline: Some(SystemTime::now() + Duration::from_secs(300)),
        ..Invocation::default()
    };
    let (work, answer) = timing.deadlines(&inv, now);
    let reserve = answer - work;
    assert!(
        reserve >= RetryPolicy::default().worst_case(),
        "{reserve:?}"
    );
    assert!(answer - now <= Duration::from_secs(300));
    assert!(work - now >= Duration::from_secs(250));

    // Less time than the reserve: half for the calls.
    let short = Invocation {
        deadline: Some(SystemTime::now() + Duration::from_secs(10)),
        ..Invocation::default()
    };
    let (work, answer) = timing.deadlines(&short, now);
    assert!(work - now <= Duration::from_secs(5) && answer - now <= Duration::from_secs(10));

    // No deadline: the default budget.
    let (work, _) = timing.deadlines(&Invocation::default(), now);
    assert_eq!(work - now, timing.default_budget);
}

#[test]
fn invocation_reads_the_log_stream_from_the_context() {
    let mut context = lambda_runtime::Context::default();
    let config = lambda_runtime::Config {
        log_stream: "2026/11/22/[$LATEST]ctx".into(),
        log_group: "/aws/lambda/s-stack-setup".into(),
        ..Default::default()
    };
    context.env_config = Arc::new(config);
    context.request_id = "lambda-1".into();
    context.deadline = 1_900_000_000_000;
    let inv = Invocation::from_context(&context);
    assert_eq!(inv.log_stream, "2026/11/22/[$LATEST]ctx");
    assert_eq!(inv.lambda_request_id, "lambda-1");
    assert!(inv.deadline.is_some());
    assert!(inv.where_to_look().contains("[$LATEST]ctx"));
}

#[tokio::test]
async fn a_request_of_another_stack_or_to_another_url_gets_no_call_and_no_answer() {
    let iot = Arc::new(FakeIot::default());
    let responder = Arc::new(FakeResponder::default());
    let handler = handler_on(iot.clone(), responder.clone());
    let mut other_stack = event("Delete", Some("s-quarantine|Quarantine"), properties(false));
    other_stack["StackId"] = json!("arn:aws:cloudformation:eu-west-1:123456789012:stack/x/guid");
    let err = handler
        .handle(other_stack, &invocation())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandlerError::Untrusted(Untrusted::OtherStack { .. })),
        "{err}"
    );
    for url in ["http://attacker.example/r", "https://attacker.example/r"] {
        let mut e = event("Delete", Some("s-quarantine|Quarantine"), properties(false));
        e["ResponseURL"] = json!(url);
        let err = handler.handle(e, &invocation()).await.unwrap_err();
        assert!(
            matches!(err, HandlerError::Untrusted(Untrusted::ResponseUrl { .. })),
            "{err}"
        );
    }
    assert!(iot.calls().is_empty());
    assert!(responder.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_check_reports_whether_the_policy_is_attached_to_the_group() {
    let iot = Arc::new(FakeIot::default());
    let handler = handler_on(iot.clone(), Arc::new(FakeResponder::default()));
    let check = json!(crate::check::POLICY_ATTACHED);
    let found = handler.check(&check).await.unwrap();
    assert_eq!(found["policyAttached"], false);
    iot.policy_targets.lock().unwrap().push(ARN.into());
    let found = handler.check(&check).await.unwrap();
    assert_eq!(found["policyAttached"], true);
    assert_eq!(
        iot.calls(),
        ["ListTargetsForPolicy", "ListTargetsForPolicy"]
    );
    assert!(handler.check(&json!("other")).await.is_err());
    let denied = handler_on(
        Arc::new(FakeIot::failing(
            "ListTargetsForPolicy",
            "AccessDeniedException",
        )),
        Arc::new(FakeResponder::default()),
    );
    let err = denied.check(&check).await.unwrap_err();
    assert!(err.to_string().contains("AccessDeniedException"), "{err}");
}

#[tokio::test]
async fn a_delete_while_the_stack_stands_detaches_nothing() {
    let iot = Arc::new(FakeIot::default());
    let responder = Arc::new(FakeResponder::default());
    let handler = handler_with_stack(iot.clone(), "UPDATE_COMPLETE", responder.clone());
    let body = handler
        .handle(
            event("Delete", Some("s-quarantine|Quarantine"), properties(false)),
            &invocation(),
        )
        .await
        .unwrap();
    assert!(iot.calls().is_empty());
    assert_eq!(body.status, Status::Failed);
    assert!(body.reason.contains("UPDATE_COMPLETE"), "{}", body.reason);
}
