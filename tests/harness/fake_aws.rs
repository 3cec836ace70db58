//! A scriptable local stand-in for the AWS IoT control-plane and IoT data-plane REST endpoints,
//! for fault tests and benchmarks.
//!
//! Both SDK clients (`aws_sdk_iot` and `aws_sdk_iotdataplane`) can be pointed at the one
//! [`FakeAws::endpoint`]: requests are routed by method and path (checked against the request
//! serializers of aws-sdk-iot 1.135 and aws-sdk-iotdataplane 1.120):
//!
//! | method + path | operation | plane |
//! |---|---|---|
//! | `PUT /thing-groups/addThingToThingGroup` | AddThingToThingGroup | control |
//! | `PUT /thing-groups/removeThingFromThingGroup` | RemoveThingFromThingGroup | control |
//! | `PUT /thing-groups/updateThingGroupsForThing` | UpdateThingGroupsForThing | control |
//! | `GET /things/{thingName}/thing-groups` | ListThingGroupsForThing | control |
//! | `GET /active-violations?thingName=` | ListActiveViolations | control |
//! | `GET /endpoint?endpointType=` | DescribeEndpoint | control |
//! | `POST /things/{thingName}/shadow[?name=]` | UpdateThingShadow | data |
//! | `GET /things/{thingName}/shadow[?name=]` | GetThingShadow | data |
//! | `DELETE /things/{thingName}/shadow[?name=]` | DeleteThingShadow | data |
//!
//! Anything else answers 404 `UnknownOperationException` (op [`op::UNKNOWN`]).
//!
//! Errors use the restJson format: status + `x-amzn-ErrorType` header + `{"message": ...}`.
//! Throttling is HTTP 400 `ThrottlingException` on the control plane and HTTP 429
//! `ThrottlingException` on the data plane.
//!
//! State: the fake keeps group membership (every group and thing implicitly exists; the
//! 10-groups-per-thing limit is enforced with 400 `InvalidRequestException`) and shadow documents
//! (desired/reported merged as AWS does: `null` deletes a key; a stale `version` gives 409
//! `ConflictException`; a state document over 8 KiB gives 413 `RequestEntityTooLargeException`).
//!
//! Order of checks for each request: route → per-thing fault → rate limit → 5xx share → the
//! operation itself. Latency (and a `Hang` fault) only delay the answer: the call is recorded
//! and its effect applied when it arrives, so a client that times out may still have changed
//! the state (as with the real service).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Operation names as recorded in [`Call::op`].
pub mod op {
    pub const ADD_THING_TO_THING_GROUP: &str = "AddThingToThingGroup";
    pub const REMOVE_THING_FROM_THING_GROUP: &str = "RemoveThingFromThingGroup";
    pub const UPDATE_THING_GROUPS_FOR_THING: &str = "UpdateThingGroupsForThing";
    pub const LIST_THING_GROUPS_FOR_THING: &str = "ListThingGroupsForThing";
    pub const LIST_ACTIVE_VIOLATIONS: &str = "ListActiveViolations";
    pub const DESCRIBE_ENDPOINT: &str = "DescribeEndpoint";
    pub const UPDATE_THING_SHADOW: &str = "UpdateThingShadow";
    pub const GET_THING_SHADOW: &str = "GetThingShadow";
    pub const DELETE_THING_SHADOW: &str = "DeleteThingShadow";
    /// Any request that matches no route (answered 404 `UnknownOperationException`).
    pub const UNKNOWN: &str = "Unknown";
}

/// The most groups a thing can belong to.
pub const MAX_GROUPS_PER_THING: usize = 10;
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_SHADOW_STATE_BYTES: usize = 8 * 1024;
const POLL: Duration = Duration::from_millis(50);
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// A scripted fault for one thing.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The first `n` calls are throttled (400 control plane / 429 data plane
    /// `ThrottlingException`), later calls are answered normally.
    ThrottleTimes(u32),
    /// Every call answers 500 `InternalFailureException`.
    Always5xx,
    /// Every call is answered normally, but only after this delay (models a timeout).
    Hang(Duration),
    /// The first `n` calls are answered after the delay, later ones at once (a timeout, then
    /// success on retry).
    HangFirst(u32, Duration),
    /// Control-plane calls answer 404 `ResourceNotFoundException` (the thing was deleted).
    /// Data-plane (shadow) calls are unaffected: deleting a thing does not delete its shadow,
    /// and AWS accepts shadow updates for things the registry does not have.
    NotFound,
    /// AddThingToThingGroup and UpdateThingGroupsForThing answer 400 `InvalidRequestException`
    /// (the 10-groups-per-thing limit: IoT models no LimitExceededException for these calls);
    /// other calls are unaffected.
    LimitExceeded,
}

