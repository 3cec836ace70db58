//! The agent against a real MQTT broker (mosquitto) with mutual TLS, a client playing AWS IoT.

use crate::common;

use std::path::Path;

use common::{Agent, Aws, Broker, accepted, agent_args, assert_follows_spec, pki, rejected};
use serde_json::{Value, json};

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// The agent's arguments plus commands that append `quarantine` or `release` to `marks`.
fn with_commands(mut args: Vec<String>, marks: &Path) -> Vec<String> {
    for what in ["quarantine", "release"] {
        args.push(format!("--{what}-command"));
        args.push(format!("echo {what} >> {}", sh_quote(marks)));
    }
    args
}

fn marks(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn delta(version: u64, flag: Value) -> String {
    json!({"version": version, "timestamp": 1, "state": {"quarantine": flag}, "metadata": {}})
        .to_string()
}

/// The `update/documents` message of an update that left `desired` as given (`None`: cleared)
/// and `reported.quarantine` true.
fn documents(version: u64, desired: Option<Value>) -> String {
    let mut state = json!({"reported": {"quarantine": true}});
    if let Some(desired) = desired {
        state["desired"] = desired;
    }
    json!({"previous": {}, "current": {"state": state, "version": version}, "timestamp": 1})
        .to_string()
}

fn applied(state_file: &Path) -> Value {
    let state: Value = serde_json::from_str(&std::fs::read_to_string(state_file).unwrap()).unwrap();
    json!({"quarantined": state["quarantined"], "shadow_version": state["shadow_version"]})
}

#[tokio::test]
async fn report_follows_the_spec_and_is_accepted() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-accepted";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let state = pki.dir.path().join("state.json");
    let mut args = agent_args(&pki, &broker, thing, &state);
    args.push("--once".into());
    let agent = Agent::spawn(&args);

    let topic = format!("$aws/things/{thing}/defender/metrics/json");
    let report = aws.next_json(&topic).await;
    assert_follows_spec(&report);
    assert!(
        report["cmet"]["num_child_procs_myapp"][0]["number"].is_u64(),
        "{report}"
    );
    // The first report after start-up has no traffic delta to give.
    assert!(report["met"].get("ns").is_none());
    aws.send(&format!("{topic}/accepted"), accepted(thing))
        .await;

    let (status, log) = agent.exit().await;
    assert!(status.success(), "{log}");
    let rid = report["hed"]["rid"].as_u64().unwrap();
    assert!(log.contains(&format!("report {rid} accepted")), "{log}");
}

#[tokio::test]
async fn a_rejected_report_is_logged_with_the_error_code_and_message() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-rejected";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let mut args = agent_args(&pki, &broker, thing, &pki.dir.path().join("state.json"));
    args.push("--once".into());
    let agent = Agent::spawn(&args);

    let topic = format!("$aws/things/{thing}/defender/metrics/json");
    aws.next(&topic).await;
    aws.send(
        &format!("{topic}/rejected"),
        rejected(
            thing,
            "InvalidPayload",
            "Custom metric value must be an array",
        ),
    )
    .await;
    let (status, log) = agent.exit().await;
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("rejected: InvalidPayload: Custom metric value must be an array"),
        "{log}"
    );
}

#[tokio::test]
async fn report_ids_keep_increasing_across_restarts() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-rid";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let state = pki.dir.path().join("state.json");
    let topic = format!("$aws/things/{thing}/defender/metrics/json");
    let mut once = agent_args(&pki, &broker, thing, &state);
    once.push("--once".into());

    let mut rids = Vec::new();
    for _ in 0..2 {
        let agent = Agent::spawn(&once);
        let report = aws.next_json(&topic).await;
        rids.push(report["hed"]["rid"].as_u64().unwrap());
        aws.send(&format!("{topic}/accepted"), accepted(thing))
            .await;
        let (status, log) = agent.exit().await;
        assert!(status.success(), "{log}");
    }
    assert!(rids[1] > rids[0], "{rids:?}");

    // A clock that went back (or a last id from the future) still gives a larger id.
    let ahead = rids[1] + 10_000_000_000;
    std::fs::write(&state, json!({"last_rid": ahead}).to_string()).unwrap();
    let agent = Agent::spawn(&once);
    let report = aws.next_json(&topic).await;
    assert_eq!(report["hed"]["rid"].as_u64(), Some(ahead + 1));
    aws.send(&format!("{topic}/accepted"), accepted(thing))
        .await;
    assert!(agent.exit().await.0.success());
}

