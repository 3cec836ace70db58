//! Shared by the integration tests: a local server playing CloudFormation's `ResponseURL`,
//! and CloudFormation custom resource events. (moto and the Lambda Runtime API come from
//! the workspace's `test-harness`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// What the template configures: the pair acted on...
pub fn target(policy: &str, group_arn: &str) -> stack_setup::Target {
    let name = group_arn.rsplit_once("thinggroup/").unwrap().1;
    stack_setup::Target {
        policy_name: policy.into(),
        group: mitigation::ThingGroupArn {
            arn: group_arn.into(),
            name: name.into(),
        },
    }
}

/// ...and whom to answer: [`STACK_ID`], and the local receivers (the test-only override).
pub fn trust() -> stack_setup::Trust {
    stack_setup::Trust {
        stack_id: Some(STACK_ID.into()),
        test_response_url_prefix: Some("http://127.0.0.1:".into()),
    }
}

/// CloudFormation saying the stack is being deleted: a Delete may act.
pub struct Leaving;

impl stack_setup::StackStatus for Leaving {
    fn stack_status<'a>(
        &'a self,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, mitigation::ActionError>> {
        Box::pin(async { Ok(Some("DELETE_IN_PROGRESS".to_owned())) })
    }
}

/// CloudFormation's DescribeStacks, played by a [`Receiver`] (moto's CloudFormation needs
/// Python packages the tests do not install): the stack's status is the test's to set.
pub struct StackApi {
    receiver: Receiver,
    stack_id: String,
}

impl StackApi {
    pub async fn start(stack_id: &str, status: &str) -> StackApi {
        let api = StackApi {
            receiver: Receiver::start(&[]).await,
            stack_id: stack_id.to_owned(),
        };
        api.set_status(status);
        api
    }

    pub fn set_status(&self, status: &str) {
        self.receiver.reply_with(format!(
            "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
             <DescribeStacksResult><Stacks><member><StackId>{}</StackId><StackName>s</StackName>\
             <CreationTime>2026-11-22T00:00:00Z</CreationTime><StackStatus>{status}</StackStatus>\
             </member></Stacks></DescribeStacksResult>\
             <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>",
            self.stack_id
        ));
    }

    /// For `AWS_ENDPOINT_URL_CLOUDFORMATION`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.receiver.addr)
    }

    /// The DescribeStacks calls it answered.
    pub fn calls(&self) -> usize {
        self.receiver.received().len()
    }
}

/// The binary's environment as the template sets it, on moto, answering local receivers.
pub fn function_env(
    moto_endpoint: &str,
    stack_id: &str,
    policy: &str,
    group_arn: &str,
    receiver_prefix: &str,
) -> test_harness::Env {
    test_harness::local_aws_env(Some(moto_endpoint))
        .set("QUARANTINE_POLICY", policy)
        .set("QUARANTINE_GROUP_ARN", group_arn)
        .set("STACK_ID", stack_id)
        .set("TEST_ONLY_RESPONSE_URL_PREFIX", receiver_prefix)
}

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

/// A local HTTP(S) server playing CloudFormation's presigned S3 `ResponseURL`. It answers
/// the scripted statuses in order, then 200.
pub struct Receiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    received: Arc<Mutex<Vec<Received>>>,
    reply: Reply,
    task: tokio::task::JoinHandle<()>,
}

type Log = Arc<Mutex<Vec<Received>>>;
type Script = Arc<Mutex<Vec<u16>>>;
/// The body of a 200 answer.
type Reply = Arc<Mutex<String>>;

impl Receiver {
    /// Plain HTTP.
    pub async fn start(statuses: &[u16]) -> Receiver {
        Receiver::listen(statuses, None).await
    }

    /// HTTPS with `tls` (see [`TestPki`]).
    pub async fn start_tls(statuses: &[u16], tls: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::listen(statuses, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn listen(statuses: &[u16], tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Log = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(Mutex::new(statuses.to_vec()));
        let reply: Reply = Arc::new(Mutex::new(String::new()));
        let answer = Arc::clone(&reply);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, script, tls) = (Arc::clone(&log), Arc::clone(&script), tls.clone());
                let reply = Arc::clone(&answer);
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(stream), log, script, reply).await,
                        Some(acceptor) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(TokioIo::new(stream), log, script, reply).await;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            scheme,
            received,
            reply,
            task,
        }
    }

    /// A URL shaped like a presigned S3 URL, on this receiver.
    pub fn url(&self, name: &str) -> String {
        format!(
            "{}://{}/cloudformation-custom-resource-response/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcd",
            self.scheme, self.addr
        )
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The body of every later 200 answer.
    pub fn reply_with(&self, body: String) {
        *self.reply.lock().unwrap() = body;
    }
}

async fn serve<I>(io: I, log: Log, script: Script, reply: Reply)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let (log, script) = (Arc::clone(&log), Arc::clone(&script));
        let reply = reply.lock().unwrap().clone();
        async move {
            let method = req.method().to_string();
            let path_and_query = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes().to_vec());
            let content_type = header("content-type");
            let content_length =
                header("content-length").map(|v| String::from_utf8_lossy(&v).into_owned());
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
                reply
            } else {
                "<Error>scripted</Error>".to_owned()
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
        .serve_connection(io, service)
        .await;
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A throw-away certificate authority and a server certificate for 127.0.0.1 signed by it,
/// made with the `openssl` command in `dir`.
pub struct TestPki {
    /// The CA certificate (PEM): what a client trusts, e.g. through `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub fn create(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=stack-setup test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);

        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        TestPki {
            ca_file: dir.join("ca.pem"),
            server: Arc::new(server),
        }
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
