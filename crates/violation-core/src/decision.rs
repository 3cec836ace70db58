//! What to do with each alert: act on its subjects (quarantine or release), expand an
//! audit, look up a finding, re-check a thing taken out of the quarantine group, ignore, or
//! reject; and the settings that shape it.

use std::collections::BTreeSet;
use std::fmt;

use crate::audit_ids::{AuditFindingId, AuditTaskId};
use crate::reject::{RejectReason, excerpt};
use crate::subject::Subject;
use crate::thing_name::ThingName;
use crate::trust::{LocalScope, SecurityHubProducts};
use crate::violation::VerificationState;

/// `violationEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    InAlarm,
    AlarmCleared,
    AlarmInvalidated,
}

impl EventType {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "in-alarm" => Some(EventType::InAlarm),
            "alarm-cleared" => Some(EventType::AlarmCleared),
            "alarm-invalidated" => Some(EventType::AlarmInvalidated),
            _ => None,
        }
    }
}

/// A set of names a record must match, or no restriction at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter(Option<BTreeSet<String>>);

impl NameFilter {
    /// No restriction.
    pub fn any() -> Self {
        NameFilter(None)
    }

    /// Only these names. An empty list means no restriction.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        NameFilter((!set.is_empty()).then_some(set))
    }

    /// Parse a comma-separated list such as `MySecProfile, Disconnect_duration_5m`.
    pub fn from_comma_list(list: &str) -> Self {
        Self::only(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    pub fn is_restricted(&self) -> bool {
        self.0.is_some()
    }

    /// A record without the field does not pass a restricting filter.
    pub fn allows(&self, value: Option<&str>) -> bool {
        match (&self.0, value) {
            (None, _) => true,
            (Some(set), Some(v)) => set.contains(v),
            (Some(_), None) => false,
        }
    }
}

/// The audit checks acted on by default (`AUDIT_CHECKS`): those whose non-compliant
/// resource is a device that should not be trusted.
pub const DEFAULT_AUDIT_CHECKS: [&str; 4] = [
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
];

/// The CloudWatch dimension that names the thing by default (`THING_DIMENSION`).
pub const DEFAULT_THING_DIMENSION: &str = "ThingName";

/// Most subjects one record may act on by default (`MAX_THINGS_PER_RECORD`).
pub const DEFAULT_MAX_THINGS_PER_RECORD: usize = 100;

/// The settings that shape decisions, shared by the functions and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPolicy {
    /// Release a thing when its alarm clears (`RELEASE_ON_CLEAR`). Off by default: a
    /// quarantined device stays quarantined until an operator releases it.
    pub release_on_clear: bool,
    /// Only act on violations of these security profiles (`SECURITY_PROFILE_FILTER`).
    pub security_profiles: NameFilter,
    /// Only act on violations of these behaviors (`BEHAVIOR_FILTER`).
    pub behaviors: NameFilter,
    /// Only act on violations of these metrics (`METRIC_FILTER`).
    pub metrics: NameFilter,
    /// Audit checks whose non-compliant findings are mitigated (`AUDIT_CHECKS`); checks are
    /// open strings, compared exactly.
    pub audit_checks: Vec<String>,
    /// The CloudWatch alarm dimension whose value is the thing name (`THING_DIMENSION`).
    pub thing_dimension: String,
    /// The account and region the functions act in: an ARN of another one is refused, and
    /// a Security Hub finding of another account is ignored. Unset parts are not checked.
    pub scope: LocalScope,
    /// The Security Hub products (and the custom action) whose findings may act
    /// (`SECURITY_HUB_PRODUCTS`).
    pub security_hub_products: SecurityHubProducts,
    /// A record naming more subjects than this is rejected (`MAX_THINGS_PER_RECORD`).
    pub max_things_per_record: usize,
    /// The quarantine thing group this program manages (`QUARANTINE_GROUP`, read by
    /// quarantine-group and replay): a thing removed from it is re-checked. `None`: this
    /// program manages no group, and membership events are ignored.
    pub quarantine_group: Option<String>,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        DecisionPolicy {
            release_on_clear: false,
            security_profiles: NameFilter::any(),
            behaviors: NameFilter::any(),
            metrics: NameFilter::any(),
            audit_checks: DEFAULT_AUDIT_CHECKS.iter().map(|c| c.to_string()).collect(),
            thing_dimension: DEFAULT_THING_DIMENSION.to_owned(),
            scope: LocalScope::default(),
            security_hub_products: SecurityHubProducts::default(),
            max_things_per_record: DEFAULT_MAX_THINGS_PER_RECORD,
            quarantine_group: None,
        }
    }
}

