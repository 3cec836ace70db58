//! The quarantinectl command line without AWS: help, usage and configuration errors, dry run.

// Test code: a failed expectation is the point, so it may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn quarantinectl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarantinectl"));
    command.args(args);
    for name in ["QUARANTINE_GROUP", "SHADOW_NAME", "DISCONNECT", "DRY_RUN"] {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("quarantinectl runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_documents_every_option_and_the_exit_status() {
    let out = quarantinectl(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out);
    for word in [
        "status",
        "quarantine",
        "release",
        "--endpoint-url",
        "--region",
        "--profile",
        "--quarantine-group",
        "--shadow-name",
        "--iot-data-endpoint",
        "--certificate-record-attribute",
        "--no-disconnect",
        "--max-attempts",
        "Exit status",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let out = quarantinectl(&["quarantine", "--help"], &[]);
    let help = text(&out);
    for word in ["--reason", "--certificates", "--dry-run", "--json"] {
        assert!(
            help.contains(word),
            "quarantine --help lacks {word}:\n{help}"
        );
    }
    let help = text(&quarantinectl(&["status", "--help"], &[]));
    assert!(help.contains("--json"), "{help}");
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    for (args, env, expected) in [
        (vec!["quarantine", "dev-1"], vec![], "--reason"),
        (vec!["release"], vec![], "THING"),
        (vec!["frobnicate"], vec![], "frobnicate"),
        (
            vec!["quarantine", "not a thing", "--reason", "x"],
            vec![],
            "not a thing name",
        ),
        (
            vec!["status", "dev-1"],
            vec![("QUARANTINE_GROUP", "bad group")],
            "QUARANTINE_GROUP",
        ),
        (
            vec!["status", "dev-1", "--max-attempts", "99"],
            vec![],
            "AWS_MAX_ATTEMPTS",
        ),
    ] {
        let out = quarantinectl(&args, &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
}

#[test]
fn no_region_is_a_configuration_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_quarantinectl"))
        .args(["status", "dev-1"])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--region"), "{}", text(&out));
}

#[test]
fn a_dry_run_calls_nothing_and_names_every_action_and_the_operator() {
    let out = quarantinectl(
        &[
            "quarantine",
            "dev-1",
            "dev-2",
            "--reason",
            "looks odd",
            "--certificates",
            "--dry-run",
            "--json",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
        &[("USER", "alice")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, thing) in lines.iter().zip(["dev-1", "dev-2"]) {
        assert_eq!(line["thingName"], thing);
        assert_eq!(line["decision"], "quarantine");
        assert_eq!(line["outcome"], "dry-run");
        assert_eq!(line["requestSource"], "quarantinectl:alice");
        let actions: Vec<&str> = line["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["thing-group", "disconnect", "shadow", "certificate"]
        );
    }
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("operator request") && log.contains("alice") && log.contains("looks odd"),
        "{log}"
    );
    // A release has no disconnect; without --certificates no certificate action.
    let out = quarantinectl(
        &["release", "dev-1", "--reason", "ok", "--dry-run", "--json"],
        &[],
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = line["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["thing-group", "shadow"]);
}

/// A reason carrying a newline, a carriage return, an ANSI escape and a C1 control stays on
/// its log lines (escaped) and a long one is capped: quarantinectl's text log cannot be forged
/// line by line nor grow one line without bound.
#[test]
fn a_reason_cannot_forge_a_log_line_nor_make_it_unbounded() {
    let forged = "ok\n2026-12-04T00:00:00Z  INFO record done thing=victim FORGED\r\u{1b}[2J\u{85}";
    let reason = format!("{forged} {}", "y".repeat(100_000));
    let out = quarantinectl(
        &[
            "quarantine",
            "dev-1",
            "dev-2",
            "--reason",
            &reason,
            "--dry-run",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
        &[("USER", "alice"), ("RUST_LOG", "info")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(!log.contains('\u{1b}') && !log.contains('\r') && !log.contains('\u{85}'));
    let records = log.lines().filter(|l| l.contains("record_id=")).count();
    assert_eq!(records, 2, "one line per record:\n{log}");
    let forged_lines: Vec<&str> = log.lines().filter(|l| l.contains("FORGED")).collect();
    assert_eq!(
        forged_lines.len(),
        3,
        "the request line and two records:\n{log}"
    );
    for line in &forged_lines {
        assert!(
            (line.contains("record_id=") || line.contains("operator request"))
                && line.contains("ok\\n2026"),
            "{line}"
        );
    }
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 64 * 1024, "a {longest}-byte line");
    assert!(
        log.contains("more bytes left out"),
        "the cap says so:\n{log}"
    );
}
