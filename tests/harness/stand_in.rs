//! A scriptable local stand-in for the AWS IoT control plane and IoT data plane, for fault
//! tests, adapter tests and benchmarks; the operations moto lacks live here too.
//!
//! Both SDK clients can be pointed at the one [`StandIn::endpoint`]. Routes follow the request
//! serializers of aws-sdk-iot 1.135 and aws-sdk-iotdataplane 1.120 (restJson1); adding an
//! operation is one [`Op`], one route in [`router`] and one handler.
//!
//! Errors carry the AWS code in `x-amzn-ErrorType` and a `{"message"}` body. Throttling is
//! HTTP 400 `ThrottlingException` on the control plane and HTTP 429 on the data plane.
//!
//! Every request, in this order: scripted fault for its subject (thing, client id,
//! certificate) → shared token bucket → seeded 5xx share → the operation on the state. The
//! call is recorded (with the status answered) and its effect applied when it arrives;
//! latency and hangs only delay the answer, so a client that times out may still have changed
//! the state, as with the real service.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::server::Server;
use crate::{epoch_millis, lock};

/// The most groups a thing can belong to.
pub const MAX_GROUPS_PER_THING: usize = 10;
/// The account id in every ARN the stand-in makes.
pub const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const MAX_SHADOW_STATE_BYTES: usize = 8 * 1024;

/// The operations served, as recorded in [`Call::op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    AddThingToThingGroup,
    RemoveThingFromThingGroup,
    UpdateThingGroupsForThing,
    ListThingGroupsForThing,
    ListActiveViolations,
    DescribeEndpoint,
    ListAuditFindings,
    DescribeAuditFinding,
    ListThingPrincipalsV2,
    ListPrincipalThingsV2,
    UpdateCertificate,
    DescribeCertificate,
    UpdateThingShadow,
    GetThingShadow,
    DeleteThingShadow,
    DeleteConnection,
    GetConnection,
    /// A request no route matches (answered 404 `UnknownOperationException`).
    Unknown,
}

impl Op {
    fn is_data_plane(self) -> bool {
        matches!(
            self,
            Op::UpdateThingShadow
                | Op::GetThingShadow
                | Op::DeleteThingShadow
                | Op::DeleteConnection
                | Op::GetConnection
        )
    }
}

/// A scripted fault for one subject (a thing, client id or certificate id).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The first `n` calls are throttled, later calls are answered normally.
    ThrottleTimes(u32),
    /// Every call answers 500 `InternalFailureException`.
    Always5xx,
    /// Every call answers this status with this error type (None: no error type, empty body).
    Status(u16, Option<&'static str>),
    /// Every call is answered normally, but only after this delay.
    Hang(Duration),
    /// The first `n` calls are answered after the delay, later ones at once.
    HangFirst(u32, Duration),
    /// Control-plane calls answer 404 `ResourceNotFoundException` (the thing was deleted).
    /// Data-plane calls are unaffected: deleting a thing does not delete its shadow.
    NotFound,
    /// AddThingToThingGroup and UpdateThingGroupsForThing answer 400
    /// `InvalidRequestException`, as IoT does for the 10-groups-per-thing limit.
    LimitExceeded,
}

/// One request as seen by the stand-in.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Op,
    /// The thing, client id or certificate id the call is about, when it names one.
    pub subject: Option<String>,
    /// The status answered (decided when the request arrives, before any delay).
    pub status: u16,
    pub at: Instant,
}

/// One accepted DeleteConnection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub client_id: String,
    pub clean_session: Option<bool>,
    pub prevent_will_message: Option<bool>,
}

/// Settings fixed at start; the state is scripted on the running [`StandIn`].
#[derive(Debug, Clone)]
pub struct StandInConfig {
    latency: Duration,
    rate_limit: Option<(f64, f64)>,
    failure_share: f64,
    seed: u64,
    endpoint_address: Option<String>,
    page_size: usize,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig {
            latency: Duration::ZERO,
            rate_limit: None,
            failure_share: 0.0,
            seed: 0,
            endpoint_address: None,
            page_size: 25,
        }
    }
}

