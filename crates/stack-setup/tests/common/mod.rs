//! Shared by the integration tests: a local server playing CloudFormation's `ResponseURL`,
//! and CloudFormation custom resource events. (moto and the Lambda Runtime API come from
//! the workspace's `test-harness`.)

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/0f6b8c70";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    /// `None`: no Content-Type header at all.
    pub content_type: Option<Vec<u8>>,
    pub content_length: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A local HTTP server playing CloudFormation's presigned S3 `ResponseURL`. It answers the
/// scripted statuses in order, then 200.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(statuses.to_vec()));
        let (log, script2) = (Arc::clone(&received), Arc::clone(&script));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, script) = (Arc::clone(&log), Arc::clone(&script2));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                        async move {
                            let method = req.method().to_string();
                            let path_and_query = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let header =
                                |name: &str| req.headers().get(name).map(|v| v.as_bytes().to_vec());
                            let content_type = header("content-type");
                            let content_length = header("content-length")
                                .map(|v| String::from_utf8_lossy(&v).into_owned());
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            log.lock().unwrap().push(Received {
                                method,
                                path_and_query,
                                content_type,
                                content_length,
                                body,
                            });
                            let status = {
                                let mut s = script.lock().unwrap();
                                if s.is_empty() { 200 } else { s.remove(0) }
                            };
                            let text = if status == 200 {
                                ""
                            } else {
                                "<Error>scripted</Error>"
                            };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            received,
            task,
        }
    }

    /// A URL shaped like a presigned S3 URL, on this receiver.
    pub fn url(&self, name: &str) -> String {
        format!(
            "http://{}/cloudformation-custom-resource-response/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcd",
            self.addr
        )
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CloudFormation custom resource event for `Custom::QuarantineSetup`.
pub fn event(
    request_type: &str,
    request_id: &str,
    response_url: &str,
    physical_id: Option<&str>,
    properties: Value,
) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:s-stack-setup",
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": request_id,
        "LogicalResourceId": "QuarantineSetup",
        "ResourceType": "Custom::QuarantineSetup",
        "ResourceProperties": properties,
    });
    if let Some(id) = physical_id {
        e["PhysicalResourceId"] = json!(id);
    }
    e
}

pub fn properties(policy: &str, group: &str, group_arn: &str, indexing: bool) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:s-stack-setup",
        "ServiceTimeout": "600",
        "PolicyName": policy,
        "ThingGroupName": group,
        "ThingGroupArn": group_arn,
        "EnableFleetIndexing": indexing.to_string(),
    })
}
