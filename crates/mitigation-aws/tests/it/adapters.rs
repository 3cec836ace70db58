//! The AWS adapters on the real SDK clients, over HTTP against the local AWS stand-in:
//! error classification by AWS code, the SDK's retries, the exact documents sent, and the
//! release-on-clear path (ListActiveViolations, paged), which the moto emulator lacks.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mitigation::certificates::CertificateRegistry;
use mitigation::{Applied, Handler, MitigationAction, Retry};
use mitigation_aws::certificates::IotCertificates;
use mitigation_aws::disconnect::ConnectionCut;
use mitigation_aws::group::ThingGroupMembership;
use mitigation_aws::sdk::describe_data_endpoint;
use mitigation_aws::shadow::ShadowFlag;
use mitigation_aws::violations::DeviceDefenderViolations;
use serde_json::{Value, json};
use test_harness::fixtures::{sqs_event, violation, violation_on_metric};
use test_harness::sdk::{ClientSettings, data_client, iot_client};
use test_harness::{Fault, Op, StandIn, StandInConfig};
use violation_core::{Action, DecisionPolicy, ThingName};

fn thing(name: &str) -> ThingName {
    ThingName::parse(name).expect("valid thing name")
}

fn iot(aws: &StandIn, attempts: u32) -> aws_sdk_iot::Client {
    iot_client(&aws.endpoint(), ClientSettings::attempts(attempts))
}

