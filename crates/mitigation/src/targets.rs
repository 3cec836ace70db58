//! From a record's decision to the things to act on. A decision names subjects; this is
//! where they become things:
//! - a certificate is resolved to the things it is attached to (ListPrincipalThingsV2);
//!   a certificate attached to no thing can never be acted on;
//! - an audit task is expanded into its findings (ListAuditFindings, every page of every
//!   selected check), each decided by the core like any alert;
//! - a published finding is looked up (DescribeAuditFinding) and decided;
//! - with `VERIFY_VIOLATION`, a Detect in-alarm is confirmed with ListActiveViolations.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};
use violation_core::{
    Action, AlertSource, AuditFindingFields, AuditFindingId, AuditTaskId, CertificateId, Decision,
    DecisionPolicy, RejectReason, Subject, ThingName, Verdict, decide_audit_finding,
};

use crate::action::{ActionError, ActiveViolations, AuditFindings, CertificateThings, FanOut};

/// Pages of one check's findings read at most (250 findings a page: 250,000 findings).
pub const MAX_FINDING_PAGES: usize = 1000;

/// One action on one thing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub action: Action,
    pub thing: ThingName,
}

/// What a record comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Act on these things (no duplicates, in the order the alert named them).
    Act(Vec<Target>),
    /// Nothing to act on: the decision is to ignore, or every finding was ignored.
    Nothing,
    /// A dry run: only the things named directly are known; the rest needs AWS.
    Planned(Vec<Target>),
    /// An audit's devices were handed on as mitigation requests of their own (this many).
    FannedOut(usize),
    /// Can never succeed.
    Rejected(RejectReason),
    /// A lookup failed after the SDK's retries.
    Failed(ActionError),
}

/// A record's resolution and what the resolver noticed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub resolution: Resolution,
    pub notes: Vec<String>,
}

/// The lookups a resolution may need; `None` where the handler has no such client (a dry
/// run has none).
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub policy: &'a DecisionPolicy,
    pub certificates: Option<&'a dyn CertificateThings>,
    pub audit: Option<&'a dyn AuditFindings>,
    /// Set when `VERIFY_VIOLATION` is on.
    pub verify: Option<&'a dyn ActiveViolations>,
    /// Set when audits are fanned out (`FANOUT_QUEUE_URL`).
    pub fan_out: Option<&'a dyn FanOut>,
    pub concurrency: usize,
}

/// Subjects and findings gathered for one record.
#[derive(Default)]
struct Gathered {
    targets: Vec<Target>,
    seen: HashSet<Target>,
    notes: Vec<String>,
}

impl Gathered {
    fn add(&mut self, action: Action, thing: ThingName) {
        let target = Target { action, thing };
        if self.seen.insert(target.clone()) {
            self.targets.push(target);
        }
    }
}

/// Whether every subject could be resolved: not without AWS clients (a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completeness {
    Complete,
    NeedsAws,
}

