//! In-memory stand-ins for the action traits: the handler's tests, the fuzz targets and the
//! benchmarks act through these where they do not need the wire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use violation_core::{
    Action, AuditFindingFields, AuditFindingId, AuditTaskId, CertificateId, ThingName,
};

use crate::action::{
    ActionError, ActiveViolations, Applied, AuditFindings, CertificateThings, FanOut, FindingsPage,
    MitigationAction, Retry,
};

/// Which things fail, and how.
pub type FailureRule = Box<dyn Fn(&ThingName) -> Option<Retry> + Send + Sync>;

/// One call an in-memory action received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub action: Action,
    pub thing: String,
}

/// A mitigation that records its calls, fails the things its rule names (retryable
/// failures as `ThrottlingException`, permanent ones as `ResourceNotFoundException`), and
/// measures how many calls were in flight at once.
pub struct ScriptedAction {
    name: &'static str,
    fails: FailureRule,
    only_for: Option<Action>,
    delay: Duration,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScriptedAction {
    /// An action that always succeeds.
    pub fn new(name: &'static str) -> Self {
        ScriptedAction {
            name,
            fails: Box::new(|_| None),
            only_for: None,
            delay: Duration::ZERO,
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Fail the things `rule` names.
    pub fn failing_when(
        mut self,
        rule: impl Fn(&ThingName) -> Option<Retry> + Send + Sync + 'static,
    ) -> Self {
        self.fails = Box::new(rule);
        self
    }

    /// Fail exactly these things.
    pub fn failing(self, things: &[(&str, Retry)]) -> Self {
        let table: HashMap<String, Retry> =
            things.iter().map(|(t, r)| ((*t).to_owned(), *r)).collect();
        self.failing_when(move |thing| table.get(thing.as_str()).copied())
    }

    /// Perform only `action` (as a disconnect performs only quarantines).
    pub fn only_for(mut self, action: Action) -> Self {
        self.only_for = Some(action);
        self
    }

    /// Take this long per call.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The most calls that were in flight at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// The error a scripted failure reports.
pub fn scripted_error(operation: &'static str, thing: &ThingName, retry: Retry) -> ActionError {
    let code = match retry {
        Retry::Retryable => "ThrottlingException",
        Retry::Permanent => "ResourceNotFoundException",
    };
    ActionError::new(
        operation,
        thing.to_string(),
        retry,
        code,
        "scripted failure",
    )
}

impl MitigationAction for ScriptedAction {
    fn name(&self) -> &'static str {
        self.name
    }

    fn performs(&self, action: Action) -> bool {
        self.only_for.is_none_or(|only| only == action)
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            lock(&self.calls).push(Call {
                action,
                thing: thing.to_string(),
            });
            match (self.fails)(thing) {
                None => Ok(Applied::Done),
                Some(retry) => Err(scripted_error("ScriptedOperation", thing, retry)),
            }
        })
    }
}

/// Active violations from a table; things the rule names fail the lookup.
#[derive(Default)]
pub struct ScriptedViolations {
    active: HashMap<String, Vec<String>>,
    failing: HashMap<String, Retry>,
}

impl ScriptedViolations {
    pub fn new<I, S>(active: I) -> Self
    where
        I: IntoIterator<Item = (S, Vec<String>)>,
        S: Into<String>,
    {
        ScriptedViolations {
            active: active.into_iter().map(|(t, ids)| (t.into(), ids)).collect(),
            failing: HashMap::new(),
        }
    }

    /// Fail the lookup for `thing`.
    pub fn failing_for(mut self, thing: &str, retry: Retry) -> Self {
        self.failing.insert(thing.to_owned(), retry);
        self
    }
}

impl ActiveViolations for ScriptedViolations {
    fn active_violation_ids<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            match self.failing.get(thing.as_str()) {
                Some(retry) => Err(scripted_error("ListActiveViolations", thing, *retry)),
                None => Ok(self.active.get(thing.as_str()).cloned().unwrap_or_default()),
            }
        })
    }
}

/// Certificates and audit findings from tables: which things each certificate is attached
/// to, and each audit task's findings by check, served in pages of `page_size`.
#[derive(Default)]
pub struct ScriptedDirectory {
    certificates: HashMap<String, Vec<String>>,
    findings: HashMap<(String, String), Vec<AuditFindingFields>>,
    page_size: usize,
    pages_served: AtomicUsize,
}

impl ScriptedDirectory {
    pub fn new(page_size: usize) -> Self {
        ScriptedDirectory {
            page_size: page_size.max(1),
            ..Default::default()
        }
    }

    pub fn certificate(mut self, id: &str, things: &[&str]) -> Self {
        let things = things.iter().map(|t| (*t).to_owned()).collect();
        self.certificates.insert(id.to_owned(), things);
        self
    }

    pub fn findings(mut self, task: &str, check: &str, findings: Vec<AuditFindingFields>) -> Self {
        self.findings
            .insert((task.to_owned(), check.to_owned()), findings);
        self
    }

    /// ListAuditFindings pages served so far.
    pub fn pages_served(&self) -> usize {
        self.pages_served.load(Ordering::SeqCst)
    }
}

impl CertificateThings for ScriptedDirectory {
    fn things_of<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            Ok(self
                .certificates
                .get(certificate.as_str())
                .cloned()
                .unwrap_or_default())
        })
    }
}

impl AuditFindings for ScriptedDirectory {
    fn list_findings<'a>(
        &'a self,
        task: &'a AuditTaskId,
        check: &'a str,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<FindingsPage, ActionError>> {
        Box::pin(async move {
            self.pages_served.fetch_add(1, Ordering::SeqCst);
            let all = self
                .findings
                .get(&(task.to_string(), check.to_owned()))
                .map_or(&[][..], Vec::as_slice);
            let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + self.page_size).min(all.len());
            Ok(FindingsPage {
                findings: all.get(start..end).unwrap_or_default().to_vec(),
                next_token: (end < all.len()).then(|| end.to_string()),
            })
        })
    }

    fn describe_finding<'a>(
        &'a self,
        finding: &'a AuditFindingId,
    ) -> BoxFuture<'a, Result<AuditFindingFields, ActionError>> {
        Box::pin(async move {
            self.findings
                .values()
                .flatten()
                .find(|f| f.finding_id.as_deref() == Some(finding.as_str()))
                .cloned()
                .ok_or_else(|| {
                    ActionError::permanent(
                        "DescribeAuditFinding",
                        format!("finding {finding}"),
                        "ResourceNotFoundException",
                        "no such finding",
                    )
                })
        })
    }
}

/// Keeps what is fanned out, in order; fails while `failures_left` is above zero.
#[derive(Default)]
pub struct ScriptedFanOut {
    sent: Mutex<Vec<String>>,
    failures_left: AtomicUsize,
}

impl ScriptedFanOut {
    /// Fail the next `n` sends.
    pub fn failing(n: usize) -> Self {
        ScriptedFanOut {
            failures_left: AtomicUsize::new(n),
            ..Default::default()
        }
    }

    pub fn sent(&self) -> Vec<String> {
        lock(&self.sent).clone()
    }
}

impl FanOut for ScriptedFanOut {
    fn send<'a>(&'a self, alerts: &'a [String]) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let failing = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Err(ActionError::retryable(
                    "SendMessageBatch",
                    "fan-out queue",
                    "ThrottlingException",
                    "scripted failure",
                ));
            }
            lock(&self.sent).extend(alerts.iter().cloned());
            Ok(())
        })
    }
}
pub use crate::ledger::memory::MemoryLedger;