fn group(aws: &StandIn, attempts: u32) -> ThingGroupMembership {
    ThingGroupMembership::new(iot(aws, attempts), "Quarantine")
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_succeeds() {
    let aws = StandIn::start();
    aws.set_fault("dev-1", Fault::ThrottleTimes(2));
    let applied = group(&aws, 3)
        .apply(Action::Quarantine, &thing("dev-1"))
        .await;
    assert_eq!(applied, Ok(Applied::Done));
    assert_eq!(aws.count(Op::AddThingToThingGroup), 3);
    assert!(aws.group_members("Quarantine").contains("dev-1"));
}

#[tokio::test]
async fn throttling_with_status_400_is_classified_retryable_by_its_code() {
    let aws = StandIn::start();
    aws.set_fault("dev-1", Fault::ThrottleTimes(5));
    let err = group(&aws, 1)
        .apply(Action::Quarantine, &thing("dev-1"))
        .await
        .expect_err("throttled");
    assert_eq!(err.retry, Retry::Retryable);
    assert_eq!(err.code, "ThrottlingException");
    assert_eq!(err.operation, "AddThingToThingGroup");
    assert_eq!(err.thing, "dev-1");
    assert_eq!(aws.count_status(Op::AddThingToThingGroup, 400), 1);
}

#[tokio::test]
async fn a_missing_thing_is_permanent_and_says_what_to_check() {
    let aws = StandIn::start();
    aws.set_fault("dev-9", Fault::NotFound);
    let err = group(&aws, 3)
        .apply(Action::Quarantine, &thing("dev-9"))
        .await
        .expect_err("not found");
    assert_eq!(err.retry, Retry::Permanent);
    assert_eq!(
        aws.count(Op::AddThingToThingGroup),
        1,
        "a permanent error is not retried"
    );
    let text = err.to_string();
    assert!(text.contains("thing dev-9"), "{text}");
    assert!(text.contains("Thing dev-9 cannot be found."), "{text}");
    assert!(
        text.contains("describe-thing-group --thing-group-name Quarantine"),
        "{text}"
    );
}

#[tokio::test]
async fn the_group_limit_and_server_errors_are_classified() {
    let aws = StandIn::start();
    for i in 0..10 {
        aws.add_member(&format!("g{i}"), "crowded");
    }
    aws.set_fault(
        "unlucky",
        Fault::Status(503, Some("ServiceUnavailableException")),
    );
    aws.set_fault("bare", Fault::Status(500, None));
    let group = group(&aws, 1);

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
async fn release_leaves_the_group() {
    let aws = StandIn::start();
    aws.add_member("Quarantine", "dev-1");
    aws.add_member("Sensors", "dev-1");
    assert_eq!(
        group(&aws, 1).apply(Action::Release, &thing("dev-1")).await,
        Ok(Applied::Done)
    );
    assert_eq!(
        aws.groups_of("dev-1").into_iter().collect::<Vec<_>>(),
        ["Sensors"]
    );
}

#[tokio::test]
async fn the_shadow_flag_sends_exactly_the_desired_document() {
    let aws = StandIn::start();
    let client = data_client(&aws.endpoint(), ClientSettings::attempts(1));
    let shadow = ShadowFlag::new(client, Some("security".into()));
    assert_eq!(
        shadow.apply(Action::Quarantine, &thing("dev-1")).await,
        Ok(Applied::Done)
    );
    assert_eq!(
        shadow.apply(Action::Release, &thing("dev-1")).await,
        Ok(Applied::Done)
    );
    assert_eq!(
        aws.shadow_documents("dev-1", Some("security")),
        [
            json!({"state": {"desired": {"quarantine": true}}}),
            json!({"state": {"desired": {"quarantine": false}}}),
        ]
    );
    assert_eq!(
        aws.shadow_state("dev-1", None),
        None,
        "the classic shadow is untouched"
    );
}

#[tokio::test]
async fn the_connection_cut_disconnects_and_a_client_not_connected_is_done() {
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let cut = ConnectionCut::new(data_client(&aws.endpoint(), ClientSettings::attempts(1)));
    assert!(cut.performs(Action::Quarantine) && !cut.performs(Action::Release));
    assert_eq!(
        cut.apply(Action::Quarantine, &thing("dev-1")).await,
        Ok(Applied::Done)
    );
    assert!(!aws.is_connected("dev-1"));
    assert_eq!(
        cut.apply(Action::Quarantine, &thing("dev-1")).await,
        Ok(Applied::Done)
    );
    assert_eq!(aws.count_status(Op::DeleteConnection, 404), 1);
    aws.set_fault("dev-2", Fault::ThrottleTimes(5));
    let err = cut
        .apply(Action::Quarantine, &thing("dev-2"))
        .await
        .expect_err("throttled");
    assert_eq!(
        (err.retry, err.code.as_str()),
        (Retry::Retryable, "ThrottlingException")
    );
}

/// An alarm that cleared on a device-side metric (only those release a thing).
fn cleared(thing: &str, violation_id: &str) -> Value {
    let message = violation_on_metric(
        thing,
        "alarm-cleared",
        violation_id,
        "aws:listening-tcp-ports",
    )
    .to_string();
    sqs_event(&[(&format!("m-{thing}"), &message)])
}

fn handler(aws: &StandIn, release_on_clear: bool) -> Handler {
    let client = iot(aws, 1);
    let policy = DecisionPolicy {
        release_on_clear,
        ..Default::default()
    };
    let group = Arc::new(ThingGroupMembership::new(client.clone(), "Quarantine"));
    Handler::new(policy, vec![group as Arc<dyn MitigationAction>])
        .with_active_violations(Arc::new(DeviceDefenderViolations::new(client)))
}

#[tokio::test]
async fn release_on_clear_reads_every_page_of_active_violations_first() {
    let aws = StandIn::with(StandInConfig::default().page_size(2));
    let active =
        |id: &str| json!({"violationId": id, "thingName": "busy", "securityProfileName": "P"});
    aws.set_active_violations(
        "busy",
        ["v-cleared", "v-a", "v-b", "v-still-active"]
            .map(active)
            .to_vec(),
    );
    aws.set_fault("throttled", Fault::ThrottleTimes(5));
    for thing in ["busy", "calm", "throttled"] {
        aws.add_member("Quarantine", thing);
    }
    let handler = handler(&aws, true);

    let busy = handler.handle_lambda(cleared("busy", "v-cleared")).await;
    assert_eq!(
        aws.count_for(Op::ListActiveViolations, "busy"),
        2,
        "both pages read"
    );
    assert!(
        aws.group_members("Quarantine").contains("busy"),
        "held by v-still-active: {busy:?}"
    );
    let busy = serde_json::to_value(busy.expect("an answer")).unwrap();
    assert_eq!(busy, json!({"batchItemFailures": []}));

    let calm =
        serde_json::to_value(handler.handle_lambda(cleared("calm", "v-1")).await.unwrap()).unwrap();
    assert_eq!(calm, json!({"batchItemFailures": []}));
    assert!(!aws.group_members("Quarantine").contains("calm"));

    let throttled = handler
        .handle_lambda(cleared("throttled", "v-1"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(throttled).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-throttled"}]})
    );
    assert!(
        aws.group_members("Quarantine").contains("throttled"),
        "no release without the check"
    );
    assert_eq!(
        aws.count(Op::RemoveThingFromThingGroup),
        1,
        "only calm was released"
    );
}

#[tokio::test]
async fn quarantine_is_one_call_per_record_and_no_lookups() {
    let aws = StandIn::start();
    let handler = handler(&aws, false);
    let bodies: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("m{i}"),
                violation(&format!("dev-{i}"), "in-alarm", &format!("v{i}")).to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(id, body)| (id.as_str(), body.as_str()))
        .collect();
    let answer = handler.handle_lambda(sqs_event(&refs)).await.unwrap();
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(aws.count(Op::AddThingToThingGroup), 10);
    assert_eq!(aws.calls().len(), 10, "no lookups");
}

#[tokio::test]
async fn describe_endpoint_gives_the_data_ats_address() {
    let found = StandIn::with(
        StandInConfig::default().endpoint_address("a1b2c3-ats.iot.eu-west-1.amazonaws.com"),
    );
    assert_eq!(
        describe_data_endpoint(&iot(&found, 1)).await,
        Ok("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com".to_owned())
    );
    let empty = StandIn::with(StandInConfig::default().endpoint_address(""));
    let err = describe_data_endpoint(&iot(&empty, 1))
        .await
        .expect_err("no address");
    assert!(err.to_string().contains("IOT_DATA_ENDPOINT"), "{err}");
}

#[tokio::test]
async fn certificate_listings_read_every_page_and_stop_at_the_first_other_thing() {
    let aws = StandIn::with(StandInConfig::default().page_size(1));
    let id = |n: u8| format!("{:064x}", u64::from(n) + 0xabc0);
    for n in 1..=3 {
        aws.attach_certificate("dev-1", &id(n));
    }
    for thing in ["dev-2", "dev-3"] {
        aws.attach_certificate(thing, &id(2));
    }
    let registry = IotCertificates::new(iot(&aws, 1));
    let attached = registry.thing_certificates(&thing("dev-1")).await.unwrap();
    let ids: Vec<&str> = attached.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [id(1), id(2), id(3)], "one certificate per page");
    assert_eq!(aws.count(Op::ListThingPrincipalsV2), 3);

    let others = registry
        .other_things(&attached[1], &thing("dev-1"))
        .await
        .unwrap();
    assert_eq!(others, ["dev-2"]);
    assert_eq!(
        aws.count(Op::ListPrincipalThingsV2),
        2,
        "the page naming dev-1, then the one naming dev-2; dev-3's is not read"
    );
    let alone = registry
        .other_things(&attached[0], &thing("dev-1"))
        .await
        .unwrap();
    assert!(alone.is_empty(), "{alone:?}");
}
