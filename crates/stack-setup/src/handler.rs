//! One invocation: decode the request, plan it, make the calls within a deadline that leaves
//! time to answer, and answer CloudFormation on its `ResponseURL`, whatever happened.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mitigation::settings::{self, Reader};
use mitigation::{ActionError, FunctionConfig};
use serde_json::Value;
use tokio::time::Instant;

use crate::check;
use crate::indexing::{IndexingChange, Switch, with_violations};
use crate::iot::{AwsIotSetup, IotSetup, index_is_active};
use crate::plan::{Plan, Step, plan};
use crate::request::{Envelope, NoResponseUrl, Request};
use crate::respond::{HttpResponder, RespondError, Responder, RetryPolicy};
use crate::response::{Data, ResponseBody, Status};
use crate::stack::{AwsStackStatus, StackStatus};
use crate::target::Target;
use crate::trust::{Trust, Untrusted};

/// Where the invocation's logs are, and when Lambda stops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub lambda_request_id: String,
    pub log_group: String,
    pub log_stream: String,
    /// Lambda's deadline for this invocation; `None` when unknown.
    pub deadline: Option<SystemTime>,
}

impl Invocation {
    pub fn from_context(context: &lambda_runtime::Context) -> Invocation {
        let from_env = |name: &str| std::env::var(name).unwrap_or_default();
        let or_env = |value: &str, name: &str| {
            if value.is_empty() {
                from_env(name)
            } else {
                value.to_owned()
            }
        };
        Invocation {
            lambda_request_id: context.request_id.clone(),
            log_group: or_env(&context.env_config.log_group, "AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream: or_env(&context.env_config.log_stream, "AWS_LAMBDA_LOG_STREAM_NAME"),
            deadline: (context.deadline > 0).then(|| context.deadline()),
        }
    }

    fn where_to_look(&self) -> String {
        let stream = if self.log_stream.is_empty() {
            "(unknown)"
        } else {
            &self.log_stream
        };
        let mut text = format!("See CloudWatch Logs, log stream {stream}");
        if !self.log_group.is_empty() {
            text.push_str(&format!(" of log group {}", self.log_group));
        }
        if !self.lambda_request_id.is_empty() {
            text.push_str(&format!(", Lambda request {}", self.lambda_request_id));
        }
        text.push('.');
        text
    }
}

/// How the function's time is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Kept out of the function's remaining time for the answer (the PUT and its retries).
    pub response_reserve: Duration,
    /// The time for the calls when the invocation has no deadline.
    pub default_budget: Duration,
    /// Between two DescribeIndex calls while waiting for the index to be ACTIVE.
    pub index_poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            response_reserve: RetryPolicy::default().worst_case() + Duration::from_secs(2),
            default_budget: Duration::from_secs(240),
            index_poll: Duration::from_secs(5),
        }
    }
}

impl Timing {
    /// (the calls' deadline, the answer's deadline) for an invocation starting `now`.
    pub fn deadlines(&self, invocation: &Invocation, now: Instant) -> (Instant, Instant) {
        let remaining = invocation.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        match remaining {
            Some(left) => {
                let work = left.checked_sub(self.response_reserve).unwrap_or(left / 2);
                (now + work, now + left)
            }
            None => (
                now + self.default_budget,
                now + self.default_budget + self.response_reserve,
            ),
        }
    }
}

/// The invocation could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    NoResponseUrl(#[from] NoResponseUrl),
    /// Not acted on and not answered.
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    #[error("the scheduled check {check:?} failed: {problem}")]
    Check { check: String, problem: String },
    #[error("CloudFormation was not answered ({status:?} was to be sent): {error}")]
    NotAnswered {
        status: Status,
        #[source]
        error: RespondError,
    },
}

/// Why the calls failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Aws(ActionError),
    /// The calls' deadline passed during `operation`.
    Deadline {
        operation: &'static str,
    },
    /// A step found the request may not go on.
    Refused(String),
    Internal(String),
}

impl Failure {
    pub fn describe(&self) -> String {
        match self {
            Failure::Aws(e) => {
                let mut text = format!(
                    "{} for {} failed: {}: {}",
                    e.operation, e.thing, e.code, e.message
                );
                if let Some(hint) = hint(e) {
                    text.push_str(" (");
                    text.push_str(&hint);
                    text.push(')');
                }
                text
            }
            Failure::Deadline { operation } => format!(
                "{operation} did not finish in time: the function stopped waiting so that it could still answer before its timeout"
            ),
            Failure::Internal(problem) => format!("internal error: {problem}"),
            Failure::Refused(reason) => reason.clone(),
        }
    }
}

