//! The `quarantine-certificate` binary, driven through a local Lambda Runtime API against the
//! moto emulator. `deactivate`: an exclusively attached certificate is deactivated (and
//! recorded), a shared one stays ACTIVE, and a release reactivates exactly what was
//! deactivated. `attach-policy` (the default): the quarantine policy is attached to an
//! exclusive certificate (and recorded), not to a shared one, and a release detaches it.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{Value, json};
use test_harness::fixtures::{sns_event, violation};
use test_harness::moto::{self, Moto};
use test_harness::{Invocation, LocalFunction, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-certificate");
const ATTRIBUTE: &str = "quarantineDeactivatedCerts";
const POLICY_ATTRIBUTE: &str = "quarantinePolicyCerts";
const POLICY: &str = "stack-quarantine";

/// The tests' release requests come from `test`, trusted to release (RELEASE_SOURCES).
fn releasing_env(moto: &Moto) -> test_harness::Env {
    local_aws_env(Some(&moto.endpoint)).set("RELEASE_SOURCES", "test")
}

fn deactivating(moto: &Moto) -> test_harness::Env {
    releasing_env(moto).set("CERTIFICATE_ACTION", "deactivate")
}

struct Cert {
    id: String,
    arn: String,
}

async fn create_certificate(iot: &aws_sdk_iot::Client, things: &[&str]) -> Cert {
    let out = iot
        .create_keys_and_certificate()
        .set_as_active(true)
        .send()
        .await
        .expect("CreateKeysAndCertificate");
    let cert = Cert {
        id: out.certificate_id().unwrap().to_owned(),
        arn: out.certificate_arn().unwrap().to_owned(),
    };
    for thing in things {
        iot.attach_thing_principal()
            .thing_name(*thing)
            .principal(&cert.arn)
            .send()
            .await
            .expect("AttachThingPrincipal");
    }
    cert
}

async fn status(iot: &aws_sdk_iot::Client, cert: &Cert) -> String {
    iot.describe_certificate()
        .certificate_id(&cert.id)
        .send()
        .await
        .expect("DescribeCertificate")
        .certificate_description()
        .and_then(|d| d.status())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

async fn record(iot: &aws_sdk_iot::Client, thing: &str) -> Option<String> {
    attribute(iot, thing, ATTRIBUTE).await
}

async fn attribute(iot: &aws_sdk_iot::Client, thing: &str, name: &str) -> Option<String> {
    iot.describe_thing()
        .thing_name(thing)
        .send()
        .await
        .expect("DescribeThing")
        .attributes()
        .and_then(|a| a.get(name).cloned())
        .filter(|v| !v.is_empty())
}

async fn policies(iot: &aws_sdk_iot::Client, cert: &Cert) -> Vec<String> {
    iot.list_attached_policies()
        .target(&cert.arn)
        .send()
        .await
        .expect("ListAttachedPolicies")
        .policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_owned))
        .collect()
}

fn request(thing: &str, action: &str) -> Value {
    json!({"thingName": thing, "action": action, "reason": "test", "source": "test"})
}

/// The record log lines of the function (one per record), by thing.
fn record_line(function: &LocalFunction, thing: &str) -> Value {
    function
        .process
        .json_log_lines()
        .into_iter()
        .rfind(|l| l["fields"]["record_id"].is_string() && l["fields"]["thing"] == thing)
        .unwrap_or_else(|| panic!("no record line for {thing}:\n{}", function.process.log()))
}

#[tokio::test]
async fn exclusive_certificate_deactivated_shared_kept_and_release_reactivates_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    for thing in ["dev-1", "dev-2", "dev-3"] {
        moto::create_thing(&iot, thing).await;
    }
    let own = create_certificate(&iot, &["dev-1"]).await;
    let shared = create_certificate(&iot, &["dev-1", "dev-2"]).await;
    let only_shared = create_certificate(&iot, &["dev-3", "dev-2"]).await;
    let function = LocalFunction::start(BINARY, &deactivating(&moto));

    // An in-alarm from Device Defender for dev-1 (SNS).
    let message = violation("dev-1", "in-alarm", "v-1").to_string();
    assert_eq!(
        function.invoke(&sns_event(&[("m-1", &message)])),
        Invocation::Response(
            json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1})
        )
    );
    assert_eq!(status(&iot, &own).await, "INACTIVE");
    assert_eq!(status(&iot, &shared).await, "ACTIVE", "dev-2 uses it too");
    assert_eq!(record(&iot, "dev-1").await, Some(own.id.clone()));
    assert_eq!(record_line(&function, "dev-1")["fields"]["outcome"], "done");

    // Delivered again: nothing changes.
    function.invoke(&sns_event(&[("m-1", &message)]));
    assert_eq!(status(&iot, &own).await, "INACTIVE");
    assert_eq!(status(&iot, &shared).await, "ACTIVE");
    assert_eq!(record(&iot, "dev-1").await, Some(own.id.clone()));

    // A thing whose only certificate is shared: nothing deactivated, the record is kept.
    function.invoke(&request("dev-3", "quarantine"));
    assert_eq!(status(&iot, &only_shared).await, "ACTIVE");
    assert_eq!(record(&iot, "dev-3").await, None);
    assert_eq!(record_line(&function, "dev-3")["fields"]["outcome"], "kept");

    // Someone else deactivates the shared certificate: the release must not reactivate it.
    iot.update_certificate()
        .certificate_id(&shared.id)
        .new_status(aws_sdk_iot::types::CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(
        function.invoke(&request("dev-1", "release")),
        Invocation::Response(
            json!({"records": 1, "quarantined": 0, "released": 1, "ignored": 0, "things": 1})
        )
    );
    assert_eq!(status(&iot, &own).await, "ACTIVE", "reactivated");
    assert_eq!(
        status(&iot, &shared).await,
        "INACTIVE",
        "not ours to reactivate"
    );
    assert_eq!(record(&iot, "dev-1").await, None, "the record is removed");
    assert_eq!(record_line(&function, "dev-1")["fields"]["outcome"], "done");
}

