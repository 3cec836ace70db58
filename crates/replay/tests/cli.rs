//! The replay command line: output lines, exit status and help.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .env_remove("DRY_RUN")
        .env_remove("RELEASE_ON_CLEAR")
        .output()
        .expect("replay runs")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
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
    assert_eq!(
        lines.len(),
        21,
        "one line per record of the 14 sample files"
    );
    for line in &lines {
        assert!(
            line["thingName"].is_string() || line["thingName"].is_null(),
            "{line}"
        );
        assert!(
            ["quarantine", "release", "ignore", "reject"]
                .contains(&line["decision"].as_str().unwrap_or(""))
        );
        assert!(line["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let count = |d: &str| lines.iter().filter(|l| l["decision"] == d).count();
    assert_eq!(
        (
            count("quarantine"),
            count("ignore"),
            count("reject"),
            count("release")
        ),
        (12, 4, 5, 0)
    );
}

#[test]
fn configuration_flags_change_decisions() {
    let file = events_dir().join("sns-num-messages-sent-alarm-cleared.json");
    let file = file.to_str().expect("utf-8 path");
    assert_eq!(
        lines(&replay(&["--dry-run", "--release-on-clear", file]))[0]["decision"],
        "release"
    );
    let filtered = replay(&[
        "--dry-run",
        "--metric-filter",
        "aws:disconnect-duration",
        file,
    ]);
    assert_eq!(lines(&filtered)[0]["decision"], "ignore");
    let bad = replay(&["--dry-run", "--max-concurrency", "0", file]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MAX_CONCURRENCY"));
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