fn hint(e: &ActionError) -> Option<String> {
    match (e.operation, e.code.as_str()) {
        (
            _,
            "AccessDeniedException"
            | "AccessDenied"
            | "UnauthorizedException"
            | "ForbiddenException",
        ) => {
            let service = match e.operation {
                "DescribeStacks" => "cloudformation",
                _ => "iot",
            };
            Some(format!(
                "the stack-setup function's role must allow {service}:{} (see StackSetupFunctionRole)",
                e.operation
            ))
        }
        ("AttachPolicy", "ResourceNotFoundException") => {
            Some("the policy or the thing group does not exist".into())
        }
        _ => None,
    }
}

/// What the calls did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub fleet_indexing: Switch,
    /// Thing-group membership registry events.
    pub membership_events: Switch,
    /// Human-readable, for the SUCCESS answer's `Reason`.
    pub notes: Vec<String>,
}

/// Runs `plan`'s steps in order, each call bounded by `until`.
pub async fn execute(
    iot: &dyn IotSetup,
    stack: &dyn StackStatus,
    plan: &Plan,
    until: Instant,
    index_poll: Duration,
) -> Result<Done, Failure> {
    let mut done = Done {
        fleet_indexing: Switch::NotRequested,
        membership_events: Switch::NotRequested,
        notes: Vec::new(),
    };
    for step in &plan.steps {
        match step {
            Step::Attach {
                policy_name,
                target,
            } => {
                call(
                    "AttachPolicy",
                    until,
                    iot.attach_policy(policy_name, target),
                )
                .await?;
                tracing::info!(policy_name, target, "policy attached");
                done.notes
                    .push(format!("attached policy {policy_name} to {target}"));
            }
            Step::Detach {
                policy_name,
                target,
            } => match call(
                "DetachPolicy",
                until,
                iot.detach_policy(policy_name, target),
            )
            .await
            {
                Ok(()) => {
                    tracing::info!(policy_name, target, "policy detached");
                    done.notes
                        .push(format!("detached policy {policy_name} from {target}"));
                }
                Err(Failure::Aws(e)) if e.code == "ResourceNotFoundException" => {
                    tracing::info!(policy_name, target, message = %e.message, "nothing to detach");
                    done.notes.push(format!(
                        "policy {policy_name} was not attached to {target} any more ({}: {})",
                        e.code, e.message
                    ));
                }
                Err(other) => return Err(other),
            },
            Step::RequireStackLeaving { stack_id } => {
                let status = call("DescribeStacks", until, stack.stack_status(stack_id)).await?;
                if let Some(reason) = crate::stack::refusal(stack_id, status.as_deref()) {
                    tracing::error!(reason, "Delete refused: the stack is not leaving");
                    return Err(Failure::Refused(reason));
                }
                tracing::info!(stack_id, status, "the stack is leaving");
            }
            Step::FleetIndexing => {
                done.fleet_indexing =
                    fleet_indexing(iot, until, index_poll, &mut done.notes).await?;
            }
            Step::MembershipEvents => {
                done.membership_events = membership_events(iot, until, &mut done.notes).await?;
            }
        }
    }
    Ok(done)
}

/// Thing-group membership events, turned on when off (quarantine-group puts back a thing
/// removed from the group on them). The other registry event types are left as they are.
async fn membership_events(
    iot: &dyn IotSetup,
    until: Instant,
    notes: &mut Vec<String>,
) -> Result<Switch, Failure> {
    let enabled = call(
        "DescribeEventConfigurations",
        until,
        iot.membership_events_enabled(),
    )
    .await?;
    if enabled {
        tracing::info!("thing-group membership events are already on");
        notes.push("thing-group membership events were already on".into());
        return Ok(Switch::AlreadyEnabled);
    }
    call(
        "UpdateEventConfigurations",
        until,
        iot.enable_membership_events(),
    )
    .await?;
    tracing::info!("thing-group membership events turned on");
    notes.push("thing-group membership events turned on".into());
    Ok(Switch::Enabled)
}

