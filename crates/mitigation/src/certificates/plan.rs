//! The certificate rules, without I/O: what each of a thing's certificates is to its
//! quarantine, what to record and contain (deactivate, or attach the quarantine policy to),
//! what a release reactivates, and the outcome.

use std::collections::BTreeSet;

use violation_core::{CertificateId, ThingName};

use super::record::{MAX_RECORDED_CERTIFICATES, record_value, too_many};
use super::registry::CertStatus;
use crate::action::{ActionError, Applied, KeptBecause};

/// What one certificate attached to the thing is to its quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Used by this thing only (and, to be deactivated, ACTIVE): to be recorded and contained.
    Exclusive,
    /// ACTIVE and used by these other things too: left ACTIVE, so as not to take them offline.
    Shared(Vec<String>),
    /// Contained and recorded: by an earlier attempt.
    OursAlready,
    /// Already carrying the quarantine policy, attached by someone else: contained, but not
    /// recorded, so a release never detaches it.
    AlreadyContained,
    /// Not ACTIVE and not deactivated by the quarantine (someone else deactivated or revoked
    /// it): left as it is and not recorded, so a release never reactivates it.
    NotOurs(CertStatus),
    /// Attached, yet unknown to DescribeCertificate: skipped.
    Missing,
}

/// Whether the things a certificate is attached to must be read to know its standing: only
/// an ACTIVE certificate may be deactivated, and only when no other thing uses it.
pub fn reads_other_things(status: Option<&CertStatus>) -> bool {
    status == Some(&CertStatus::Active)
}

/// A certificate's standing, for `attach-policy`, from the other things it is attached to,
/// then (only when there are none) whether it already carries the quarantine policy and
/// whether that is recorded. Its status does not matter: the policy binds it whenever it is
/// (re)activated.
pub fn policy_standing(others: Vec<String>, has_policy: bool, recorded: bool) -> Standing {
    match (others.is_empty(), has_policy, recorded) {
        (false, _, _) => Standing::Shared(others),
        (true, false, _) => Standing::Exclusive,
        (true, true, true) => Standing::OursAlready,
        (true, true, false) => Standing::AlreadyContained,
    }
}

/// A certificate's standing, for `deactivate`, from its status, whether it is recorded, and
/// the other things it is attached to (read only when [`reads_other_things`]).
pub fn standing(status: Option<CertStatus>, recorded: bool, others: Vec<String>) -> Standing {
    match status {
        Some(CertStatus::Active) if others.is_empty() => Standing::Exclusive,
        Some(CertStatus::Active) => Standing::Shared(others),
        Some(CertStatus::Inactive) if recorded => Standing::OursAlready,
        Some(status) => Standing::NotOurs(status),
        None => Standing::Missing,
    }
}

/// One certificate of the thing and its standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub id: CertificateId,
    pub standing: Standing,
}

/// A certificate left ACTIVE because other things use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCertificate {
    pub id: CertificateId,
    pub others: Vec<String>,
}

/// What a quarantine does, in this order: write the record (when it changes), then
/// contain; and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinePlan {
    /// The attribute's new value, when it differs from what is recorded.
    pub record: Option<String>,
    /// To deactivate, or to attach the quarantine policy to.
    pub contain: Vec<CertificateId>,
    pub shared: Vec<SharedCertificate>,
    pub applied: Applied,
}

/// The quarantine of a thing whose certificates were assessed, given what an earlier
/// attempt `recorded`. A record that would exceed the attribute is a permanent error
/// (`attribute` names it), with nothing to change.
pub fn plan_quarantine(
    thing: &ThingName,
    attribute: &str,
    recorded: &[CertificateId],
    assessed: &[Assessment],
) -> Result<QuarantinePlan, ActionError> {
    let mut contain: Vec<CertificateId> = Vec::new();
    let mut shared: Vec<SharedCertificate> = Vec::new();
    let mut contained = false;
    for a in assessed {
        match &a.standing {
            Standing::Exclusive => contain.push(a.id.clone()),
            Standing::Shared(others) => shared.push(SharedCertificate {
                id: a.id.clone(),
                others: others.clone(),
            }),
            Standing::OursAlready | Standing::AlreadyContained => contained = true,
            Standing::NotOurs(_) | Standing::Missing => {}
        }
    }
    let mut record = recorded.to_vec();
    for id in &contain {
        if !record.contains(id) {
            record.push(id.clone());
        }
    }
    if record.len() > MAX_RECORDED_CERTIFICATES {
        return Err(too_many(thing, attribute, record.len()));
    }
    let applied = outcome(&shared, contain.is_empty() && !contained);
    Ok(QuarantinePlan {
        record: (record != recorded).then(|| record_value(&record)),
        contain,
        shared,
        applied,
    })
}

