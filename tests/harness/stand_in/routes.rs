//! Routes and handlers: one per operation, each a few lines on the state.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dynamodb;
use super::state::update_shadow;
use super::wire::{AwsJson, Reply, Shared};
use super::{ACCOUNT, Disconnect, MAX_GROUPS_PER_THING, Op, REGION, certificate_arn, shadow_key};
use crate::epoch_millis;

type Aws = State<Arc<Shared>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
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
        .route("/things/{thing}", get(describe_thing).patch(update_thing))
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
        .route(
            "/violations/verification-state/{id}",
            post(put_verification_state_on_violation),
        )
        .route(
            "/event-configurations",
            get(describe_event_configurations).patch(update_event_configurations),
        )
        .route("/", post(dynamodb_operation))
        .fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            record_signer,
        ))
        .with_state(shared)
}

/// Notes each request's signer ([`super::StandIn::signers`]) before it is routed.
async fn record_signer(
    State(aws): Aws,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let scope = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(credential_scope);
    if let Some(scope) = scope {
        crate::lock(&aws.signers).push(scope);
    }
    next.run(request).await
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/iot/aws4_request, ...` →
/// `AKID/us-east-1/iot`.
fn credential_scope(authorization: &str) -> Option<String> {
    let credential = authorization
        .split("Credential=")
        .nth(1)?
        .split(',')
        .next()?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, _date, region, service, "aws4_request"] => Some(format!("{key}/{region}/{service}")),
        _ => None,
    }
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

/// DynamoDB: every operation at `/`, named by `X-Amz-Target`.
async fn dynamodb_operation(State(aws): Aws, headers: HeaderMap, body: Bytes) -> Reply {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let op = dynamodb::op_of(&target);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let subject = {
        let world = aws.world_lock();
        let table = request.get("TableName").and_then(Value::as_str);
        table
            .and_then(|t| world.tables.get(t))
            .and_then(|t| t.key_names.first().cloned())
    }
    .and_then(|key| dynamodb::subject_of(&request, &key))
    // An operation DynamoDB lacks (the functions' warm-up) is logged under its name.
    .or_else(|| (op == Op::Unknown).then(|| target.clone()));
    aws.serve(op, subject.as_deref(), |world, _| {
        dynamodb::serve(op, &target, &request, &mut world.tables)
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

async fn describe_thing(State(aws): Aws, Path(thing): Path<String>) -> Reply {
    aws.serve(Op::DescribeThing, Some(&thing), |world, _| {
        let attributes = world.attributes.get(&thing).cloned().unwrap_or_default();
        Reply::ok(json!({
            "thingName": thing,
            "thingArn": format!("arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"),
            "attributes": attributes,
            "version": 1,
        }))
    })
    .await
}

/// The body of UpdateThing: only the attribute payload is kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingUpdate {
    attribute_payload: Option<AttributePayload>,
}

#[derive(Deserialize)]
struct AttributePayload {
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    merge: bool,
}

async fn update_thing(
    State(aws): Aws,
    Path(thing): Path<String>,
    AwsJson(body): AwsJson<ThingUpdate>,
) -> Reply {
    aws.serve(Op::UpdateThing, Some(&thing), |world, _| {
        if let Some(payload) = body.attribute_payload {
            let current = world.attributes.entry(thing.clone()).or_default();
            if !payload.merge {
                current.clear();
            }
            // As IoT merges: an empty value removes the attribute.
            for (name, value) in payload.attributes {
                if value.is_empty() {
                    current.remove(&name);
                } else {
                    current.insert(name, value);
                }
            }
        }
        Reply::ok(json!({}))
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

const VERIFICATION_STATES: [&str; 4] = [
    "FALSE_POSITIVE",
    "BENIGN_POSITIVE",
    "TRUE_POSITIVE",
    "UNKNOWN",
];

async fn put_verification_state_on_violation(
    State(aws): Aws,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    aws.serve(Op::PutVerificationStateOnViolation, Some(&id), |world, _| {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match body["verificationState"].as_str() {
            Some(state) if VERIFICATION_STATES.contains(&state) => {
                world.verification_states.insert(id.clone(), state.to_owned());
                Reply::ok(json!({}))
            }
            _ => Reply::invalid("verificationState must be one of FALSE_POSITIVE, BENIGN_POSITIVE, TRUE_POSITIVE, UNKNOWN"),
        }
    })
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

/// The subject of account-wide calls, for scripted faults.
pub const ACCOUNT_SUBJECT: &str = "account";

/// The registry event types DescribeEventConfigurations lists (each off until enabled).
const EVENT_TYPES: [&str; 11] = [
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
];

async fn describe_event_configurations(State(aws): Aws) -> Reply {
    aws.serve(
        Op::DescribeEventConfigurations,
        Some(ACCOUNT_SUBJECT),
        |world, _| {
            let configurations: serde_json::Map<String, Value> = EVENT_TYPES
                .iter()
                .map(|t| {
                    let enabled = world.event_configurations.get(*t).copied().unwrap_or(false);
                    ((*t).to_owned(), json!({ "Enabled": enabled }))
                })
                .collect();
            Reply::ok(json!({ "eventConfigurations": configurations }))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventConfigurationsUpdate {
    #[serde(default)]
    event_configurations: std::collections::BTreeMap<String, EventConfiguration>,
}

#[derive(Deserialize)]
struct EventConfiguration {
    #[serde(rename = "Enabled", default)]
    enabled: bool,
}

/// Only the event types named change, as in IoT.
async fn update_event_configurations(
    State(aws): Aws,
    AwsJson(body): AwsJson<EventConfigurationsUpdate>,
) -> Reply {
    aws.serve(
        Op::UpdateEventConfigurations,
        Some(ACCOUNT_SUBJECT),
        |world, _| {
            if let Some(unknown) = body
                .event_configurations
                .keys()
                .find(|t| !EVENT_TYPES.contains(&t.as_str()))
            {
                return Reply::invalid(format!("Unknown event type: {unknown}"));
            }
            for (event_type, configuration) in &body.event_configurations {
                world
                    .event_configurations
                    .insert(event_type.clone(), configuration.enabled);
            }
            Reply::ok(json!({}))
        },
    )
    .await
}