impl DecisionPolicy {
    pub fn selects_audit_check(&self, check: &str) -> bool {
        self.audit_checks.iter().any(|c| c == check)
    }
}

/// What a function does to a thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quarantine,
    Release,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Quarantine => "quarantine",
            Action::Release => "release",
        }
    }
}

/// Which filter excluded a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    SecurityProfile,
    Behavior,
    Metric,
}

impl FilterKind {
    fn field(self) -> &'static str {
        match self {
            FilterKind::SecurityProfile => "securityProfileName",
            FilterKind::Behavior => "behavior.name",
            FilterKind::Metric => "behavior.metric",
        }
    }
}

/// Why a well-formed record needs no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Device Defender invalidated the alarm (e.g. the device stopped reporting for two days).
    AlarmInvalidated,
    /// The alarm cleared and release-on-clear is off.
    ClearedWithoutRelease,
    /// The alarm cleared on a cloud-side metric that the quarantine itself changes: its
    /// clearing says nothing about the device, and releasing would make it flap.
    ClearedOnCloudSideMetric { metric: String },
    /// The alarm cleared on an `aws:` metric this version does not know as device-side.
    ClearedOnUnknownAwsMetric { metric: String },
    /// The alarm cleared and names no metric: it cannot be told apart from a cloud-side one.
    ClearedWithoutMetric,
    /// An optional filter excluded the record.
    Excluded {
        filter: FilterKind,
        value: Option<String>,
    },
    /// An operator marked the violation as not a threat.
    VerifiedNotAThreat(VerificationState),
    /// An audit task that did not complete (FAILED, CANCELED) has no findings to act on.
    AuditNotCompleted { task_id: String, status: String },
    /// A completed audit with no non-compliant check among `AUDIT_CHECKS`.
    NoSelectedNonCompliantCheck { task_id: String },
    /// An audit finding that an operator suppressed.
    FindingSuppressed { finding_id: Option<String> },
    /// An audit finding of a check that is not in `AUDIT_CHECKS`.
    CheckNotSelected { check: Option<String> },
    /// An audit finding whose resource is no device (no certificate, no client id).
    NoDeviceInFinding { check: Option<String> },
    /// A CloudWatch alarm back to OK while release on clear is off.
    AlarmOkWithoutRelease { alarm: String },
    /// A CloudWatch alarm in INSUFFICIENT_DATA: no evidence either way.
    AlarmInsufficientData { alarm: String },
    /// No Security Hub finding of the event asks for an action.
    NoActionableFinding { skipped: Vec<SkippedFinding> },
    /// A thing was added to the quarantine group: these tools' own quarantine (or put-back),
    /// or an operator's; nothing to re-check.
    AddedToQuarantineGroup { thing: String, group: String },
    /// A membership event of a group that is not the quarantine group.
    NotTheQuarantineGroup { group: String, expected: String },
    /// A membership event reached a program that manages no quarantine group.
    NoQuarantineGroup { group: String },
    /// A membership event of another account or region.
    MembershipOutOfScope { found: String, expected: String },
}