#[tokio::test]
async fn cbor_reports_go_to_the_cbor_topic() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-cbor";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let mut args = agent_args(&pki, &broker, thing, &pki.dir.path().join("state.json"));
    args.extend(["--once".into(), "--format".into(), "cbor".into()]);
    let agent = Agent::spawn(&args);

    let topic = format!("$aws/things/{thing}/defender/metrics/cbor");
    let p = aws.next(&topic).await;
    let report: Value = ciborium::from_reader(&p.payload[..]).unwrap();
    assert_follows_spec(&report);
    let mut reply = Vec::new();
    ciborium::into_writer(
        &serde_json::from_slice::<Value>(&accepted(thing)).unwrap(),
        &mut reply,
    )
    .unwrap();
    aws.send(&format!("{topic}/accepted"), reply).await;
    let (status, log) = agent.exit().await;
    assert!(status.success(), "{log}");
}

/// The daemon on a named shadow: a delta quarantines, removing the flag releases, and a report
/// rejected in between is logged.
#[tokio::test]
async fn quarantine_flag_runs_the_commands_and_is_reported() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-quarantine";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks = pki.dir.path().join("commands.log");
    let mut args = agent_args(&pki, &broker, thing, &pki.dir.path().join("state.json"));
    args.extend([
        "--shadow-name".into(),
        "security".into(),
        "--quarantine-command".into(),
        format!(
            "echo \"quarantine $THING_NAME $QUARANTINE\" >> {}",
            sh_quote(&marks)
        ),
        "--release-command".into(),
        format!(
            "echo \"release $THING_NAME $QUARANTINE\" >> {}",
            sh_quote(&marks)
        ),
    ]);
    let agent = Agent::spawn(&args);
    let shadow = format!("$aws/things/{thing}/shadow/name/security");
    let metrics = format!("$aws/things/{thing}/defender/metrics/json");

    // The first report goes out right after connecting, without waiting for the interval.
    let report = aws.next_json(&metrics).await;
    assert_follows_spec(&report);
    let rid = report["hed"]["rid"].as_u64().unwrap();
    aws.send(
        &format!("{metrics}/rejected"),
        rejected(thing, "InvalidPayload", "Malformed report"),
    )
    .await;
    agent
        .wait_log(
            &format!("report {rid} rejected: InvalidPayload: Malformed report"),
            1,
        )
        .await;

    // At start-up the agent reads the shadow; there is none yet.
    let read = aws.next_read(&shadow).await;
    aws.answer_no_shadow(&shadow, &read).await;

    aws.send(
        &format!("{shadow}/update/delta"),
        json!({"version": 2, "timestamp": 1, "state": {"quarantine": true}, "metadata": {}})
            .to_string(),
    )
    .await;
    let update = aws.next_json(&format!("{shadow}/update")).await;
    assert_eq!(update, json!({"state": {"reported": {"quarantine": true}}}));
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        format!("quarantine {thing} true\n")
    );

    // The flag is removed: update/documents shows desired without it. That is no release.
    aws.send(
        &format!("{shadow}/update/documents"),
        json!({
            "previous": {"state": {"desired": {"quarantine": true}, "reported": {"quarantine": true}}, "version": 3},
            "current": {"state": {"desired": {}, "reported": {"quarantine": true}}, "version": 4},
            "timestamp": 2
        })
        .to_string(),
    )
    .await;
    // An older document is ignored, and the agent reads the shadow again: that read also shows
    // that the agent is done with the documents sent before.
    aws.send(&format!("{shadow}/update/delta"), delta(3, json!(false)))
        .await;
    aws.next_read(&shadow).await;
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        format!("quarantine {thing} true\n")
    );
    let log = agent.log();
    assert!(
        log.contains("shadow version 4: desired.quarantine is missing; keeping the quarantine"),
        "{log}"
    );
    assert!(
        log.contains("ignored shadow document version 3: older than version 4"),
        "{log}"
    );

    // Only an explicit false releases.
    aws.send(&format!("{shadow}/update/delta"), delta(5, json!(false)))
        .await;
    let update = aws.next_json(&format!("{shadow}/update")).await;
    assert_eq!(
        update,
        json!({"state": {"reported": {"quarantine": false}}})
    );
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        format!("quarantine {thing} true\nrelease {thing} false\n")
    );
}