impl StandInConfig {
    /// Delay every answer by this much.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// A token bucket shared by all operations: `per_second` tokens a second, bursts of up to
    /// `max(1, per_second)`. Requests over the limit are throttled.
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate_limit = Some((per_second.max(0.0), per_second.max(1.0)));
        self
    }

    /// As [`Self::rate_limit`], with an explicit bucket size.
    pub fn rate_limit_with_burst(mut self, per_second: f64, burst: f64) -> Self {
        self.rate_limit = Some((per_second.max(0.0), burst.max(1.0)));
        self
    }

    /// The share (0.0..=1.0) of requests answered 500 `InternalFailureException`, chosen by a
    /// generator seeded with [`Self::seed`] over the request sequence number.
    pub fn failure_share(mut self, share: f64) -> Self {
        self.failure_share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What DescribeEndpoint answers (default `127.0.0.1:PORT`, the stand-in itself; AWS
    /// answers a host name without scheme).
    pub fn endpoint_address(mut self, address: impl Into<String>) -> Self {
        self.endpoint_address = Some(address.into());
        self
    }

    /// Items per page of the list operations when the request sets no `maxResults`.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }
}

#[derive(Debug)]
struct FaultEntry {
    fault: Fault,
    seen: u32,
}

#[derive(Debug, Default)]
struct Shadow {
    state: Map<String, Value>,
    version: u64,
    documents: Vec<Value>,
}

#[derive(Debug)]
struct Connection {
    thing: Option<String>,
    connected: bool,
    since_ms: u64,
}

#[derive(Debug, Default)]
struct World {
    groups: BTreeMap<String, BTreeSet<String>>,
    shadows: HashMap<(String, Option<String>), Shadow>,
    faults: HashMap<(String, Option<Op>), FaultEntry>,
    violations: BTreeMap<String, Vec<Value>>,
    connections: BTreeMap<String, Connection>,
    disconnects: Vec<Disconnect>,
    /// Certificate id → status.
    certificates: BTreeMap<String, String>,
    /// Thing → certificate ids attached to it.
    principals: BTreeMap<String, BTreeSet<String>>,
    findings: Vec<Value>,
}

impl World {
    fn groups_of(&self, thing: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, things)| things.contains(thing))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// The fault scripted for this subject and operation, counting the call.
    fn fault(&mut self, subject: &str, op: Op) -> Option<(Fault, u32)> {
        let key_op = (subject.to_owned(), Some(op));
        let key = if self.faults.contains_key(&key_op) {
            key_op
        } else {
            (subject.to_owned(), None)
        };
        let entry = self.faults.get_mut(&key)?;
        let seen = entry.seen;
        entry.seen = entry.seen.saturating_add(1);
        Some((entry.fault.clone(), seen))
    }
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.tokens = (self.tokens + refill).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Shared {
    config: StandInConfig,
    endpoint_address: String,
    seq: AtomicU64,
    bucket: Option<Mutex<Bucket>>,
    world: Mutex<World>,
    calls: Mutex<Vec<Call>>,
}

/// An AWS answer in the restJson1 format.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    error_type: Option<&'static str>,
    body: Option<Value>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            error_type: None,
            body: Some(body),
        }
    }

    fn error(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Reply {
        Reply {
            status,
            error_type: Some(error_type),
            body: Some(json!({ "message": message.into() })),
        }
    }

    fn invalid(message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    fn not_found(message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    fn throttled(op: Op) -> Reply {
        let status = if op.is_data_plane() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::BAD_REQUEST
        };
        Reply::error(status, "ThrottlingException", "Rate exceeded")
    }

    fn internal_failure() -> Reply {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            "Internal failure (injected by the stand-in)",
        )
    }

    fn limit_exceeded(thing: &str) -> Reply {
        Reply::invalid(format!(
            "Thing {thing} cannot be added to more than {MAX_GROUPS_PER_THING} thing groups"
        ))
    }

    fn scripted(status: u16, error_type: Option<&'static str>) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match error_type {
            Some(code) => Reply::error(status, code, format!("{code} (injected)")),
            None => Reply {
                status,
                error_type: None,
                body: None,
            },
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(code) = self.error_type {
            headers.insert("x-amzn-ErrorType", HeaderValue::from_static(code));
        }
        let body = self.body.map(|b| b.to_string()).unwrap_or_default();
        (self.status, headers, body).into_response()
    }
}

/// A JSON request body; a body that is not the expected JSON answers 400
/// `InvalidRequestException` (and is not recorded as a call).
struct AwsJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AwsJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map(AwsJson)
            .map_err(|e| Reply::invalid(format!("Request body is not valid: {e}")).into_response())
    }
}

