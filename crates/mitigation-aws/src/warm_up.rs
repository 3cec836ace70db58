//! Connections opened during init, so that the first event does not pay for them.
//!
//! The first request of an SDK client does lazy work: the root certificates and the TLS
//! configuration, the TCP and TLS handshakes, credentials, endpoint resolution and signing.
//! Lambda gives init the whole CPU and then holds a 128 MB invocation to 7% of a core, so this
//! work costs many times more in the first event than in init. Each client therefore sends
//! one request at init, through its whole pipeline, to a path that no operation of the
//! service has: the service answers it with an error (404 `UnknownOperationException`),
//! it has no effect and needs no permission, and the connection it opened stays in the
//! client's pool for the first event.

use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::SdkError;
use futures::future::join_all;

/// The path of the warm-up request: no IoT or IoT data-plane operation has it.
pub const WARM_UP_PATH: &str = "/quarantine-warm-up";

/// How long init waits for all the endpoints together; an endpoint that has not answered by
/// then is connected lazily by the first event, as without the warm-up.
pub const WARM_UP_DEADLINE: Duration = Duration::from_secs(1);

/// A client whose connection is worth opening during init.
#[derive(Clone, Debug)]
pub enum WarmUpTarget {
    Iot(aws_sdk_iot::Client),
    #[cfg(feature = "data-plane")]
    IotData(aws_sdk_iotdataplane::Client),
    /// The quarantine ledger's table (`LEDGER_TABLE`): one more round trip per record.
    #[cfg(feature = "ledger")]
    Ledger(aws_sdk_dynamodb::Client),
    /// The function's own queue (`FANOUT_QUEUE_URL`), for an audit's devices.
    #[cfg(feature = "fan-out")]
    Queue(aws_sdk_sqs::Client),
}

impl WarmUpTarget {
    /// The endpoint's name in the log line.
    pub fn name(&self) -> &'static str {
        match self {
            WarmUpTarget::Iot(_) => "iot",
            #[cfg(feature = "data-plane")]
            WarmUpTarget::IotData(_) => "iot-data",
            #[cfg(feature = "ledger")]
            WarmUpTarget::Ledger(_) => "dynamodb",
            #[cfg(feature = "fan-out")]
            WarmUpTarget::Queue(_) => "sqs",
        }
    }

    /// Sends the warm-up request: true when the endpoint answered (with anything), i.e. the
    /// connection is open and pooled. The template operations take no input and only read;
    /// their request is rewritten to [`WARM_UP_PATH`] before it is signed.
    async fn ping(&self) -> bool {
        match self {
            WarmUpTarget::Iot(iot) => {
                let sent = iot
                    .describe_endpoint()
                    .customize()
                    .config_override(
                        aws_sdk_iot::config::Builder::default().retry_config(no_retries()),
                    )
                    .mutate_request(to_warm_up_path)
                    .send()
                    .await;
                answered(sent)
            }
            #[cfg(feature = "data-plane")]
            WarmUpTarget::IotData(data) => {
                let sent = data
                    .list_retained_messages()
                    .customize()
                    .config_override(
                        aws_sdk_iotdataplane::config::Builder::default().retry_config(no_retries()),
                    )
                    .mutate_request(to_warm_up_path)
                    .send()
                    .await;
                answered(sent)
            }
            // DynamoDB takes every operation at `/`, named by X-Amz-Target: the warm-up names
            // one that does not exist, which DynamoDB answers with an error and no effect.
            #[cfg(feature = "ledger")]
            WarmUpTarget::Ledger(dynamodb) => {
                let sent = dynamodb
                    .describe_limits()
                    .customize()
                    .config_override(
                        aws_sdk_dynamodb::config::Builder::default().retry_config(no_retries()),
                    )
                    .mutate_request(|request| {
                        request
                            .headers_mut()
                            .insert("x-amz-target", WARM_UP_DYNAMODB_TARGET);
                    })
                    .send()
                    .await;
                answered(sent)
            }
            // SQS speaks the same JSON protocol (`/`, X-Amz-Target) on its regional endpoint,
            // the queue named in the body: an operation name SQS lacks is refused before any
            // queue or permission is looked at.
            #[cfg(feature = "fan-out")]
            WarmUpTarget::Queue(sqs) => {
                let sent = sqs
                    .list_queues()
                    .customize()
                    .config_override(
                        aws_sdk_sqs::config::Builder::default().retry_config(no_retries()),
                    )
                    .mutate_request(|request| {
                        request
                            .headers_mut()
                            .insert("x-amz-target", WARM_UP_SQS_TARGET);
                    })
                    .send()
                    .await;
                answered(sent)
            }
        }
    }
}