/// Deleting the shadow is no release, not even for an agent restarted since: it keeps the
/// quarantine (and its state file says so), does not create the shadow again by reporting to
/// it, and ignores a document older than the deleted one.
#[tokio::test]
async fn a_deleted_shadow_keeps_the_quarantine_across_restarts() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-deleted";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks_file = pki.dir.path().join("commands.log");
    let state = pki.dir.path().join("state.json");
    let args = with_commands(agent_args(&pki, &broker, thing, &state), &marks_file);
    let shadow = format!("$aws/things/{thing}/shadow");
    let update = format!("{shadow}/update");

    let agent = Agent::spawn(&args);
    let read = aws.next_read(&shadow).await;
    assert!(read.is_string(), "the read carries a clientToken: {read}");
    aws.answer_read(
        &shadow,
        &read,
        json!({"state": {"desired": {"quarantine": true}}, "version": 3, "timestamp": 1}),
    )
    .await;
    assert_eq!(
        aws.next_json(&update).await,
        json!({"state": {"reported": {"quarantine": true}}})
    );
    aws.send(
        &format!("{shadow}/delete/accepted"),
        json!({"version": 4, "timestamp": 2}).to_string(),
    )
    .await;
    agent
        .wait_log(
            "shadow version 4: the shadow was deleted or does not exist; keeping the quarantine",
            1,
        )
        .await;
    drop(agent);

    let agent = Agent::spawn(&args);
    let read = aws.next_read(&shadow).await;
    aws.answer_no_shadow(&shadow, &read).await;
    agent
        .wait_log(
            "shadow version (none): the shadow was deleted or does not exist; keeping the quarantine",
            1,
        )
        .await;
    // Older than the deleted document, which the restarted agent remembers.
    aws.send(&format!("{shadow}/update/delta"), delta(2, json!(false)))
        .await;
    aws.next_read(&shadow).await;
    assert_eq!(marks(&marks_file), "quarantine\n");
    assert_eq!(
        applied(&state),
        json!({"quarantined": true, "shadow_version": 4})
    );

    // A shadow created again within 48 hours continues the deleted one's versions.
    aws.send(&format!("{shadow}/update/delta"), delta(5, json!(false)))
        .await;
    // The first update since the deletion is this release: nothing reported to the deleted shadow.
    assert_eq!(
        aws.next_json(&update).await,
        json!({"state": {"reported": {"quarantine": false}}})
    );
    assert_eq!(marks(&marks_file), "quarantine\nrelease\n");
}

#[tokio::test]
async fn a_non_boolean_or_cleared_flag_keeps_the_quarantine() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-not-boolean";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks_file = pki.dir.path().join("commands.log");
    let state = pki.dir.path().join("state.json");
    let args = with_commands(agent_args(&pki, &broker, thing, &state), &marks_file);
    let shadow = format!("$aws/things/{thing}/shadow");

    let agent = Agent::spawn(&args);
    let read = aws.next_read(&shadow).await;
    aws.answer_no_shadow(&shadow, &read).await;
    aws.send(&format!("{shadow}/update/delta"), delta(3, json!(true)))
        .await;
    aws.next(&format!("{shadow}/update")).await;
    let topic = format!("{shadow}/update/documents");
    aws.send(&topic, documents(4, Some(json!({"quarantine": "false"}))))
        .await;
    aws.send(&topic, documents(5, Some(json!({"quarantine": 0}))))
        .await;
    aws.send(&topic, documents(6, None)).await;
    aws.send(&format!("{shadow}/update/delta"), delta(4, json!(false)))
        .await;
    aws.next_read(&shadow).await;

    assert_eq!(marks(&marks_file), "quarantine\n");
    assert_eq!(
        applied(&state),
        json!({"quarantined": true, "shadow_version": 6})
    );
    let log = agent.log();
    for kept in [
        r#"shadow version 4: desired.quarantine is "false", not true or false; keeping the quarantine"#,
        "shadow version 5: desired.quarantine is 0, not true or false; keeping the quarantine",
        "shadow version 6: the shadow has no desired state; keeping the quarantine",
        "ignored shadow document version 4: older than version 6",
    ] {
        assert!(log.contains(kept), "{kept:?} not in\n{log}");
    }
}

