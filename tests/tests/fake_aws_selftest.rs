//! Self-test of the fake AWS endpoint, through the real SDK clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::config::timeout::TimeoutConfig;
use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_iot::error::ProvideErrorMetadata;
use integration_tests::fake_aws::{FakeAws, FakeAwsConfig, Fault, op};
use serde_json::{Value, json};

fn retry(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(1))
}

fn iot_with(fake: &FakeAws, retry: RetryConfig, timeout: Option<Duration>) -> aws_sdk_iot::Client {
    let mut builder = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(fake.endpoint())
        .retry_config(retry);
    if let Some(timeout) = timeout {
        builder = builder.timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(timeout)
                .build(),
        );
    }
    aws_sdk_iot::Client::from_conf(builder.build())
}

fn iot(fake: &FakeAws) -> aws_sdk_iot::Client {
    iot_with(fake, retry(1), None)
}

fn data(fake: &FakeAws, max_attempts: u32) -> aws_sdk_iotdataplane::Client {
    let config = aws_sdk_iotdataplane::Config::builder()
        .behavior_version(aws_sdk_iotdataplane::config::BehaviorVersion::latest())
        .region(aws_sdk_iotdataplane::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iotdataplane::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(fake.endpoint())
        .retry_config(
            aws_sdk_iotdataplane::config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    aws_sdk_iotdataplane::Client::from_conf(config)
}

async fn add(client: &aws_sdk_iot::Client, group: &str, thing: &str) -> Result<(), String> {
    client
        .add_thing_to_thing_group()
        .thing_group_name(group)
        .thing_name(thing)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("<no code>").to_string())
}

fn shadow_doc(value: Value) -> aws_sdk_iotdataplane::primitives::Blob {
    aws_sdk_iotdataplane::primitives::Blob::new(value.to_string().into_bytes())
}

#[tokio::test]
async fn add_thing_to_thing_group_updates_membership() {
    let fake = FakeAws::start(FakeAwsConfig::new());
    let client = iot(&fake);
    add(&client, "quarantine", "sensor-1").await.unwrap();
    assert!(fake.group_members("quarantine").contains("sensor-1"));
    assert_eq!(fake.count(op::ADD_THING_TO_THING_GROUP), 1);
    let call = &fake.calls()[0];
    assert_eq!(
        (call.status, call.thing.as_deref()),
        (200, Some("sensor-1"))
    );

    client
        .remove_thing_from_thing_group()
        .thing_group_name("quarantine")
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    assert!(fake.group_members("quarantine").is_empty());

    client
        .update_thing_groups_for_thing()
        .thing_name("sensor-1")
        .thing_groups_to_add("quarantine")
        .thing_groups_to_remove("normal")
        .send()
        .await
        .unwrap();
    let groups = client
        .list_thing_groups_for_thing()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = groups
        .thing_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    assert_eq!(names, ["quarantine"]);
    assert_eq!(fake.count(op::UPDATE_THING_GROUPS_FOR_THING), 1);
}

#[tokio::test]
async fn update_thing_shadow_merges_desired_state() {
    let fake = FakeAws::start(FakeAwsConfig::new());
    let client = data(&fake, 1);
    let out = client
        .update_thing_shadow()
        .thing_name("sensor-1")
        .payload(shadow_doc(
            json!({"state": {"desired": {"quarantine": true, "reason": "x"}}}),
        ))
        .send()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["state"]["desired"]["quarantine"], true);
    assert_eq!(
        fake.shadow_desired("sensor-1", None),
        Some(json!({"quarantine": true, "reason": "x"}))
    );

    // Named shadow, and null deletes a key.
    client
        .update_thing_shadow()
        .thing_name("sensor-1")
        .shadow_name("defender")
        .payload(shadow_doc(
            json!({"state": {"desired": {"quarantine": true}}}),
        ))
        .send()
        .await
        .unwrap();
    client
        .update_thing_shadow()
        .thing_name("sensor-1")
        .payload(shadow_doc(json!({"state": {"desired": {"reason": null}}})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fake.shadow_desired("sensor-1", None),
        Some(json!({"quarantine": true}))
    );
    assert_eq!(
        fake.shadow_desired("sensor-1", Some("defender")),
        Some(json!({"quarantine": true}))
    );
    assert_eq!(fake.shadow_version("sensor-1", None), Some(2));

    // A stale version is a 409 ConflictException.
    let err = client
        .update_thing_shadow()
        .thing_name("sensor-1")
        .payload(shadow_doc(
            json!({"state": {"desired": {"a": 1}}, "version": 1}),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ConflictException"));

    let got = client
        .get_thing_shadow()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let got: Value = serde_json::from_slice(got.payload().unwrap().as_ref()).unwrap();
    assert_eq!(got["state"]["desired"]["quarantine"], true);
}

#[tokio::test]
async fn throttle_times_then_success_with_sdk_retries() {
    let fake = FakeAws::start(FakeAwsConfig::new().fault_for_thing("t1", Fault::ThrottleTimes(2)));
    let client = iot_with(&fake, retry(3), None);
    add(&client, "quarantine", "t1").await.unwrap();
    assert_eq!(fake.count(op::ADD_THING_TO_THING_GROUP), 3);
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 400, 200]);
    assert!(fake.group_members("quarantine").contains("t1"));

    // Data plane throttling is a 429.
    fake.set_fault("t2", Fault::ThrottleTimes(1));
    data(&fake, 2)
        .update_thing_shadow()
        .thing_name("t2")
        .payload(shadow_doc(
            json!({"state": {"desired": {"quarantine": true}}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(fake.count_status(op::UPDATE_THING_SHADOW, 429), 1);
    assert_eq!(fake.count_status(op::UPDATE_THING_SHADOW, 200), 1);
}

#[tokio::test]
async fn error_codes_reach_the_sdk() {
    let fake = FakeAws::start(
        FakeAwsConfig::new()
            .fault_for_thing("throttled", Fault::ThrottleTimes(5))
            .fault_for_thing("gone", Fault::NotFound)
            .fault_for_thing("broken", Fault::Always5xx)
            .fault_for_thing("full", Fault::LimitExceeded),
    );
    let client = iot(&fake);
    let err = client
        .add_thing_to_thing_group()
        .thing_group_name("q")
        .thing_name("throttled")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert!(err.as_service_error().unwrap().is_throttling_exception());

    let err = client
        .add_thing_to_thing_group()
        .thing_group_name("q")
        .thing_name("gone")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    // NotFound leaves the shadow (data plane) alone, as AWS does for a deleted thing.
    data(&fake, 1)
        .update_thing_shadow()
        .thing_name("gone")
        .payload(shadow_doc(
            json!({"state": {"desired": {"quarantine": true}}}),
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(
        add(&client, "q", "broken").await,
        Err("InternalFailureException".into())
    );
    assert_eq!(
        add(&client, "q", "full").await,
        Err("InvalidRequestException".into())
    );
    assert_eq!(fake.count_status(op::ADD_THING_TO_THING_GROUP, 500), 1);
}

#[tokio::test]
async fn ten_group_limit_is_enforced_by_state() {
    let mut config = FakeAwsConfig::new();
    for i in 0..10 {
        config = config.member(format!("g{i}"), "busy");
    }
    let fake = FakeAws::start(config);
    let client = iot(&fake);
    assert_eq!(
        add(&client, "q", "busy").await,
        Err("InvalidRequestException".into())
    );
    add(&client, "g3", "busy").await.unwrap(); // already a member: fine
    assert!(!fake.group_members("q").contains("busy"));
    client
        .update_thing_groups_for_thing()
        .thing_name("busy")
        .thing_groups_to_add("q")
        .thing_groups_to_remove("g0")
        .send()
        .await
        .unwrap();
    assert_eq!(fake.groups_of("busy").len(), 10);
    assert!(fake.group_members("q").contains("busy"));
}

#[tokio::test]
async fn latency_is_injected() {
    let latency = Duration::from_millis(150);
    let fake = FakeAws::start(FakeAwsConfig::new().latency(latency));
    let client = iot(&fake);
    let started = Instant::now();
    add(&client, "q", "slow").await.unwrap();
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
}

#[tokio::test]
async fn hang_first_times_out_then_succeeds() {
    let fake = FakeAws::start(
        FakeAwsConfig::new().fault_for_thing("sleepy", Fault::HangFirst(1, Duration::from_secs(5))),
    );
    let client = iot_with(&fake, retry(2), Some(Duration::from_millis(300)));
    let started = Instant::now();
    add(&client, "q", "sleepy").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.count(op::ADD_THING_TO_THING_GROUP), 2);

    // Hang forever (relative to the timeout) with no retry: a timeout error.
    fake.set_fault("sleepy", Fault::Hang(Duration::from_secs(5)));
    let client = iot_with(&fake, retry(1), Some(Duration::from_millis(200)));
    let err = client
        .add_thing_to_thing_group()
        .thing_group_name("q")
        .thing_name("sleepy")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err, aws_sdk_iot::error::SdkError::TimeoutError(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limit_and_failure_share() {
    let fake = FakeAws::start(FakeAwsConfig::new().rate_limit_with_burst(1.0, 3.0));
    let client = iot(&fake);
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(add(&client, "q", &format!("r{i}")).await);
    }
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    assert_eq!(fake.count_status(op::ADD_THING_TO_THING_GROUP, 400), 2);
    drop(fake);

    let run = |seed| async move {
        let fake = FakeAws::start(FakeAwsConfig::new().failure_share(0.3).seed(seed));
        let client = iot(&fake);
        let mut outcome = Vec::new();
        for i in 0..40 {
            outcome.push(add(&client, "q", &format!("f{i}")).await.is_ok());
        }
        outcome
    };
    let first = run(7).await;
    let failed = first.iter().filter(|ok| !**ok).count();
    assert!((4..=20).contains(&failed), "{failed} of 40 failed");
    assert_eq!(first, run(7).await, "same seed, same failures");
}

#[tokio::test]
async fn list_active_violations_and_describe_endpoint_parse() {
    let fake = FakeAws::start(FakeAwsConfig::new().active_violations_for(
        "sensor-1",
        vec![json!({
            "violationId": "v-1",
            "thingName": "sensor-1",
            "securityProfileName": "profile",
            "behavior": {"name": "too-many-bytes", "metric": "aws:all-bytes-out"},
            "lastViolationValue": {"count": 12345},
            "violationStartTime": 1_700_000_000.5,
        })],
    ));
    let client = iot(&fake);
    let out = client
        .list_active_violations()
        .thing_name("sensor-1")
        .send()
        .await
        .unwrap();
    let violations = out.active_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].violation_id(), Some("v-1"));
    assert_eq!(
        violations[0].behavior().map(|b| b.name()),
        Some("too-many-bytes")
    );
    assert_eq!(
        violations[0].last_violation_value().and_then(|v| v.count()),
        Some(12345)
    );
    let none = client
        .list_active_violations()
        .thing_name("other")
        .send()
        .await
        .unwrap();
    assert!(none.active_violations().is_empty());

    let endpoint = client
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        endpoint.endpoint_address(),
        Some(fake.endpoint().trim_start_matches("http://"))
    );
}

fn raw(fake: &FakeAws, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

#[test]
fn raw_http_edge_cases() {
    let fake = FakeAws::start(FakeAwsConfig::new());
    // Unknown route.
    let out = raw(
        &fake,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(
        out.contains("x-amzn-ErrorType: UnknownOperationException"),
        "{out}"
    );
    // Chunked body with Expect: 100-continue.
    let body = r#"{"thingGroupName":"q","thingName":"chunky"}"#;
    let request = format!(
        "PUT /thing-groups/addThingToThingGroup HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let out = raw(&fake, request.as_bytes());
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    assert!(fake.group_members("q").contains("chunky"));
    // Garbage: a 400, no panic, and the server keeps serving.
    let out = raw(&fake, b"\x00\x01garbage\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let out = raw(&fake, b"PUT /thing-groups/addThingToThingGroup HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{{{{{");
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let out = raw(
        &fake,
        b"GET /endpoint HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[test]
fn stop_does_not_hang() {
    let mut fake = FakeAws::start(FakeAwsConfig::new().latency(Duration::from_secs(30)));
    let addr = fake.addr();
    // A connection waiting on a delayed answer, and an idle keep-alive connection.
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting
        .write_all(b"GET /endpoint HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _idle = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    fake.stop();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after stop"
    );
    drop(fake);
}