/// Done when nothing is shared; else kept when nothing of the thing is (now) contained,
/// done-keeping when something is. The things sharing are named once each.
fn outcome(shared: &[SharedCertificate], none_contained: bool) -> Applied {
    let held_by: Vec<String> = shared
        .iter()
        .flat_map(|s| s.others.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if held_by.is_empty() {
        return Applied::Done;
    }
    let because = KeptBecause::SharedCertificate;
    if none_contained {
        Applied::Kept { because, held_by }
    } else {
        Applied::DoneKeeping { because, held_by }
    }
}

/// What a release does with one recorded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStep {
    /// INACTIVE: reactivated.
    Reactivate,
    /// Already ACTIVE (the deactivation never happened, or was undone): nothing to do.
    AlreadyActive,
    /// Revoked or otherwise changed since the quarantine: left as it is.
    Changed(CertStatus),
    /// No longer exists: nothing to reactivate.
    Gone,
}

/// The release of a recorded certificate with this status (`None`: it does not exist).
pub fn release_step(status: Option<CertStatus>) -> ReleaseStep {
    match status {
        Some(CertStatus::Inactive) => ReleaseStep::Reactivate,
        Some(CertStatus::Active) => ReleaseStep::AlreadyActive,
        Some(other) => ReleaseStep::Changed(other),
        None => ReleaseStep::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Retry;

    const ATTR: &str = "quarantineDeactivatedCerts";

    fn id(n: u8) -> CertificateId {
        CertificateId::parse(&format!("{:064x}", u64::from(n) + 0xabc0)).unwrap()
    }

    fn thing() -> ThingName {
        ThingName::parse("dev-1").unwrap()
    }

    fn assessed(standings: Vec<Standing>) -> Vec<Assessment> {
        standings
            .into_iter()
            .enumerate()
            .map(|(n, standing)| Assessment {
                id: id(n as u8),
                standing,
            })
            .collect()
    }

    fn others(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_certificate_is_ours_to_deactivate_only_when_active_and_unshared() {
        assert!(reads_other_things(Some(&CertStatus::Active)));
        assert!(!reads_other_things(Some(&CertStatus::Inactive)));
        assert!(!reads_other_things(None));
        assert_eq!(
            standing(Some(CertStatus::Active), false, vec![]),
            Standing::Exclusive
        );
        assert_eq!(
            standing(Some(CertStatus::Active), true, others(&["dev-2"])),
            Standing::Shared(others(&["dev-2"]))
        );
        assert_eq!(
            standing(Some(CertStatus::Inactive), true, vec![]),
            Standing::OursAlready
        );
        assert_eq!(
            standing(Some(CertStatus::Inactive), false, vec![]),
            Standing::NotOurs(CertStatus::Inactive),
            "deactivated by someone else: not ours"
        );
        assert_eq!(
            standing(Some(CertStatus::parse("REVOKED")), true, vec![]),
            Standing::NotOurs(CertStatus::parse("REVOKED"))
        );
        assert_eq!(standing(None, true, vec![]), Standing::Missing);
    }

    #[test]
    fn a_certificate_gets_the_policy_only_when_unshared_and_without_it() {
        assert_eq!(
            policy_standing(others(&["dev-2"]), false, false),
            Standing::Shared(others(&["dev-2"]))
        );
        assert_eq!(
            policy_standing(others(&["dev-2"]), true, true),
            Standing::Shared(others(&["dev-2"])),
            "shared now: never touched, whatever it carries"
        );
        assert_eq!(policy_standing(vec![], false, true), Standing::Exclusive);
        assert_eq!(policy_standing(vec![], true, true), Standing::OursAlready);
        assert_eq!(
            policy_standing(vec![], true, false),
            Standing::AlreadyContained
        );
    }

    #[test]
    fn a_policy_someone_else_attached_contains_but_is_not_recorded() {
        let plan = plan_quarantine(
            &thing(),
            ATTR,
            &[],
            &assessed(vec![
                Standing::AlreadyContained,
                Standing::Shared(others(&["dev-2"])),
            ]),
        )
        .unwrap();
        assert_eq!((plan.record, plan.contain), (None, vec![]));
        assert_eq!(
            plan.applied,
            Applied::DoneKeeping {
                because: KeptBecause::SharedCertificate,
                held_by: others(&["dev-2"]),
            }
        );
    }

    #[test]
    fn exclusive_certificates_are_recorded_after_what_was_recorded() {
        let plan = plan_quarantine(
            &thing(),
            ATTR,
            &[id(9)],
            &assessed(vec![Standing::Exclusive, Standing::Exclusive]),
        )
        .unwrap();
        assert_eq!(plan.contain, [id(0), id(1)]);
        assert_eq!(plan.record, Some(record_value(&[id(9), id(0), id(1)])));
        assert_eq!(plan.applied, Applied::Done);
    }

    #[test]
    fn an_unchanged_record_is_not_written_again() {
        let plan = plan_quarantine(
            &thing(),
            ATTR,
            &[id(0)],
            &assessed(vec![Standing::OursAlready]),
        )
        .unwrap();
        assert_eq!((plan.record, plan.contain), (None, vec![]));
        assert_eq!(plan.applied, Applied::Done);
    }

    #[test]
    fn shared_certificates_alone_are_kept_naming_each_other_thing_once() {
        let plan = plan_quarantine(
            &thing(),
            ATTR,
            &[],
            &assessed(vec![
                Standing::Shared(others(&["dev-9", "dev-2"])),
                Standing::Shared(others(&["dev-2"])),
                Standing::NotOurs(CertStatus::Inactive),
            ]),
        )
        .unwrap();
        assert_eq!(plan.record, None);
        assert_eq!(plan.shared.len(), 2);
        assert_eq!(
            plan.applied,
            Applied::Kept {
                because: KeptBecause::SharedCertificate,
                held_by: others(&["dev-2", "dev-9"]),
            }
        );
    }

    #[test]
    fn shared_beside_deactivated_or_already_deactivated_is_done_keeping() {
        let shared = || Standing::Shared(others(&["dev-2"]));
        let done_keeping = Applied::DoneKeeping {
            because: KeptBecause::SharedCertificate,
            held_by: others(&["dev-2"]),
        };
        for other in [Standing::Exclusive, Standing::OursAlready] {
            let plan = plan_quarantine(&thing(), ATTR, &[id(1)], &assessed(vec![shared(), other]))
                .unwrap();
            assert_eq!(plan.applied, done_keeping);
        }
    }

    #[test]
    fn more_than_twelve_recorded_is_a_permanent_error() {
        let recorded: Vec<CertificateId> = (20..28).map(id).collect();
        let five_more = assessed(vec![Standing::Exclusive; 5]);
        let err = plan_quarantine(&thing(), ATTR, &recorded, &five_more).unwrap_err();
        assert_eq!(
            (err.retry, err.code.as_str()),
            (Retry::Permanent, "TooManyCertificates")
        );
        assert!(
            err.message.contains("13 certificate ids"),
            "{}",
            err.message
        );
        assert!(err.message.contains(ATTR), "{}", err.message);
        let four_more = assessed(vec![Standing::Exclusive; 4]);
        let plan = plan_quarantine(&thing(), ATTR, &recorded, &four_more).unwrap();
        assert_eq!(plan.contain.len(), 4);
    }

    #[test]
    fn a_release_reactivates_only_inactive_certificates() {
        assert_eq!(
            release_step(Some(CertStatus::Inactive)),
            ReleaseStep::Reactivate
        );
        assert_eq!(
            release_step(Some(CertStatus::Active)),
            ReleaseStep::AlreadyActive
        );
        assert_eq!(
            release_step(Some(CertStatus::parse("REVOKED"))),
            ReleaseStep::Changed(CertStatus::parse("REVOKED"))
        );
        assert_eq!(release_step(None), ReleaseStep::Gone);
    }
}
