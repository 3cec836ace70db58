//! The IoT calls the custom resource makes, as a trait (so the handler is tested without
//! AWS) and its adapter on `aws_sdk_iot`.

use aws_sdk_iot::types::{Configuration, EventType, IndexStatus, ThingIndexingConfiguration};
use futures::future::BoxFuture;
use mitigation::ActionError;

/// The fleet index whose status is waited for after an update.
pub const THING_INDEX: &str = "AWS_Things";

/// The IoT calls of `Custom::QuarantineSetup` and of its scheduled check. Errors are [`ActionError`]s carrying the
/// operation, the AWS error code and its message.
pub trait IotSetup: Send + Sync {
    /// AttachPolicy(policyName, target). Attaching an attached pair again succeeds.
    fn attach_policy<'a>(
        &'a self,
        policy_name: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// DetachPolicy(policyName, target).
    fn detach_policy<'a>(
        &'a self,
        policy_name: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// GetIndexingConfiguration's `thingIndexingConfiguration`.
    fn thing_indexing_configuration(
        &self,
    ) -> BoxFuture<'_, Result<Option<ThingIndexingConfiguration>, ActionError>>;

    /// UpdateIndexingConfiguration with only `thingIndexingConfiguration`.
    fn update_thing_indexing_configuration(
        &self,
        config: ThingIndexingConfiguration,
    ) -> BoxFuture<'_, Result<(), ActionError>>;

    /// DescribeIndex(`AWS_Things`)'s status: `ACTIVE`, `BUILDING`, `REBUILDING`.
    fn thing_index_status(&self) -> BoxFuture<'_, Result<Option<String>, ActionError>>;

    /// ListTargetsForPolicy(policyName), every page: the ARNs the policy is attached to.
    fn policy_targets<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;

    /// DescribeEventConfigurations: whether the registry publishes thing-group membership
    /// events (`THING_GROUP_MEMBERSHIP`).
    fn membership_events_enabled(&self) -> BoxFuture<'_, Result<bool, ActionError>>;

    /// UpdateEventConfigurations naming only `THING_GROUP_MEMBERSHIP` (enabled): the other
    /// event types stay as they are.
    fn enable_membership_events(&self) -> BoxFuture<'_, Result<(), ActionError>>;
}

/// [`IotSetup`] on the IoT control-plane client.
pub struct AwsIotSetup {
    client: aws_sdk_iot::Client,
}

impl AwsIotSetup {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        AwsIotSetup { client }
    }
}

/// What the call was about, for the error: `policy P on arn:...`.
fn pair(policy_name: &str, target: &str) -> String {
    format!("policy {policy_name} on {target}")
}

/// `mitigation_aws::classify`, without its hints: those are about mitigating a thing.
fn classify<E>(
    operation: &'static str,
    subject: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> ActionError
where
    E: aws_sdk_iot::error::ProvideErrorMetadata
        + std::error::Error
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut e = mitigation_aws::classify(operation, subject, err);
    e.hint = None;
    e
}

/// [`IotSetup::attach_policy`] and [`IotSetup::detach_policy`]: the SDK calls of the same
/// names take the same parameters and answer nothing (their builders are different types).
macro_rules! policy_call {
    ($call:ident, $operation:literal) => {
        fn $call<'a>(
            &'a self,
            policy_name: &'a str,
            target: &'a str,
        ) -> BoxFuture<'a, Result<(), ActionError>> {
            Box::pin(async move {
                self.client
                    .$call()
                    .policy_name(policy_name)
                    .target(target)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify($operation, &pair(policy_name, target), e))
            })
        }
    };
}

impl IotSetup for AwsIotSetup {
    policy_call!(attach_policy, "AttachPolicy");
    policy_call!(detach_policy, "DetachPolicy");

    fn thing_indexing_configuration(
        &self,
    ) -> BoxFuture<'_, Result<Option<ThingIndexingConfiguration>, ActionError>> {
        Box::pin(async move {
            self.client
                .get_indexing_configuration()
                .send()
                .await
                .map(|out| out.thing_indexing_configuration)
                .map_err(|e| classify("GetIndexingConfiguration", "the account", e))
        })
    }

    fn update_thing_indexing_configuration(
        &self,
        config: ThingIndexingConfiguration,
    ) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            self.client
                .update_indexing_configuration()
                .thing_indexing_configuration(config)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateIndexingConfiguration", "the account", e))
        })
    }

    fn thing_index_status(&self) -> BoxFuture<'_, Result<Option<String>, ActionError>> {
        Box::pin(async move {
            self.client
                .describe_index()
                .index_name(THING_INDEX)
                .send()
                .await
                .map(|out| out.index_status.as_ref().map(|s| s.as_str().to_owned()))
                .map_err(|e| classify("DescribeIndex", THING_INDEX, e))
        })
    }

    fn policy_targets<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let subject = format!("policy {policy_name}");
            let mut pages = self
                .client
                .list_targets_for_policy()
                .policy_name(policy_name)
                .into_paginator()
                .send();
            let mut targets = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("ListTargetsForPolicy", &subject, e))?;
                targets.extend(page.targets().iter().cloned());
            }
            Ok(targets)
        })
    }

    fn membership_events_enabled(&self) -> BoxFuture<'_, Result<bool, ActionError>> {
        Box::pin(async move {
            self.client
                .describe_event_configurations()
                .send()
                .await
                .map(|out| {
                    out.event_configurations()
                        .and_then(|c| c.get(&EventType::ThingGroupMembership))
                        .is_some_and(Configuration::enabled)
                })
                .map_err(|e| classify("DescribeEventConfigurations", "the account", e))
        })
    }

    fn enable_membership_events(&self) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            self.client
                .update_event_configurations()
                .event_configurations(
                    EventType::ThingGroupMembership,
                    Configuration::builder().enabled(true).build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateEventConfigurations", "the account", e))
        })
    }
}

/// The status DescribeIndex reports once the index is usable.
pub fn index_is_active(status: Option<&str>) -> bool {
    status == Some(IndexStatus::Active.as_str())
}
