//! quarantinectl against the local AWS stand-in, which serves what moto lacks: the live
//! connection is cut after the group change, and status reads the connection and the active
//! violations. The stand-in has no DescribeThing: the registry is shown unknown, with the
//! reason, and the rest is still reported.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::{Value, json};
use test_harness::scenarios::GROUP;
use test_harness::{Op, StandIn, local_aws_env};

fn quarantinectl(aws: &StandIn, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarantinectl"));
    for name in ["QUARANTINE_GROUP", "SHADOW_NAME", "DISCONNECT", "DRY_RUN"] {
        command.env_remove(name);
    }
    command
        .envs(local_aws_env(None).vars())
        .arg("--endpoint-url")
        .arg(aws.endpoint())
        .args(args)
        .output()
        .expect("quarantinectl runs")
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn status(aws: &StandIn, things: &[&str]) -> Vec<Value> {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(things);
    let out = quarantinectl(aws, &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn quarantine_cuts_the_connection_and_status_reads_connection_and_violations() {
    let aws = StandIn::start();
    aws.connect("dev-1", Some("dev-1"));
    aws.set_active_violations(
        "dev-1",
        vec![json!({
            "violationId": "v-1", "thingName": "dev-1", "securityProfileName": "Profile",
            "behavior": {"name": "MessagesSent", "metric": "aws:num-messages-sent"},
            "violationStartTime": 1_700_000_000.0
        })],
    );

    let before = &status(&aws, &["dev-1", "dev-2"]);
    assert_eq!(before[0]["connected"], true, "{:#}", before[0]);
    assert_eq!(before[0]["activeViolations"][0]["violationId"], "v-1");
    assert_eq!(
        before[0]["activeViolations"][0]["behaviorName"],
        "MessagesSent"
    );
    // The stand-in answers DescribeThing for every thing it is asked about.
    assert_eq!(before[0]["registered"], true, "{:#}", before[0]);
    assert!(before[0]["unknown"]["registered"].is_null());
    // Never connected: the data plane knows no connection for it.
    assert_eq!(before[1]["connected"], false, "{:#}", before[1]);
    assert!(before[1]["unknown"]["connected"].is_null());
    assert_eq!(before[1]["activeViolations"], json!([]));

    let out = quarantinectl(&aws, &["quarantine", "dev-1", "--reason", "exfiltration"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let order: Vec<Op> = aws
        .calls()
        .iter()
        .filter(|c| c.subject.as_deref() == Some("dev-1"))
        .filter(|c| {
            matches!(
                c.op,
                Op::AddThingToThingGroup | Op::DeleteConnection | Op::UpdateThingShadow
            )
        })
        .map(|c| c.op)
        .collect();
    assert_eq!(
        order,
        [
            Op::AddThingToThingGroup,
            Op::DeleteConnection,
            Op::UpdateThingShadow
        ],
        "what the functions do, in their order"
    );
    assert!(!aws.is_connected("dev-1"));
    assert!(aws.group_members(GROUP).contains("dev-1"));

    let after = &status(&aws, &["dev-1"])[0];
    assert_eq!(after["inQuarantineGroup"], true);
    assert_eq!(after["shadowQuarantine"], true);
    assert_eq!(after["connected"], false, "{after:#}");
    assert_eq!(
        after["connection"]["disconnectReason"],
        "API_INITIATED_DISCONNECT"
    );

    // A release has nothing to disconnect.
    let disconnects = aws.count(Op::DeleteConnection);
    let out = quarantinectl(&aws, &["release", "dev-1", "--reason", "cleaned"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert_eq!(aws.count(Op::DeleteConnection), disconnects);
    assert!(!aws.group_members(GROUP).contains("dev-1"));
    assert_eq!(
        aws.shadow_desired("dev-1", None),
        Some(json!({"quarantine": false}))
    );
}