/// A Security Hub finding that asks for no action, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFinding {
    pub finding_id: String,
    pub why: SkipWhy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipWhy {
    /// Neither from a product of `SECURITY_HUB_PRODUCTS` nor sent to a trusted custom action.
    ProductNotAllowed { product_arn: Option<String> },
    /// A finding of another account (an aggregated member's, or one without `AwsAccountId`).
    OtherAccount {
        account: Option<String>,
        expected: String,
    },
    /// A finding (or its product) of another region.
    OtherRegion { region: String, expected: String },
    /// `RecordState` is not ACTIVE (ARCHIVED: the provider closed it) or is absent.
    RecordNotActive { state: Option<String> },
    /// `Workflow.Status` (or the older `WorkflowState`) is not NEW: an analyst notified,
    /// resolved or suppressed it.
    WorkflowNotNew { status: Option<String> },
    /// An analyst marked it FALSE_POSITIVE or BENIGN_POSITIVE.
    VerifiedNotAThreat { state: String },
    /// The Imported event is an analyst's update (a note newer than the provider's
    /// `UpdatedAt`), not new evidence.
    AnalystUpdate,
    /// None of its resources is an IoT thing or certificate.
    NoIotResource,
}

impl fmt::Display for SkipWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_absent = |v: &Option<String>| v.as_deref().unwrap_or("absent").to_owned();
        match self {
            SkipWhy::ProductNotAllowed { product_arn: Some(arn) } => write!(
                f,
                "its product {arn} is not in SECURITY_HUB_PRODUCTS and it was not sent to the custom action"
            ),
            SkipWhy::ProductNotAllowed { product_arn: None } => f.write_str(
                "it names no ProductArn and was not sent to the custom action",
            ),
            SkipWhy::OtherAccount { account, expected } => write!(
                f,
                "its AwsAccountId is {}, not this account {expected}",
                or_absent(account)
            ),
            SkipWhy::OtherRegion { region, expected } => {
                write!(f, "it is of region {region}, not this region {expected}")
            }
            SkipWhy::RecordNotActive { state } => write!(
                f,
                "its record state is {}; only ACTIVE findings act",
                or_absent(state)
            ),
            SkipWhy::WorkflowNotNew { status } => write!(
                f,
                "its workflow status is {}; only NEW findings act",
                or_absent(status)
            ),
            SkipWhy::VerifiedNotAThreat { state } => {
                write!(f, "an analyst marked it {state}")
            }
            SkipWhy::AnalystUpdate => f.write_str(
                "this Imported event is an analyst's update (its note is newer than the finding's UpdatedAt), not new evidence",
            ),
            SkipWhy::NoIotResource => {
                f.write_str("none of its resources is an IoT thing or certificate")
            }
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "?".to_owned(), |v| excerpt(v, 128))
        };
        match self {
            IgnoreReason::AlarmInvalidated => {
                f.write_str("alarm-invalidated: Device Defender withdrew the alarm; nothing to do")
            }
            IgnoreReason::ClearedWithoutRelease => f.write_str(
                "alarm-cleared: release on clear is off, the thing stays quarantined until released by hand",
            ),
            IgnoreReason::ClearedOnCloudSideMetric { metric } => write!(
                f,
                "alarm-cleared on cloud-side metric {}: the quarantine itself changes this metric, so its clearing is no sign the device recovered; not releasing (release by hand)",
                excerpt(metric, 128)
            ),
            IgnoreReason::ClearedOnUnknownAwsMetric { metric } => write!(
                f,
                "alarm-cleared on {}, which is not a known device-side metric: the quarantine may itself have cleared it; not releasing (release by hand)",
                excerpt(metric, 128)
            ),
            IgnoreReason::ClearedWithoutMetric => f.write_str(
                "alarm-cleared names no metric, so the quarantine itself may have cleared it; not releasing (release by hand)",
            ),
            IgnoreReason::Excluded { filter, value } => match value {
                Some(v) => write!(f, "{} {:?} is not in the configured filter", filter.field(), excerpt(v, 128)),
                None => write!(f, "record has no {} and a filter on it is configured", filter.field()),
            },
            IgnoreReason::VerifiedNotAThreat(state) => {
                write!(f, "violation is marked {state:?} by an operator; not quarantining")
            }
            IgnoreReason::AuditNotCompleted { task_id, status } => write!(
                f,
                "audit task {task_id} ended {}; only a COMPLETED audit has findings to act on",
                excerpt(status, 60)
            ),
            IgnoreReason::NoSelectedNonCompliantCheck { task_id } => write!(
                f,
                "audit task {task_id} has no non-compliant check among AUDIT_CHECKS"
            ),
            IgnoreReason::FindingSuppressed { finding_id } => {
                write!(f, "audit finding {} is suppressed", opt(finding_id))
            }
            IgnoreReason::CheckNotSelected { check } => write!(
                f,
                "audit finding of check {} which is not in AUDIT_CHECKS",
                opt(check)
            ),
            IgnoreReason::NoDeviceInFinding { check } => write!(
                f,
                "audit finding of check {} names no device (no certificate, no client id)",
                opt(check)
            ),
            IgnoreReason::AlarmOkWithoutRelease { alarm } => write!(
                f,
                "CloudWatch alarm {} is OK: release on clear is off, the thing stays quarantined until released by hand",
                excerpt(alarm, 128)
            ),
            IgnoreReason::AlarmInsufficientData { alarm } => write!(
                f,
                "CloudWatch alarm {} has INSUFFICIENT_DATA: no evidence either way",
                excerpt(alarm, 128)
            ),
            IgnoreReason::AddedToQuarantineGroup { thing, group } => write!(
                f,
                "thing {thing} was added to the quarantine group {group} (a quarantine or a put-back): nothing to re-check"
            ),
            IgnoreReason::NotTheQuarantineGroup { group, expected } => write!(
                f,
                "membership event of thing group {group}, not the quarantine group {expected} (QUARANTINE_GROUP)"
            ),
            IgnoreReason::NoQuarantineGroup { group } => write!(
                f,
                "membership event of thing group {group}: only quarantine-group (QUARANTINE_GROUP) puts things back in its group"
            ),
            IgnoreReason::MembershipOutOfScope { found, expected } => write!(
                f,
                "membership event of {found}, but this stack acts only in {expected}"
            ),
            IgnoreReason::NoActionableFinding { skipped } => {
                f.write_str("no Security Hub finding to act on: ")?;
                let parts: Vec<String> = skipped
                    .iter()
                    .map(|s| format!("{} ({})", excerpt(&s.finding_id, 200), s.why))
                    .collect();
                f.write_str(&parts.join("; "))
            }
        }
    }
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Quarantine or release each subject (never empty, no duplicates). A certificate
    /// subject stands for the things attached to it.
    Act {
        action: Action,
        subjects: Vec<Subject>,
    },
    /// An audit completed with these non-compliant checks of `AUDIT_CHECKS`: page
    /// ListAuditFindings(task_id, check) for each and decide every finding with
    /// [`crate::decide_audit_finding`].
    ExpandAudit {
        task_id: AuditTaskId,
        checks: Vec<String>,
    },
    /// A PUBLISH_FINDING_TO_SNS message naming only a finding: DescribeAuditFinding, then
    /// [`crate::decide_audit_finding`].
    LookupFinding {
        finding_id: AuditFindingId,
    },
    /// A thing was taken out of the quarantine group (a registry membership event):
    /// quarantine-group reads its causes in the ledger and puts it back if they are active
    /// and the quarantine is in force. It adds and clears no cause: it can neither
    /// quarantine a free thing nor release one.
    Reconcile {
        thing: ThingName,
    },
    Ignore(IgnoreReason),
    Reject(RejectReason),
}

impl Decision {
    /// `quarantine`, `release`, `expand-audit`, `lookup-finding`, `reconcile`, `ignore` or
    /// `reject`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Act { action, .. } => action.as_str(),
            Decision::ExpandAudit { .. } => "expand-audit",
            Decision::LookupFinding { .. } => "lookup-finding",
            Decision::Reconcile { .. } => "reconcile",
            Decision::Ignore(_) => "ignore",
            Decision::Reject(_) => "reject",
        }
    }

    /// An action on these subjects, duplicates removed (first occurrence kept); `None`
    /// when there is no subject.
    pub fn act(action: Action, subjects: Vec<Subject>) -> Option<Decision> {
        let mut seen = BTreeSet::new();
        let subjects: Vec<Subject> = subjects
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect();
        (!subjects.is_empty()).then_some(Decision::Act { action, subjects })
    }

    /// The subjects acted on; empty unless [`Decision::Act`].
    pub fn subjects(&self) -> &[Subject] {
        match self {
            Decision::Act { subjects, .. } => subjects,
            _ => &[],
        }
    }
}