impl Shared {
    /// Records and answers one call: injected faults first, else `act` on the state.
    async fn serve(
        &self,
        op: Op,
        subject: Option<&str>,
        act: impl FnOnce(&mut World, &Shared) -> Reply,
    ) -> Reply {
        let at = Instant::now();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut delay = self.config.latency;
        let reply = match self.injected(op, subject, n, &mut delay) {
            Some(reply) => reply,
            None => act(&mut lock(&self.world), self),
        };
        lock(&self.calls).push(Call {
            op,
            subject: subject.map(str::to_owned),
            status: reply.status.as_u16(),
            at,
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        reply
    }

    fn injected(
        &self,
        op: Op,
        subject: Option<&str>,
        n: u64,
        delay: &mut Duration,
    ) -> Option<Reply> {
        if let Some(subject) = subject {
            let fault = lock(&self.world).fault(subject, op);
            match fault {
                Some((Fault::ThrottleTimes(times), seen)) if seen < times => {
                    return Some(Reply::throttled(op));
                }
                Some((Fault::Always5xx, _)) => return Some(Reply::internal_failure()),
                Some((Fault::Status(status, code), _)) => {
                    return Some(Reply::scripted(status, code));
                }
                Some((Fault::Hang(d), _)) => *delay += d,
                Some((Fault::HangFirst(times, d), seen)) if seen < times => *delay += d,
                Some((Fault::NotFound, _)) if !op.is_data_plane() => {
                    return Some(Reply::not_found(format!(
                        "Thing {subject} cannot be found."
                    )));
                }
                Some((Fault::LimitExceeded, _))
                    if matches!(op, Op::AddThingToThingGroup | Op::UpdateThingGroupsForThing) =>
                {
                    return Some(Reply::limit_exceeded(subject));
                }
                _ => {}
            }
        }
        if let Some(bucket) = &self.bucket
            && !lock(bucket).take()
        {
            return Some(Reply::throttled(op));
        }
        if self.config.failure_share > 0.0 {
            let r = splitmix64(self.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
            if unit < self.config.failure_share {
                return Some(Reply::internal_failure());
            }
        }
        None
    }

    fn page(
        &self,
        items: Vec<Value>,
        token: Option<&str>,
        max: Option<usize>,
    ) -> Result<(Vec<Value>, Option<String>), Reply> {
        let start = match token {
            None | Some("") => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| Reply::invalid(format!("Invalid nextToken: {t}")))?,
        };
        let end = items
            .len()
            .min(start + max.unwrap_or(self.config.page_size).max(1));
        let next = (end < items.len()).then(|| end.to_string());
        Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The running stand-in. Dropping it stops it.
pub struct StandIn {
    shared: Arc<Shared>,
    server: Server,
}

impl StandIn {
    /// Serves on a free loopback port with default settings. Panics if it cannot bind.
    pub fn start() -> StandIn {
        StandIn::with(StandInConfig::default())
    }

    /// Serves on a free loopback port. Panics if it cannot bind.
    pub fn with(config: StandInConfig) -> StandIn {
        let mut shared = None;
        let server = Server::start("aws-stand-in", |addr| {
            let state = Arc::new(Shared {
                endpoint_address: config
                    .endpoint_address
                    .clone()
                    .unwrap_or_else(|| addr.to_string()),
                bucket: config.rate_limit.map(|(rate, burst)| {
                    Mutex::new(Bucket {
                        rate,
                        burst,
                        tokens: burst,
                        last: Instant::now(),
                    })
                }),
                config,
                seq: AtomicU64::new(0),
                world: Mutex::new(World::default()),
                calls: Mutex::new(Vec::new()),
            });
            shared = Some(Arc::clone(&state));
            router(state)
        })
        .unwrap_or_else(|e| panic!("AWS stand-in: cannot serve on 127.0.0.1: {e}"));
        let Some(shared) = shared else {
            panic!("AWS stand-in: the router was not built");
        };
        StandIn { shared, server }
    }

    /// `http://127.0.0.1:PORT`, the `endpoint_url` for both SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        lock(&self.shared.world)
    }

    /// Every request so far (since the last [`Self::reset_counters`]), in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// How many requests for this operation (any status).
    pub fn count(&self, op: Op) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|c| c.op == op)
            .count()
    }

    /// How many requests for this operation were answered with this status.
    pub fn count_status(&self, op: Op, status: u16) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|c| c.op == op && c.status == status)
            .count()
    }

    /// How many requests for this operation named this subject.
    pub fn count_for(&self, op: Op, subject: &str) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|c| c.op == op && c.subject.as_deref() == Some(subject))
            .count()
    }

    /// Forget the recorded calls; state and faults stay.
    pub fn reset_counters(&self) {
        lock(&self.shared.calls).clear();
    }

    /// Set (or replace, restarting its count) a fault for every operation on this subject.
    pub fn set_fault(&self, subject: &str, fault: Fault) {
        self.world()
            .faults
            .insert((subject.to_owned(), None), FaultEntry { fault, seen: 0 });
    }

    /// Set (or replace) a fault for one operation on this subject; it takes precedence over
    /// a fault for every operation.
    pub fn set_fault_for_op(&self, subject: &str, op: Op, fault: Fault) {
        self.world().faults.insert(
            (subject.to_owned(), Some(op)),
            FaultEntry { fault, seen: 0 },
        );
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// What ListActiveViolations returns for this thing (ActiveViolation JSON objects).
    pub fn set_active_violations(&self, thing: &str, violations: Vec<Value>) {
        self.world().violations.insert(thing.to_owned(), violations);
    }

    /// Put a thing in a group directly (no call recorded, no limit checked).
    pub fn add_member(&self, group: &str, thing: &str) {
        self.world()
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(thing.to_owned());
    }

    pub fn group_members(&self, group: &str) -> BTreeSet<String> {
        self.world().groups.get(group).cloned().unwrap_or_default()
    }

    pub fn groups_of(&self, thing: &str) -> BTreeSet<String> {
        self.world().groups_of(thing)
    }

    /// The merged `state.desired` of a shadow (`None`: the classic shadow), if it has one.
    pub fn shadow_desired(&self, thing: &str, shadow_name: Option<&str>) -> Option<Value> {
        self.shadow_state(thing, shadow_name)
            .and_then(|state| state.get("desired").cloned())
    }

    /// The whole merged `state` of a shadow, if the shadow exists.
    pub fn shadow_state(&self, thing: &str, shadow_name: Option<&str>) -> Option<Value> {
        self.world()
            .shadows
            .get(&shadow_key(thing, shadow_name))
            .map(|s| Value::Object(s.state.clone()))
    }

    pub fn shadow_version(&self, thing: &str, shadow_name: Option<&str>) -> Option<u64> {
        self.world()
            .shadows
            .get(&shadow_key(thing, shadow_name))
            .map(|s| s.version)
    }

    /// Every document UpdateThingShadow accepted for this shadow, in order, as sent.
    pub fn shadow_documents(&self, thing: &str, shadow_name: Option<&str>) -> Vec<Value> {
        self.world()
            .shadows
            .get(&shadow_key(thing, shadow_name))
            .map(|s| s.documents.clone())
            .unwrap_or_default()
    }

    /// Mark an MQTT client as connected (for DeleteConnection and GetConnection).
    pub fn connect(&self, client_id: &str, thing: Option<&str>) {
        self.world().connections.insert(
            client_id.to_owned(),
            Connection {
                thing: thing.map(str::to_owned),
                connected: true,
                since_ms: epoch_millis(),
            },
        );
    }

    pub fn is_connected(&self, client_id: &str) -> bool {
        self.world()
            .connections
            .get(client_id)
            .is_some_and(|c| c.connected)
    }

    /// Every accepted DeleteConnection, in order.
    pub fn disconnects(&self) -> Vec<Disconnect> {
        self.world().disconnects.clone()
    }

    /// Register an ACTIVE certificate (if new) and attach it to the thing.
    pub fn attach_certificate(&self, thing: &str, certificate_id: &str) {
        let mut world = self.world();
        world
            .certificates
            .entry(certificate_id.to_owned())
            .or_insert_with(|| "ACTIVE".to_owned());
        world
            .principals
            .entry(thing.to_owned())
            .or_default()
            .insert(certificate_id.to_owned());
    }

    /// A certificate's status (`ACTIVE`, `INACTIVE`, `REVOKED`, ...), if it is registered.
    pub fn certificate_status(&self, certificate_id: &str) -> Option<String> {
        self.world().certificates.get(certificate_id).cloned()
    }

    pub fn set_certificate_status(&self, certificate_id: &str, status: &str) {
        self.world()
            .certificates
            .insert(certificate_id.to_owned(), status.to_owned());
    }

    /// What ListAuditFindings and DescribeAuditFinding serve (AuditFinding JSON objects).
    pub fn set_audit_findings(&self, findings: Vec<Value>) {
        self.world().findings = findings;
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("addr", &self.server.addr())
            .finish()
    }
}

