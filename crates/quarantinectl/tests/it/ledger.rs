//! quarantinectl with the quarantine ledger: its quarantine and release go through each
//! function's place in the ledger (IoT in the AWS stand-in, the ledger in moto's DynamoDB),
//! so the functions and the operator agree on what holds a thing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use test_harness::moto::{self, Moto};
use test_harness::scenarios::GROUP;
use test_harness::{StandIn, local_aws_env};

const TABLE: &str = "ledger";
/// moto's answer to GetCallerIdentity, as quarantinectl names the operator (not `$USER`,
/// which the test sets to alice).
const CALLER: &str = "quarantinectl:arn:aws:sts::123456789012:user/moto";

fn quarantinectl(aws: &StandIn, moto: &Moto, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarantinectl"));
    for name in [
        "QUARANTINE_GROUP",
        "SHADOW_NAME",
        "DISCONNECT",
        "DRY_RUN",
        "LEDGER_TABLE",
    ] {
        command.env_remove(name);
    }
    let output = command
        .envs(local_aws_env(Some(&aws.endpoint())).vars())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint)
        // The operator is named by the credentials' identity (moto's STS answers).
        .env("AWS_ENDPOINT_URL_STS", &moto.endpoint)
        .env("IOT_DATA_ENDPOINT", aws.endpoint())
        .env("USER", "alice")
        .args(["--ledger-table", TABLE, "--no-disconnect"])
        .args(args)
        .output()
        .expect("quarantinectl runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn item(
    client: &aws_sdk_dynamodb::Client,
    sk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(TABLE)
        .key("thing", AttributeValue::S("dev-1".into()))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

#[tokio::test]
async fn an_operator_quarantine_and_release_go_through_every_function_s_ledger() {
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();

    quarantinectl(
        &aws,
        &moto,
        &["quarantine", "dev-1", "--reason", "forensics"],
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));
    for function in ["fn#group", "fn#shadow"] {
        let state = item(&dynamodb, function).await;
        assert_eq!(
            state.get("applied"),
            Some(&AttributeValue::Bool(true)),
            "{function}"
        );
        let causes: Vec<&String> = state.keys().filter(|k| k.starts_with("c#")).collect();
        assert_eq!(causes.len(), 1, "{function}: {state:?}");
        assert!(
            causes[0].starts_with(&format!("c#request:{CALLER}:")),
            "{causes:?}"
        );
    }

    let status = quarantinectl(&aws, &moto, &["status", "--json", "dev-1"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let causes = status["causes"]
        .as_array()
        .expect("status shows the causes");
    assert_eq!(causes.len(), 1, "{status}");
    assert!(
        causes[0].as_str().unwrap().ends_with(": group, shadow)"),
        "{status}"
    );

    let listed = quarantinectl(&aws, &moto, &["list", "--json"]);
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let functions: Vec<&str> = listed
        .iter()
        .filter_map(|s| s["function"].as_str())
        .collect();
    assert_eq!(functions, ["group", "shadow"], "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|s| s["thingName"] == "dev-1" && s["inForce"] == true)
    );
    let cause = listed[0]["causes"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(cause["sender"], CALLER);

    quarantinectl(&aws, &moto, &["release", "dev-1", "--reason", "cleaned"]);
    let listed = quarantinectl(&aws, &moto, &["list"]);
    assert!(listed.stdout.is_empty(), "nothing is held any more");
    let history = quarantinectl(&aws, &moto, &["history", "dev-1"]);
    let history = String::from_utf8_lossy(&history.stdout);
    assert_eq!(history.lines().count(), 4, "{history}");
    assert!(
        history
            .lines()
            .all(|l| l.ends_with(&format!("by {CALLER})"))),
        "{history}"
    );
    assert!(history.contains("group release done"), "{history}");
    assert!(!aws.group_members(GROUP).contains("dev-1"));
    for function in ["fn#group", "fn#shadow"] {
        let state = item(&dynamodb, function).await;
        assert_eq!(
            state.get("applied"),
            Some(&AttributeValue::Bool(false)),
            "{function}"
        );
        assert!(
            !state.keys().any(|k| k.starts_with("c#")),
            "{function}: {state:?}"
        );
    }
    let history = moto::ledger_history(&dynamodb, TABLE, "dev-1").await;
    assert_eq!(history.len(), 4, "one entry per request per function");
    assert!(
        history
            .iter()
            .all(|entry| entry.get("caller").map(String::as_str) == Some(CALLER))
    );
}

/// Held by the budget: a cause recorded, nothing in force. `held` lists them, `approve --all`
/// carries them out.
#[tokio::test]
async fn approve_all_carries_out_the_held_quarantines() {
    use mitigation::FunctionKind;
    use mitigation::ledger::{Cause, CauseChange, Ledger};
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    let ledger = mitigation_aws::ledger::DynamoLedger::new(dynamodb.clone(), TABLE);
    for n in 6..=8 {
        let thing = violation_core::ThingName::parse(&format!("dev-{n}")).unwrap();
        let cause = CauseChange::Add(Cause {
            id: format!("v-{n}"),
            kind: "detect-violation".into(),
            occurred_at: 1,
            recorded_at: 1,
            ..Cause::default()
        });
        let recorded = ledger
            .record(&thing, FunctionKind::ThingGroup, &cause)
            .await
            .unwrap();
        assert!(recorded.state.desired() && !recorded.state.applied);
    }
    let held = quarantinectl(&aws, &moto, &["held"]);
    let held = String::from_utf8_lossy(&held.stdout).to_string();
    assert_eq!(held.lines().count(), 3, "{held}");
    assert!(
        held.contains("dev-7 group not in force: v-7 (detect-violation"),
        "{held}"
    );

    quarantinectl(
        &aws,
        &moto,
        &["approve", "--all", "--reason", "checked: real"],
    );
    let members = aws.group_members(GROUP);
    assert!(
        ["dev-6", "dev-7", "dev-8"]
            .iter()
            .all(|t| members.contains(*t)),
        "{members:?}"
    );
    let held = quarantinectl(&aws, &moto, &["held"]);
    assert!(
        held.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&held.stdout)
    );
}

#[tokio::test]
async fn a_protected_thing_is_kept_until_the_operator_forces_it() {
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    quarantinectl(
        &aws,
        &moto,
        &["protect", "dev-1", "--reason", "gateway of line 3"],
    );
    let protection = item(&dynamodb, "fn#shadow").await;
    assert!(protection.contains_key("protected"), "{protection:?}");

    let kept = quarantinectl(&aws, &moto, &["quarantine", "dev-1", "--reason", "alarm"]);
    let kept = String::from_utf8_lossy(&kept.stdout).to_string();
    assert!(kept.contains("dev-1: quarantine kept"), "{kept}");
    assert!(!aws.group_members(GROUP).contains("dev-1"));

    quarantinectl(
        &aws,
        &moto,
        &["quarantine", "dev-1", "--reason", "really", "--force"],
    );
    assert!(aws.group_members(GROUP).contains("dev-1"));

    quarantinectl(&aws, &moto, &["unprotect", "dev-1"]);
    assert!(!item(&dynamodb, "fn#group").await.contains_key("protected"));
}

#[tokio::test]
async fn a_release_can_mark_the_violations_it_clears_benign() {
    use mitigation::FunctionKind;
    use mitigation::ledger::{Cause, CauseChange, Ledger};
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    let ledger = mitigation_aws::ledger::DynamoLedger::new(dynamodb.clone(), TABLE);
    let thing = violation_core::ThingName::parse("dev-2").unwrap();
    for (id, kind) in [
        ("v-77", "detect-violation"),
        ("arn:alarm|dev-2", "cloudwatch-alarm"),
    ] {
        let cause = CauseChange::Add(Cause {
            id: id.into(),
            kind: kind.into(),
            occurred_at: 1,
            recorded_at: 1,
            ..Cause::default()
        });
        ledger
            .record(&thing, FunctionKind::ThingGroup, &cause)
            .await
            .unwrap();
    }
    quarantinectl(
        &aws,
        &moto,
        &[
            "release",
            "dev-2",
            "--reason",
            "a firmware test",
            "--verification-state",
            "BENIGN_POSITIVE",
        ],
    );
    assert_eq!(
        aws.verification_state("v-77").as_deref(),
        Some("BENIGN_POSITIVE")
    );
    assert_eq!(
        aws.count(test_harness::Op::PutVerificationStateOnViolation),
        1,
        "only the Detect violation"
    );
    let state = ledger.read(&thing, FunctionKind::ThingGroup).await.unwrap();
    assert!(state.causes.is_empty());
}

#[tokio::test]
async fn a_release_of_one_cause_keeps_the_thing_while_another_remains() {
    let (moto, dynamodb) = moto::with_ledger_table(TABLE).await;
    let aws = StandIn::start();
    quarantinectl(&aws, &moto, &["quarantine", "dev-1", "--reason", "first"]);
    quarantinectl(&aws, &moto, &["quarantine", "dev-1", "--reason", "second"]);
    let causes: Vec<String> = item(&dynamodb, "fn#group")
        .await
        .keys()
        .filter_map(|k| k.strip_prefix("c#").map(str::to_owned))
        .collect();
    assert_eq!(causes.len(), 2, "{causes:?}");
    let out = quarantinectl(
        &aws,
        &moto,
        &[
            "release", "dev-1", "--reason", "one done", "--cause", &causes[0],
        ],
    );
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.contains("dev-1: release kept"), "{out}");
    assert!(aws.group_members(GROUP).contains("dev-1"));
    quarantinectl(
        &aws,
        &moto,
        &[
            "release",
            "dev-1",
            "--reason",
            "both done",
            "--cause",
            &causes[1],
        ],
    );
    assert!(!aws.group_members(GROUP).contains("dev-1"));
}
