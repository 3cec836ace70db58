//! The Audit path end to end through the `quarantine-group` binary: an audit-completed
//! notification expanded over every page of ListAuditFindings (the AWS stand-in; moto has no
//! Audit), suppressed findings skipped, certificates resolved to their things, client ids
//! taken as thing names; a published finding looked up by id; and a certificate subject
//! resolved with ListPrincipalThingsV2 against moto, which has that call.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use test_harness::fixtures::{sns_event, sqs_event};
use test_harness::moto::{self, Moto};
use test_harness::scenarios::GROUP;
use test_harness::{Invocation, LocalFunction, Op, StandIn, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-group");
const CHECK: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";

fn binary() -> &'static Path {
    Path::new(BINARY)
}

fn finding(id: usize, identifier: Value, suppressed: bool) -> Value {
    json!({"findingId": format!("f-{id}"), "taskId": "task-7", "checkName": CHECK,
           "severity": "CRITICAL", "isSuppressed": suppressed,
           "nonCompliantResource": {"resourceType": "DEVICE_CERTIFICATE", "resourceIdentifier": identifier}})
}

fn audit_notification() -> String {
    json!({"accountId": "123456789012", "taskId": "task-7", "taskStatus": "COMPLETED",
           "taskType": "SCHEDULED_AUDIT_TASK", "failedChecksCount": 0, "canceledChecksCount": 0,
           "nonCompliantChecksCount": 1, "compliantChecksCount": 3, "totalChecksCount": 4,
           "taskStartTime": 1_795_000_000_000_i64,
           "auditDetails": [
               {"checkName": CHECK, "checkRunStatus": "COMPLETED_NON_COMPLIANT",
                "nonCompliantResourcesCount": 600, "totalResourcesCount": 1000},
               {"checkName": "LOGGING_DISABLED_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
                "nonCompliantResourcesCount": 1, "totalResourcesCount": 1}]})
    .to_string()
}

#[test]
fn an_audit_is_mitigated_over_every_page_and_nothing_suppressed_is_touched() {
    let aws = StandIn::start();
    // 600 findings (three pages of 250): a quarter each certificates attached to two things,
    // client ids, more client ids, and suppressed findings.
    let mut findings = Vec::new();
    let mut expected = BTreeSet::new();
    let mut certificates = 0;
    for i in 0..600 {
        let f = match i % 4 {
            0 => {
                let cert = format!("{i:064x}");
                for thing in [format!("cam-{i}-a"), format!("cam-{i}-b")] {
                    aws.attach_certificate(&thing, &cert);
                    expected.insert(thing);
                }
                certificates += 1;
                finding(i, json!({"deviceCertificateId": cert}), false)
            }
            1 | 2 => {
                expected.insert(format!("client-{i}"));
                finding(i, json!({"clientId": format!("client-{i}")}), false)
            }
            _ => finding(i, json!({"clientId": format!("suppressed-{i}")}), true),
        };
        findings.push(f);
    }
    aws.set_audit_findings(findings);
    let env = local_aws_env(Some(&aws.endpoint())).set("MAX_CONCURRENCY", "20");
    let function = LocalFunction::start(binary(), &env);

    let answer = function.invoke(&sns_event(&[("audit-1", &audit_notification())]));
    let Invocation::Response(summary) = answer else {
        panic!(
            "expected a response, got {answer:?}\n{}",
            function.process.log_tail(40)
        );
    };
    assert_eq!(summary["audits"], 1, "{summary}");
    assert_eq!(summary["things"], expected.len(), "{summary}");
    assert_eq!(aws.group_members(GROUP), expected);
    assert_eq!(
        aws.count(Op::ListAuditFindings),
        3,
        "three pages, one check"
    );
    assert_eq!(aws.count(Op::ListPrincipalThingsV2), certificates);
    assert_eq!(aws.count(Op::DescribeCertificate), certificates);
    assert_eq!(
        aws.count(Op::AddThingToThingGroup),
        expected.len(),
        "each thing once"
    );

    // Redelivered (SNS and SQS deliver at least once): the same things, nothing else.
    let again = function.invoke(&sqs_event(&[("m-again", &audit_notification())]));
    assert_eq!(
        again,
        Invocation::Response(json!({"batchItemFailures": []}))
    );
    assert_eq!(aws.group_members(GROUP), expected);
}

#[test]
fn a_published_finding_is_looked_up_by_id_and_mitigated() {
    let aws = StandIn::start();
    let cert = "c".repeat(64);
    aws.attach_certificate("meter-1", &cert);
    aws.set_audit_findings(vec![finding(
        9,
        json!({"deviceCertificateId": cert}),
        false,
    )]);
    let function = LocalFunction::start(binary(), &local_aws_env(Some(&aws.endpoint())));
    // PUBLISH_FINDING_TO_SNS: AWS documents no schema; the finding id is what is read.
    let published = json!({"findingId": "f-9", "taskId": "task-7", "checkName": CHECK}).to_string();
    let answer = function.invoke(&sqs_event(&[("m-1", &published)]));
    assert_eq!(
        answer,
        Invocation::Response(json!({"batchItemFailures": []}))
    );
    assert_eq!(aws.count(Op::DescribeAuditFinding), 1);
    assert!(aws.group_members(GROUP).contains("meter-1"));
}