/// The ARN of a certificate, as IoT names principals.
pub fn certificate_arn(certificate_id: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:cert/{certificate_id}")
}

fn shadow_key(thing: &str, shadow_name: Option<&str>) -> (String, Option<String>) {
    (thing.to_owned(), shadow_name.map(str::to_owned))
}

// ---------------------------------------------------------------------------------------------
// Routes and handlers: one per operation.

type Aws = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/thing-groups/addThingToThingGroup",
            put(add_thing_to_thing_group),
        )
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(remove_thing_from_thing_group),
        )
        .route(
            "/thing-groups/updateThingGroupsForThing",
            put(update_thing_groups_for_thing),
        )
        .route(
            "/things/{thing}/thing-groups",
            get(list_thing_groups_for_thing),
        )
        .route("/active-violations", get(list_active_violations))
        .route("/endpoint", get(describe_endpoint))
        .route("/audit/findings", post(list_audit_findings))
        .route("/audit/findings/{id}", get(describe_audit_finding))
        .route(
            "/things/{thing}/principals-v2",
            get(list_thing_principals_v2),
        )
        .route("/principals/things-v2", get(list_principal_things_v2))
        .route(
            "/certificates/{id}",
            put(update_certificate).get(describe_certificate),
        )
        .route(
            "/things/{thing}/shadow",
            post(update_thing_shadow)
                .get(get_thing_shadow)
                .delete(delete_thing_shadow),
        )
        .route(
            "/connections/{client}",
            get(get_connection).delete(delete_connection),
        )
        .fallback(unknown_operation)
        .with_state(shared)
}

