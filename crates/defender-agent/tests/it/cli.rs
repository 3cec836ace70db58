//! The command line: help, configuration errors, the configuration file.

use std::process::{Command, Output};

use serde_json::{Value, json};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_defender-agent"))
        .args(args)
        .env_remove("SHADOW_NAME")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CONNECT: [&str; 10] = [
    "--endpoint",
    "abc123-ats.iot.eu-west-1.amazonaws.com",
    "--thing-name",
    "mything1",
    "--cert",
    "/nonexistent/device.pem.crt",
    "--key",
    "/nonexistent/private.pem.key",
    "--root-ca",
    "/nonexistent/AmazonRootCA1.pem",
];

#[test]
fn help_documents_every_option() {
    let out = agent(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--endpoint",
        "--port",
        "--thing-name",
        "--client-id",
        "--cert",
        "--key",
        "--root-ca",
        "--interval",
        "--format",
        "--long-names",
        "--shadow-name",
        "--quarantine-command",
        "--release-command",
        "--no-report-quarantine",
        "--command-timeout",
        "--state-file",
        "--proc-root",
        "--process-name",
        "--child-metric",
        "--no-child-metric",
        "--keep-alive",
        "--reconnect-max",
        "--print-report",
        "--once",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    assert!(help.contains("[env: SHADOW_NAME="));
}

#[test]
fn an_interval_below_300_seconds_is_refused() {
    let mut args = CONNECT.to_vec();
    args.extend(["--interval", "60"]);
    let out = agent(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--interval \"60\": at least 300 seconds"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = CONNECT.to_vec();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    args.extend(["--state-file", state]);
    let out = agent(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "defender-agent: --root-ca /nonexistent/AmazonRootCA1.pem: cannot read the file: No such file or directory"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_endpoint_is_refused_before_connecting() {
    let mut args = CONNECT.to_vec();
    args[1] = "https://abc123-ats.iot.eu-west-1.amazonaws.com:8883";
    let out = agent(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--endpoint \"https://abc123"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_configuration_file_adds_custom_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        r#"
process_name = "no-such-process"
child_metric = "kids"

[[custom_metric]]
name = "disk_free_mb"
type = "number"
command = "echo 512"

[[custom_metric]]
name = "resolvers"
type = "ip_list"
command = "printf '10.0.0.2\n::1\n'"

[[custom_metric]]
name = "broken"
type = "number"
command = "echo not-a-number"
"#,
    )
    .unwrap();
    let out = agent(&["--print-report", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["cmet"],
        json!({
            "kids": [{"number": 0}],
            "disk_free_mb": [{"number": 512}],
            "resolvers": [{"ip_list": ["10.0.0.2", "::1"]}]
        })
    );
    // A metric whose command misbehaves is left out, with a reason.
    assert!(
        stderr(&out).contains("custom metric left out of this report"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_configuration_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "thing = \"typo\"\n").unwrap();
    let out = agent(&["--print-report", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "--config {}: not a valid configuration file",
            config.display()
        )) && e.contains("unknown field `thing`"),
        "{e}"
    );
}

#[test]
fn long_names_on_request() {
    let out = agent(&["--print-report", "--long-names", "--no-child-metric"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["header"]["version"], "1.0");
    assert!(report["metrics"]["listening_tcp_ports"]["ports"].is_array());
}
