//! The mitigations a function performs, and the handler that only decides (dry run).

use std::sync::Arc;

use futures::future::BoxFuture;
use violation_core::{Action, ThingName};

use crate::action::{
    ActionError, Applied, DISCONNECT_ACTION, MitigationAction, SHADOW_ACTION, THING_GROUP_ACTION,
};
use crate::config::FunctionConfig;
use crate::handler::Handler;

/// The mitigation a function performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// `quarantine-group`: membership of the static quarantine thing group.
    ThingGroup,
    /// `quarantine-shadow`: the desired `quarantine` flag in the thing's shadow.
    Shadow,
    /// `quarantine-certificate`: the thing's X.509 certificates deactivated (those no other
    /// thing uses), recorded in a thing attribute so that a release reactivates only them.
    Certificate,
}

impl From<FunctionKind> for crate::settings::Reader {
    fn from(kind: FunctionKind) -> Self {
        match kind {
            FunctionKind::ThingGroup => crate::settings::Reader::Group,
            FunctionKind::Shadow => crate::settings::Reader::Shadow,
            FunctionKind::Certificate => crate::settings::Reader::Certificate,
        }
    }
}

/// The name of the certificate mitigation in logs and replay output.
pub const CERTIFICATE_ACTION: &str = "certificate";

impl FunctionKind {
    /// The action's name in logs and replay output.
    pub fn action_name(self) -> &'static str {
        match self {
            FunctionKind::ThingGroup => THING_GROUP_ACTION,
            FunctionKind::Shadow => SHADOW_ACTION,
            FunctionKind::Certificate => CERTIFICATE_ACTION,
        }
    }

    /// The names of the mitigations this function performs with `config`, in order.
    pub fn action_names(self, config: &FunctionConfig) -> Vec<&'static str> {
        match self {
            FunctionKind::ThingGroup if config.disconnect => {
                vec![THING_GROUP_ACTION, DISCONNECT_ACTION]
            }
            kind => vec![kind.action_name()],
        }
    }
}

/// A handler that only decides: no SDK configuration is loaded and no client is built.
pub fn dry_run_handler(kinds: &[FunctionKind], config: &FunctionConfig) -> Handler {
    let actions = kinds
        .iter()
        .flat_map(|k| k.action_names(config))
        .map(|name| Arc::new(Planned(name)) as Arc<dyn MitigationAction>)
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

    fn performs(&self, action: Action) -> bool {
        self.0 != DISCONNECT_ACTION || action == Action::Quarantine
    }

    fn apply<'a>(
        &'a self,
        _action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            Err(ActionError::permanent(
                "DryRun",
                thing.to_string(),
                "DryRun",
                "a dry-run handler has no AWS client",
            ))
        })
    }
}

/// Logging for command-line use: human-readable lines on stderr (stdout stays free for
/// output), at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_cli_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
