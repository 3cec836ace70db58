//! The harness itself, through the real SDK clients: the AWS stand-in's state and fault
//! model (what the fault tests and the adapter tests rely on), and the moto helpers.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use aws_sdk_iot::error::ProvideErrorMetadata;
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::{Value, json};
use test_harness::moto::{self, Moto};
use test_harness::sdk::{ClientSettings, data_client, iot_client};
use test_harness::stand_in::{Disconnect, certificate_arn};
use test_harness::{Fault, Op, StandIn, StandInConfig};

fn iot(aws: &StandIn, attempts: u32) -> aws_sdk_iot::Client {
    iot_client(&aws.endpoint(), ClientSettings::attempts(attempts))
}

fn data(aws: &StandIn, attempts: u32) -> aws_sdk_iotdataplane::Client {
    data_client(&aws.endpoint(), ClientSettings::attempts(attempts))
}

async fn add(client: &aws_sdk_iot::Client, group: &str, thing: &str) -> Result<(), String> {
    client
        .add_thing_to_thing_group()
        .thing_group_name(group)
        .thing_name(thing)
        .send()
        .await
        .map(drop)
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())
}

async fn update_shadow(
    client: &aws_sdk_iotdataplane::Client,
    name: Option<&str>,
    document: Value,
) -> Result<Value, String> {
    let out = client
        .update_thing_shadow()
        .thing_name("sensor-1")
        .set_shadow_name(name.map(str::to_owned))
        .payload(Blob::new(document.to_string()))
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())?;
    serde_json::from_slice(out.payload().map_or(&b"{}"[..], |p| p.as_ref()))
        .map_err(|e| format!("the answer is not JSON: {e}"))
}

#[tokio::test]
async fn group_membership_and_the_ten_group_limit() {
    let aws = StandIn::start();
    let client = iot(&aws, 1);
    add(&client, "quarantine", "sensor-1").await.unwrap();
    assert!(aws.group_members("quarantine").contains("sensor-1"));
    client
        .update_thing_groups_for_thing()
        .thing_name("sensor-1")
        .thing_groups_to_add("watch")
        .thing_groups_to_remove("quarantine")
        .send()
        .await
        .unwrap();
    let listed = client
        .list_thing_groups_for_thing()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = listed
        .thing_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    assert_eq!(names, ["watch"]);

    for i in 0..9 {
        aws.add_member(&format!("g{i}"), "sensor-1");
    }
    assert_eq!(
        add(&client, "one-too-many", "sensor-1").await,
        Err("InvalidRequestException".into())
    );
    aws.set_fault("full", Fault::LimitExceeded);
    assert_eq!(
        add(&client, "quarantine", "full").await,
        Err("InvalidRequestException".into())
    );
    let statuses: Vec<(Op, u16)> = aws.calls().iter().map(|c| (c.op, c.status)).collect();
    assert_eq!(
        statuses,
        [
            (Op::AddThingToThingGroup, 200),
            (Op::UpdateThingGroupsForThing, 200),
            (Op::ListThingGroupsForThing, 200),
            (Op::AddThingToThingGroup, 400),
            (Op::AddThingToThingGroup, 400),
        ]
    );
}

