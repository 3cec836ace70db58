//! The functions' HTTPS client (`mitigation_aws::https`): the connector prepared for init's
//! timeouts serves the clients whose requests have those timeouts, and any other request
//! gets a connector of its own, as from the SDK's default client.

use std::time::Duration;

use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use mitigation_aws::https::prepared_https_client;
use test_harness::{Op, StandIn};

fn settings(connect: Duration) -> HttpConnectorSettings {
    HttpConnectorSettings::builder()
        .connect_timeout(connect)
        .build()
}

/// An IoT client on `http_client` whose requests have `connect` as their connect timeout.
fn iot(
    aws: &StandIn,
    http_client: aws_smithy_runtime_api::client::http::SharedHttpClient,
    connect: Duration,
) -> aws_sdk_iot::Client {
    let config = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .endpoint_url(aws.endpoint())
        .http_client(http_client)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(connect)
                .build(),
        )
        .build();
    aws_sdk_iot::Client::from_conf(config)
}

#[tokio::test]
async fn the_prepared_connector_serves_requests_with_its_timeouts() {
    let aws = StandIn::start();
    let (client, prepared) = prepared_https_client(settings(Duration::from_secs(2)));
    let iot = iot(&aws, client, Duration::from_secs(2));
    // Building the client checks its configuration with a connector of no settings; that
    // check neither takes the prepared connector nor waits for it.
    assert!(!prepared.taken());
    iot.describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .expect("DescribeEndpoint on the prepared connector");
    assert!(prepared.taken());
    assert_eq!(aws.count(Op::DescribeEndpoint), 1);
}

#[tokio::test]
async fn a_request_with_other_timeouts_gets_a_connector_of_its_own() {
    let aws = StandIn::start();
    let (client, prepared) = prepared_https_client(settings(Duration::from_secs(2)));
    let iot = iot(&aws, client, Duration::from_secs(1));
    iot.describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .expect("DescribeEndpoint on a connector built for its own timeouts");
    assert!(!prepared.taken());
    assert_eq!(aws.count(Op::DescribeEndpoint), 1);
}
