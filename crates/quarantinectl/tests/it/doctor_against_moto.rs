//! `quarantinectl doctor` against moto: the quarantine policy attached then detached, a
//! pinned and a loose device policy, an empty queue and one holding messages.

use std::process::{Command, Output};

use serde_json::Value;
use test_harness::local_aws_env;
use test_harness::moto::{self, Moto};
use test_harness::scenarios::GROUP;
use test_harness::sdk::sdk_config;

const QUARANTINE_POLICY: &str = "s-quarantine";
const DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]}"#;
const PINNED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;
const LOOSE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/*"}]}"#;

fn doctor(moto: &Moto, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarantinectl"));
    for name in [
        "QUARANTINE_GROUP",
        "QUARANTINE_POLICY",
        "DEVICE_POLICY_NAME",
        "DEAD_LETTER_QUEUE_URLS",
        "LEDGER_TABLE",
        "AWS_PROFILE",
    ] {
        command.env_remove(name);
    }
    let out: Output = command
        .envs(local_aws_env(None).vars())
        .args(["--endpoint-url", &moto.endpoint, "doctor", "--json"])
        .args(args)
        .output()
        .expect("quarantinectl runs");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.code(), lines)
}

/// The status of `check` (every line of it).
fn statuses(lines: &[Value], check: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["check"] == check)
        .map(|l| l["status"].as_str().unwrap().to_owned())
        .collect()
}

fn reason(lines: &[Value], check: &str) -> String {
    lines
        .iter()
        .filter(|l| l["check"] == check)
        .map(|l| l["reason"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_policy_the_device_policy_and_the_queues() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    moto::create_thing(&iot, "dev-1").await;
    for (name, document) in [
        (QUARANTINE_POLICY, DENY),
        ("fleet-device", PINNED),
        ("loose", LOOSE),
    ] {
        iot.create_policy()
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .unwrap();
    }
    let group_arn = iot
        .describe_thing_group()
        .thing_group_name(GROUP)
        .send()
        .await
        .unwrap()
        .thing_group_arn
        .unwrap();
    iot.attach_policy()
        .policy_name(QUARANTINE_POLICY)
        .target(&group_arn)
        .send()
        .await
        .unwrap();
    // dev-1's certificate carries the pinned device policy.
    let cert = iot
        .create_keys_and_certificate()
        .set_as_active(true)
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    iot.attach_thing_principal()
        .thing_name("dev-1")
        .principal(&cert)
        .send()
        .await
        .unwrap();
    iot.attach_policy()
        .policy_name("fleet-device")
        .target(&cert)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&moto.endpoint));
    let mut queues = Vec::new();
    for name in ["empty-dlq", "full-dlq"] {
        queues.push(
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap(),
        );
    }
    for body in ["a", "b"] {
        sqs.send_message()
            .queue_url(&queues[1])
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let dynamodb = moto::dynamodb_client(&moto.endpoint);
    moto::create_ledger_table(&dynamodb, "ledger").await;

    // Everything in order: exit 0, every check ok (the device policy found through dev-1).
    let (code, lines) = doctor(
        &moto,
        &[
            "--quarantine-policy",
            QUARANTINE_POLICY,
            "--dead-letter-queues",
            &queues[0],
            "--ledger-table",
            "ledger",
        ],
    );
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(statuses(&lines, "ledger-table"), ["ok"]);
    assert!(reason(&lines, "ledger-table").contains("ledger: ACTIVE"));
    assert_eq!(statuses(&lines, "quarantine-policy"), ["ok"]);
    assert_eq!(statuses(&lines, "device-policy"), ["ok"]);
    assert!(reason(&lines, "device-policy").contains("fleet-device"));
    assert_eq!(statuses(&lines, "dead-letter-queue"), ["ok"]);

    // A queue holding messages and a device policy that lets any client id connect.
    let both = format!("{},{}", queues[0], queues[1]);
    let (code, lines) = doctor(
        &moto,
        &[
            "--quarantine-policy",
            QUARANTINE_POLICY,
            "--device-policy",
            "loose",
            "--dead-letter-queues",
            &both,
        ],
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(statuses(&lines, "dead-letter-queue"), ["ok", "problem"]);
    assert!(reason(&lines, "dead-letter-queue").contains("2 message(s)"));
    assert_eq!(statuses(&lines, "device-policy"), ["problem"]);
    assert!(reason(&lines, "device-policy").contains("client/*"));

    // The quarantine policy detached: a problem, exit 1.
    iot.detach_policy()
        .policy_name(QUARANTINE_POLICY)
        .target(&group_arn)
        .send()
        .await
        .unwrap();
    let (code, lines) = doctor(
        &moto,
        &[
            "--quarantine-policy",
            QUARANTINE_POLICY,
            "--ledger-table",
            "no-such-table",
        ],
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(statuses(&lines, "quarantine-policy"), ["problem"]);
    assert_eq!(statuses(&lines, "ledger-table"), ["problem"]);
    assert!(reason(&lines, "ledger-table").contains("no-such-table"));
    assert!(reason(&lines, "quarantine-policy").contains("NOT attached"));
    assert_eq!(statuses(&lines, "dead-letter-queue"), ["skipped"]);
}
