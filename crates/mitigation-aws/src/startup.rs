//! Building a [`Handler`] on the real AWS SDK clients: once per process, at start-up.

use std::sync::Arc;

use mitigation::{ActionError, FunctionConfig, FunctionKind, Handler, MitigationAction};

use crate::certificates::IotCertificates;
use crate::group::ThingGroupMembership;
use crate::https::PreparedUse;
use crate::lookups::IotDirectory;
use crate::sdk::load_function_sdk_config;
use crate::violations::DeviceDefenderViolations;
use crate::warm_up::WarmUpTarget;
use mitigation::certificates::{CertificateQuarantine, PolicyRecord};
use mitigation::{CertificateAction, ConfigError};

/// Start-up failed: the function cannot serve any event.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] mitigation::ConfigError),
    #[error("cannot find the IoT data-plane endpoint: {0}")]
    DataEndpoint(ActionError),
    #[error(
        "the {0:?} mitigation needs the IoT data-plane client: build with the `data-plane` feature"
    )]
    NotBuiltIn(DataPlaneAction),
    #[error("FANOUT_QUEUE_URL is set, but this binary was built without the `fan-out` feature")]
    FanOutNotBuiltIn,
    #[error("LEDGER_TABLE is set, but this binary was built without the `ledger` feature")]
    LedgerNotBuiltIn,
}

/// Build a handler that performs `kinds` with the real AWS SDK clients. The only call made
/// here is DescribeEndpoint, for the shadow function when no endpoint is configured.
pub async fn build_handler(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
) -> Result<Handler, StartupError> {
    Ok(build_function(kinds, config).await?.handler)
}