async fn fleet_indexing(
    iot: &dyn IotSetup,
    until: Instant,
    poll: Duration,
    notes: &mut Vec<String>,
) -> Result<Switch, Failure> {
    let current = call(
        "GetIndexingConfiguration",
        until,
        iot.thing_indexing_configuration(),
    )
    .await?;
    let change = with_violations(current.as_ref())
        .map_err(|e| Failure::Internal(format!("indexing configuration: {e}")))?;
    let IndexingChange::Update(config) = change else {
        tracing::info!("Device Defender violations are already indexed");
        notes.push("fleet indexing of violations was already on".into());
        return Ok(Switch::AlreadyEnabled);
    };
    tracing::info!(
        thing_indexing_mode = config.thing_indexing_mode.as_str(),
        "turning on fleet indexing of Device Defender violations"
    );
    call(
        "UpdateIndexingConfiguration",
        until,
        iot.update_thing_indexing_configuration(*config),
    )
    .await?;
    notes.push(format!(
        "fleet indexing of violations turned on; {}",
        wait_for_index(iot, until, poll).await
    ));
    Ok(Switch::Enabled)
}

/// Waits, within `until`, for the thing index to be ACTIVE again (a dynamic group created
/// right after this resource needs it). Never fails the request: the update is done.
async fn wait_for_index(iot: &dyn IotSetup, until: Instant, poll: Duration) -> String {
    loop {
        match tokio::time::timeout_at(until, iot.thing_index_status()).await {
            Ok(Ok(status)) if index_is_active(status.as_deref()) => {
                return "the index is ACTIVE".into();
            }
            Ok(Ok(status)) => {
                let status = status.unwrap_or_else(|| "unknown".into());
                if Instant::now() + poll >= until {
                    tracing::warn!(status, "the index is not ACTIVE yet; not waiting longer");
                    return format!(
                        "the index was still {status} when the function stopped waiting"
                    );
                }
                tracing::info!(status, "waiting for the index");
                tokio::time::sleep(poll).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "DescribeIndex failed; not waiting for the index");
                return format!(
                    "its status is unknown (DescribeIndex: {}: {})",
                    e.code, e.message
                );
            }
            Err(_) => return "the index was not ACTIVE when the function stopped waiting".into(),
        }
    }
}

async fn call<T>(
    operation: &'static str,
    until: Instant,
    fut: impl Future<Output = Result<T, ActionError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(until, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(operation, code = %e.code, message = %e.message, "call failed");
            Err(Failure::Aws(e))
        }
        Err(_) => {
            tracing::error!(operation, "the call did not finish before the deadline");
            Err(Failure::Deadline { operation })
        }
    }
}

/// The IoT calls and what they act on.
#[derive(Clone)]
struct Setup {
    iot: Arc<dyn IotSetup>,
    stack: Arc<dyn StackStatus>,
    target: Target,
}

/// The custom resource's handler: the IoT calls and their target (or why they cannot be
/// made), whom it answers, and the responder.
pub struct Handler {
    setup: Result<Setup, String>,
    trust: Trust,
    responder: Arc<dyn Responder>,
    timing: Timing,
    metrics_namespace: String,
}

impl Handler {
    pub fn new(
        iot: Arc<dyn IotSetup>,
        stack: Arc<dyn StackStatus>,
        target: Target,
        trust: Trust,
        responder: Arc<dyn Responder>,
    ) -> Handler {
        Handler {
            setup: Ok(Setup { iot, stack, target }),
            trust,
            responder,
            timing: Timing::default(),
            metrics_namespace: mitigation::metrics::DEFAULT_NAMESPACE.to_owned(),
        }
    }

    /// A handler that could not be set up (bad configuration): it answers every request
    /// it may answer FAILED with `reason` instead of leaving CloudFormation waiting.
    pub fn unusable(reason: String, trust: Trust, responder: Arc<dyn Responder>) -> Handler {
        Handler {
            setup: Err(reason),
            trust,
            responder,
            timing: Timing::default(),
            metrics_namespace: mitigation::metrics::DEFAULT_NAMESPACE.to_owned(),
        }
    }

    pub fn with_timing(mut self, timing: Timing) -> Handler {
        self.timing = timing;
        self
    }