async fn unknown_operation(State(aws): Aws, request: Request) -> Reply {
    let what = format!("{} {}", request.method(), request.uri());
    aws.serve(Op::Unknown, None, |_, _| {
        Reply::error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("stand-in: no route for {what}"),
        )
    })
    .await
}

/// The body of AddThingToThingGroup and RemoveThingFromThingGroup.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupChange {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
}

impl GroupChange {
    fn thing(&self) -> Option<String> {
        self.thing_name.clone().or_else(|| {
            let arn = self.thing_arn.as_deref()?;
            arn.rsplit_once(":thing/").map(|(_, name)| name.to_owned())
        })
    }

    fn group(&self) -> Option<String> {
        self.thing_group_name.clone().or_else(|| {
            let arn = self.thing_group_arn.as_deref()?;
            arn.rsplit_once(":thinggroup/")
                .map(|(_, name)| name.to_owned())
        })
    }

    /// The validated (group, thing).
    fn names(&self) -> Result<(String, String), Reply> {
        let (Some(group), Some(thing)) = (self.group(), self.thing()) else {
            return Err(Reply::invalid(
                "Both a thing group (name or ARN) and a thing (name or ARN) are required",
            ));
        };
        check_name("thingGroupName", &group, 128)?;
        check_name("thingName", &thing, 128)?;
        Ok((group, thing))
    }
}

async fn add_thing_to_thing_group(State(aws): Aws, AwsJson(body): AwsJson<GroupChange>) -> Reply {
    let thing = body.thing();
    aws.serve(Op::AddThingToThingGroup, thing.as_deref(), |world, _| {
        let (group, thing) = match body.names() {
            Ok(names) => names,
            Err(reply) => return reply,
        };
        let current = world.groups_of(&thing);
        if !current.contains(&group) && current.len() >= MAX_GROUPS_PER_THING {
            return Reply::limit_exceeded(&thing);
        }
        world.groups.entry(group).or_default().insert(thing);
        Reply::ok(json!({}))
    })
    .await
}