/// One request as seen by the fake.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: &'static str,
    pub thing: Option<String>,
    /// The status answered (recorded when the request arrives, before any delay).
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

/// Configuration; every setting is optional. Builder-style.
#[derive(Debug, Clone, Default)]
pub struct FakeAwsConfig {
    latency: Duration,
    rate_limit: Option<(f64, f64)>,
    failure_share: f64,
    seed: u64,
    faults: Vec<(String, Option<&'static str>, Fault)>,
    violations: BTreeMap<String, Vec<Value>>,
    members: Vec<(String, String)>,
    endpoint_address: Option<String>,
}

impl FakeAwsConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Delay every answer by this much.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// A token bucket shared by all operations: `per_second` tokens a second, bursts of up to
    /// `max(1, per_second)`. Requests over the limit are throttled.
    pub fn rate_limit(self, per_second: f64) -> Self {
        let burst = per_second.max(1.0);
        self.rate_limit_with_burst(per_second, burst)
    }

    /// As [`Self::rate_limit`], with an explicit bucket size.
    pub fn rate_limit_with_burst(mut self, per_second: f64, burst: f64) -> Self {
        self.rate_limit = Some((per_second.max(0.0), burst.max(1.0)));
        self
    }

    /// The share (0.0..=1.0) of requests answered 500 `InternalFailureException`. Which ones is
    /// decided by a seeded generator over the request sequence number, so a run with the same
    /// seed and the same request order fails the same requests.
    pub fn failure_share(mut self, share: f64) -> Self {
        self.failure_share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// The seed for [`Self::failure_share`] (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A fault for every operation on this thing.
    pub fn fault_for_thing(mut self, thing: impl Into<String>, fault: Fault) -> Self {
        self.faults.push((thing.into(), None, fault));
        self
    }

    /// A fault for one operation (an [`op`] name) on this thing; it takes precedence over a
    /// fault for every operation.
    pub fn fault_for_thing_op(
        mut self,
        thing: impl Into<String>,
        op: &'static str,
        fault: Fault,
    ) -> Self {
        self.faults.push((thing.into(), Some(op), fault));
        self
    }

    /// What ListActiveViolations returns for this thing (ActiveViolation JSON objects).
    pub fn active_violations_for(
        mut self,
        thing: impl Into<String>,
        violations: Vec<Value>,
    ) -> Self {
        self.violations.insert(thing.into(), violations);
        self
    }

    /// Start with this thing in this group.
    pub fn member(mut self, group: impl Into<String>, thing: impl Into<String>) -> Self {
        self.members.push((group.into(), thing.into()));
        self
    }

    /// What DescribeEndpoint answers (default: `127.0.0.1:PORT`, the fake itself; AWS answers a
    /// host name without scheme).
    pub fn endpoint_address(mut self, address: impl Into<String>) -> Self {
        self.endpoint_address = Some(address.into());
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
}

#[derive(Debug, Default)]
struct State {
    groups: BTreeMap<String, BTreeSet<String>>,
    shadows: HashMap<(String, Option<String>), Shadow>,
    faults: HashMap<(String, Option<&'static str>), FaultEntry>,
    violations: BTreeMap<String, Vec<Value>>,
}

impl State {
    fn groups_of(&self, thing: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, things)| things.contains(thing))
            .map(|(group, _)| group.clone())
            .collect()
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
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Inner {
    shutdown: AtomicBool,
    active: AtomicUsize,
    seq: AtomicU64,
    latency: Duration,
    failure_share: f64,
    seed: u64,
    endpoint_address: String,
    bucket: Option<Mutex<Bucket>>,
    state: Mutex<State>,
    calls: Mutex<Vec<Call>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake. Dropping it stops it.
pub struct FakeAws {
    inner: Arc<Inner>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl FakeAws {
    /// Bind 127.0.0.1 on a free port and serve in background threads. Panics if it cannot
    /// bind (see [`Self::try_start`]).
    pub fn start(config: FakeAwsConfig) -> FakeAws {
        Self::try_start(config).expect("fake_aws: bind 127.0.0.1:0")
    }

    pub fn try_start(config: FakeAwsConfig) -> io::Result<FakeAws> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let mut state = State {
            violations: config.violations,
            ..State::default()
        };
        for (group, thing) in config.members {
            state.groups.entry(group).or_default().insert(thing);
        }
        for (thing, op, fault) in config.faults {
            state
                .faults
                .insert((thing, op), FaultEntry { fault, seen: 0 });
        }
        let inner = Arc::new(Inner {
            shutdown: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            latency: config.latency,
            failure_share: config.failure_share,
            seed: config.seed,
            endpoint_address: config
                .endpoint_address
                .unwrap_or_else(|| format!("127.0.0.1:{}", addr.port())),
            bucket: config.rate_limit.map(|(rate, burst)| {
                Mutex::new(Bucket {
                    rate,
                    burst,
                    tokens: burst,
                    last: Instant::now(),
                })
            }),
            state: Mutex::new(state),
            calls: Mutex::new(Vec::new()),
        });
        let accept_inner = Arc::clone(&inner);
        let accept = thread::Builder::new()
            .name("fake-aws-accept".into())
            .spawn(move || accept_loop(listener, accept_inner))?;
        Ok(FakeAws {
            inner,
            addr,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` of both SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far (since the last [`Self::reset_counters`]), in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    /// How many requests for this operation (any status).
    pub fn count(&self, op: &str) -> usize {
        lock(&self.inner.calls)
            .iter()
            .filter(|c| c.op == op)
            .count()
    }

    /// How many requests for this operation were answered with this status.
    pub fn count_status(&self, op: &str, status: u16) -> usize {
        lock(&self.inner.calls)
            .iter()
            .filter(|c| c.op == op && c.status == status)
            .count()
    }

    /// Forget the recorded calls. State, faults and their progress are kept.
    pub fn reset_counters(&self) {
        lock(&self.inner.calls).clear();
    }

    /// Set (or replace, restarting its count) a fault for every operation on this thing.
    pub fn set_fault(&self, thing: &str, fault: Fault) {
        lock(&self.inner.state)
            .faults
            .insert((thing.to_string(), None), FaultEntry { fault, seen: 0 });
    }

    /// Set (or replace) a fault for one operation on this thing.
    pub fn set_fault_for_op(&self, thing: &str, op: &'static str, fault: Fault) {
        lock(&self.inner.state)
            .faults
            .insert((thing.to_string(), Some(op)), FaultEntry { fault, seen: 0 });
    }

    /// Remove every scripted fault.
    pub fn clear_faults(&self) {
        lock(&self.inner.state).faults.clear();
    }

    pub fn set_active_violations(&self, thing: &str, violations: Vec<Value>) {
        lock(&self.inner.state)
            .violations
            .insert(thing.to_string(), violations);
    }

    /// Put a thing in a group directly (no call recorded, no limit checked).
    pub fn add_member(&self, group: &str, thing: &str) {
        lock(&self.inner.state)
            .groups
            .entry(group.to_string())
            .or_default()
            .insert(thing.to_string());
    }

    pub fn group_members(&self, group: &str) -> BTreeSet<String> {
        lock(&self.inner.state)
            .groups
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    pub fn groups_of(&self, thing: &str) -> BTreeSet<String> {
        lock(&self.inner.state).groups_of(thing)
    }

    /// The merged `state.desired` of a shadow (`None`: classic shadow), if it has one.
    pub fn shadow_desired(&self, thing: &str, shadow_name: Option<&str>) -> Option<Value> {
        self.shadow_state(thing, shadow_name)
            .and_then(|state| state.get("desired").cloned())
    }

    /// The whole merged `state` of a shadow, if the shadow exists.
    pub fn shadow_state(&self, thing: &str, shadow_name: Option<&str>) -> Option<Value> {
        let key = (thing.to_string(), shadow_name.map(str::to_string));
        lock(&self.inner.state)
            .shadows
            .get(&key)
            .map(|s| Value::Object(s.state.clone()))
    }

    /// The version of a shadow, if the shadow exists.
    pub fn shadow_version(&self, thing: &str, shadow_name: Option<&str>) -> Option<u64> {
        let key = (thing.to_string(), shadow_name.map(str::to_string));
        lock(&self.inner.state).shadows.get(&key).map(|s| s.version)
    }

    /// Stop accepting, close idle connections and abandon delayed answers. Returns within about
    /// half a second. Idempotent.
    pub fn stop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept.take() {
            // Wake the blocking accept.
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                let _ = handle.join();
            }
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while self.inner.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAws").field("addr", &self.addr).finish()
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let accepted = listener.accept();
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let conn_inner = Arc::clone(&inner);
        conn_inner.active.fetch_add(1, Ordering::SeqCst);
        let spawned = thread::Builder::new()
            .name("fake-aws-conn".into())
            .spawn(move || {
                serve_connection(stream, &conn_inner);
                conn_inner.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            inner.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    error_type: Option<&'static str>,
    body: String,
}

impl Response {
    fn ok(body: Value) -> Self {
        Response {
            status: 200,
            error_type: None,
            body: body.to_string(),
        }
    }

    fn error(status: u16, error_type: &'static str, message: impl Into<String>) -> Self {
        Response {
            status,
            error_type: Some(error_type),
            body: json!({ "message": message.into() }).to_string(),
        }
    }
}

enum ReadError {
    /// Connection closed, timed out or shut down: close without answering.
    Closed,
    /// Malformed or oversized: answer with this status, then close.
    Bad(u16, &'static str),
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Read more bytes into `buf`; `idle` allows waiting forever (until shutdown) for the first
    /// byte of a request, otherwise a stall of 30 s closes the connection.
    fn fill(&mut self, inner: &Inner, idle: bool) -> Result<(), ReadError> {
        let started = Instant::now();
        let mut chunk = [0u8; 8192];
        loop {
            if inner.shutdown.load(Ordering::SeqCst) {
                return Err(ReadError::Closed);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if !idle && started.elapsed() > Duration::from_secs(30) {
                        return Err(ReadError::Closed);
                    }
                }
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    /// Take bytes up to and including the first `delim`, reading more as needed.
    fn take_until(
        &mut self,
        inner: &Inner,
        delim: &[u8],
        limit: usize,
        idle: bool,
    ) -> Result<Vec<u8>, ReadError> {
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], delim) {
                let end = searched + pos + delim.len();
                return Ok(self.buf.drain(..end).collect());
            }
            searched = self.buf.len().saturating_sub(delim.len());
            if self.buf.len() > limit {
                return Err(ReadError::Bad(
                    431,
                    "request header or chunk line too large",
                ));
            }
            self.fill(inner, idle && self.buf.is_empty())?;
        }
    }

    fn take_exact(&mut self, inner: &Inner, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill(inner, false)?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Read one request and whether the connection stays open after it.
    fn read_request(&mut self, inner: &Inner) -> Result<(Request, bool), ReadError> {
        let head = self.take_until(inner, b"\r\n\r\n", MAX_HEADER_BYTES, true)?;
        let head = String::from_utf8_lossy(&head);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ReadError::Bad(400, "malformed request line"));
        };
        if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
            return Err(ReadError::Bad(400, "malformed request line"));
        }
        let mut keep_alive = version == "HTTP/1.1";
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut expect_continue = false;
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(ReadError::Bad(400, "malformed header"));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => match value.parse::<usize>() {
                    Ok(n) => content_length = Some(n),
                    Err(_) => return Err(ReadError::Bad(400, "bad content-length")),
                },
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => {
                    let v = value.to_ascii_lowercase();
                    if v.contains("close") {
                        keep_alive = false;
                    } else if v.contains("keep-alive") {
                        keep_alive = true;
                    }
                }
                "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
                _ => {}
            }
        }
        if content_length.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        if expect_continue && (chunked || content_length.is_some_and(|n| n > 0)) {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let body = if chunked {
            self.read_chunked(inner)?
        } else {
            self.take_exact(inner, content_length.unwrap_or(0))?
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        let query = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Ok((
            Request {
                method: method.to_string(),
                path: path.to_string(),
                query,
                body,
            },
            keep_alive,
        ))
    }

    fn read_chunked(&mut self, inner: &Inner) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.take_until(inner, b"\r\n", 4096, false)?;
            let line = String::from_utf8_lossy(&line);
            let size_text = line.trim_end().split(';').next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                return Err(ReadError::Bad(400, "bad chunk size"));
            };
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let trailer = self.take_until(inner, b"\r\n", MAX_HEADER_BYTES, false)?;
                    if trailer == b"\r\n" {
                        return Ok(body);
                    }
                }
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(ReadError::Bad(413, "request body too large"));
            }
            body.extend(self.take_exact(inner, size)?);
            if self.take_exact(inner, 2)? != b"\r\n" {
                return Err(ReadError::Bad(400, "bad chunk terminator"));
            }
        }
    }

    fn write_response(
        &mut self,
        response: &Response,
        keep_alive: bool,
        request_id: u64,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-amzn-RequestId: fake-{request_id:016x}\r\n",
            response.status,
            reason(response.status),
            response.body.len()
        );
        if let Some(error_type) = response.error_type {
            head.push_str(&format!("x-amzn-ErrorType: {error_type}\r\n"));
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(response.body.as_bytes());
        self.stream.write_all(&out)?;
        self.stream.flush()
    }
}

fn serve_connection(stream: TcpStream, inner: &Inner) {
    let _ = stream.set_nodelay(true);
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        match conn.read_request(inner) {
            Ok((request, keep_alive)) => {
                let at = Instant::now();
                let request_id = inner.seq.fetch_add(1, Ordering::SeqCst);
                let (response, delay) = handle(inner, &request, at, request_id);
                if !sleep_unless_shutdown(inner, delay) {
                    break;
                }
                if conn
                    .write_response(&response, keep_alive, request_id)
                    .is_err()
                    || !keep_alive
                {
                    break;
                }
            }
            Err(ReadError::Closed) => break,
            Err(ReadError::Bad(status, message)) => {
                let response = Response::error(status, "InvalidRequestException", message);
                let _ = conn.write_response(&response, false, 0);
                break;
            }
        }
    }
    let _ = conn.stream.shutdown(Shutdown::Both);
}

/// Sleep in slices; false if the fake is shutting down.
fn sleep_unless_shutdown(inner: &Inner, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

// ---------------------------------------------------------------------------------------------
// Routing and operations

#[derive(Clone, Copy, PartialEq, Eq)]
enum Plane {
    Control,
    Data,
}

struct Route {
    op: &'static str,
    plane: Plane,
    thing: Option<String>,
    /// The parsed JSON body for group operations (None if absent or malformed).
    body: Option<Value>,
}

fn route(request: &Request) -> Route {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let json_body = || serde_json::from_slice::<Value>(&request.body).ok();
    let body_thing = |body: &Option<Value>| {
        let body = body.as_ref()?;
        if let Some(name) = body.get("thingName").and_then(Value::as_str) {
            return Some(name.to_string());
        }
        let arn = body.get("thingArn").and_then(Value::as_str)?;
        arn.rsplit_once(":thing/").map(|(_, name)| name.to_string())
    };
    let control = |op, thing, body| Route {
        op,
        plane: Plane::Control,
        thing,
        body,
    };
    match (request.method.as_str(), segments.as_slice()) {
        ("PUT", ["thing-groups", action]) => {
            let op = match *action {
                "addThingToThingGroup" => op::ADD_THING_TO_THING_GROUP,
                "removeThingFromThingGroup" => op::REMOVE_THING_FROM_THING_GROUP,
                "updateThingGroupsForThing" => op::UPDATE_THING_GROUPS_FOR_THING,
                _ => return control(op::UNKNOWN, None, None),
            };
            let body = json_body();
            control(op, body_thing(&body), body)
        }
        ("GET", ["things", thing, "thing-groups"]) => control(
            op::LIST_THING_GROUPS_FOR_THING,
            Some(percent_decode(thing)),
            None,
        ),
        ("GET", ["active-violations"]) => control(
            op::LIST_ACTIVE_VIOLATIONS,
            query_value(request, "thingName").map(str::to_string),
            None,
        ),
        ("GET", ["endpoint"]) => control(op::DESCRIBE_ENDPOINT, None, None),
        (method, ["things", thing, "shadow"]) => {
            let op = match method {
                "POST" => op::UPDATE_THING_SHADOW,
                "GET" => op::GET_THING_SHADOW,
                "DELETE" => op::DELETE_THING_SHADOW,
                _ => return control(op::UNKNOWN, None, None),
            };
            Route {
                op,
                plane: Plane::Data,
                thing: Some(percent_decode(thing)),
                body: None,
            }
        }
        _ => control(op::UNKNOWN, None, None),
    }
}

fn query_value<'a>(request: &'a Request, key: &str) -> Option<&'a str> {
    request
        .query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn throttled(plane: Plane) -> Response {
    match plane {
        Plane::Control => Response::error(400, "ThrottlingException", "Rate exceeded"),
        Plane::Data => Response::error(429, "ThrottlingException", "Rate exceeded"),
    }
}

fn internal_failure() -> Response {
    Response::error(
        500,
        "InternalFailureException",
        "Internal failure (injected by fake_aws)",
    )
}

fn is_group_add(op: &str) -> bool {
    op == op::ADD_THING_TO_THING_GROUP || op == op::UPDATE_THING_GROUPS_FOR_THING
}

fn limit_exceeded(thing: &str) -> Response {
    Response::error(
        400,
        "InvalidRequestException",
        format!("Thing {thing} cannot be added to more than {MAX_GROUPS_PER_THING} thing groups"),
    )
}

/// Decide the answer (applying any effect) and how long to wait before sending it.
fn handle(inner: &Inner, request: &Request, at: Instant, request_id: u64) -> (Response, Duration) {
    let route = route(request);
    let mut delay = inner.latency;
    let response = decide(inner, request, &route, request_id, &mut delay);
    lock(&inner.calls).push(Call {
        op: route.op,
        thing: route.thing.clone(),
        status: response.status,
        at,
    });
    (response, delay)
}

fn decide(
    inner: &Inner,
    request: &Request,
    route: &Route,
    request_id: u64,
    delay: &mut Duration,
) -> Response {
    if route.op == op::UNKNOWN {
        return Response::error(
            404,
            "UnknownOperationException",
            format!("fake_aws: no route for {} {}", request.method, request.path),
        );
    }
    // Per-thing faults.
    if let Some(thing) = &route.thing {
        let mut state = lock(&inner.state);
        let key_op = (thing.clone(), Some(route.op));
        let key_any = (thing.clone(), None);
        let entry = if state.faults.contains_key(&key_op) {
            state.faults.get_mut(&key_op)
        } else {
            state.faults.get_mut(&key_any)
        };
        if let Some(entry) = entry {
            let seen = entry.seen;
            entry.seen = entry.seen.saturating_add(1);
            match entry.fault {
                Fault::ThrottleTimes(n) if seen < n => return throttled(route.plane),
                Fault::Always5xx => return internal_failure(),
                Fault::Hang(d) => *delay += d,
                Fault::HangFirst(n, d) if seen < n => *delay += d,
                Fault::NotFound if route.plane == Plane::Control => {
                    return Response::error(
                        404,
                        "ResourceNotFoundException",
                        format!("Thing {thing} cannot be found."),
                    );
                }
                Fault::LimitExceeded if is_group_add(route.op) => return limit_exceeded(thing),
                _ => {}
            }
        }
    }
    // Rate limit.
    if let Some(bucket) = &inner.bucket
        && !lock(bucket).take()
    {
        return throttled(route.plane);
    }
    // 5xx share.
    if inner.failure_share > 0.0 {
        let r = splitmix64(inner.seed ^ request_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        if unit < inner.failure_share {
            return internal_failure();
        }
    }
    let mut state = lock(&inner.state);
    match route.op {
        op::ADD_THING_TO_THING_GROUP | op::REMOVE_THING_FROM_THING_GROUP => {
            group_add_remove(&mut state, route)
        }
        op::UPDATE_THING_GROUPS_FOR_THING => update_groups(&mut state, route),
        op::LIST_THING_GROUPS_FOR_THING => {
            let thing = route.thing.as_deref().unwrap_or_default();
            if !valid_name(thing, 128) {
                return invalid_name("thingName", thing);
            }
            let groups: Vec<Value> = state
                .groups_of(thing)
                .into_iter()
                .map(|g| json!({ "groupName": g, "groupArn": group_arn(&g) }))
                .collect();
            Response::ok(json!({ "thingGroups": groups }))
        }
        op::LIST_ACTIVE_VIOLATIONS => {
            let profile = query_value(request, "securityProfileName");
            let violations: Vec<Value> = state
                .violations
                .iter()
                .filter(|(thing, _)| route.thing.as_ref().is_none_or(|t| t == *thing))
                .flat_map(|(_, list)| list.iter())
                .filter(|v| {
                    profile.is_none_or(|p| {
                        v.get("securityProfileName").and_then(Value::as_str) == Some(p)
                    })
                })
                .cloned()
                .collect();
            Response::ok(json!({ "activeViolations": violations }))
        }
        op::DESCRIBE_ENDPOINT => match query_value(request, "endpointType") {
            None | Some("iot:Data" | "iot:Data-ATS" | "iot:CredentialProvider" | "iot:Jobs") => {
                Response::ok(json!({ "endpointAddress": inner.endpoint_address }))
            }
            Some(other) => Response::error(
                400,
                "InvalidRequestException",
                format!("Invalid endpoint type: {other}"),
            ),
        },
        op::UPDATE_THING_SHADOW | op::GET_THING_SHADOW | op::DELETE_THING_SHADOW => {
            shadow_op(&mut state, request, route)
        }
        _ => Response::error(404, "UnknownOperationException", "no such operation"),
    }
}

fn group_arn(group: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}")
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

fn invalid_name(field: &str, value: &str) -> Response {
    Response::error(
        400,
        "InvalidRequestException",
        format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
        ),
    )
}

fn group_add_remove(state: &mut State, route: &Route) -> Response {
    let Some(body) = &route.body else {
        return Response::error(
            400,
            "InvalidRequestException",
            "Request body is not valid JSON",
        );
    };
    let group = body
        .get("thingGroupName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let arn = body.get("thingGroupArn").and_then(Value::as_str)?;
            arn.rsplit_once(":thinggroup/").map(|(_, n)| n.to_string())
        });
    let (Some(group), Some(thing)) = (group, route.thing.as_deref()) else {
        return Response::error(
            400,
            "InvalidRequestException",
            "Both a thing group (name or ARN) and a thing (name or ARN) are required",
        );
    };
    if !valid_name(&group, 128) {
        return invalid_name("thingGroupName", &group);
    }
    if !valid_name(thing, 128) {
        return invalid_name("thingName", thing);
    }
    if route.op == op::ADD_THING_TO_THING_GROUP {
        let current = state.groups_of(thing);
        if !current.contains(&group) && current.len() >= MAX_GROUPS_PER_THING {
            return limit_exceeded(thing);
        }
        state
            .groups
            .entry(group)
            .or_default()
            .insert(thing.to_string());
    } else if let Some(members) = state.groups.get_mut(&group) {
        members.remove(thing);
    }
    Response::ok(json!({}))
}

fn update_groups(state: &mut State, route: &Route) -> Response {
    let Some(body) = &route.body else {
        return Response::error(
            400,
            "InvalidRequestException",
            "Request body is not valid JSON",
        );
    };
    let Some(thing) = body.get("thingName").and_then(Value::as_str) else {
        return Response::error(400, "InvalidRequestException", "thingName is required");
    };
    if !valid_name(thing, 128) {
        return invalid_name("thingName", thing);
    }
    let list = |key: &str| -> Result<Vec<String>, Response> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(name) if valid_name(name, 128) => Ok(name.to_string()),
                    _ => Err(invalid_name(key, &item.to_string())),
                })
                .collect(),
            Some(_) => Err(Response::error(
                400,
                "InvalidRequestException",
                format!("{key} must be a list of group names"),
            )),
        }
    };
    let (to_add, to_remove) = match (list("thingGroupsToAdd"), list("thingGroupsToRemove")) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let mut after = state.groups_of(thing);
    for group in &to_remove {
        after.remove(group);
    }
    after.extend(to_add.iter().cloned());
    if after.len() > MAX_GROUPS_PER_THING {
        return limit_exceeded(thing);
    }
    // Atomic: applied only when valid.
    for group in &to_remove {
        if let Some(members) = state.groups.get_mut(group) {
            members.remove(thing);
        }
    }
    for group in to_add {
        state
            .groups
            .entry(group)
            .or_default()
            .insert(thing.to_string());
    }
    Response::ok(json!({}))
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn shadow_op(state: &mut State, request: &Request, route: &Route) -> Response {
    let thing = route.thing.clone().unwrap_or_default();
    if !valid_name(&thing, 128) {
        return invalid_name("thingName", &thing);
    }
    let shadow_name = query_value(request, "name").map(str::to_string);
    if let Some(name) = &shadow_name
        && !valid_name(name, 64)
    {
        return invalid_name("shadowName", name);
    }
    let display_name = shadow_name.clone().unwrap_or_else(|| thing.clone());
    let key = (thing, shadow_name);
    let now = epoch_seconds();
    match route.op {
        op::GET_THING_SHADOW => match state.shadows.get(&key) {
            Some(shadow) => Response::ok(json!({
                "state": Value::Object(shadow.state.clone()),
                "metadata": {},
                "version": shadow.version,
                "timestamp": now,
            })),
            None => no_shadow(&display_name),
        },
        op::DELETE_THING_SHADOW => match state.shadows.remove(&key) {
            Some(shadow) => Response::ok(json!({ "version": shadow.version, "timestamp": now })),
            None => no_shadow(&display_name),
        },
        _ => {
            let Ok(document) = serde_json::from_slice::<Value>(&request.body) else {
                return Response::error(
                    400,
                    "InvalidRequestException",
                    "Payload contains invalid json",
                );
            };
            let Some(document) = document.as_object() else {
                return Response::error(
                    400,
                    "InvalidRequestException",
                    "Payload must be a JSON object",
                );
            };
            let Some(patch) = document.get("state") else {
                return Response::error(
                    400,
                    "InvalidRequestException",
                    "Missing required node: state",
                );
            };
            if !patch.is_object() && !patch.is_null() {
                return Response::error(
                    400,
                    "InvalidRequestException",
                    "Invalid JSON: state node must be an object",
                );
            }
            if patch.to_string().len() > MAX_SHADOW_STATE_BYTES {
                return Response::error(
                    413,
                    "RequestEntityTooLargeException",
                    "The payload exceeds the maximum size allowed",
                );
            }
            if let Some(expected) = document.get("version") {
                let current = state.shadows.get(&key).map_or(0, |s| s.version);
                if expected.as_u64() != Some(current) {
                    return Response::error(409, "ConflictException", "Version conflict");
                }
            }
            let shadow = state.shadows.entry(key).or_default();
            match patch {
                Value::Object(sections) => {
                    for (section, value) in sections {
                        if value.is_null() {
                            shadow.state.remove(section);
                            continue;
                        }
                        let target = shadow
                            .state
                            .entry(section.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        merge(target, value);
                        if target.as_object().is_some_and(Map::is_empty) {
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
                "timestamp": now,
            });
            if let Some(token) = document.get("clientToken") {
                answer["clientToken"] = token.clone();
            }
            Response::ok(answer)
        }
    }
}

fn no_shadow(name: &str) -> Response {
    Response::error(
        404,
        "ResourceNotFoundException",
        format!("No shadow exists with name: '{name}'"),
    )
}

/// Merge `patch` into `target` as the shadow service does: objects merge key by key, `null`
/// deletes a key, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(map) = target {
                for (key, value) in entries {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
