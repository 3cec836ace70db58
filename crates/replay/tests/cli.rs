//! The replay command line: output lines, exit status and help; and replay against the moto
//! emulator, where exactly the quarantined things end in the Quarantine group with
//! `desired.quarantine == true`, and ignored and rejected records change nothing.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};
use test_harness::moto::{self, Moto};
use test_harness::{local_aws_env, workspace_root};

fn events_dir() -> PathBuf {
    workspace_root().join("events")
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .env_remove("DRY_RUN")
        .env_remove("RELEASE_ON_CLEAR")
        .env_remove("RELEASE_SOURCES")
        .output()
        .expect("replay runs")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Records in a sample file: an SNS or SQS event's `Records`, else one direct event.
fn records_in(path: &str) -> usize {
    let event: Value = serde_json::from_slice(&std::fs::read(path).expect("sample")).expect("JSON");
    event["Records"].as_array().map_or(1, Vec::len)
}

#[test]
fn dry_run_prints_one_line_per_record_and_exits_zero() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("--dry-run")
        .chain(files.iter().map(String::as_str))
        .collect();
    let output = replay(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let records: usize = files.iter().map(|f| records_in(f)).sum();
    assert_eq!(
        lines.len(),
        records,
        "one line per record of the sample files"
    );
    for line in &lines {
        let decision = line["decision"].as_str().unwrap_or("");
        assert!(
            [
                "quarantine",
                "release",
                "ignore",
                "reject",
                "expand-audit",
                "lookup-finding",
                "reconcile"
            ]
            .contains(&decision),
            "{line}"
        );
        assert!(
            line["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
        assert!(
            line["file"]
                .as_str()
                .is_some_and(|f| files.iter().any(|x| x == f)),
            "{line}"
        );
    }
    let count = |d: &str| lines.iter().filter(|l| l["decision"] == d).count();
    for decision in [
        "quarantine",
        "ignore",
        "reject",
        "expand-audit",
        "lookup-finding",
        "reconcile",
    ] {
        assert!(count(decision) > 0, "the samples exercise {decision}");
    }
}

#[test]
fn configuration_flags_change_decisions() {
    // An alarm that cleared on a device-side (custom) metric: only that can release.
    let file = events_dir().join("sns-num-child-procs-alarm-cleared.json");
    let file = file.to_str().expect("utf-8 path");
    assert_eq!(
        lines(&replay(&["--dry-run", file]))[0]["decision"],
        "ignore"
    );
    assert_eq!(
        lines(&replay(&["--dry-run", "--release-on-clear", file]))[0]["decision"],
        "release"
    );
    let filtered = replay(&[
        "--dry-run",
        "--release-on-clear",
        "--metric-filter",
        "aws:disconnect-duration",
        file,
    ]);
    assert_eq!(lines(&filtered)[0]["decision"], "ignore");
    let bad = replay(&["--dry-run", "--max-concurrency", "0", file]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MAX_CONCURRENCY"));
}

/// A release request is screened as the functions screen it, in a dry run too: refused
/// unless its source is one of RELEASE_SOURCES.
#[test]
fn a_release_request_from_an_untrusted_source_is_refused_in_a_dry_run() {
    let file = events_dir().join("direct-mitigation-request-release.json");
    let file = file.to_str().expect("utf-8 path");
    let untrusted = lines(&replay(&["--dry-run", file]));
    assert_eq!(untrusted[0]["decision"], "reject", "{untrusted:?}");
    let trusted = lines(&replay(&[
        "--dry-run",
        "--release-sources",
        "operator:alice",
        file,
    ]));
    assert_eq!(trusted[0]["decision"], "release", "{trusted:?}");
}

/// The alert trust rules through the binary: an analyst's note, RESOLVED, NOTIFIED and
/// ARCHIVED updates of a Device Defender finding do not quarantine again; AWS's own
/// `AwsIotRegisteredThing` form does; with the account known (ACCOUNT_ID, as the template
/// sets it) another account's finding is ignored and another account's ARN refused.
#[test]
fn security_hub_updates_and_foreign_resources_do_not_act() {
    let decisions = |file: &str, account: Option<&str>| -> Vec<String> {
        let path = events_dir().join(file);
        let mut command = Command::new(env!("CARGO_BIN_EXE_replay"));
        command
            .args(["--dry-run", path.to_str().expect("utf-8 path")])
            .env_remove("DRY_RUN")
            .env_remove("ACCOUNT_ID")
            .env("AWS_REGION", "eu-west-1");
        if let Some(account) = account {
            command.args(["--account-id", account]);
        }
        let out = command.output().expect("replay runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)
            .iter()
            .map(|l| l["decision"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let lifecycle = "sqs-raw-eventbridge-securityhub-device-defender-batch.json";
    assert_eq!(
        decisions(lifecycle, Some("123456789012")),
        [
            "quarantine",
            "ignore",
            "ignore",
            "ignore",
            "ignore",
            "quarantine"
        ]
    );
    assert_eq!(
        decisions(
            "direct-securityhub-imported-device-defender.json",
            Some("123456789012")
        ),
        ["quarantine"]
    );
    let foreign = "sqs-raw-eventbridge-securityhub-foreign-batch.json";
    assert_eq!(decisions(foreign, None), ["quarantine", "quarantine"]);
    assert_eq!(
        decisions(foreign, Some("123456789012")),
        ["ignore", "reject"]
    );
    assert_eq!(
        decisions(
            "direct-mitigation-request-foreign-account.json",
            Some("123456789012")
        ),
        ["reject"]
    );
}

#[test]
fn unreadable_or_foreign_files_exit_non_zero_with_a_message() {
    let missing = replay(&["--dry-run", "/nonexistent/event.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/event.json: cannot read")
    );

    let dir = std::env::temp_dir().join(format!("replay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let foreign = dir.join("s3-event.json");
    std::fs::write(&foreign, r#"{"Records":[{"eventSource":"aws:s3"}]}"#).expect("write");
    let not_json = dir.join("notes.json");
    std::fs::write(&not_json, "hello").expect("write");
    let good = events_dir().join("sns-num-messages-sent-in-alarm.json");
    let output = replay(&[
        "--dry-run",
        foreign.to_str().expect("path"),
        not_json.to_str().expect("path"),
        good.to_str().expect("path"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not an SNS or SQS Lambda event"),
        "{stderr}"
    );
    assert!(stderr.contains("notes.json: not JSON"), "{stderr}");
    assert_eq!(lines(&output).len(), 1, "the good file is still replayed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_documents_every_flag() {
    let help = String::from_utf8_lossy(&replay(&["--help"]).stdout).into_owned();
    for flag in [
        "--dry-run",
        "--endpoint-url",
        "--function",
        "--quarantine-group",
        "--shadow-name",
        "--iot-data-endpoint",
        "--release-on-clear",
        "--security-profile-filter",
        "--behavior-filter",
        "--metric-filter",
        "--max-concurrency",
        "--max-attempts",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

/// The things the sample events quarantine (default policy).
const QUARANTINED: &[&str] = &[
    "dev-IZWB",
    "ml-camera-07",
    "mything1",
    "test_thing",
    "meter-42",
    "sensor-a",
    "sensor-b",
    "pump-01",
    "pump-03",
    "gateway-01",
    "gateway-03",
    "gateway-04",
];
/// Registered things whose records are ignored (cleared, invalidated).
const UNTOUCHED: &[&str] = &["dev-OLD1", "sensor-c", "gateway-02"];

/// The Device Defender Detect samples (the other sources need operations moto lacks).
const DETECT_SAMPLES: &[&str] = &[
    "sns-alarm-invalidated.json",
    "sns-custom-metric-in-alarm.json",
    "sns-disconnect-duration-in-alarm.json",
    "sns-malformed-invalid-thing-name.json",
    "sns-malformed-message-not-json.json",
    "sns-malformed-missing-thing-name.json",
    "sns-malformed-unknown-event-type.json",
    "sns-ml-detect-in-alarm.json",
    "sns-num-messages-sent-alarm-cleared.json",
    "sns-num-messages-sent-in-alarm.json",
    "sns-statistical-in-alarm.json",
    "sqs-mixed-batch.json",
    "sqs-raw-delivery-batch.json",
    "sqs-sns-envelope-batch.json",
];

fn sample_events() -> Vec<PathBuf> {
    DETECT_SAMPLES
        .iter()
        .map(|f| events_dir().join(f))
        .collect()
}

/// Runs replay against moto (without DeleteConnection, which moto lacks); its output and
/// the JSON lines it printed.
fn replay_against(moto: &Moto, args: &[&str], files: &[PathBuf]) -> (Output, Vec<Value>) {
    let output = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args([
            "--endpoint-url",
            &moto.endpoint,
            "--max-attempts",
            "1",
            "--no-disconnect",
        ])
        .args(args)
        .args(files)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(local_aws_env(None).vars())
        .output()
        .expect("replay runs");
    let lines = lines(&output);
    (output, lines)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn replay_quarantines_exactly_the_things_in_alarm() {
    let moto = Moto::start();
    let rt = runtime();
    let (iot, data) = rt.block_on(async {
        (
            moto::iot_client(&moto.endpoint).await,
            moto::data_client(&moto.endpoint).await,
        )
    });
    rt.block_on(async {
        moto::create_thing_group(&iot, "Quarantine").await;
        for thing in QUARANTINED.iter().chain(UNTOUCHED) {
            moto::create_thing(&iot, thing).await;
        }
    });

    let (output, lines) = replay_against(&moto, &[], &sample_events());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "replay failed:\n{stderr}\n{lines:#?}"
    );

    let acted: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["decision"] == "quarantine")
        .map(|l| {
            let thing = l["thingName"].as_str().expect("thing name");
            assert_eq!(l["outcome"], "done", "{l}");
            assert_eq!(
                l["actions"],
                json!([{"action": "thing-group", "outcome": "done", "thing": thing},
                       {"action": "shadow", "outcome": "done", "thing": thing}])
            );
            thing
        })
        .collect();
    assert_eq!(acted, QUARANTINED.iter().copied().collect());
    assert_eq!(
        lines.iter().filter(|l| l["decision"] == "reject").count(),
        5
    );

    rt.block_on(async {
        for thing in QUARANTINED {
            assert_eq!(
                moto::groups_for_thing(&iot, thing).await,
                vec!["Quarantine".to_string()],
                "{thing}"
            );
            assert_eq!(
                moto::desired_shadow(&data, thing, None).await,
                Some(json!({"quarantine": true})),
                "{thing}"
            );
        }
        for thing in UNTOUCHED {
            assert!(
                moto::groups_for_thing(&iot, thing).await.is_empty(),
                "{thing}"
            );
            assert_eq!(
                moto::desired_shadow(&data, thing, None).await,
                None,
                "{thing}"
            );
        }
        let members = iot
            .list_things_in_thing_group()
            .thing_group_name("Quarantine")
            .send()
            .await
            .expect("list members");
        let members: BTreeSet<&str> = members.things().iter().map(String::as_str).collect();
        assert_eq!(
            members,
            QUARANTINED.iter().copied().collect(),
            "nothing else joined the group"
        );
    });

    // Replaying again changes nothing: the actions are idempotent.
    let (again, _) = replay_against(&moto, &[], &sample_events());
    assert_eq!(again.status.code(), Some(0));
    rt.block_on(async {
        assert_eq!(
            moto::groups_for_thing(&iot, "dev-IZWB").await,
            vec!["Quarantine".to_string()]
        );
    });
}

#[test]
fn replay_honours_shadow_name_group_and_function_choice() {
    let moto = Moto::start();
    let rt = runtime();
    let (iot, data) = rt.block_on(async {
        (
            moto::iot_client(&moto.endpoint).await,
            moto::data_client(&moto.endpoint).await,
        )
    });
    rt.block_on(async {
        moto::create_thing_group(&iot, "Isolation").await;
        moto::create_thing(&iot, "dev-IZWB").await;
    });
    let file = events_dir().join("sns-num-messages-sent-in-alarm.json");
    let (output, lines) = replay_against(
        &moto,
        &["--function", "shadow", "--shadow-name", "security"],
        std::slice::from_ref(&file),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        lines[0]["actions"],
        json!([{"action": "shadow", "outcome": "done", "thing": "dev-IZWB"}])
    );
    rt.block_on(async {
        assert_eq!(
            moto::desired_shadow(&data, "dev-IZWB", Some("security")).await,
            Some(json!({"quarantine": true}))
        );
        assert_eq!(
            moto::desired_shadow(&data, "dev-IZWB", None).await,
            None,
            "classic shadow untouched"
        );
        assert!(
            moto::groups_for_thing(&iot, "dev-IZWB").await.is_empty(),
            "group function not run"
        );
    });
    let (output, _) = replay_against(
        &moto,
        &["--function", "group", "--quarantine-group", "Isolation"],
        &[file],
    );
    assert_eq!(output.status.code(), Some(0));
    rt.block_on(async {
        assert_eq!(
            moto::groups_for_thing(&iot, "dev-IZWB").await,
            vec!["Isolation".to_string()]
        );
    });
}

#[test]
fn replay_reports_a_missing_thing_as_a_permanent_failure() {
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(async {
        let iot = moto::iot_client(&moto.endpoint).await;
        moto::create_thing_group(&iot, "Quarantine").await;
    });
    let file = events_dir().join("sns-num-messages-sent-in-alarm.json");
    let (output, lines) = replay_against(&moto, &["--function", "group"], &[file]);
    assert_eq!(output.status.code(), Some(1), "a failed action exits 1");
    let line = &lines[0];
    assert_eq!(line["outcome"], "failed");
    assert_eq!(line["retryable"], false);
    assert_eq!(line["actions"][0]["code"], "ResourceNotFoundException");
    let message = line["actions"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("dev-IZWB"), "{message}");
}

#[test]
fn both_functions_share_one_data_plane_lookup() {
    // Group (with its disconnect) and shadow both use the data plane: one DescribeEndpoint
    // at start-up serves both.
    let aws = test_harness::StandIn::start();
    let output = Command::new(env!("CARGO_BIN_EXE_replay"))
        .env_clear()
        .envs(local_aws_env(None).vars())
        .env("AWS_ENDPOINT_URL_IOT", aws.endpoint())
        .args(["--function", "both"])
        .arg(events_dir().join("sns-num-messages-sent-in-alarm.json"))
        .output()
        .expect("replay runs");
    assert!(
        !lines(&output).is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(aws.count(test_harness::Op::DescribeEndpoint), 1);
}

#[test]
fn with_the_ledger_each_function_acts_from_its_own_place_and_a_duplicate_calls_nothing() {
    let moto = Moto::start();
    let rt = runtime();
    let (iot, data, dynamodb) = rt.block_on(async {
        (
            moto::iot_client(&moto.endpoint).await,
            moto::data_client(&moto.endpoint).await,
            moto::dynamodb_client(&moto.endpoint),
        )
    });
    rt.block_on(async {
        moto::create_thing_group(&iot, "Quarantine").await;
        moto::create_thing(&iot, "dev-IZWB").await;
        moto::create_ledger_table(&dynamodb, "ledger").await;
    });
    let file = events_dir().join("sns-num-messages-sent-in-alarm.json");
    let args = ["--function", "both", "--ledger-table", "ledger"];
    let (output, first) = replay_against(&moto, &args, std::slice::from_ref(&file));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let per_function = |lines: &[Value]| -> Vec<(String, String, Value)> {
        lines
            .iter()
            .map(|l| {
                (
                    l["function"].as_str().unwrap_or("-").to_owned(),
                    l["outcome"].as_str().unwrap_or("-").to_owned(),
                    l["actions"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        per_function(&first),
        [
            (
                "group".to_owned(),
                "done".to_owned(),
                json!([{"action": "thing-group", "outcome": "done", "thing": "dev-IZWB"}])
            ),
            (
                "shadow".to_owned(),
                "done".to_owned(),
                json!([{"action": "shadow", "outcome": "done", "thing": "dev-IZWB"}])
            ),
        ]
    );
    // The same alert again: each function finds its cause recorded and calls nothing.
    let (output, again) = replay_against(&moto, &args, std::slice::from_ref(&file));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        per_function(&again),
        [
            ("group".to_owned(), "done".to_owned(), json!([])),
            ("shadow".to_owned(), "done".to_owned(), json!([])),
        ]
    );
    rt.block_on(async {
        assert_eq!(
            moto::groups_for_thing(&iot, "dev-IZWB").await,
            vec!["Quarantine".to_string()]
        );
        assert_eq!(
            moto::desired_shadow(&data, "dev-IZWB", None).await,
            Some(json!({"quarantine": true}))
        );
        let history = moto::ledger_history(&dynamodb, "ledger", "dev-IZWB").await;
        let entries: Vec<(&str, &str, &str)> = history
            .iter()
            .map(|e| {
                let text = |k: &str| e.get(k).map_or("", String::as_str);
                (text("function"), text("causeId"), text("outcome"))
            })
            .collect();
        let mut entries = entries;
        entries.sort();
        assert_eq!(
            entries,
            [
                ("group", "37e18651d207bbc74236c13faf146127", "done"),
                ("shadow", "37e18651d207bbc74236c13faf146127", "done"),
            ],
            "one entry per function, naming the violation; the duplicate is not history"
        );
    });
}