#[tokio::test]
async fn a_certificate_subject_is_resolved_with_list_principal_things_v2_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    for thing in ["gw-1", "gw-2", "gw-3"] {
        moto::create_thing(&iot, thing).await;
    }
    let cert = iot
        .create_keys_and_certificate()
        .set_as_active(true)
        .send()
        .await
        .expect("CreateKeysAndCertificate");
    let (cert_id, cert_arn) = (
        cert.certificate_id().expect("id").to_owned(),
        cert.certificate_arn().expect("arn").to_owned(),
    );
    for thing in ["gw-1", "gw-2"] {
        iot.attach_thing_principal()
            .thing_name(thing)
            .principal(&cert_arn)
            .send()
            .await
            .expect("AttachThingPrincipal");
    }
    let env = local_aws_env(Some(&moto.endpoint)).set("DISCONNECT", "false");
    let function = LocalFunction::start(binary(), &env);
    let request = json!({"certificateId": cert_id, "action": "quarantine",
                         "reason": "key leaked", "source": "soc"})
    .to_string();
    let answer = function.invoke(&sqs_event(&[("m-cert", &request)]));
    assert_eq!(
        answer,
        Invocation::Response(json!({"batchItemFailures": []})),
        "{}",
        function.process.log_tail(20)
    );
    for (thing, groups) in [
        ("gw-1", vec![GROUP]),
        ("gw-2", vec![GROUP]),
        ("gw-3", vec![]),
    ] {
        assert_eq!(moto::groups_for_thing(&iot, thing).await, groups, "{thing}");
    }
}

/// An SQS client on moto, as the tests' other clients are built.
fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let iot_config = test_harness::sdk::sdk_config(endpoint);
    aws_sdk_sqs::Client::new(&iot_config)
}

#[tokio::test]
async fn with_a_queue_an_audit_is_fanned_out_and_each_request_mitigates_its_device() {
    // The findings in the stand-in (moto has no Audit), the queue in moto (the stand-in has
    // no SQS): the function's SQS client goes to moto through AWS_ENDPOINT_URL_SQS.
    let aws = StandIn::start();
    let moto = Moto::start();
    let sqs = sqs_client(&moto.endpoint);
    let queue_url = sqs
        .create_queue()
        .queue_name("quarantine-group")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let mut findings = Vec::new();
    let mut expected = BTreeSet::new();
    for i in 0..45 {
        let f = if i % 3 == 0 {
            let cert = format!("{i:064x}");
            aws.attach_certificate(&format!("cam-{i}"), &cert);
            expected.insert(format!("cam-{i}"));
            finding(i, json!({"deviceCertificateId": cert}), false)
        } else if i % 3 == 1 {
            expected.insert(format!("client-{i}"));
            finding(i, json!({"clientId": format!("client-{i}")}), false)
        } else {
            finding(i, json!({"clientId": format!("suppressed-{i}")}), true)
        };
        findings.push(f);
    }
    aws.set_audit_findings(findings);
    let env = local_aws_env(Some(&aws.endpoint()))
        .set("AWS_ENDPOINT_URL_SQS", &moto.endpoint)
        .set("FANOUT_QUEUE_URL", &queue_url);
    let function = LocalFunction::start(binary(), &env);
    // Init opened the queue's connection too, with an operation SQS does not have: it sent
    // nothing (the queue holds exactly the audit's requests below).
    let line = crate::function::warm_up_line(&function);
    assert_eq!(line["warmed"], r#"["sqs", "iot", "iot-data"]"#, "{line}");

    // The audit record sends one request per device and acts on none itself.
    let answer = function.invoke(&sns_event(&[("audit-1", &audit_notification())]));
    assert!(
        matches!(&answer, Invocation::Response(s) if s["audits"] == 1),
        "{answer:?}\n{}",
        function.process.log_tail(30)
    );
    assert!(
        aws.group_members(GROUP).is_empty(),
        "nothing acted on in the audit's record"
    );

    // SQS delivers the requests to the function, as its event source mapping would.
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            bodies.push((
                m.message_id().unwrap_or("?").to_owned(),
                m.body().unwrap_or("").to_owned(),
            ));
        }
    }
    assert_eq!(bodies.len(), expected.len(), "one request per device");
    for batch in bodies.chunks(10) {
        let records: Vec<(&str, &str)> = batch
            .iter()
            .map(|(i, b)| (i.as_str(), b.as_str()))
            .collect();
        let answer = function.invoke(&sqs_event(&records));
        assert_eq!(
            answer,
            Invocation::Response(json!({"batchItemFailures": []}))
        );
    }
    assert_eq!(aws.group_members(GROUP), expected);
}
