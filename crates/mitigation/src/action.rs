//! The narrow interfaces the handler acts through. One adapter of each sits on the real AWS
//! SDK clients (in the `mitigation-aws` crate); tests and benchmarks substitute their own.

use std::fmt;

use futures::future::BoxFuture;
use violation_core::{
    Action, AuditFindingFields, AuditFindingId, AuditTaskId, CertificateId, ThingName,
};

/// Whether trying the same record again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling, 5xx, timeouts, connection failures: the record is handed back for a retry.
    Retryable,
    /// A missing thing or group, an invalid request, a limit, missing permissions: a retry
    /// cannot help until an operator acts; the record goes to the dead-letter queue.
    Permanent,
}

impl Retry {
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::Retryable => "Retryable",
            Retry::Permanent => "Permanent",
        }
    }
}

/// A mitigation call that failed after the SDK's own retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ActionError {
    /// The AWS operation, e.g. `AddThingToThingGroup`.
    pub operation: &'static str,
    /// What the call was about: a thing name, or `cert/ID`, `audit task ID`, ...
    pub thing: String,
    pub retry: Retry,
    /// The AWS error code (`ThrottlingException`, `ResourceNotFoundException`, ...) or
    /// `Timeout` / `DispatchFailure` / `ResponseError` for failures below the service.
    pub code: String,
    pub message: String,
    /// What the operator should do, when there is something to do.
    pub hint: Option<String>,
}

impl ActionError {
    /// A failure of `operation` about `thing`, without a hint.
    pub fn new(
        operation: &'static str,
        thing: impl Into<String>,
        retry: Retry,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ActionError {
            operation,
            thing: thing.into(),
            retry,
            code: code.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// A failure a retry cannot get past ([`Retry::Permanent`]).
    pub fn permanent(
        operation: &'static str,
        thing: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(operation, thing, Retry::Permanent, code, message)
    }

    /// A failure a later attempt can get past ([`Retry::Retryable`]).
    pub fn retryable(
        operation: &'static str,
        thing: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(operation, thing, Retry::Retryable, code, message)
    }

    /// The same error, telling the operator what to do.
    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        ActionError {
            hint: Some(hint.into()),
            ..self
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} for thing {} failed ({}, {}): {}",
            self.operation,
            self.thing,
            self.code,
            self.retry.as_str().to_ascii_lowercase(),
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, ". {hint}")?;
        }
        Ok(())
    }
}

/// Why a mitigation left a thing as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptBecause {
    /// A release waits: the thing has other active violations.
    ActiveViolations,
    /// A release waits: another record of the same batch quarantines the thing.
    QuarantinedInBatch,
    /// A certificate is not deactivated: other things use it too, and deactivating it
    /// could take them offline.
    SharedCertificate,
    /// A quarantine is not carried out: the thing is protected (`PROTECTED_THINGS`).
    Protected,
    /// A clear is recorded but the thing stays: other causes of its quarantine are active
    /// (the ledger).
    OtherCauses,
    /// A clear came less than `MIN_QUARANTINE_MINUTES` after its cause was recorded: the
    /// cause stays, the thing stays quarantined until an operator releases it.
    MinQuarantineTime,
}

impl KeptBecause {
    pub fn as_str(self) -> &'static str {
        match self {
            KeptBecause::ActiveViolations => "other-active-violations",
            KeptBecause::QuarantinedInBatch => "quarantined-in-batch",
            KeptBecause::SharedCertificate => "shared-certificate",
            KeptBecause::Protected => "protected",
            KeptBecause::OtherCauses => "other-causes",
            KeptBecause::MinQuarantineTime => "min-quarantine-time",
        }
    }
}

/// What a mitigation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Done for part of the thing, and part deliberately left as it was: a thing whose own
    /// certificates were deactivated while a certificate it shares with `held_by` was not.
    DoneKeeping {
        because: KeptBecause,
        held_by: Vec<String>,
    },
    /// Deliberately left as it was; `held_by` names what holds it (violation ids, alarms,
    /// the other things that share a certificate).
    Kept {
        because: KeptBecause,
        held_by: Vec<String>,
    },
}

/// The mitigations, in the order a function performs them; what each did is an [`Applied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MitigationKind {
    /// Membership of the static quarantine thing group.
    ThingGroup,
    /// The thing's live MQTT connection cut, after the group change it makes effective.
    Disconnect,
    /// The desired `quarantine` flag in the thing's shadow.
    Shadow,
    /// The thing's own X.509 certificates deactivated (see [`crate::certificates`]).
    Certificate,
}

