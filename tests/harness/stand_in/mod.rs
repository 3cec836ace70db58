//! A scriptable local stand-in for the AWS IoT control plane and IoT data plane, for fault
//! tests, adapter tests and benchmarks; the operations moto lacks live here too. DynamoDB's
//! item operations on small in-memory tables serve the quarantine ledger (`dynamodb.rs`).
//!
//! Both SDK clients can be pointed at the one [`StandIn::endpoint`]. Routes follow the request
//! serializers of aws-sdk-iot 1.135 and aws-sdk-iotdataplane 1.120 (restJson1); adding an
//! operation is one [`Op`], one route and one handler (in `routes.rs`).
//!
//! Errors carry the AWS code in `x-amzn-ErrorType` and a `{"message"}` body. Throttling is
//! HTTP 400 `ThrottlingException` on the control plane and HTTP 429 on the data plane.
//!
//! Every request, in this order: scripted fault for its subject (thing, client id,
//! certificate) → shared token bucket → seeded 5xx share → the operation on the state. The
//! call is recorded (with the status answered) and its effect applied when it arrives;
//! latency and hangs only delay the answer, so a client that times out may still have changed
//! the state, as with the real service.

mod dynamodb;
mod expression;
mod routes;
mod state;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Server;
use crate::{epoch_millis, lock};
use state::{Bucket, Connection, FaultEntry, World};
use wire::Shared;

/// The most groups a thing can belong to.
pub const MAX_GROUPS_PER_THING: usize = 10;
/// The account id in every ARN the stand-in makes.
pub const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

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
    DescribeThing,
    UpdateThing,
    UpdateThingShadow,
    GetThingShadow,
    DeleteThingShadow,
    DeleteConnection,
    GetConnection,
    PutVerificationStateOnViolation,
    DescribeEventConfigurations,
    UpdateEventConfigurations,
    /// DynamoDB (the quarantine ledger's table).
    GetItem,
    PutItem,
    UpdateItem,
    TransactWriteItems,
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
    /// The thing, client id or certificate id the call is about, when it names one (for
    /// DynamoDB, the item's partition key; for an operation DynamoDB lacks, its
    /// `X-Amz-Target`).
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
                signers: Mutex::new(Vec::new()),
            });
            shared = Some(Arc::clone(&state));
            routes::router(state)
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

    /// Who signed each request so far, in order: `access-key/region/service` from the SigV4
    /// `Authorization` header's credential scope (the date left out).
    pub fn signers(&self) -> Vec<String> {
        lock(&self.shared.signers).clone()
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

    /// The verification state PutVerificationStateOnViolation set on a violation.
    pub fn verification_state(&self, violation_id: &str) -> Option<String> {
        self.world().verification_states.get(violation_id).cloned()
    }

    /// Put a thing in a group directly (no call recorded, no limit checked).
    pub fn add_member(&self, group: &str, thing: &str) {
        self.world()
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(thing.to_owned());
    }

    /// Whether the registry publishes events of this type (`THING_GROUP_MEMBERSHIP`, ...),
    /// as UpdateEventConfigurations left it; `None` when never configured (off).
    pub fn event_configuration(&self, event_type: &str) -> Option<bool> {
        self.world().event_configurations.get(event_type).copied()
    }

    /// Configure a registry event type directly (no call recorded).
    pub fn set_event_configuration(&self, event_type: &str, enabled: bool) {
        self.world()
            .event_configurations
            .insert(event_type.to_owned(), enabled);
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

    /// A thing's attributes, as DescribeThing answers them.
    pub fn thing_attributes(&self, thing: &str) -> BTreeMap<String, String> {
        self.world()
            .attributes
            .get(thing)
            .cloned()
            .unwrap_or_default()
    }

    /// A DynamoDB table with these key attributes (partition, then sort key), empty.
    pub fn create_table(&self, name: &str, key_names: &[&str]) {
        self.world().tables.insert(
            name.to_owned(),
            dynamodb::Table {
                key_names: key_names.iter().map(|k| (*k).to_owned()).collect(),
                items: BTreeMap::new(),
            },
        );
    }

    /// The item of a table with these key values (in the table's key order), in DynamoDB's
    /// JSON form.
    pub fn table_item(&self, table: &str, key: &[&str]) -> Option<Value> {
        let key: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
        self.world()
            .tables
            .get(table)?
            .items
            .get(&key)
            .map(|item| Value::Object(item.clone()))
    }

    /// Every item of a table, in key order.
    pub fn table_items(&self, table: &str) -> Vec<Value> {
        self.world()
            .tables
            .get(table)
            .map(|t| t.items.values().map(|i| Value::Object(i.clone())).collect())
            .unwrap_or_default()
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