async fn remove_thing_from_thing_group(
    State(aws): Aws,
    AwsJson(body): AwsJson<GroupChange>,
) -> Reply {
    let thing = body.thing();
    aws.serve(
        Op::RemoveThingFromThingGroup,
        thing.as_deref(),
        |world, _| {
            let (group, thing) = match body.names() {
                Ok(names) => names,
                Err(reply) => return reply,
            };
            if let Some(members) = world.groups.get_mut(&group) {
                members.remove(&thing);
            }
            Reply::ok(json!({}))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupsForThing {
    thing_name: Option<String>,
    #[serde(default)]
    thing_groups_to_add: Vec<String>,
    #[serde(default)]
    thing_groups_to_remove: Vec<String>,
}

async fn update_thing_groups_for_thing(
    State(aws): Aws,
    AwsJson(body): AwsJson<GroupsForThing>,
) -> Reply {
    aws.serve(
        Op::UpdateThingGroupsForThing,
        body.thing_name.as_deref(),
        |world, _| {
            let Some(thing) = &body.thing_name else {
                return Reply::invalid("thingName is required");
            };
            let names = body
                .thing_groups_to_add
                .iter()
                .chain(&body.thing_groups_to_remove);
            for name in std::iter::once(thing).chain(names) {
                if let Err(reply) = check_name("thingName", name, 128) {
                    return reply;
                }
            }
            let mut after = world.groups_of(thing);
            for group in &body.thing_groups_to_remove {
                after.remove(group);
            }
            after.extend(body.thing_groups_to_add.iter().cloned());
            if after.len() > MAX_GROUPS_PER_THING {
                return Reply::limit_exceeded(thing);
            }
            for members in world.groups.values_mut() {
                members.remove(thing);
            }
            for group in after {
                world.groups.entry(group).or_default().insert(thing.clone());
            }
            Reply::ok(json!({}))
        },
    )
    .await
}

async fn list_thing_groups_for_thing(State(aws): Aws, Path(thing): Path<String>) -> Reply {
    aws.serve(Op::ListThingGroupsForThing, Some(&thing), |world, _| {
        let groups: Vec<Value> = world
            .groups_of(&thing)
            .into_iter()
            .map(|g| json!({ "groupName": g, "groupArn": format!("arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{g}") }))
            .collect();
        Reply::ok(json!({ "thingGroups": groups }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    thing_name: Option<String>,
    security_profile_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<usize>,
    thing_principal_type: Option<String>,
}

async fn list_active_violations(State(aws): Aws, Query(query): Query<ListQuery>) -> Reply {
    aws.serve(
        Op::ListActiveViolations,
        query.thing_name.as_deref(),
        |world, aws| {
            let profile = query.security_profile_name.as_deref();
            let violations: Vec<Value> = world
                .violations
                .iter()
                .filter(|(thing, _)| query.thing_name.as_ref().is_none_or(|t| t == *thing))
                .flat_map(|(_, list)| list)
                .filter(|v| profile.is_none_or(|p| v["securityProfileName"].as_str() == Some(p)))
                .cloned()
                .collect();
            match aws.page(violations, query.next_token.as_deref(), query.max_results) {
                Ok((page, next)) => {
                    Reply::ok(json!({ "activeViolations": page, "nextToken": next }))
                }
                Err(reply) => reply,
            }
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointQuery {
    endpoint_type: Option<String>,
}

async fn describe_endpoint(State(aws): Aws, Query(query): Query<EndpointQuery>) -> Reply {
    aws.serve(Op::DescribeEndpoint, None, |_, aws| {
        match query.endpoint_type.as_deref() {
            None | Some("iot:Data" | "iot:Data-ATS" | "iot:CredentialProvider" | "iot:Jobs") => {
                Reply::ok(json!({ "endpointAddress": aws.endpoint_address }))
            }
            Some(other) => Reply::invalid(format!("Invalid endpoint type: {other}")),
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FindingsQuery {
    task_id: Option<String>,
    check_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<usize>,
}

async fn list_audit_findings(State(aws): Aws, AwsJson(body): AwsJson<FindingsQuery>) -> Reply {
    aws.serve(Op::ListAuditFindings, None, |world, aws| {
        let matches = |f: &&Value, key: &str, want: &Option<String>| {
            want.as_deref().is_none_or(|w| f[key].as_str() == Some(w))
        };
        let findings: Vec<Value> = world
            .findings
            .iter()
            .filter(|f| {
                matches(f, "taskId", &body.task_id) && matches(f, "checkName", &body.check_name)
            })
            .cloned()
            .collect();
        match aws.page(findings, body.next_token.as_deref(), body.max_results) {
            Ok((page, next)) => Reply::ok(json!({ "findings": page, "nextToken": next })),
            Err(reply) => reply,
        }
    })
    .await
}

async fn describe_audit_finding(State(aws): Aws, Path(id): Path<String>) -> Reply {
    aws.serve(Op::DescribeAuditFinding, Some(&id), |world, _| match world
        .findings
        .iter()
        .find(|f| f["findingId"] == id.as_str())
    {
        Some(finding) => Reply::ok(json!({ "finding": finding })),
        None => Reply::not_found(format!("Audit finding {id} not found")),
    })
    .await
}

async fn list_thing_principals_v2(
    State(aws): Aws,
    Path(thing): Path<String>,
    Query(query): Query<ListQuery>,
) -> Reply {
    aws.serve(Op::ListThingPrincipalsV2, Some(&thing), |world, aws| {
        let wanted = query.thing_principal_type.as_deref();
        let principals: Vec<Value> = world
            .principals
            .get(&thing)
            .into_iter()
            .flatten()
            .filter(|_| wanted.is_none_or(|t| t == "NON_EXCLUSIVE_THING"))
            .map(|id| json!({ "principal": certificate_arn(id), "thingPrincipalType": "NON_EXCLUSIVE_THING" }))
            .collect();
        match aws.page(principals, query.next_token.as_deref(), query.max_results) {
            Ok((page, next)) => Reply::ok(json!({ "thingPrincipalObjects": page, "nextToken": next })),
            Err(reply) => reply,
        }
    })
    .await
}

async fn list_principal_things_v2(
    State(aws): Aws,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Reply {
    let principal = headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    aws.serve(Op::ListPrincipalThingsV2, principal.as_deref(), |world, aws| {
        let Some(principal) = &principal else {
            return Reply::invalid("principal (x-amzn-principal) is required");
        };
        let id = principal.rsplit_once(":cert/").map_or(principal.as_str(), |(_, id)| id);
        let things: Vec<Value> = world
            .principals
            .iter()
            .filter(|(_, certificates)| certificates.contains(id))
            .map(|(thing, _)| json!({ "thingName": thing, "thingPrincipalType": "NON_EXCLUSIVE_THING" }))
            .collect();
        match aws.page(things, query.next_token.as_deref(), query.max_results) {
            Ok((page, next)) => Reply::ok(json!({ "principalThingObjects": page, "nextToken": next })),
            Err(reply) => reply,
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateQuery {
    new_status: Option<String>,
}

const CERTIFICATE_STATUSES: &[&str] = &[
    "ACTIVE",
    "INACTIVE",
    "REVOKED",
    "PENDING_TRANSFER",
    "REGISTER_INACTIVE",
    "PENDING_ACTIVATION",
];

async fn update_certificate(
    State(aws): Aws,
    Path(id): Path<String>,
    Query(query): Query<CertificateQuery>,
) -> Reply {
    aws.serve(Op::UpdateCertificate, Some(&id), |world, _| {
        let Some(status) = query
            .new_status
            .filter(|s| CERTIFICATE_STATUSES.contains(&s.as_str()))
        else {
            return Reply::invalid("newStatus must be one of ACTIVE, INACTIVE, REVOKED, ...");
        };
        match world.certificates.get_mut(&id) {
            None => Reply::not_found(format!("Certificate {id} does not exist")),
            Some(current) if current == "REVOKED" && status != "REVOKED" => Reply::error(
                StatusCode::NOT_ACCEPTABLE,
                "CertificateStateException",
                format!("Certificate {id} is revoked"),
            ),
            Some(current) => {
                *current = status;
                Reply::ok(json!({}))
            }
        }
    })
    .await
}

async fn describe_certificate(State(aws): Aws, Path(id): Path<String>) -> Reply {
    aws.serve(Op::DescribeCertificate, Some(&id), |world, _| {
        match world.certificates.get(&id) {
            Some(status) => Reply::ok(json!({ "certificateDescription": {
                "certificateArn": certificate_arn(&id),
                "certificateId": id,
                "status": status,
                "ownedBy": ACCOUNT,
                "creationDate": 1_573_786_800,
                "lastModifiedDate": 1_573_786_800,
                "certificateMode": "DEFAULT",
            }})),
            None => Reply::not_found(format!("Certificate {id} does not exist")),
        }
    })
    .await
}

#[derive(Deserialize)]
struct ShadowQuery {
    name: Option<String>,
}

async fn get_thing_shadow(
    State(aws): Aws,
    Path(thing): Path<String>,
    Query(query): Query<ShadowQuery>,
) -> Reply {
    aws.serve(Op::GetThingShadow, Some(&thing), |world, _| {
        let key = match checked_shadow_key(&thing, query.name.as_deref()) {
            Ok(key) => key,
            Err(reply) => return reply,
        };
        match world.shadows.get(&key) {
            Some(shadow) => Reply::ok(json!({
                "state": shadow.state,
                "metadata": {},
                "version": shadow.version,
                "timestamp": epoch_millis() / 1000,
            })),
            None => no_shadow(&key),
        }
    })
    .await
}

async fn delete_thing_shadow(
    State(aws): Aws,
    Path(thing): Path<String>,
    Query(query): Query<ShadowQuery>,
) -> Reply {
    aws.serve(Op::DeleteThingShadow, Some(&thing), |world, _| {
        let key = match checked_shadow_key(&thing, query.name.as_deref()) {
            Ok(key) => key,
            Err(reply) => return reply,
        };
        match world.shadows.remove(&key) {
            Some(shadow) => {
                Reply::ok(json!({ "version": shadow.version, "timestamp": epoch_millis() / 1000 }))
            }
            None => no_shadow(&key),
        }
    })
    .await
}

async fn update_thing_shadow(
    State(aws): Aws,
    Path(thing): Path<String>,
    Query(query): Query<ShadowQuery>,
    body: Bytes,
) -> Reply {
    aws.serve(Op::UpdateThingShadow, Some(&thing), |world, _| {
        let key = match checked_shadow_key(&thing, query.name.as_deref()) {
            Ok(key) => key,
            Err(reply) => return reply,
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(document) => update_shadow(world, key, document),
            Err(_) => Reply::invalid("Payload contains invalid json"),
        }
    })
    .await
}

fn checked_shadow_key(thing: &str, name: Option<&str>) -> Result<(String, Option<String>), Reply> {
    check_name("thingName", thing, 128)?;
    if let Some(name) = name {
        check_name("shadowName", name, 64)?;
    }
    Ok(shadow_key(thing, name))
}

fn no_shadow((thing, name): &(String, Option<String>)) -> Reply {
    Reply::not_found(format!(
        "No shadow exists with name: '{}'",
        name.as_deref().unwrap_or(thing)
    ))
}

/// Merges a shadow document as the shadow service does: sections merge key by key, `null`
/// deletes, a stale `version` is a 409 and a state over 8 KiB a 413.
fn update_shadow(world: &mut World, key: (String, Option<String>), document: Value) -> Reply {
    let Some(patch) = document.get("state") else {
        return Reply::invalid("Missing required node: state");
    };
    if !patch.is_object() && !patch.is_null() {
        return Reply::invalid("Invalid JSON: state node must be an object");
    }
    if patch.to_string().len() > MAX_SHADOW_STATE_BYTES {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            "The payload exceeds the maximum size allowed",
        );
    }
    if let Some(expected) = document.get("version") {
        let current = world.shadows.get(&key).map_or(0, |s| s.version);
        if expected.as_u64() != Some(current) {
            return Reply::error(
                StatusCode::CONFLICT,
                "ConflictException",
                "Version conflict",
            );
        }
    }
    let shadow = world.shadows.entry(key).or_default();
    match patch {
        Value::Object(sections) => {
            for (section, value) in sections {
                let target = shadow
                    .state
                    .entry(section.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                merge(target, value);
                if target.is_null() || target.as_object().is_some_and(Map::is_empty) {
                    shadow.state.remove(section);
                }
            }
        }
        _ => shadow.state.clear(),
    }
    shadow.version += 1;
    let mut answer = json!({
        "state": patch,
        "metadata": {},
        "version": shadow.version,
        "timestamp": epoch_millis() / 1000,
    });
    if let Some(token) = document.get("clientToken") {
        answer["clientToken"] = token.clone();
    }
    shadow.documents.push(document);
    Reply::ok(answer)
}

/// Objects merge key by key, `null` deletes a key, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(map), Value::Object(entries)) => {
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, Value::Object(_)) => {
            *target = Value::Object(Map::new());
            merge(target, patch);
        }
        (target, other) => *target = other.clone(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisconnectQuery {
    clean_session: Option<bool>,
    prevent_will_message: Option<bool>,
}

async fn delete_connection(
    State(aws): Aws,
    Path(client_id): Path<String>,
    Query(query): Query<DisconnectQuery>,
) -> Reply {
    aws.serve(
        Op::DeleteConnection,
        Some(&client_id),
        |world, _| match world.connections.get_mut(&client_id) {
            Some(connection) if connection.connected => {
                connection.connected = false;
                connection.since_ms = epoch_millis();
                world.disconnects.push(Disconnect {
                    client_id: client_id.clone(),
                    clean_session: query.clean_session,
                    prevent_will_message: query.prevent_will_message,
                });
                Reply::ok(json!({}))
            }
            _ => Reply::not_found(format!("Client {client_id} is not connected")),
        },
    )
    .await
}

async fn get_connection(State(aws): Aws, Path(client_id): Path<String>) -> Reply {
    aws.serve(Op::GetConnection, Some(&client_id), |world, _| {
        let Some(connection) = world.connections.get(&client_id) else {
            return Reply::not_found(format!("No connection found for client {client_id}"));
        };
        let mut answer = json!({ "clientId": client_id, "connected": connection.connected, "thingName": connection.thing });
        if connection.connected {
            answer["connectedSince"] = json!(connection.since_ms);
        } else {
            answer["disconnectedSince"] = json!(connection.since_ms);
            answer["disconnectReason"] = json!("API_INITIATED_DISCONNECT");
        }
        Reply::ok(answer)
    })
    .await
}

fn check_name(field: &str, value: &str, max: usize) -> Result<(), Reply> {
    let valid = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Reply::invalid(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
        )))
    }
}