    /// Set up from the environment: stack-setup's settings of docs/configuration.md
    /// (`QUARANTINE_POLICY`, `QUARANTINE_GROUP_ARN`, `STACK_ID`, the AWS SDK's). A bad or
    /// missing value is answered FAILED on every request, naming the variable.
    pub async fn from_env() -> Result<Handler, rustls::Error> {
        let responder = Arc::new(HttpResponder::new(RetryPolicy::default())?);
        let config = match FunctionConfig::from_env(Reader::StackSetup) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, variable = e.variable, "invalid configuration");
                return Ok(Handler::unusable(e.to_string(), trust_alone(), responder));
            }
        };
        let trust = Trust {
            stack_id: config.stack.stack_id.clone(),
            test_response_url_prefix: config.stack.test_response_url_prefix.clone(),
        };
        let target = match (
            &config.quarantine_policy,
            &config.stack.quarantine_group_arn,
        ) {
            (Some(policy_name), Some(group)) if trust.stack_id.is_some() => Target {
                policy_name: policy_name.clone(),
                group: group.clone(),
            },
            _ => {
                let reason = "invalid configuration: QUARANTINE_POLICY, QUARANTINE_GROUP_ARN and STACK_ID must all be set (infra/template.yaml sets them)";
                tracing::error!(reason, "invalid configuration");
                return Ok(Handler::unusable(reason.into(), trust, responder));
            }
        };
        let sdk = mitigation_aws::sdk::load_sdk_config(&config.aws).await;
        let iot = AwsIotSetup::new(aws_sdk_iot::Client::new(&sdk));
        let stack = AwsStackStatus::new(aws_sdk_cloudformation::Client::new(&sdk));
        let mut handler = Handler::new(Arc::new(iot), Arc::new(stack), target, trust, responder);
        handler.metrics_namespace = config.metrics_namespace;
        Ok(handler)
    }

    /// The Lambda entry point for both kinds of event: the scheduled check's input
    /// (`{"check": ...}`) or a custom resource request.
    pub async fn handle_event(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
    ) -> Result<Value, lambda_runtime::Error> {
        match event.payload.get("check") {
            Some(check) => Ok(self.check(check).await?),
            None => self.handle_lambda(event).await,
        }
    }

    /// The scheduled check: writes the figure `PolicyAttached` and returns what it found.
    pub async fn check(&self, check: &Value) -> Result<Value, HandlerError> {
        let failed = |problem: String| HandlerError::Check {
            check: check
                .as_str()
                .map_or_else(|| check.to_string(), str::to_owned),
            problem,
        };
        if check.as_str() != Some(check::POLICY_ATTACHED) {
            return Err(failed(format!(
                "unknown check, expected {:?}",
                check::POLICY_ATTACHED
            )));
        }
        let setup = self.setup.as_ref().map_err(|e| failed(e.clone()))?;
        let found = check::attachment(setup.iot.as_ref(), &setup.target)
            .await
            .map_err(|e| failed(format!("{}: {}: {}", e.operation, e.code, e.message)))?;
        check::emit(&self.metrics_namespace, &setup.target, found);
        let attached = found == check::Attachment::Attached;
        if attached {
            tracing::info!(policy = %setup.target.policy_name, group = %setup.target.group.arn, "the quarantine policy is attached");
        } else {
            tracing::error!(policy = %setup.target.policy_name, group = %setup.target.group.arn, "the quarantine policy is NOT attached to the quarantine group: quarantined devices are not restricted");
        }
        Ok(serde_json::json!({
            "policyName": setup.target.policy_name,
            "thingGroupArn": setup.target.group.arn,
            "policyAttached": attached,
        }))
    }

    /// The Lambda entry point: the answer sent, as the invocation's result.
    pub async fn handle_lambda(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
    ) -> Result<Value, lambda_runtime::Error> {
        let invocation = Invocation::from_context(&event.context);
        let body = self.handle(event.payload, &invocation).await?;
        Ok(serde_json::to_value(&body)?)
    }

    /// Decide, call, answer. Returns the body sent to the `ResponseURL`.
    pub async fn handle(
        &self,
        event: Value,
        invocation: &Invocation,
    ) -> Result<ResponseBody, HandlerError> {
        let envelope = Envelope::read(&event).inspect_err(|e| {
            tracing::error!(error = %e, "cannot answer this event");
        })?;
        self.trust.check(&envelope).inspect_err(|e| {
            tracing::error!(
                error = %e,
                request_type = %envelope.request_type,
                "request refused: nothing done, nothing answered"
            );
        })?;
        let (work_until, answer_until) = self.timing.deadlines(invocation, Instant::now());
        tracing::info!(
            request_type = %envelope.request_type,
            request_id = %envelope.request_id,
            logical_resource_id = %envelope.logical_resource_id,
            physical_resource_id = envelope.physical_resource_id.as_deref().unwrap_or(""),
            "custom resource request"
        );
        let body = self.decide(&event, &envelope, invocation, work_until).await;
        tracing::info!(
            status = ?body.status,
            reason = %body.reason,
            physical_resource_id = %body.physical_resource_id,
            "answering CloudFormation"
        );
        match self
            .responder
            .put(&envelope.response_url, body.to_json(), answer_until)
            .await
        {
            Ok(_) => Ok(body),
            Err(error) => {
                tracing::error!(error = %error, "CloudFormation was not answered");
                Err(HandlerError::NotAnswered {
                    status: body.status,
                    error,
                })
            }
        }
    }

    async fn decide(
        &self,
        event: &Value,
        envelope: &Envelope,
        invocation: &Invocation,
        until: Instant,
    ) -> ResponseBody {
        let failed = |reason: String, id: &str| {
            let reason = format!("{reason}. {}", invocation.where_to_look());
            ResponseBody::new(envelope, Status::Failed, &reason, id, None)
        };
        let request = match Request::decode(event) {
            Ok(r) => r,
            Err(e) => return failed(e.to_string(), ""),
        };
        let setup = match &self.setup {
            Ok(setup) => setup,
            Err(problem) => return unusable_answer(&request, envelope, problem, &failed),
        };
        let plan = plan(
            &request,
            &envelope.request_id,
            &envelope.stack_id,
            &setup.target,
        );
        if let Some(reason) = &plan.refused {
            tracing::warn!(reason, "request refused");
            return failed(reason.clone(), &plan.failure_id);
        }
        // The calls run in their own task: should anything below panic, CloudFormation is
        // still answered.
        let (iot, stack, task_plan) = (
            Arc::clone(&setup.iot),
            Arc::clone(&setup.stack),
            plan.clone(),
        );
        let poll = self.timing.index_poll;
        let outcome = tokio::spawn(async move {
            execute(iot.as_ref(), stack.as_ref(), &task_plan, until, poll).await
        })
        .await
        .unwrap_or_else(|e| Err(Failure::Internal(format!("the calls were aborted: {e}"))));
        let data = |fleet_indexing: Switch, membership_events: Switch| {
            plan.target.as_ref().map(|t| Data {
                policy_name: t.policy_name.clone(),
                thing_group_arn: t.group.arn.clone(),
                fleet_indexing: fleet_indexing.as_str().to_owned(),
                membership_events: membership_events.as_str().to_owned(),
            })
        };
        match outcome {
            Ok(done) => {
                let mut notes = done.notes;
                notes.extend(plan.note.clone());
                let reason = if notes.is_empty() {
                    "done".to_owned()
                } else {
                    notes.join("; ")
                };
                ResponseBody::new(
                    envelope,
                    Status::Success,
                    &reason,
                    &plan.success_id,
                    data(done.fleet_indexing, done.membership_events),
                )
            }
            Err(failure) => failed(failure.describe(), &plan.failure_id),
        }
    }
}

