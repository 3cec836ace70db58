//! The mitigations a function performs, and the handler that only decides (dry run).

use std::sync::Arc;

use futures::future::BoxFuture;
use violation_core::{Action, ThingName};

use crate::action::{ActionError, Applied, MitigationAction, MitigationKind};
use crate::config::FunctionConfig;
use crate::handler::Handler;

/// The mitigation a function performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl FunctionKind {
    /// The function's own mitigation.
    pub fn mitigation(self) -> MitigationKind {
        match self {
            FunctionKind::ThingGroup => MitigationKind::ThingGroup,
            FunctionKind::Shadow => MitigationKind::Shadow,
            FunctionKind::Certificate => MitigationKind::Certificate,
        }
    }

    /// The function's name in the ledger's keys (`fn#group`, `fn#shadow`, `fn#certificate`).
    pub fn ledger_name(self) -> &'static str {
        match self {
            FunctionKind::ThingGroup => "group",
            FunctionKind::Shadow => "shadow",
            FunctionKind::Certificate => "certificate",
        }
    }

    /// The mitigations this function performs with `config`, in order.
    pub fn mitigations(self, config: &FunctionConfig) -> Vec<MitigationKind> {
        match self {
            FunctionKind::ThingGroup if config.disconnect => {
                vec![MitigationKind::ThingGroup, MitigationKind::Disconnect]
            }
            kind => vec![kind.mitigation()],
        }
    }
}

/// A handler that only decides: no SDK configuration is loaded and no client is built.
pub fn dry_run_handler(kinds: &[FunctionKind], config: &FunctionConfig) -> Handler {
    let actions = kinds
        .iter()
        .flat_map(|k| k.mitigations(config))
        .map(|kind| Arc::new(Planned(kind)) as Arc<dyn MitigationAction>)
        .collect();
    Handler::new(config.policy.clone(), actions)
        .with_dry_run(true)
        .with_max_concurrency(config.max_concurrency)
        .with_protected_things(config.protected_things.clone())
}

/// Names an action in a dry run. A dry-run handler never applies actions; if one were
/// applied by mistake it fails rather than pretend.
struct Planned(MitigationKind);

impl MitigationAction for Planned {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn performs(&self, action: Action) -> bool {
        self.0.performs(action)
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