/// The handlers a program that performs several functions' actions runs each record
/// through (replay, quarantinectl): with the ledger (`LEDGER_TABLE`) one per function, each
/// acting from its own place in it as the deployed function does, else one performing them
/// all (`None`). One SDK configuration serves them all.
pub async fn build_per_function(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<Vec<(Option<FunctionKind>, Handler)>, StartupError> {
    let groups: Vec<(Option<FunctionKind>, Vec<FunctionKind>)> = match config.ledger_table {
        None => vec![(None, kinds.to_vec())],
        Some(_) => kinds.iter().map(|k| (Some(*k), vec![*k])).collect(),
    };
    let mut all = Vec::with_capacity(groups.len());
    for (function, kinds) in groups {
        all.push((function, build_handler_on(&kinds, config, sdk).await?));
    }
    Ok(all)
}

/// A handler and the clients its mitigations call, whose connections init opens
/// ([`crate::warm_up`]).
pub struct Function {
    pub handler: Handler,
    pub warm_up: Vec<WarmUpTarget>,
    /// Whether a request used the HTTPS connector prepared during init ([`crate::https`]).
    pub prepared_tls: PreparedUse,
}

/// [`build_handler`] as a function's init does it: on the configuration Lambda gives
/// ([`load_function_sdk_config`]), keeping the mitigations' clients for the warm-up.
pub async fn build_function(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
) -> Result<Function, StartupError> {
    let (sdk, prepared_tls) = load_function_sdk_config(&config.aws).await;
    let mut function = build_function_on(kinds, config, &sdk).await?;
    function.prepared_tls = prepared_tls;
    Ok(function)
}

/// [`build_handler`] on an SDK configuration the caller loaded (quarantinectl's `--region`
/// and `--profile`).
pub async fn build_handler_on(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<Handler, StartupError> {
    Ok(build_function_on(kinds, config, sdk).await?.handler)
}

async fn build_function_on(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<Function, StartupError> {
    let sdk = sdk.clone();
    let iot = aws_sdk_iot::Client::new(&sdk);
    // One data-plane client (and at most one DescribeEndpoint) however many actions use it.
    let mut data: Option<DataClient> = None;
    let mut actions: Vec<Arc<dyn MitigationAction>> = Vec::new();
    // The lookups share the IoT client; a shadow function only warms it when it is used.
    let mut iot_warm_up = false;
    // Drift asks the group's adapter whether a thing is back in it before putting it back.
    let mut membership: Option<Arc<ThingGroupMembership>> = None;
    for kind in kinds {
        match kind {
            FunctionKind::ThingGroup => {
                iot_warm_up = true;
                let group = Arc::new(ThingGroupMembership::new(
                    iot.clone(),
                    config.quarantine_group.clone(),
                ));
                membership = Some(group.clone());
                actions.push(group);
                if config.disconnect {
                    actions.push(
                        data_plane_action(
                            DataPlaneAction::Disconnect,
                            &sdk,
                            &iot,
                            config,
                            &mut data,
                        )
                        .await?,
                    );
                }
            }
            FunctionKind::Shadow => {
                let action =
                    data_plane_action(DataPlaneAction::Shadow, &sdk, &iot, config, &mut data)
                        .await?;
                actions.push(action);
            }
            FunctionKind::Certificate => {
                iot_warm_up = true;
                actions.push(Arc::new(certificate_quarantine(&iot, config)?));
            }
        }
    }
    let iot_for_warm_up = iot.clone();
    let directory = Arc::new(IotDirectory::new(iot.clone()));
    let mut handler = Handler::new(config.policy.clone(), actions)
        .with_dry_run(config.dry_run)
        .with_max_concurrency(config.max_concurrency)
        .with_certificate_things(directory.clone())
        .with_audit_findings(directory)
        .with_verify_violation(config.verify_violation)
        .with_protected_things(config.protected_things.clone());
    if let Some(membership) = membership {
        handler = handler.with_group_membership(membership);
    }
    if config.policy.release_on_clear || config.verify_violation {
        handler = handler.with_active_violations(Arc::new(DeviceDefenderViolations::new(iot)));
    }
    let mut warm_up: Vec<WarmUpTarget> = Vec::new();
    if let Some(queue_url) = &config.fan_out_queue_url {
        handler = with_fan_out(handler, &sdk, queue_url, &mut warm_up)?;
    }
    // A function acts from its own place in the ledger; a dry run writes nothing.
    if let (Some(table), [kind], false) = (&config.ledger_table, kinds, config.dry_run) {
        handler = with_ledger(handler, &sdk, table, *kind, config, &mut warm_up)?;
    }
    if iot_warm_up {
        warm_up.push(WarmUpTarget::Iot(iot_for_warm_up));
    }
    warm_up.extend(data_plane_warm_up(data));
    Ok(Function {
        handler,
        warm_up,
        prepared_tls: PreparedUse::default(),
    })
}

#[cfg(feature = "data-plane")]
fn data_plane_warm_up(data: Option<DataClient>) -> Option<WarmUpTarget> {
    data.map(WarmUpTarget::IotData)
}

#[cfg(not(feature = "data-plane"))]
fn data_plane_warm_up(_data: Option<DataClient>) -> Option<WarmUpTarget> {
    None
}

/// The certificate mitigation CERTIFICATE_ACTION asks for. Whenever QUARANTINE_POLICY is
/// known, a release also detaches the policy where an `attach-policy` quarantine recorded it.
fn certificate_quarantine(
    iot: &aws_sdk_iot::Client,
    config: &FunctionConfig,
) -> Result<CertificateQuarantine<IotCertificates>, StartupError> {
    let quarantine = CertificateQuarantine::new(
        IotCertificates::new(iot.clone()),
        config.certificate_record_attribute.clone(),
    );
    let policy = config.quarantine_policy.clone().map(|policy| PolicyRecord {
        policy,
        attribute: config.certificate_policy_attribute.clone(),
    });
    match (config.certificate_action, policy) {
        (CertificateAction::AttachPolicy, Some(policy)) => Ok(quarantine.attaching(policy)),
        (CertificateAction::AttachPolicy, None) => Err(StartupError::Config(ConfigError {
            variable: "QUARANTINE_POLICY",
            value: String::new(),
            problem: "required by CERTIFICATE_ACTION=attach-policy (the quarantine policy's name); set it, or CERTIFICATE_ACTION=deactivate".into(),
        })),
        (CertificateAction::Deactivate, Some(policy)) => Ok(quarantine.knowing(policy)),
        (CertificateAction::Deactivate, None) => Ok(quarantine),
    }
}

#[cfg(feature = "ledger")]
fn with_ledger(
    handler: Handler,
    sdk: &aws_config::SdkConfig,
    table: &str,
    kind: FunctionKind,
    config: &FunctionConfig,
    warm_up: &mut Vec<WarmUpTarget>,
) -> Result<Handler, StartupError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    warm_up.push(WarmUpTarget::Ledger(dynamodb.clone()));
    let ledger = crate::ledger::DynamoLedger::new(dynamodb, table);
    let handler = handler
        .with_ledger(Arc::new(ledger), kind, config.min_quarantine)
        .with_max_things_per_record(config.max_things_per_record);
    Ok(match config.budget {
        Some(budget) => handler.with_budget(budget),
        None => handler,
    })
}

#[cfg(not(feature = "ledger"))]
fn with_ledger(
    _handler: Handler,
    _sdk: &aws_config::SdkConfig,
    _table: &str,
    _kind: FunctionKind,
    _config: &FunctionConfig,
    _warm_up: &mut Vec<WarmUpTarget>,
) -> Result<Handler, StartupError> {
    Err(StartupError::LedgerNotBuiltIn)
}

#[cfg(feature = "fan-out")]
fn with_fan_out(
    handler: Handler,
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
    warm_up: &mut Vec<WarmUpTarget>,
) -> Result<Handler, StartupError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    warm_up.push(WarmUpTarget::Queue(sqs.clone()));
    Ok(handler.with_fan_out(Arc::new(crate::fan_out::QueueFanOut::new(sqs, queue_url))))
}

#[cfg(not(feature = "fan-out"))]
fn with_fan_out(
    _handler: Handler,
    _sdk: &aws_config::SdkConfig,
    _queue_url: &str,
    _warm_up: &mut Vec<WarmUpTarget>,
) -> Result<Handler, StartupError> {
    Err(StartupError::FanOutNotBuiltIn)
}

/// The mitigations that call the IoT data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPlaneAction {
    Shadow,
    Disconnect,
}

