//! Building a [`Handler`] from configuration: once per process, at start-up.

use std::sync::Arc;

use futures::future::BoxFuture;
use violation_core::{Action, ThingName};

use crate::action::{ActionError, MitigationAction, Retry, SHADOW_ACTION, THING_GROUP_ACTION};
use crate::aws::{
    DeviceDefenderViolations, ShadowFlag, ThingGroupMembership, data_plane_client,
    data_plane_endpoint_configured, describe_data_endpoint, load_sdk_config,
};
use crate::config::{ConfigError, FunctionConfig};
use crate::handler::Handler;

/// The mitigation a function performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// `quarantine-group`: membership of the static quarantine thing group.
    ThingGroup,
    /// `quarantine-shadow`: the desired `quarantine` flag in the thing's shadow.
    Shadow,
}

impl FunctionKind {
    /// The action's name in logs and replay output.
    pub fn action_name(self) -> &'static str {
        match self {
            FunctionKind::ThingGroup => THING_GROUP_ACTION,
            FunctionKind::Shadow => SHADOW_ACTION,
        }
    }
}

/// Start-up failed: the function cannot serve any event.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot find the IoT data-plane endpoint: {0}")]
    DataEndpoint(ActionError),
}

/// Build a handler that performs `kinds` with the real AWS SDK clients. The only call made
/// here is DescribeEndpoint, for the shadow function when no endpoint is configured.
pub async fn build_handler(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
) -> Result<Handler, StartupError> {
    let sdk = load_sdk_config(&config.aws).await;
    let iot = aws_sdk_iot::Client::new(&sdk);
    let mut actions: Vec<Arc<dyn MitigationAction>> = Vec::new();
    for kind in kinds {
        match kind {
            FunctionKind::ThingGroup => actions.push(Arc::new(ThingGroupMembership::new(
                iot.clone(),
                config.quarantine_group.clone(),
            ))),
            FunctionKind::Shadow => {
                let endpoint = match &config.iot_data_endpoint {
                    Some(e) => Some(e.clone()),
                    None if config.dry_run || data_plane_endpoint_configured(&sdk) => None,
                    None => Some(
                        describe_data_endpoint(&iot)
                            .await
                            .map_err(StartupError::DataEndpoint)?,
                    ),
                };
                let data = data_plane_client(&sdk, endpoint.as_deref());
                actions.push(Arc::new(ShadowFlag::new(data, config.shadow_name.clone())));
            }
        }
    }
    let mut handler = Handler::new(config.policy.clone(), actions)
        .with_dry_run(config.dry_run)
        .with_max_concurrency(config.max_concurrency);
    if config.policy.release_on_clear {
        handler = handler.with_active_violations(Arc::new(DeviceDefenderViolations::new(iot)));
    }
    Ok(handler)
}

/// A handler that only decides: no SDK configuration is loaded and no client is built.
pub fn dry_run_handler(kinds: &[FunctionKind], config: &FunctionConfig) -> Handler {
    let actions = kinds
        .iter()
        .map(|k| Arc::new(Planned(k.action_name())) as Arc<dyn MitigationAction>)
        .collect();
    Handler::new(config.policy.clone(), actions)
        .with_dry_run(true)
        .with_max_concurrency(config.max_concurrency)
}

/// Names an action in a dry run. A dry-run handler never applies actions; if one were
/// applied by mistake it fails rather than pretend.
struct Planned(&'static str);

impl MitigationAction for Planned {
    fn name(&self) -> &'static str {
        self.0
    }

    fn apply<'a>(
        &'a self,
        _action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            Err(ActionError {
                operation: "DryRun",
                thing: thing.to_string(),
                retry: Retry::Permanent,
                code: "DryRun".into(),
                message: "a dry-run handler has no AWS client".into(),
                hint: None,
            })
        })
    }
}
