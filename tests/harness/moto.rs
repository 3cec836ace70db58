//! The moto emulator in server mode, run from the project-local virtualenv (`.venv`), plus
//! fixture helpers that drive it with the real AWS SDK clients. Fixtures panic: a failure
//! here is a failed test.

#![allow(clippy::expect_used)]
//!
//! moto serves the IoT control plane and the IoT data plane on one endpoint: it routes by the
//! service name in the SigV4 credential scope (`iot`, `iotdata`).

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::process::log_dir;
use crate::sdk::{self, ClientSettings};
use crate::workspace_root;

/// Region used by every client created here.
pub const REGION: &str = crate::env::REGION;

/// How long [`Moto::start`] waits for the server to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `moto_server`, killed on drop.
pub struct Moto {
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The port the server listens on (127.0.0.1).
    pub port: u16,
    /// The file holding the server's stdout and stderr.
    pub log_path: PathBuf,
    child: Child,
}

impl Moto {
    /// Ensures the virtualenv exists (`scripts/ensure-venv.sh`), starts `moto_server` on a free
    /// loopback port and waits until `GET /moto-api/` answers 200.
    ///
    /// Panics (with the tail of the server log) if it does not come up within 30 s.
    pub fn start() -> Moto {
        let root = workspace_root();
        let script = root.join("scripts/ensure-venv.sh");
        let out = Command::new(&script)
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        if !out.status.success() {
            panic!(
                "{} failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let server = root.join(".venv/bin/moto_server");
        let log_dir = log_dir();
        fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));

        // A free port can be taken by someone else between our probe and moto's bind: retry a
        // few times when the server exits early.
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log_path = log_dir.join(format!("moto-{}-{port}.log", std::process::id()));
            let log = File::create(&log_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
            let log_err = log.try_clone().expect("clone log file handle");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                log_path,
                child,
            };
            match moto.wait_ready() {
                Ok(()) => return moto,
                Err(ReadyError::Exited(status)) => {
                    last_failure = format!(
                        "moto_server exited early ({status}); log {}:\n{}",
                        moto.log_path.display(),
                        moto.log_tail(40)
                    );
                    // Drop reaps it; try another port.
                }
                Err(ReadyError::Timeout) => panic!(
                    "moto_server did not answer GET {}/moto-api/ within {:?}; log {}:\n{}",
                    moto.endpoint,
                    READY_TIMEOUT,
                    moto.log_path.display(),
                    moto.log_tail(40)
                ),
            }
        }
        panic!("moto_server failed to start: {last_failure}");
    }

    fn wait_ready(&mut self) -> Result<(), ReadyError> {
        let url = format!("{}/moto-api/", self.endpoint);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ReadyError::Exited(status.to_string()));
            }
            if let Ok((200, _)) = http_call(Method::GET, &url) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ReadyError::Timeout);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wipes all emulator state (`POST /moto-api/reset`). Panics if moto does not answer 200.
    pub fn reset(&self) {
        let url = format!("{}/moto-api/reset", self.endpoint);
        match http_call(Method::POST, &url) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("moto reset answered {status}: {body}"),
            Err(e) => panic!("moto reset failed: {e}; log:\n{}", self.log_tail(20)),
        }
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id of `moto_server`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum ReadyError {
    Exited(String),
    Timeout,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// One HTTP call without a body; the status and the body as (lossy) UTF-8. Runs on its own
/// thread and runtime, so it can be called from synchronous and async tests alike.
fn http_call(method: Method, url: &str) -> Result<(u16, String), String> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    thread::scope(|scope| {
        let call = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = Client::builder(TokioExecutor::new()).build_http();
                let call = async {
                    let response = client.request(request).await.map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok((
                        status,
                        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                    ))
                };
                tokio::time::timeout(Duration::from_secs(10), call)
                    .await
                    .map_err(|_| "no answer within 10 s".to_owned())?
            })
        });
        call.join()
            .map_err(|_| "the HTTP call panicked".to_owned())?
    })
}

/// An IoT control-plane client for `endpoint` (us-east-1, static credentials, 1 attempt).
pub async fn iot_client(endpoint: &str) -> aws_sdk_iot::Client {
    sdk::iot_client(endpoint, ClientSettings::attempts(1))
}

/// An IoT data-plane client for `endpoint` (us-east-1, static credentials, 1 attempt).
pub async fn data_client(endpoint: &str) -> aws_sdk_iotdataplane::Client {
    sdk::data_client(endpoint, ClientSettings::attempts(1))
}

/// A DynamoDB client for `endpoint` (us-east-1, static credentials, 1 attempt).
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    sdk::dynamodb_client(endpoint, ClientSettings::attempts(1))
}