/// An older document is ignored and makes the agent read the shadow; the answer to that read is
/// the shadow as it is, even with a lower version: a shadow deleted more than 48 hours before
/// starts again from version 0.
#[tokio::test]
async fn an_older_document_is_ignored_and_the_read_that_follows_is_obeyed() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-older";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks_file = pki.dir.path().join("commands.log");
    let state = pki.dir.path().join("state.json");
    let args = with_commands(agent_args(&pki, &broker, thing, &state), &marks_file);
    let shadow = format!("$aws/things/{thing}/shadow");

    let agent = Agent::spawn(&args);
    let read = aws.next_read(&shadow).await;
    let quarantined = json!({"state": {"desired": {"quarantine": true}}, "version": 10});
    aws.answer_read(&shadow, &read, quarantined).await;
    aws.next(&format!("{shadow}/update")).await;
    aws.send(&format!("{shadow}/update/delta"), delta(9, json!(false)))
        .await;
    let read = aws.next_read(&shadow).await;
    assert_eq!(marks(&marks_file), "quarantine\n");
    // An answer to another client's read is compared with the version taken into account.
    aws.answer_read(
        &shadow,
        &json!("someone-else"),
        json!({"state": {"desired": {"quarantine": false}}, "version": 2}),
    )
    .await;
    aws.answer_read(
        &shadow,
        &read,
        json!({"state": {"desired": {"quarantine": false}, "reported": {"quarantine": true}}, "version": 2}),
    )
    .await;
    assert_eq!(
        aws.next_json(&format!("{shadow}/update")).await,
        json!({"state": {"reported": {"quarantine": false}}})
    );
    assert_eq!(marks(&marks_file), "quarantine\nrelease\n");
    let log = agent.log();
    assert!(
        log.contains("ignored shadow document version 2: older than version 10"),
        "{log}"
    );
    assert!(
        log.contains("the shadow's version went back from 10 to 2"),
        "{log}"
    );
}

/// For the Strict quarantine policy, which denies publishing to the shadow's update topic: the
/// agent obeys the flag without ever reporting it.
#[tokio::test]
async fn without_reporting_the_agent_obeys_and_never_publishes_to_update() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-strict";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks_file = pki.dir.path().join("commands.log");
    let state = pki.dir.path().join("state.json");
    let mut args = with_commands(agent_args(&pki, &broker, thing, &state), &marks_file);
    args.push("--no-report-quarantine".into());
    let shadow = format!("$aws/things/{thing}/shadow");
    let update = format!("{shadow}/update");

    let agent = Agent::spawn(&args);
    let read = aws.next_read(&shadow).await;
    let quarantined = json!({"state": {"desired": {"quarantine": true}}, "version": 3});
    aws.answer_read(&shadow, &read, quarantined.clone()).await;
    // An older document makes the agent read again: by then it is done with the first answer.
    aws.send(&format!("{shadow}/update/delta"), delta(2, json!(false)))
        .await;
    let read = aws.next_read(&shadow).await;
    assert_eq!(marks(&marks_file), "quarantine\n");
    assert_eq!(aws.count(&update), 0);
    aws.answer_read(&shadow, &read, quarantined).await;

    aws.send(&format!("{shadow}/update/delta"), delta(4, json!(false)))
        .await;
    aws.send(&format!("{shadow}/update/delta"), delta(1, json!(true)))
        .await;
    aws.next_read(&shadow).await;
    assert_eq!(marks(&marks_file), "quarantine\nrelease\n");
    assert_eq!(aws.count(&update), 0);
    drop(agent);
}

/// A device quarantined while offline obeys at its next start-up, and a restart does not run the
/// command again.
#[tokio::test]
async fn a_quarantine_set_while_offline_is_obeyed_at_start_up() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-offline";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let marks = pki.dir.path().join("commands.log");
    let mut args = agent_args(&pki, &broker, thing, &pki.dir.path().join("state.json"));
    args.extend([
        "--quarantine-command".into(),
        format!("echo quarantine >> {}", sh_quote(&marks)),
    ]);
    let shadow = format!("$aws/things/{thing}/shadow");
    let doc = |reported: Option<bool>| {
        let mut state = json!({"desired": {"quarantine": true}});
        if let Some(r) = reported {
            state["reported"] = json!({"quarantine": r});
        }
        json!({"state": state, "version": 7, "timestamp": 1}).to_string()
    };

    let agent = Agent::spawn(&args);
    aws.next(&format!("{shadow}/get")).await;
    aws.send(&format!("{shadow}/get/accepted"), doc(None)).await;
    let update = aws.next_json(&format!("{shadow}/update")).await;
    assert_eq!(update, json!({"state": {"reported": {"quarantine": true}}}));
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), "quarantine\n");
    let metrics = format!("$aws/things/{thing}/defender/metrics/json");
    aws.next(&metrics).await;
    drop(agent);

    let agent = Agent::spawn(&args);
    aws.next(&format!("{shadow}/get")).await;
    aws.send(&format!("{shadow}/get/accepted"), doc(Some(true)))
        .await;
    // The agent handles messages in order: once it logs the answer to its report, it has
    // handled the shadow document sent before it.
    aws.next(&metrics).await;
    aws.send(&format!("{metrics}/accepted"), accepted(thing))
        .await;
    agent.wait_log(" accepted", 1).await;
    agent.wait_log("shadow read", 1).await;
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), "quarantine\n");
    assert!(!agent.log().contains("shadow asks for"), "{}", agent.log());
}

