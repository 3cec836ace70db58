//! Smoke test of the moto harness: the SDK fixture helpers against a real moto_server.

use integration_tests::moto::{self, Moto};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_groups_and_shadows_round_trip() {
    let server = Moto::start();
    let iot = moto::iot_client(&server.endpoint).await;
    let data = moto::data_client(&server.endpoint).await;

    moto::create_thing(&iot, "sensor-1").await;
    moto::create_thing_group(&iot, "quarantine").await;
    assert!(moto::groups_for_thing(&iot, "sensor-1").await.is_empty());
    assert_eq!(moto::desired_shadow(&data, "sensor-1", None).await, None);

    iot.add_thing_to_thing_group()
        .thing_name("sensor-1")
        .thing_group_name("quarantine")
        .send()
        .await
        .expect("AddThingToThingGroup");
    assert_eq!(
        moto::groups_for_thing(&iot, "sensor-1").await,
        vec!["quarantine".to_owned()]
    );

    let doc = json!({"state": {"desired": {"quarantine": true}}});
    moto::update_shadow(&data, "sensor-1", None, &doc).await;
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", None).await,
        Some(json!({"quarantine": true}))
    );

    // Named shadows are separate documents.
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", Some("security")).await,
        None
    );
    moto::update_shadow(&data, "sensor-1", Some("security"), &doc).await;
    assert_eq!(
        moto::desired_shadow(&data, "sensor-1", Some("security")).await,
        Some(json!({"quarantine": true}))
    );

    // Reset wipes everything.
    server.reset();
    assert_eq!(moto::desired_shadow(&data, "sensor-1", None).await, None);
}
