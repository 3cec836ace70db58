//! quarantinectl against the moto emulator: quarantine, status and release, with and without
//! certificates. moto has neither GetConnection, DeleteConnection nor ListActiveViolations:
//! the status shows those unknown, with the reason, and --no-disconnect is given.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;
use test_harness::local_aws_env;
use test_harness::moto::{self, Moto};
use test_harness::scenarios::GROUP;

fn quarantinectl(moto: &Moto, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarantinectl"));
    for name in [
        "QUARANTINE_GROUP",
        "SHADOW_NAME",
        "DISCONNECT",
        "DRY_RUN",
        "IOT_DATA_ENDPOINT",
        "AWS_PROFILE",
    ] {
        command.env_remove(name);
    }
    command
        .envs(local_aws_env(None).vars())
        .env("USER", "oncall")
        .arg("--endpoint-url")
        .arg(&moto.endpoint)
        .args(args)
        .output()
        .expect("quarantinectl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `status --json`: one object per thing.
fn status(moto: &Moto, things: &[&str]) -> Vec<Value> {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(things);
    let out = quarantinectl(moto, &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn assert_unknown_with_reason(thing: &Value, field: &str, operation: &str) {
    assert!(thing[field].is_null(), "{field} must be null: {thing:#}");
    let reason = thing["unknown"][field].as_str().unwrap_or_default();
    assert!(
        reason.contains(operation),
        "{field} must be unknown with a reason naming {operation}: {thing:#}"
    );
}

#[tokio::test]
async fn quarantine_status_and_release_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    let data = moto::data_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    moto::create_thing(&iot, "pump-7").await;

    // Before: not quarantined, no shadow.
    let before = &status(&moto, &["pump-7"])[0];
    assert_eq!(before["thingName"], "pump-7");
    assert_eq!(before["inQuarantineGroup"], false);
    assert!(before["shadowQuarantine"].is_null());
    assert_eq!(before["shadowExists"], false);

    let out = quarantinectl(
        &moto,
        &["quarantine", "pump-7", "--reason", "x", "--no-disconnect"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        stdout(&out).contains("pump-7: quarantine done"),
        "{}",
        explain(&out)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("operator request"), "{log}");
    // Named by the credentials' identity (moto's STS), not by $USER (oncall).
    assert!(
        log.contains("quarantinectl:arn:aws:sts::123456789012:user/moto"),
        "who asked: {log}"
    );
    // What AWS holds, read with the SDK directly.
    assert_eq!(moto::groups_for_thing(&iot, "pump-7").await, [GROUP]);
    assert_eq!(
        moto::desired_shadow(&data, "pump-7", None).await,
        Some(serde_json::json!({"quarantine": true}))
    );

    let after = &status(&moto, &["pump-7"])[0];
    assert_eq!(after["inQuarantineGroup"], true, "{after:#}");
    assert_eq!(after["shadowQuarantine"], true, "{after:#}");
    assert_eq!(after["registered"], true);
    assert_eq!(after["certificates"], serde_json::json!([]));
    assert_unknown_with_reason(after, "connected", "GetConnection");
    assert_unknown_with_reason(after, "activeViolations", "ListActiveViolations");
    assert_eq!(
        after["unknown"].as_object().unwrap().len(),
        2,
        "only what moto lacks is unknown: {after:#}"
    );

    // Quarantining again changes nothing and succeeds.
    let again = quarantinectl(
        &moto,
        &["quarantine", "pump-7", "--reason", "x", "--no-disconnect"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
    assert_eq!(moto::groups_for_thing(&iot, "pump-7").await, [GROUP]);

    let out = quarantinectl(
        &moto,
        &["release", "pump-7", "--reason", "y", "--no-disconnect"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let released = &status(&moto, &["pump-7"])[0];
    assert_eq!(released["inQuarantineGroup"], false, "{released:#}");
    assert_eq!(released["shadowQuarantine"], false, "{released:#}");
    assert!(moto::groups_for_thing(&iot, "pump-7").await.is_empty());

    // The table says the same, with numbered reasons for what is unknown.
    let table = stdout(&quarantinectl(&moto, &["status", "pump-7"]));
    let row = table
        .lines()
        .find(|l| l.starts_with("pump-7"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("no") && row.contains("false/-"), "{table}");
    assert!(row.contains("unknown [1]"), "{table}");
    assert!(
        table.contains("[1] pump-7 connection: GetConnection"),
        "{table}"
    );
}

#[tokio::test]
async fn an_unregistered_thing_exits_1_and_the_others_are_still_reported() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    moto::create_thing(&iot, "known").await;
    let out = quarantinectl(&moto, &["status", "--json", "known", "ghost"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["registered"], true);
    assert_eq!(lines[0]["inQuarantineGroup"], false);
    assert_eq!(lines[1]["thingName"], "ghost");
    assert_eq!(lines[1]["registered"], false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not registered: ghost"),
        "{}",
        explain(&out)
    );

    // Quarantining a thing that does not exist fails with exit status 1.
    let out = quarantinectl(
        &moto,
        &["quarantine", "ghost", "--reason", "x", "--no-disconnect"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    assert!(
        stdout(&out).contains("ghost: quarantine failed"),
        "{}",
        explain(&out)
    );
}

async fn certificate(iot: &aws_sdk_iot::Client, things: &[&str]) -> String {
    let out = iot
        .create_keys_and_certificate()
        .set_as_active(true)
        .send()
        .await
        .unwrap();
    for thing in things {
        iot.attach_thing_principal()
            .thing_name(*thing)
            .principal(out.certificate_arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    out.certificate_id().unwrap().to_owned()
}

fn certificate_status(thing: &Value, id: &str) -> (String, bool) {
    let cert = thing["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("{thing:#}"))
        .iter()
        .find(|c| c["certificateId"] == id)
        .unwrap_or_else(|| panic!("no certificate {id}: {thing:#}"));
    (
        cert["status"].as_str().unwrap().to_owned(),
        cert["deactivatedByQuarantine"].as_bool().unwrap(),
    )
}

#[tokio::test]
async fn certificates_are_deactivated_only_when_not_shared_against_moto() {
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    moto::create_thing_group(&iot, GROUP).await;
    for thing in ["cam-1", "cam-2", "cam-3"] {
        moto::create_thing(&iot, thing).await;
    }
    let own = certificate(&iot, &["cam-1"]).await;
    let shared = certificate(&iot, &["cam-1", "cam-2"]).await;
    let fleet = certificate(&iot, &["cam-3", "cam-2"]).await;

    let out = quarantinectl(
        &moto,
        &[
            "quarantine",
            "cam-1",
            "cam-3",
            "--reason",
            "x",
            "--no-disconnect",
            "--certificates",
            "--certificate-action",
            "deactivate",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let reports: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports[0]["outcome"], "done", "{:#}", reports[0]);
    // cam-3's only certificate is shared with cam-2: kept, naming cam-2.
    assert_eq!(reports[1]["outcome"], "kept", "{:#}", reports[1]);
    assert_eq!(reports[1]["keptBecause"], "shared-certificate");
    assert_eq!(reports[1]["heldBy"], serde_json::json!(["cam-2"]));

    let things = status(&moto, &["cam-1", "cam-2", "cam-3"]);
    assert_eq!(
        certificate_status(&things[0], &own),
        ("INACTIVE".into(), true)
    );
    assert_eq!(
        certificate_status(&things[0], &shared),
        ("ACTIVE".into(), false)
    );
    assert_eq!(things[0]["certificateRecord"], serde_json::json!([own]));
    assert_eq!(
        certificate_status(&things[2], &fleet),
        ("ACTIVE".into(), false)
    );
    assert_eq!(things[1]["inQuarantineGroup"], false);

    let out = quarantinectl(
        &moto,
        &[
            "release",
            "cam-1",
            "cam-3",
            "--reason",
            "y",
            "--no-disconnect",
            "--certificates",
            "--certificate-action",
            "deactivate",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let things = status(&moto, &["cam-1", "cam-3"]);
    assert_eq!(
        certificate_status(&things[0], &own),
        ("ACTIVE".into(), false)
    );
    assert_eq!(things[0]["certificateRecord"], serde_json::json!([]));
    assert_eq!(things[0]["inQuarantineGroup"], false);
    assert_eq!(things[1]["shadowQuarantine"], false);
}

#[tokio::test]
async fn without_a_ledger_table_it_acts_through_the_ledger_the_quarantine_group_names() {
    use aws_sdk_iot::types::{AttributePayload, ThingGroupProperties};
    let moto = Moto::start();
    let iot = moto::iot_client(&moto.endpoint).await;
    let dynamodb = moto::dynamodb_client(&moto.endpoint);
    moto::create_ledger_table(&dynamodb, "stack-ledger").await;
    // What infra/template.yaml's QuarantineGroup carries.
    iot.create_thing_group()
        .thing_group_name(GROUP)
        .thing_group_properties(
            ThingGroupProperties::builder()
                .attribute_payload(
                    AttributePayload::builder()
                        .attributes("quarantineLedgerTable", "stack-ledger")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    moto::create_thing(&iot, "dev-1").await;

    let out = quarantinectl(
        &moto,
        &[
            "quarantine",
            "dev-1",
            "--reason",
            "forensics",
            "--no-disconnect",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ledger table stack-ledger"),
        "it says which ledger it uses: {}",
        explain(&out)
    );
    let history = moto::ledger_history(&dynamodb, "stack-ledger", "dev-1").await;
    let mut entries: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|e| {
            let text = |k: &str| e.get(k).map_or("", String::as_str);
            (text("function"), text("outcome"), text("caller"))
        })
        .collect();
    entries.sort();
    let caller = "quarantinectl:arn:aws:sts::123456789012:user/moto";
    assert_eq!(
        entries,
        [("group", "done", caller), ("shadow", "done", caller)],
        "the operator's quarantine is in the stack's ledger, by the caller's identity"
    );
    assert_eq!(
        moto::groups_for_thing(&iot, "dev-1").await,
        vec![GROUP.to_string()]
    );
}