#[tokio::test]
async fn the_agent_reconnects_and_subscribes_again_after_the_broker_restarts() {
    let pki = pki();
    let mut broker = Broker::start(&pki);
    let thing = "thing-reconnect";
    let marks = pki.dir.path().join("commands.log");
    let mut args = agent_args(&pki, &broker, thing, &pki.dir.path().join("state.json"));
    args.extend([
        "--quarantine-command".into(),
        format!("echo quarantine >> {}", sh_quote(&marks)),
    ]);
    let shadow = format!("$aws/things/{thing}/shadow");
    let agent = Agent::spawn(&args);
    agent.wait_log("connected", 1).await;

    broker.stop();
    agent.wait_log("connection lost", 1).await;
    // The new broker knows nothing of the old session: the agent must subscribe again.
    let broker = Broker::start_on(&pki, broker.port);
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    aws.next(&format!("{shadow}/get")).await;
    aws.send(
        &format!("{shadow}/update/delta"),
        json!({"version": 1, "state": {"quarantine": true}}).to_string(),
    )
    .await;
    let update = aws.next_json(&format!("{shadow}/update")).await;
    assert_eq!(update, json!({"state": {"reported": {"quarantine": true}}}));
    assert_eq!(agent.log().matches("session_present=false").count(), 2);
}

#[tokio::test]
async fn a_broker_refusing_the_certificate_is_a_clear_error() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let mut args = agent_args(
        &pki,
        &broker,
        "thing-stranger",
        &pki.dir.path().join("s.json"),
    );
    let cert = args.iter().position(|a| a == "--cert").unwrap();
    args[cert + 1] = pki.stranger.0.display().to_string();
    args[cert + 3] = pki.stranger.1.display().to_string();
    args.push("--once".into());
    let (status, log) = Agent::spawn(&args).exit().await;
    eprintln!("LOG {log}");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "defender-agent: cannot connect to 127.0.0.1:{}: the broker ended the TLS handshake (received fatal alert: UnknownCA)",
            broker.port
        )),
        "{log}"
    );
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_a_clear_error() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let mut args = agent_args(
        &pki,
        &broker,
        "thing-nobody",
        &pki.dir.path().join("s.json"),
    );
    let free_port = common::free_port();
    let port = args.iter().position(|a| a == "--port").unwrap();
    args[port + 1] = free_port.to_string();
    args.push("--once".into());
    let (status, log) = Agent::spawn(&args).exit().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "defender-agent: cannot connect to 127.0.0.1:{free_port}: I/O: Connection refused"
        )),
        "{log}"
    );
}

#[tokio::test]
async fn a_broker_refusing_the_connection_is_reported_and_retried() {
    let pki = pki();
    let broker = Broker::start_refusing(&pki);
    let thing = "thing-refused";
    let args = agent_args(&pki, &broker, thing, &pki.dir.path().join("s.json"));
    let refused = format!(
        "cannot connect to 127.0.0.1:{}: the broker refused the connection: not authorized (is the certificate active, attached to the thing, and does its policy allow iot:Connect as client id {thing}?)",
        broker.port
    );

    let mut once = args.clone();
    once.push("--once".into());
    let (status, log) = Agent::spawn(&once).exit().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(&format!("defender-agent: {refused}")), "{log}");

    // The daemon keeps trying, waiting 1 s after the first failure.
    let agent = Agent::spawn(&args);
    agent.wait_log(&format!("{refused}; retrying"), 2).await;
    let log = agent.log();
    // Log lines start with an RFC 3339 time stamp: ...THH:MM:SS.ffffffZ
    let seconds = |line: &str| -> f64 {
        let time = line.split(['T', 'Z']).nth(1).unwrap();
        time.split(':')
            .map(|f| f.parse::<f64>().unwrap())
            .fold(0.0, |acc, f| acc * 60.0 + f)
    };
    let attempts: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("retrying"))
        .map(seconds)
        .collect();
    let gap = attempts[1] - attempts[0];
    assert!(
        (0.9..5.0).contains(&gap),
        "{gap} s between attempts; log:\n{log}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_daemon_cleanly() {
    let pki = pki();
    let broker = Broker::start(&pki);
    let thing = "thing-sigterm";
    let mut aws = Aws::connect(&pki, &broker, thing).await;
    let agent = Agent::spawn(&agent_args(
        &pki,
        &broker,
        thing,
        &pki.dir.path().join("state.json"),
    ));
    aws.next(&format!("$aws/things/{thing}/defender/metrics/json"))
        .await;
    agent.terminate();
    let (status, log) = agent.exit().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("stopping"), "{log}");
}
