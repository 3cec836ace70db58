//! The `quarantine-certificate` binary, driven through a local Lambda Runtime API against the
//! moto emulator: an exclusively attached certificate is deactivated (and recorded), a shared
//! one stays ACTIVE, and a release reactivates exactly what was deactivated.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use test_harness::fixtures::{sns_event, violation};
use test_harness::moto::{self, Moto};
use test_harness::{Invocation, LocalFunction, local_aws_env};

const BINARY: &str = env!("CARGO_BIN_EXE_quarantine-certificate");
const ATTRIBUTE: &str = "quarantineDeactivatedCerts";

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
    iot.describe_thing()
        .thing_name(thing)
        .send()
        .await
        .expect("DescribeThing")
        .attributes()
        .and_then(|a| a.get(ATTRIBUTE).cloned())
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
    // The requests' source ("test") is trusted to release.
    let env = local_aws_env(Some(&moto.endpoint)).set("RELEASE_SOURCES", "test");
    let function = LocalFunction::start(BINARY, &env);

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
    let function = LocalFunction::start(BINARY, &local_aws_env(Some(&moto.endpoint)));
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
