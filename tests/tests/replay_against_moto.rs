//! (a) `replay` against the moto emulator: exactly the quarantined things end in the
//! Quarantine group with `desired.quarantine == true`; ignored and rejected records change
//! nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use integration_tests::moto::{self, Moto};
use integration_tests::runtime_api::binary_path;
use integration_tests::workspace_root;
use serde_json::{Value, json};

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

fn sample_events() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn replay(moto: &Moto, args: &[&str], files: &[PathBuf]) -> (Output, Vec<Value>) {
    let output = Command::new(binary_path("replay"))
        .args(["--endpoint-url", &moto.endpoint, "--max-attempts", "1"])
        .args(args)
        .args(files)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("replay runs");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
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

    let (output, lines) = replay(&moto, &[], &sample_events());
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
            assert_eq!(l["outcome"], "done", "{l}");
            assert_eq!(l["actions"], json!([{"action": "thing-group", "outcome": "done"}, {"action": "shadow", "outcome": "done"}]));
            l["thingName"].as_str().expect("thing name")
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
    let (again, _) = replay(&moto, &[], &sample_events());
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
    let file = workspace_root().join("events/sns-num-messages-sent-in-alarm.json");
    let (output, lines) = replay(
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
        json!([{"action": "shadow", "outcome": "done"}])
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
    let (output, _) = replay(
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
    let file = workspace_root().join("events/sns-num-messages-sent-in-alarm.json");
    let (output, lines) = replay(&moto, &["--function", "group"], &[file]);
    assert_eq!(output.status.code(), Some(1), "a failed action exits 1");
    let line = &lines[0];
    assert_eq!(line["outcome"], "failed");
    assert_eq!(line["retryable"], false);
    assert_eq!(line["actions"][0]["code"], "ResourceNotFoundException");
    let message = line["actions"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("dev-IZWB"), "{message}");
}
