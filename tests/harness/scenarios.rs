//! Test bodies shared by both function binaries, called from small tests in each binary's
//! package with `env!("CARGO_BIN_EXE_...")`.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::env::{Env, local_aws_env};
use crate::fixtures::{batch_item_failures, sns_event, sqs_alarms, violation};
use crate::process::LocalFunction;
use crate::runtime_api::Invocation;
use crate::stand_in::{Fault, Op, StandIn};

/// The quarantine group the functions use by default.
pub const GROUP: &str = "Quarantine";

/// What a function does to quarantine a thing, as seen in the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mitigation {
    /// `quarantine-group`: AddThingToThingGroup.
    ThingGroup,
    /// `quarantine-shadow`: `desired.quarantine = true` in the classic shadow.
    Shadow,
}

impl Mitigation {
    /// The one call it makes per quarantined thing.
    pub fn op(self) -> Op {
        match self {
            Mitigation::ThingGroup => Op::AddThingToThingGroup,
            Mitigation::Shadow => Op::UpdateThingShadow,
        }
    }

    /// Whether the stand-in shows the thing quarantined this way.
    pub fn is_applied(self, aws: &StandIn, thing: &str) -> bool {
        match self {
            Mitigation::ThingGroup => aws.group_members(GROUP).contains(thing),
            Mitigation::Shadow => {
                aws.shadow_desired(thing, None) == Some(json!({"quarantine": true}))
            }
        }
    }
}

/// Three attempts per call, 500 ms per attempt: what the fault tests run with.
pub fn retrying_env(aws: &StandIn) -> Env {
    local_aws_env(Some(&aws.endpoint()))
        .set("AWS_MAX_ATTEMPTS", "3")
        .set("AWS_ATTEMPT_TIMEOUT_MS", "500")
        .set("AWS_OPERATION_TIMEOUT_MS", "15000")
}

/// Two throttled answers (HTTP 400 on the control plane, 429 on the data plane), then
/// success: the SDK retries and the record ends done.
pub fn throttling_then_success(binary: &Path, mitigation: Mitigation) {
    let aws = StandIn::start();
    aws.set_fault("busy", Fault::ThrottleTimes(2));
    let function = LocalFunction::start(binary, &retrying_env(&aws));
    assert_eq!(
        function.invoke(&sqs_alarms(&["busy"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    let statuses: Vec<u16> = aws
        .calls()
        .iter()
        .filter(|c| c.op == mitigation.op())
        .map(|c| c.status)
        .collect();
    let throttled = if mitigation == Mitigation::Shadow {
        429
    } else {
        400
    };
    assert_eq!(statuses, [throttled, throttled, 200]);
    assert_eq!(aws.count_for(mitigation.op(), "busy"), 3);
    assert!(mitigation.is_applied(&aws, "busy"));
}

/// A call that always fails with 500 is retried up to AWS_MAX_ATTEMPTS, then the record is
/// reported: in batchItemFailures on SQS, as a retryable invocation error naming the record
/// and the thing on SNS.
pub fn persistent_5xx_reports_the_record(binary: &Path, mitigation: Mitigation) {
    let aws = StandIn::start();
    aws.set_fault("broken", Fault::Always5xx);
    let function = LocalFunction::start(binary, &retrying_env(&aws));
    assert_eq!(
        function.invoke(&sqs_alarms(&["broken"])),
        Invocation::Response(batch_item_failures(&["m-broken"]))
    );
    assert_eq!(
        aws.count_for(mitigation.op(), "broken"),
        3,
        "retried up to AWS_MAX_ATTEMPTS"
    );
    assert!(!mitigation.is_applied(&aws, "broken"));

    let message = violation("broken", "in-alarm", "v-broken").to_string();
    let sns = sns_event(&[("sns-1", &message)]);
    match function.invoke(&sns) {
        Invocation::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Retryable.InternalFailureException");
            assert!(
                error_message.contains("record sns-1") && error_message.contains("thing broken"),
                "{error_message}"
            );
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

/// An attempt that hangs past AWS_ATTEMPT_TIMEOUT_MS is abandoned and retried.
pub fn a_timeout_is_retried(binary: &Path, mitigation: Mitigation) {
    let aws = StandIn::start();
    aws.set_fault("slow", Fault::HangFirst(1, Duration::from_secs(3)));
    let function = LocalFunction::start(binary, &retrying_env(&aws));
    assert_eq!(
        function.invoke(&sqs_alarms(&["slow"])),
        Invocation::Response(batch_item_failures(&[]))
    );
    assert_eq!(
        aws.count_for(mitigation.op(), "slow"),
        2,
        "one timed-out attempt, one retry"
    );
    assert!(mitigation.is_applied(&aws, "slow"));
}

/// A bad setting stops the function at start-up with a non-zero exit naming the variable.
pub fn bad_configuration_stops_the_function(binary: &Path) {
    let aws = StandIn::start();
    let env = local_aws_env(Some(&aws.endpoint())).set("MAX_CONCURRENCY", "lots");
    let mut function = LocalFunction::spawn(binary, &env);
    let status = function
        .process
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the function kept running with MAX_CONCURRENCY=lots"));
    assert!(!status.success());
    let log = function.process.log_tail(20);
    assert!(log.contains("MAX_CONCURRENCY"), "{log}");
    assert!(log.contains("lots"), "{log}");
    assert_eq!(
        aws.calls().len(),
        0,
        "no AWS call before the configuration is valid"
    );
}