/// Creates the quarantine ledger's table as infra/template.yaml describes it (partition key
/// `thing`, sort key `sk`, both strings; on demand). Panics on error.
pub async fn create_ledger_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key schema element")
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("thing"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("thing", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
}

/// moto started, with the quarantine ledger's table `table` in it, and a DynamoDB client
/// for it: what every ledger test starts from. Panics on error.
pub async fn with_ledger_table(table: &str) -> (Moto, aws_sdk_dynamodb::Client) {
    let moto = Moto::start();
    let client = dynamodb_client(&moto.endpoint);
    create_ledger_table(&client, table).await;
    (moto, client)
}

/// A thing's history in the ledger's table, oldest first: each entry's text attributes
/// (`causeId`, `cause`, `outcome`, `function`, `recordId`, `caller`, ...). Panics on error.
pub async fn ledger_history(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    thing: &str,
) -> Vec<std::collections::BTreeMap<String, String>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("thing = :t AND begins_with(sk, :h)")
        .expression_attribute_values(":t", AttributeValue::S(thing.to_owned()))
        .expression_attribute_values(":h", AttributeValue::S("h#".to_owned()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Query {table} for {thing}: {e:?}"));
    out.items()
        .iter()
        .map(|item| {
            item.iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
                .collect()
        })
        .collect()
}

/// Creates a thing. Panics on error.
pub async fn create_thing(client: &aws_sdk_iot::Client, name: &str) {
    client
        .create_thing()
        .thing_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateThing {name}: {e:?}"));
}

/// Creates a static thing group. Panics on error.
pub async fn create_thing_group(client: &aws_sdk_iot::Client, name: &str) {
    client
        .create_thing_group()
        .thing_group_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateThingGroup {name}: {e:?}"));
}

/// Adds a thing to a thing group (AddThingToThingGroup). Panics on error.
pub async fn add_thing_to_group(client: &aws_sdk_iot::Client, thing: &str, group: &str) {
    client
        .add_thing_to_thing_group()
        .thing_name(thing)
        .thing_group_name(group)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddThingToThingGroup {thing} -> {group}: {e:?}"));
}

/// The names of the groups a thing belongs to (ListThingGroupsForThing, all pages), sorted.
/// Panics on error.
pub async fn groups_for_thing(client: &aws_sdk_iot::Client, name: &str) -> Vec<String> {
    let groups = client
        .list_thing_groups_for_thing()
        .thing_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("ListThingGroupsForThing {name}: {e:?}"));
    let mut names: Vec<String> = groups.into_iter().filter_map(|g| g.group_name).collect();
    names.sort();
    names
}

/// Merges `document` (e.g. `{"state":{"desired":{...}}}`) into a thing's classic shadow
/// (`shadow_name` None) or named shadow. Panics on error.
pub async fn update_shadow(
    client: &aws_sdk_iotdataplane::Client,
    thing: &str,
    shadow_name: Option<&str>,
    document: &serde_json::Value,
) {
    let payload = serde_json::to_vec(document).expect("serialize shadow document");
    client
        .update_thing_shadow()
        .thing_name(thing)
        .set_shadow_name(shadow_name.map(str::to_owned))
        .payload(aws_sdk_iotdataplane::primitives::Blob::new(payload))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateThingShadow {thing} {shadow_name:?}: {e:?}"));
}

/// The full shadow document, or None when the shadow does not exist
/// (ResourceNotFoundException). Panics on any other error.
pub async fn shadow_document(
    client: &aws_sdk_iotdataplane::Client,
    thing: &str,
    shadow_name: Option<&str>,
) -> Option<serde_json::Value> {
    let result = client
        .get_thing_shadow()
        .thing_name(thing)
        .set_shadow_name(shadow_name.map(str::to_owned))
        .send()
        .await;
    match result {
        Ok(out) => {
            let bytes = out.payload().map(|b| b.as_ref()).unwrap_or(b"{}");
            Some(serde_json::from_slice(bytes).unwrap_or_else(|e| {
                panic!(
                    "GetThingShadow {thing} {shadow_name:?}: payload is not JSON ({e}): {}",
                    String::from_utf8_lossy(bytes)
                )
            }))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(err) => panic!("GetThingShadow {thing} {shadow_name:?}: {err:?}"),
    }
}

/// The shadow's `state.desired` object, or None when the shadow does not exist
/// (ResourceNotFoundException). A shadow without a desired section gives `Some(Value::Null)`.
/// Panics on any other error.
pub async fn desired_shadow(
    client: &aws_sdk_iotdataplane::Client,
    thing: &str,
    shadow_name: Option<&str>,
) -> Option<serde_json::Value> {
    shadow_document(client, thing, shadow_name)
        .await
        .map(|doc| doc["state"]["desired"].clone())
}