#[tokio::test]
async fn a_thing_with_no_certificate_is_done_and_an_unknown_thing_fails_permanently() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing(&iot, "bare").await;
    let function = LocalFunction::start(BINARY, &deactivating(&moto));
    assert_eq!(
        function.invoke(&request("bare", "quarantine")),
        Invocation::Response(
            json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1})
        )
    );
    match function.invoke(&request("ghost", "quarantine")) {
        Invocation::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Permanent.ResourceNotFoundException");
            assert!(
                error_message.contains("ListThingPrincipalsV2 for thing ghost failed"),
                "{error_message}"
            );
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[tokio::test]
async fn attach_policy_on_an_exclusive_certificate_not_a_shared_one_and_release_detaches_against_moto()
 {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    for thing in ["dev-1", "dev-2"] {
        moto::create_thing(&iot, thing).await;
    }
    iot.create_policy()
        .policy_name(POLICY)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#)
        .send()
        .await
        .expect("CreatePolicy");
    let own = create_certificate(&iot, &["dev-1"]).await;
    let shared = create_certificate(&iot, &["dev-1", "dev-2"]).await;
    let env = releasing_env(&moto).set("QUARANTINE_POLICY", POLICY);
    let function = LocalFunction::start(BINARY, &env);

    let message = violation("dev-1", "in-alarm", "v-1").to_string();
    assert_eq!(
        function.invoke(&sns_event(&[("m-1", &message)])),
        Invocation::Response(
            json!({"records": 1, "quarantined": 1, "released": 0, "ignored": 0, "things": 1})
        )
    );
    assert_eq!(policies(&iot, &own).await, [POLICY]);
    assert!(
        policies(&iot, &shared).await.is_empty(),
        "dev-2 uses it too"
    );
    assert_eq!(status(&iot, &own).await, "ACTIVE", "nothing deactivated");
    assert_eq!(
        attribute(&iot, "dev-1", POLICY_ATTRIBUTE).await,
        Some(own.id.clone())
    );
    assert_eq!(record(&iot, "dev-1").await, None);
    let line = &record_line(&function, "dev-1")["fields"];
    assert_eq!(
        (&line["outcome"], &line["held_by"]),
        (&json!("done"), &json!("dev-2")),
        "{line}"
    );

    // Delivered again: still attached once, the record unchanged.
    function.invoke(&sns_event(&[("m-1", &message)]));
    assert_eq!(policies(&iot, &own).await, [POLICY]);

    assert_eq!(
        function.invoke(&request("dev-1", "release")),
        Invocation::Response(
            json!({"records": 1, "quarantined": 0, "released": 1, "ignored": 0, "things": 1})
        )
    );
    assert!(policies(&iot, &own).await.is_empty(), "detached");
    assert_eq!(attribute(&iot, "dev-1", POLICY_ATTRIBUTE).await, None);
    // Released again: nothing recorded, nothing to detach, still done.
    function.invoke(&request("dev-1", "release"));
    assert_eq!(record_line(&function, "dev-1")["fields"]["outcome"], "done");
}

#[tokio::test]
async fn attach_policy_without_the_policy_name_stops_the_start_naming_the_variable() {
    let moto = Moto::start();
    let mut function = LocalFunction::spawn(BINARY, &local_aws_env(Some(&moto.endpoint)));
    let status = function.process.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let log = function.process.log();
    assert!(
        log.contains("QUARANTINE_POLICY") && log.contains("CERTIFICATE_ACTION=attach-policy"),
        "{log}"
    );
}

/// Without Lambda's JSON log format the function writes text lines, which Lambda splits on
/// newlines: a request's reason carrying a newline or an ANSI escape stays on its one line.
#[tokio::test]
async fn text_logs_keep_a_forged_reason_on_its_record_line() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing(&iot, "bare").await;
    let env = deactivating(&moto).set("AWS_LAMBDA_LOG_FORMAT", "Text");
    let function = LocalFunction::start(BINARY, &env);
    let reason = "odd\nlevel=INFO record done thing=victim FORGED\u{1b}[2J";
    let event =
        json!({"thingName": "bare", "action": "quarantine", "reason": reason, "source": "test"});
    assert!(matches!(function.invoke(&event), Invocation::Response(_)));
    let log = function.process.log();
    assert!(!log.contains('\u{1b}'), "{log}");
    let forged: Vec<&str> = log.lines().filter(|l| l.contains("FORGED")).collect();
    assert_eq!(forged.len(), 1, "{log}");
    assert!(
        forged[0].contains("record_id=") && forged[0].contains("odd\\nlevel=INFO"),
        "{}",
        forged[0]
    );
}