/// The SQS operation of the warm-up request: none has this name.
#[cfg(feature = "fan-out")]
pub const WARM_UP_SQS_TARGET: &str = "AmazonSQS.QuarantineWarmUp";

/// The DynamoDB operation of the warm-up request: none has this name.
#[cfg(feature = "ledger")]
pub const WARM_UP_DYNAMODB_TARGET: &str = "DynamoDB_20120810.QuarantineWarmUp";

/// One attempt: an error answer is the expected outcome, not a reason to try again.
fn no_retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(1)
}

/// Replaces the request's path and query with [`WARM_UP_PATH`], keeping scheme and host.
fn to_warm_up_path(request: &mut HttpRequest) {
    let uri = request.uri();
    let host_end = uri
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| uri[start..].find(['/', '?']).map(|end| start + end))
        .unwrap_or(uri.len());
    let target = format!("{}{WARM_UP_PATH}", &uri[..host_end]);
    // A URI that does not parse leaves the request as it was: an unsent warm-up is harmless,
    // a sent template operation is read-only.
    let _ = request.set_uri(target);
}

/// Whether the endpoint answered: a service error or an unparsable answer both mean the
/// request went over an open connection; a dispatch failure or timeout means it did not.
fn answered<T, E>(sent: Result<T, SdkError<E, HttpResponse>>) -> bool {
    match sent {
        Ok(_) | Err(SdkError::ServiceError(_) | SdkError::ResponseError(_)) => true,
        Err(_) => false,
    }
}

/// What the warm-up did, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmUpReport {
    /// The endpoints that answered: their connections are open.
    pub warmed: Vec<&'static str>,
    /// The endpoints that did not answer in time: the first event connects them.
    pub unanswered: Vec<&'static str>,
    pub took: Duration,
}

/// Sends every target's warm-up request at once and waits for them until `deadline`; never
/// fails. Each request is a task of its own: a handshake's CPU (the first one also seeds the
/// TLS library's random generator) then holds up only its own connection, not the others'
/// connects, which would otherwise wait for it.
pub async fn warm_up(targets: &[WarmUpTarget], deadline: Duration) -> WarmUpReport {
    let started = Instant::now();
    let pings = targets.iter().cloned().map(|target| {
        let name = target.name();
        let ping = tokio::spawn(async move { tokio::time::timeout(deadline, target.ping()).await });
        async move { (name, matches!(ping.await, Ok(Ok(true)))) }
    });
    let outcomes = join_all(pings).await;
    let took = started.elapsed();
    let (warmed, unanswered): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|(_, ok)| *ok);
    WarmUpReport {
        warmed: warmed.into_iter().map(|(name, _)| name).collect(),
        unanswered: unanswered.into_iter().map(|(name, _)| name).collect(),
        took,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_path_replaces_path_and_query_and_keeps_the_host() {
        for (from, to) in [
            (
                "https://iot.us-east-1.amazonaws.com/endpoint?endpointType=iot%3AData-ATS",
                "https://iot.us-east-1.amazonaws.com/quarantine-warm-up",
            ),
            (
                "http://127.0.0.1:4566/retainedMessage",
                "http://127.0.0.1:4566/quarantine-warm-up",
            ),
            (
                "https://a1b2-ats.iot.eu-west-1.amazonaws.com?x=1",
                "https://a1b2-ats.iot.eu-west-1.amazonaws.com/quarantine-warm-up",
            ),
        ] {
            let mut request = HttpRequest::get(from).unwrap();
            to_warm_up_path(&mut request);
            assert_eq!(request.uri(), to, "from {from}");
        }
    }
}
