//! The handler of the CloudFormation custom resource `Custom::QuarantineSetup`
//! (infra/template.yaml): it attaches the quarantine IoT policy to the `Quarantine` thing
//! group when the stack is created, detaches it when the stack is deleted, and, with
//! `EnableFleetIndexing=true`, turns on fleet indexing of Device Defender violations while
//! keeping the account's other indexing settings. See docs/stack-setup.md.
//!
//! - [`request`]: the event, decoded tolerantly (what a response needs first);
//! - [`plan`]: the calls a request needs and the answers it gets (pure);
//! - [`indexing`]: the fleet indexing merge rule (pure);
//! - [`response`]: the JSON body CloudFormation expects on its `ResponseURL`;
//! - [`iot`]: the [`iot::IotSetup`] trait and its adapter on `aws_sdk_iot`;
//! - [`respond`]: the HTTP `PUT` to the `ResponseURL`, with retries;
//! - [`target`]: the policy and group acted on, from the environment;
//! - [`trust`]: whom it answers (its own stack, CloudFormation's response URLs);
//! - [`stack`]: a Delete acts only while CloudFormation reports the stack leaving;
//! - [`check`]: the scheduled check that the policy is still attached (an EMF figure);
//! - [`handler`]: one invocation: decode, check, plan, call within a deadline, answer.

pub mod check;
pub mod handler;
pub mod indexing;
pub mod iot;
pub mod plan;
pub mod request;
pub mod respond;
pub mod response;
pub mod stack;
pub mod target;
pub mod trust;

pub use handler::{Handler, Invocation};
pub use iot::{AwsIotSetup, IotSetup};
pub use respond::{HttpResponder, Responder};
pub use stack::{AwsStackStatus, StackStatus};
pub use target::Target;
pub use trust::Trust;
