//! Shared by the integration tests: a local `ResponseURL` receiver, a minimal moto starter,
//! CloudFormation events.
//!
//! The moto starter is here because the workspace's `test-harness` package was being
//! rewritten when this crate was written; once it is merged, `test_harness::moto::Moto`
//! can replace [`Moto`].

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const REGION: &str = "us-east-1";
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

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// moto in server mode on a free loopback port, from the project's virtualenv
/// (`scripts/ensure-venv.sh` creates `.venv`); killed on drop.
pub struct Moto {
    pub endpoint: String,
    child: Child,
    log: PathBuf,
}

impl Moto {
    pub fn start() -> Moto {
        let root = workspace_root();
        let out = Command::new(root.join("scripts/ensure-venv.sh"))
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/ensure-venv.sh");
        assert!(
            out.status.success(),
            "scripts/ensure-venv.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log_dir = root.join("target/moto-logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let mut last = String::new();
        for _ in 0..3 {
            let port = StdListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = log_dir.join(format!(
                "stack-setup-moto-{}-{port}.log",
                std::process::id()
            ));
            let file = std::fs::File::create(&log).unwrap();
            let child = Command::new(root.join(".venv/bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::from(file.try_clone().unwrap()))
                .stderr(Stdio::from(file))
                .spawn()
                .expect("start .venv/bin/moto_server");
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                child,
                log,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    last = format!("moto_server exited ({status}): {}", moto.log_text());
                    break;
                }
                if moto_ready(port) {
                    return moto;
                }
                assert!(
                    Instant::now() < deadline,
                    "moto_server did not answer within 30 s: {}",
                    moto.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_server did not start: {last}");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An IoT client on this moto (static test credentials).
    pub fn iot(&self) -> aws_sdk_iot::Client {
        let config = aws_sdk_iot::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_iot::config::Region::new(REGION))
            .credentials_provider(aws_sdk_iot::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(aws_sdk_iot::config::retry::RetryConfig::standard().with_max_attempts(1))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_iot::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /moto-api/` answers 200.
fn moto_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