#[cfg(feature = "data-plane")]
type DataClient = aws_sdk_iotdataplane::Client;
#[cfg(not(feature = "data-plane"))]
type DataClient = ();

/// A data-plane mitigation on the account's data-plane endpoint: `IOT_DATA_ENDPOINT`, the
/// configured endpoint URL, or DescribeEndpoint once at start-up. The client is built on the
/// first call and kept in `cache` for the next.
#[cfg(feature = "data-plane")]
async fn data_plane_action(
    which: DataPlaneAction,
    sdk: &aws_config::SdkConfig,
    iot: &aws_sdk_iot::Client,
    config: &FunctionConfig,
    cache: &mut Option<DataClient>,
) -> Result<Arc<dyn MitigationAction>, StartupError> {
    use crate::disconnect::ConnectionCut;
    use crate::sdk::{data_plane_client, data_plane_endpoint_configured, describe_data_endpoint};
    use crate::shadow::ShadowFlag;
    let data = match cache {
        Some(client) => client.clone(),
        None => {
            let endpoint = match &config.iot_data_endpoint {
                Some(e) => Some(e.clone()),
                None if config.dry_run || data_plane_endpoint_configured(sdk) => None,
                None => Some(
                    describe_data_endpoint(iot)
                        .await
                        .map_err(StartupError::DataEndpoint)?,
                ),
            };
            cache
                .insert(data_plane_client(sdk, endpoint.as_deref()))
                .clone()
        }
    };
    Ok(match which {
        DataPlaneAction::Shadow => Arc::new(ShadowFlag::new(data, config.shadow_name.clone())),
        DataPlaneAction::Disconnect => Arc::new(ConnectionCut::new(data)),
    })
}

#[cfg(not(feature = "data-plane"))]
async fn data_plane_action(
    which: DataPlaneAction,
    _sdk: &aws_config::SdkConfig,
    _iot: &aws_sdk_iot::Client,
    _config: &FunctionConfig,
    _cache: &mut Option<DataClient>,
) -> Result<Arc<dyn MitigationAction>, StartupError> {
    Err(StartupError::NotBuiltIn(which))
}