#[tokio::test]
async fn shadows_merge_by_section_and_check_versions() {
    let aws = StandIn::start();
    let client = data(&aws, 1);
    let answer = update_shadow(
        &client,
        None,
        json!({"state": {"desired": {"quarantine": true, "reason": "x"}}}),
    )
    .await
    .unwrap();
    assert_eq!(answer["version"], 1);
    update_shadow(
        &client,
        None,
        json!({"state": {"desired": {"reason": null}, "reported": {"ok": 1}}}),
    )
    .await
    .unwrap();
    update_shadow(
        &client,
        Some("defender"),
        json!({"state": {"desired": {"quarantine": true}}}),
    )
    .await
    .unwrap();
    assert_eq!(
        aws.shadow_state("sensor-1", None),
        Some(json!({"desired": {"quarantine": true}, "reported": {"ok": 1}}))
    );
    assert_eq!(
        aws.shadow_desired("sensor-1", Some("defender")),
        Some(json!({"quarantine": true}))
    );
    assert_eq!(aws.shadow_version("sensor-1", None), Some(2));
    assert_eq!(
        aws.shadow_documents("sensor-1", Some("defender")),
        [json!({"state": {"desired": {"quarantine": true}}})]
    );
    assert_eq!(
        update_shadow(
            &client,
            None,
            json!({"state": {"desired": {"a": 1}}, "version": 1})
        )
        .await,
        Err("ConflictException".into())
    );
    let got = client
        .get_thing_shadow()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let got: Value = serde_json::from_slice(got.payload().unwrap().as_ref()).unwrap();
    assert_eq!(got["state"]["desired"], json!({"quarantine": true}));
    client
        .delete_thing_shadow()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let gone = client
        .get_thing_shadow()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn scripted_faults_reach_the_sdk_as_aws_errors() {
    let aws = StandIn::start();
    aws.set_fault("busy", Fault::ThrottleTimes(2));
    aws.set_fault("gone", Fault::NotFound);
    aws.set_fault("broken", Fault::Always5xx);
    aws.set_fault(
        "unlucky",
        Fault::Status(503, Some("ServiceUnavailableException")),
    );
    aws.set_fault("bare", Fault::Status(500, None));
    let client = iot(&aws, 3);
    add(&client, "q", "busy").await.unwrap();
    assert_eq!(
        aws.count_status(Op::AddThingToThingGroup, 400),
        2,
        "throttled with HTTP 400"
    );
    let single = iot(&aws, 1);
    assert_eq!(
        add(&single, "q", "gone").await,
        Err("ResourceNotFoundException".into())
    );
    assert_eq!(
        add(&single, "q", "broken").await,
        Err("InternalFailureException".into())
    );
    assert_eq!(
        add(&single, "q", "unlucky").await,
        Err("ServiceUnavailableException".into())
    );
    assert_eq!(add(&single, "q", "bare").await, Err("<no code>".into()));

    // The data plane throttles with 429, and a deleted thing's shadow still works.
    aws.set_fault_for_op("gone", Op::UpdateThingShadow, Fault::ThrottleTimes(1));
    data(&aws, 2)
        .update_thing_shadow()
        .thing_name("gone")
        .payload(Blob::new(r#"{"state":{"desired":{"quarantine":true}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(aws.count_status(Op::UpdateThingShadow, 429), 1);
    assert_eq!(aws.count_status(Op::UpdateThingShadow, 200), 1);
}

#[tokio::test]
async fn a_hang_times_out_the_attempt_and_the_retry_succeeds() {
    let aws = StandIn::with(StandInConfig::default().latency(Duration::from_millis(50)));
    aws.set_fault("slow", Fault::HangFirst(1, Duration::from_secs(2)));
    let settings = ClientSettings::attempts(2).attempt_timeout(Duration::from_millis(300));
    let client = iot_client(&aws.endpoint(), settings);
    let started = Instant::now();
    add(&client, "q", "slow").await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(aws.count(Op::AddThingToThingGroup), 2);
}

#[tokio::test]
async fn rate_limit_and_failure_share_are_deterministic_enough() {
    let aws = StandIn::with(StandInConfig::default().rate_limit_with_burst(1.0, 3.0));
    let client = iot(&aws, 1);
    let mut codes = Vec::new();
    for i in 0..5 {
        codes.push(add(&client, "q", &format!("t{i}")).await.err());
    }
    assert_eq!(codes[..3], [None, None, None], "the burst passes");
    assert_eq!(
        codes[3..],
        [
            Some("ThrottlingException".into()),
            Some("ThrottlingException".into())
        ]
    );

    let failing = |seed| {
        let aws = StandIn::with(StandInConfig::default().failure_share(0.3).seed(seed));
        async move {
            let client = iot(&aws, 1);
            let mut failed = Vec::new();
            for i in 0..40 {
                if add(&client, "q", &format!("t{i}")).await.is_err() {
                    failed.push(i);
                }
            }
            failed
        }
    };
    let first = failing(7).await;
    assert_eq!(
        first,
        failing(7).await,
        "the same seed fails the same requests"
    );
    assert!((4..=20).contains(&first.len()), "{first:?}");
}

#[tokio::test]
async fn active_violations_are_paged_and_describe_endpoint_answers_the_stand_in() {
    let aws = StandIn::with(StandInConfig::default().page_size(2));
    let violations: Vec<Value> = (0..5)
        .map(|i| json!({"violationId": format!("v{i}"), "thingName": "t", "securityProfileName": "P"}))
        .collect();
    aws.set_active_violations("t", violations);
    let client = iot(&aws, 1);
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_active_violations()
            .thing_name("t")
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        ids.extend(
            page.active_violations()
                .iter()
                .filter_map(|v| v.violation_id())
                .map(str::to_owned),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(ids, ["v0", "v1", "v2", "v3", "v4"]);
    assert_eq!(aws.count(Op::ListActiveViolations), 3);
    let endpoint = client
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        endpoint.endpoint_address(),
        Some(aws.addr().to_string().as_str())
    );
}

#[tokio::test]
async fn connections_can_be_looked_up_and_deleted() {
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    let client = data(&aws, 1);
    let got = client
        .get_connection()
        .client_id("dev-1")
        .send()
        .await
        .unwrap();
    assert_eq!((got.connected(), got.thing_name()), (true, Some("dev-1")));
    client
        .delete_connection()
        .client_id("dev-1")
        .clean_session(false)
        .prevent_will_message(true)
        .send()
        .await
        .unwrap();
    assert!(!aws.is_connected("dev-1"));
    assert_eq!(
        aws.disconnects(),
        [Disconnect {
            client_id: "dev-1".into(),
            clean_session: Some(false),
            prevent_will_message: Some(true)
        }]
    );
    let got = client
        .get_connection()
        .client_id("dev-1")
        .send()
        .await
        .unwrap();
    assert!(!got.connected());
    let again = client
        .delete_connection()
        .client_id("dev-1")
        .send()
        .await
        .unwrap_err();
    assert!(
        again
            .as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    let unknown = client
        .get_connection()
        .client_id("nobody")
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn certificates_principals_and_status_changes() {
    let aws = StandIn::with(StandInConfig::default().page_size(1));
    aws.attach_certificate("dev-1", "cert-a");
    aws.attach_certificate("dev-1", "cert-b");
    aws.attach_certificate("dev-2", "cert-b");
    let client = iot(&aws, 1);
    let first = client
        .list_thing_principals_v2()
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    let second = client
        .list_thing_principals_v2()
        .thing_name("dev-1")
        .set_next_token(first.next_token().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let principals: Vec<&str> = first
        .thing_principal_objects()
        .iter()
        .chain(second.thing_principal_objects())
        .map(|p| p.principal())
        .collect();
    assert_eq!(
        principals,
        [certificate_arn("cert-a"), certificate_arn("cert-b")]
    );
    assert_eq!(second.next_token(), None);
    let things = client
        .list_principal_things_v2()
        .principal(certificate_arn("cert-b"))
        .max_results(10)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = things
        .principal_thing_objects()
        .iter()
        .map(|t| t.thing_name())
        .collect();
    assert_eq!(names, ["dev-1", "dev-2"]);

    client
        .update_certificate()
        .certificate_id("cert-a")
        .new_status(aws_sdk_iot::types::CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(
        aws.certificate_status("cert-a").as_deref(),
        Some("INACTIVE")
    );
    let described = client
        .describe_certificate()
        .certificate_id("cert-a")
        .send()
        .await
        .unwrap();
    let description = described.certificate_description().unwrap();
    assert_eq!(
        description.status(),
        Some(&aws_sdk_iot::types::CertificateStatus::Inactive)
    );
    assert_eq!(
        description.certificate_arn(),
        Some(certificate_arn("cert-a").as_str())
    );

    aws.set_certificate_status("cert-b", "REVOKED");
    let revoked = client
        .update_certificate()
        .certificate_id("cert-b")
        .new_status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap_err();
    assert!(
        revoked
            .as_service_error()
            .unwrap()
            .is_certificate_state_exception()
    );
    let missing = client
        .describe_certificate()
        .certificate_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn audit_findings_are_filtered_paged_and_described() {
    let aws = StandIn::with(StandInConfig::default().page_size(2));
    let finding = |id: &str, check: &str| {
        json!({"findingId": id, "taskId": "task-1", "checkName": check, "severity": "CRITICAL",
               "taskStartTime": 1_573_786_800, "findingTime": 1_573_786_900,
               "nonCompliantResource": {"resourceType": "DEVICE_CERTIFICATE",
                                        "resourceIdentifier": {"deviceCertificateId": format!("cert-{id}")}}})
    };
    aws.set_audit_findings(vec![
        finding("f1", "DEVICE_CERTIFICATE_SHARED_CHECK"),
        finding("f2", "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK"),
        finding("f3", "DEVICE_CERTIFICATE_SHARED_CHECK"),
        finding("f4", "DEVICE_CERTIFICATE_SHARED_CHECK"),
    ]);
    let client = iot(&aws, 1);
    let first = client
        .list_audit_findings()
        .task_id("task-1")
        .check_name("DEVICE_CERTIFICATE_SHARED_CHECK")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = first
        .findings()
        .iter()
        .filter_map(|f| f.finding_id())
        .collect();
    assert_eq!(ids, ["f1", "f3"]);
    let rest = client
        .list_audit_findings()
        .check_name("DEVICE_CERTIFICATE_SHARED_CHECK")
        .set_next_token(first.next_token().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = rest
        .findings()
        .iter()
        .filter_map(|f| f.finding_id())
        .collect();
    assert_eq!((ids, rest.next_token()), (vec!["f4"], None));

    let described = client
        .describe_audit_finding()
        .finding_id("f2")
        .send()
        .await
        .unwrap();
    let finding = described.finding().unwrap();
    let resource = finding.non_compliant_resource().unwrap();
    assert_eq!(
        resource
            .resource_identifier()
            .and_then(|r| r.device_certificate_id()),
        Some("cert-f2")
    );
    assert!(finding.finding_time().is_some());
    let missing = client
        .describe_audit_finding()
        .finding_id("f9")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_groups_and_shadows_round_trip() {
    let server = Moto::start();
    let iot = moto::iot_client(&server.endpoint).await;
    let data = moto::data_client(&server.endpoint).await;

    moto::create_thing(&iot, "sensor-1").await;
    moto::create_thing_group(&iot, "quarantine").await;
    assert!(moto::groups_for_thing(&iot, "sensor-1").await.is_empty());
    assert_eq!(moto::desired_shadow(&data, "sensor-1", None).await, None);

    iot.add_thing_to_thing_group()
        .thing_name("sensor-1")
        .thing_group_name("quarantine")
        .send()
        .await
        .expect("AddThingToThingGroup");
    assert_eq!(
        moto::groups_for_thing(&iot, "sensor-1").await,
        vec!["quarantine".to_owned()]
    );

    let doc = json!({"state": {"desired": {"quarantine": true}}});
    moto::update_shadow(&data, "sensor-1", None, &doc).await;
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", None).await,
        Some(json!({"quarantine": true}))
    );

    // Named shadows are separate documents.
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", Some("security")).await,
        None
    );
    moto::update_shadow(&data, "sensor-1", Some("security"), &doc).await;
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", Some("security")).await,
        Some(json!({"quarantine": true}))
    );

    // Reset wipes everything.
    server.reset();
    assert_eq!(moto::desired_shadow(&data, "sensor-1", None).await, None);
}

#[tokio::test]
async fn thing_attributes_merge_and_an_empty_value_removes_one() {
    use aws_sdk_iot::types::AttributePayload;
    let aws = StandIn::start();
    let iot = iot(&aws, 1);
    let update = |attributes: &[(&str, &str)], merge: bool| {
        let mut payload = AttributePayload::builder().merge(merge);
        for (name, value) in attributes {
            payload = payload.attributes(*name, *value);
        }
        iot.update_thing()
            .thing_name("dev-1")
            .attribute_payload(payload.build())
            .send()
    };
    update(&[("a", "1"), ("b", "2")], true).await.unwrap();
    update(&[("b", ""), ("c", "3")], true).await.unwrap();
    let described = iot
        .describe_thing()
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    let attributes = described.attributes().cloned().unwrap_or_default();
    assert_eq!(
        attributes
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
        [
            ("a".to_owned(), "1".to_owned()),
            ("c".to_owned(), "3".to_owned())
        ]
        .into()
    );
    update(&[("d", "4")], false).await.unwrap();
    assert_eq!(
        aws.thing_attributes("dev-1"),
        [("d".to_owned(), "4".to_owned())].into()
    );
    assert_eq!(aws.count(Op::UpdateThing), 3);
    assert_eq!(aws.count(Op::DescribeThing), 1);
}