impl MitigationKind {
    /// The name in logs, replay output and quarantinectl's sentences.
    pub fn name(self) -> &'static str {
        match self {
            MitigationKind::ThingGroup => "thing-group",
            MitigationKind::Disconnect => "disconnect",
            MitigationKind::Shadow => "shadow",
            MitigationKind::Certificate => "certificate",
        }
    }

    /// Whether the mitigation has anything to do for `action`: a cut connection has nothing
    /// to undo on release.
    pub fn performs(self, action: Action) -> bool {
        self != MitigationKind::Disconnect || action == Action::Quarantine
    }
}

/// One mitigation: put a thing in quarantine or take it out. Implementations must be
/// idempotent: SNS and SQS deliver at least once.
pub trait MitigationAction: Send + Sync {
    /// Short name for logs and replay output: a [`MitigationKind::name`] (test doubles name
    /// themselves).
    fn name(&self) -> &'static str;

    /// Whether this mitigation has anything to do for `action` (a disconnect has nothing to
    /// undo on release). The handler skips it, and reports nothing, when not.
    fn performs(&self, action: Action) -> bool {
        let _ = action;
        true
    }

    /// One AWS call, or a few for one purpose.
    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>>;
}

/// Whether a thing is in the quarantine group now, asked before a thing is put back after a
/// registry REMOVED event: a duplicate or late event finds it back and does nothing (no
/// second disconnect).
pub trait GroupMembership: Send + Sync {
    fn in_group<'a>(&'a self, thing: &'a ThingName) -> BoxFuture<'a, Result<bool, ActionError>>;
}

/// The thing's active violations, consulted before a release.
pub trait ActiveViolations: Send + Sync {
    /// The violation ids currently active for `thing`.
    fn active_violation_ids<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;
}

/// The things a certificate is attached to (ListPrincipalThingsV2).
pub trait CertificateThings: Send + Sync {
    fn things_of<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;
}

/// One page of an audit task's findings for one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingsPage {
    pub findings: Vec<AuditFindingFields>,
    pub next_token: Option<String>,
}

/// Device Defender Audit findings (ListAuditFindings, DescribeAuditFinding).
pub trait AuditFindings: Send + Sync {
    fn list_findings<'a>(
        &'a self,
        task: &'a AuditTaskId,
        check: &'a str,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<FindingsPage, ActionError>>;

    fn describe_finding<'a>(
        &'a self,
        finding: &'a AuditFindingId,
    ) -> BoxFuture<'a, Result<AuditFindingFields, ActionError>>;
}

/// Hands alerts to be handled later as records of their own: an audit with thousands of
/// findings is fanned out through the function's own queue, one mitigation request per
/// device, instead of being mitigated within one invocation.
pub trait FanOut: Send + Sync {
    /// Send every alert (JSON text), or fail.
    fn send<'a>(&'a self, alerts: &'a [String]) -> BoxFuture<'a, Result<(), ActionError>>;
}

#[cfg(test)]
mod tests {
    use super::{ActionError, MitigationKind, Retry};
    use violation_core::Action;

    #[test]
    fn only_the_disconnect_skips_a_release() {
        use MitigationKind::*;
        for kind in [ThingGroup, Shadow, Certificate] {
            assert!(kind.performs(Action::Quarantine) && kind.performs(Action::Release));
        }
        assert!(Disconnect.performs(Action::Quarantine));
        assert!(!Disconnect.performs(Action::Release));
    }

    #[test]
    fn constructors_fill_every_field_and_the_hint_shows_last() {
        let e = ActionError::permanent("UpdateThing", "dev-1", "TooManyCertificates", "13 ids");
        assert_eq!(
            e,
            ActionError {
                operation: "UpdateThing",
                thing: "dev-1".into(),
                retry: Retry::Permanent,
                code: "TooManyCertificates".into(),
                message: "13 ids".into(),
                hint: None,
            }
        );
        let e = ActionError::retryable("Invocation", "dev-2", "DeadlineNear", "time ran out")
            .with_hint("retried");
        assert_eq!(
            (e.retry, e.hint.as_deref()),
            (Retry::Retryable, Some("retried"))
        );
        assert_eq!(
            e.to_string(),
            "Invocation for thing dev-2 failed (DeadlineNear, retryable): time ran out. retried"
        );
    }
}