impl Resolver<'_> {
    pub async fn resolve(&self, verdict: &Verdict) -> Resolved {
        let mut gathered = Gathered::default();
        let resolution = match self.gather(verdict, &mut gathered).await {
            Err(Resolution::FannedOut(sent)) => {
                gathered.notes.push(format!(
                    "{sent} mitigation request(s), one per device, sent through the queue; each is handled as a record of its own"
                ));
                Resolution::FannedOut(sent)
            }
            Err(resolution) => resolution,
            Ok(Completeness::NeedsAws) => Resolution::Planned(gathered.targets),
            Ok(Completeness::Complete) if gathered.targets.is_empty() => Resolution::Nothing,
            Ok(Completeness::Complete) => Resolution::Act(gathered.targets),
        };
        Resolved {
            resolution,
            notes: gathered.notes,
        }
    }

    async fn gather(
        &self,
        verdict: &Verdict,
        gathered: &mut Gathered,
    ) -> Result<Completeness, Resolution> {
        match &verdict.decision {
            // A thing taken out of the quarantine group names nothing to act on here: the
            // handler checks it against the ledger (handler/drift.rs).
            Decision::Ignore(_) | Decision::Reconcile { .. } => Ok(Completeness::Complete),
            Decision::Reject(reason) => Err(Resolution::Rejected(reason.clone())),
            Decision::Act { action, subjects } => {
                self.verify_alarm(verdict, *action, subjects).await?;
                self.subjects(*action, subjects, gathered).await
            }
            Decision::ExpandAudit { task_id, checks } => {
                self.expand_audit(task_id, checks, gathered).await
            }
            Decision::LookupFinding { finding_id } => {
                self.lookup_finding(finding_id, gathered).await
            }
        }
    }

    async fn subjects(
        &self,
        action: Action,
        subjects: &[Subject],
        gathered: &mut Gathered,
    ) -> Result<Completeness, Resolution> {
        let mut certificates = Vec::new();
        for subject in subjects {
            match subject {
                Subject::Thing(thing) => gathered.add(action, thing.clone()),
                Subject::Certificate(cert) => certificates.push(cert),
            }
        }
        if certificates.is_empty() {
            return Ok(Completeness::Complete);
        }
        let Some(lookup) = self.certificates else {
            gathered.notes.push(format!(
                "{} certificate(s) would be resolved to their things with ListPrincipalThingsV2",
                certificates.len()
            ));
            return Ok(Completeness::NeedsAws);
        };
        let things: Vec<(&CertificateId, Vec<String>)> = stream::iter(certificates)
            .map(|cert| async move { lookup.things_of(cert).await.map(|t| (cert, t)) })
            .buffered(self.concurrency.max(1))
            .try_collect()
            .await
            .map_err(Resolution::Failed)?;
        for (cert, names) in things {
            let mut valid = 0;
            for name in names {
                match ThingName::parse(&name) {
                    Ok(thing) => {
                        valid += 1;
                        gathered.add(action, thing);
                    }
                    Err(problem) => gathered.notes.push(format!(
                        "certificate {cert} is attached to {name:?}, not a valid thing name ({problem}); skipped"
                    )),
                }
            }
            // No thing to act on for this certificate can never change by retrying.
            if valid == 0 {
                return Err(Resolution::Failed(no_thing_for(cert)));
            }
        }
        Ok(Completeness::Complete)
    }

    /// Every page of every selected check's findings, each decided by the core.
    async fn expand_audit(
        &self,
        task: &AuditTaskId,
        checks: &[String],
        gathered: &mut Gathered,
    ) -> Result<Completeness, Resolution> {
        let Some(audit) = self.audit else {
            gathered.notes.push(format!(
                "the findings of audit task {task} ({}) would be listed with ListAuditFindings",
                checks.join(", ")
            ));
            return Ok(Completeness::NeedsAws);
        };
        let mut findings = Vec::new();
        for check in checks {
            let mut token = None;
            for _ in 0..MAX_FINDING_PAGES {
                let page = audit
                    .list_findings(task, check, token.take())
                    .await
                    .map_err(Resolution::Failed)?;
                findings.extend(page.findings);
                match page.next_token {
                    Some(next) if !next.is_empty() => token = Some(next),
                    _ => break,
                }
            }
        }
        match self.fan_out {
            Some(fan_out) => Err(self
                .fan_out_findings(task, &findings, fan_out, gathered)
                .await),
            None => self.findings(&findings, gathered).await,
        }
    }

    /// Every device the findings name becomes one mitigation request of its own, sent
    /// through the queue: each is then a record with its own retries and dead-letter queue,
    /// and the audit record is done once all are sent. All findings are listed before any
    /// request is sent, so a failed listing sends nothing twice.
    async fn fan_out_findings(
        &self,
        task: &AuditTaskId,
        findings: &[AuditFindingFields],
        fan_out: &dyn FanOut,
        gathered: &mut Gathered,
    ) -> Resolution {
        let requests: Vec<String> = self
            .devices(findings, gathered)
            .into_iter()
            .map(|(subject, finding)| audit_request(task, finding, &subject))
            .collect();
        match fan_out.send(&requests).await {
            Ok(()) => Resolution::FannedOut(requests.len()),
            Err(e) => Resolution::Failed(e),
        }
    }

    async fn lookup_finding(
        &self,
        id: &AuditFindingId,
        gathered: &mut Gathered,
    ) -> Result<Completeness, Resolution> {
        let Some(audit) = self.audit else {
            gathered.notes.push(format!(
                "audit finding {id} would be read with DescribeAuditFinding"
            ));
            return Ok(Completeness::NeedsAws);
        };
        let finding = audit
            .describe_finding(id)
            .await
            .map_err(Resolution::Failed)?;
        self.findings(&[finding], gathered).await
    }

    /// Decide each finding; quarantine the subjects of those that ask for it.
    async fn findings(
        &self,
        findings: &[AuditFindingFields],
        gathered: &mut Gathered,
    ) -> Result<Completeness, Resolution> {
        let subjects: Vec<Subject> = self
            .devices(findings, gathered)
            .into_iter()
            .map(|(subject, _)| subject)
            .collect();
        self.subjects(Action::Quarantine, &subjects, gathered).await
    }

    /// The devices the findings ask to quarantine, each once, with the first finding that
    /// names it. A finding the core rejects is noted, not fatal: the others still count.
    fn devices<'f>(
        &self,
        findings: &'f [AuditFindingFields],
        gathered: &mut Gathered,
    ) -> Vec<(Subject, &'f AuditFindingFields)> {
        let mut seen = HashSet::new();
        let mut devices = Vec::new();
        let (mut ignored, mut rejected) = (0usize, 0usize);
        for finding in findings {
            match decide_audit_finding(finding, self.policy) {
                Decision::Act { subjects, .. } => devices.extend(
                    subjects
                        .into_iter()
                        .filter(|s| seen.insert(s.clone()))
                        .map(|s| (s, finding)),
                ),
                Decision::Reject(reason) => {
                    rejected += 1;
                    gathered.notes.push(format!(
                        "finding {}: {reason}",
                        finding.finding_id.as_deref().unwrap_or("?")
                    ));
                }
                _ => ignored += 1,
            }
        }
        gathered.notes.push(format!(
            "{} finding(s): {} to quarantine, {ignored} ignored (suppressed, check not selected or no device), {rejected} rejected",
            findings.len(),
            findings.len() - ignored - rejected
        ));
        devices
    }

    /// `VERIFY_VIOLATION`: a Detect in-alarm is acted on only when Device Defender lists
    /// the violation as active for the thing.
    async fn verify_alarm(
        &self,
        verdict: &Verdict,
        action: Action,
        subjects: &[Subject],
    ) -> Result<(), Resolution> {
        let (Some(source), Some(AlertSource::DetectViolation), Action::Quarantine) =
            (self.verify, verdict.source, action)
        else {
            return Ok(());
        };
        let violation_id = verdict.facts.violation_id.as_deref().unwrap_or("");
        for thing in subjects.iter().filter_map(Subject::thing_name) {
            let active = source
                .active_violation_ids(thing)
                .await
                .map_err(Resolution::Failed)?;
            if violation_id.is_empty() || !active.iter().any(|id| id == violation_id) {
                return Err(Resolution::Rejected(RejectReason::UnverifiedViolation {
                    thing: thing.to_string(),
                    violation_id: violation_id.to_owned(),
                }));
            }
        }
        Ok(())
    }
}