/// The answer of a handler that cannot run: FAILED, except the Delete of a resource whose
/// Create failed (or the stack could never be deleted).
fn unusable_answer(
    request: &Request,
    envelope: &Envelope,
    problem: &str,
    failed: &dyn Fn(String, &str) -> ResponseBody,
) -> ResponseBody {
    let id = envelope.physical_resource_id.clone().unwrap_or_default();
    match request {
        Request::Delete {
            physical_resource_id,
            ..
        } if physical_resource_id.starts_with("create-failed:") => ResponseBody::new(
            envelope,
            Status::Success,
            &format!(
                "nothing to undo: this resource was never created; stack-setup cannot run: {problem}"
            ),
            physical_resource_id,
            None,
        ),
        Request::Create { .. } => failed(
            format!("stack-setup cannot run: {problem}"),
            &crate::plan::failed_create_id(&envelope.request_id),
        ),
        _ => failed(format!("stack-setup cannot run: {problem}"), &id),
    }
}

/// What may be answered when the configuration is unusable: the settings that say so, read
/// alone (a bad value among them leaves the strictest default).
fn trust_alone() -> Trust {
    let own = |name: &str| {
        matches!(name, "STACK_ID" | "TEST_ONLY_RESPONSE_URL_PREFIX")
            .then(|| std::env::var(name).ok())
            .flatten()
    };
    settings::configure(Reader::StackSetup, own)
        .map(|c| Trust {
            stack_id: c.stack.stack_id,
            test_response_url_prefix: c.stack.test_response_url_prefix,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