/// The mitigation request that quarantines one device of an audit finding.
fn audit_request(task: &AuditTaskId, finding: &AuditFindingFields, subject: &Subject) -> String {
    let check = finding.check_name.as_deref().unwrap_or("?");
    let id = finding.finding_id.as_deref().unwrap_or("?");
    let mut request = serde_json::json!({
        "action": "quarantine",
        "reason": format!("audit task {task}, check {check}, finding {id}"),
        "source": format!("audit:{task}"),
        "taskId": task.as_str(),
        "checkName": check,
        "findingId": id,
    });
    let (key, value) = match subject {
        Subject::Thing(thing) => ("thingName", thing.to_string()),
        Subject::Certificate(cert) => ("certificateId", cert.to_string()),
    };
    if let Some(map) = request.as_object_mut() {
        map.insert(key.into(), serde_json::Value::from(value));
    }
    request.to_string()
}

fn no_thing_for(cert: &CertificateId) -> ActionError {
    ActionError::permanent(
        "ListPrincipalThingsV2",
        format!("cert/{cert}"),
        "NoThingForCertificate",
        format!("certificate {cert} is attached to no thing that can be quarantined"),
    )
    .with_hint(format!(
        "nothing to quarantine by thing: deactivate the certificate by hand if it is compromised (aws iot update-certificate --certificate-id {cert} --new-status INACTIVE)"
    ))
}
