//! The batch handler shared by the functions, replay and quarantinectl: decode the event,
//! decide every record (in [`violation_core`]), act on the decisions through
//! [`MitigationAction`]s, and answer Lambda ([`crate::answer`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{self, StreamExt};
use serde_json::Value;
use tracing::Instrument;
use violation_core::{
    Action, DecisionPolicy, EventError, ThingName, Verdict, decide_event, decode_event,
};

use crate::action::{
    ActionError, ActiveViolations, Applied, AuditFindings, CertificateThings, FanOut,
    GroupMembership, KeptBecause, MitigationAction, Retry,
};
use crate::answer::{EventReport, InvocationFailure, LambdaAnswer};
use crate::function::FunctionKind;
use crate::ledger::Ledger;
use crate::metrics::{Figures, MetricsSink};
use crate::report::{
    ActionOutcome, ActionReport, Mitigation, RecordOutcome, RecordReport, log_record,
    record_mitigation,
};
use crate::targets::{Resolution, Resolved, Resolver, Target};
use crate::trust::{ProtectedThings, ReleaseSources};

mod drift;
mod ledger_flow;

/// The label of the check before a release in action reports.
pub const ACTIVE_VIOLATIONS_CHECK: &str = "active-violations";
/// The label of work not started because the invocation's deadline was near, in action
/// reports.
pub const DEADLINE_STEP: &str = "deadline";

/// With the ledger, a record naming more subjects than this is still rejected rather than
/// held: holding it would write a cause per thing, more than one invocation should.
pub const HELD_RECORD_CEILING: usize = 10_000;

/// Work not started this close to the invocation's deadline is handed back for a retry
/// (an audit with thousands of findings may not fit in one invocation).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// When the invocation must have answered (Lambda's deadline), if there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(pub Option<SystemTime>);

impl Deadline {
    /// No deadline: replay, quarantinectl, tests.
    pub const NONE: Deadline = Deadline(None);

    /// Too close to the deadline to start another call.
    fn near(self) -> bool {
        self.0.is_some_and(|at| {
            at.duration_since(SystemTime::now())
                .map_or(true, |left| left < DEADLINE_MARGIN)
        })
    }
}

fn deadline_error(thing: &ThingName) -> ActionError {
    ActionError::retryable(
        "Invocation",
        thing.to_string(),
        "DeadlineNear",
        "the invocation's time ran out before this thing was acted on",
    )
    .with_hint(
        "the record is handed back and retried; what was done is done again harmlessly (every action is idempotent)",
    )
}

/// Decides and acts on events. Built once per process; cheap to share.
pub struct Handler {
    policy: DecisionPolicy,
    actions: Vec<Arc<dyn MitigationAction>>,
    active_violations: Option<Arc<dyn ActiveViolations>>,
    /// Drift: asked before a thing is put back in the group.
    membership: Option<Arc<dyn GroupMembership>>,
    certificates: Option<Arc<dyn CertificateThings>>,
    audit: Option<Arc<dyn AuditFindings>>,
    fan_out: Option<Arc<dyn FanOut>>,
    verify_violation: bool,
    dry_run: bool,
    max_concurrency: usize,
    metrics: Option<MetricsSink>,
    release_sources: Option<ReleaseSources>,
    protected: ProtectedThings,
    ledger: Option<LedgerUse>,
    /// `MAX_THINGS_PER_RECORD` (with the ledger).
    max_things_per_record: usize,
    /// `quarantinectl quarantine --force`: quarantine a thing protected in the ledger.
    override_protection: bool,
}

/// The ledger a function acts from, and its own place in it.
struct LedgerUse {
    ledger: Arc<dyn Ledger>,
    function: FunctionKind,
    /// `MIN_QUARANTINE_MINUTES`, in milliseconds.
    min_quarantine_ms: i64,
    /// Now, in epoch milliseconds (tests set their own).
    clock: fn() -> i64,
    /// The blast-radius budget, when one is set.
    budget: Option<crate::ledger::Budget>,
}

/// What one invocation's work needs to know besides its records.
#[derive(Debug, Clone, Copy)]
struct Invocation<'a> {
    deadline: Deadline,
    /// The Lambda request id, empty outside Lambda.
    request_id: &'a str,
}

/// One call the batch needs: an action on a thing, shared by every record that asks for it.
struct Work<'a> {
    target: &'a Target,
    /// Indexes of the records asking for it.
    members: Vec<usize>,
}

/// The calls of one batch, one per (action, thing).
struct BatchPlan<'a> {
    work: Vec<Work<'a>>,
    slot: HashMap<&'a Target, usize>,
}

impl<'a> BatchPlan<'a> {
    fn new(resolved: &'a [Resolved]) -> Self {
        let mut plan = BatchPlan {
            work: Vec::new(),
            slot: HashMap::new(),
        };
        for (i, r) in resolved.iter().enumerate() {
            for target in targets(&r.resolution) {
                let at = *plan.slot.entry(target).or_insert_with(|| {
                    plan.work.push(Work {
                        target,
                        members: Vec::new(),
                    });
                    plan.work.len() - 1
                });
                plan.work[at].members.push(i);
            }
        }
        plan
    }

    /// A thing that one record quarantines is not released by another record of the same
    /// batch (delivery order is not guaranteed): quarantine wins. The alarms that keep it.
    fn quarantined_by(&self, thing: &ThingName, verdicts: &[Verdict]) -> Option<Vec<String>> {
        let quarantine = Target {
            action: Action::Quarantine,
            thing: thing.clone(),
        };
        let at = *self.slot.get(&quarantine)?;
        Some(
            self.work[at]
                .members
                .iter()
                .map(|&i| alarm_id(&verdicts[i]).to_owned())
                .collect(),
        )
    }
}

/// The things a resolution acts on (or, in a dry run, would).
fn targets(resolution: &Resolution) -> &[Target] {
    match resolution {
        Resolution::Act(targets) | Resolution::Planned(targets) => targets,
        _ => &[],
    }
}

/// The violation id, or the record id for a record that has none.
fn alarm_id(verdict: &Verdict) -> &str {
    verdict
        .facts
        .violation_id
        .as_deref()
        .unwrap_or(&verdict.record_id)
}

impl Handler {
    pub fn new(policy: DecisionPolicy, actions: Vec<Arc<dyn MitigationAction>>) -> Self {
        Handler {
            policy,
            actions,
            active_violations: None,
            membership: None,
            certificates: None,
            audit: None,
            fan_out: None,
            verify_violation: false,
            dry_run: false,
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
            metrics: None,
            release_sources: None,
            protected: ProtectedThings::default(),
            ledger: None,
            max_things_per_record: usize::MAX,
            override_protection: false,
        }
    }

    /// Quarantine things protected in the ledger (`quarantinectl protect`) all the same: the
    /// operator's `quarantine --force`.
    pub fn with_override_protection(mut self, force: bool) -> Self {
        self.override_protection = force;
        self
    }

    /// With the ledger: a record naming more things than this has its quarantines held, not
    /// carried out (`MAX_THINGS_PER_RECORD`). The decision then rejects only records beyond
    /// [`HELD_RECORD_CEILING`] (or `max`, if larger), instead of every record beyond `max`.
    pub fn with_max_things_per_record(mut self, max: usize) -> Self {
        self.max_things_per_record = max;
        self.policy.max_things_per_record = max.max(HELD_RECORD_CEILING);
        self
    }

    /// Act from the quarantine ledger (`LEDGER_TABLE`) as `function`: each record changes
    /// the thing's causes, then the function's mitigation is brought in line with them. A
    /// clear less than `min_quarantine` after its cause was recorded does not release.
    pub fn with_ledger(
        mut self,
        ledger: Arc<dyn Ledger>,
        function: FunctionKind,
        min_quarantine: Duration,
    ) -> Self {
        self.ledger = Some(LedgerUse {
            ledger,
            function,
            min_quarantine_ms: min_quarantine.as_millis() as i64,
            clock: crate::ledger::time::now_millis,
            budget: None,
        });
        self
    }

    /// With the ledger: at most `budget.max_new` things go from free to quarantined per
    /// window; beyond, records are held.
    pub fn with_budget(mut self, budget: crate::ledger::Budget) -> Self {
        if let Some(ledger) = &mut self.ledger {
            ledger.budget = Some(budget);
        }
        self
    }

    /// The ledger's clock (tests).
    pub fn with_ledger_clock(mut self, clock: fn() -> i64) -> Self {
        if let Some(ledger) = &mut self.ledger {
            ledger.clock = clock;
        }
        self
    }

    /// `RELEASE_SOURCES`: a release request from any other source is refused. Set by the
    /// functions and replay; quarantinectl, the operator's own path, does not screen.
    pub fn with_release_sources(mut self, sources: ReleaseSources) -> Self {
        self.release_sources = Some(sources);
        self
    }

    /// `PROTECTED_THINGS`: these things are kept, never quarantined.
    pub fn with_protected_things(mut self, protected: ProtectedThings) -> Self {
        self.protected = protected;
        self
    }

    /// Drift: check that a thing is really out of the quarantine group before putting it
    /// back, so a duplicate or late REMOVED event does nothing.
    pub fn with_group_membership(mut self, membership: Arc<dyn GroupMembership>) -> Self {
        self.membership = Some(membership);
        self
    }

    /// Check the thing's other active violations before a release (and, with
    /// [`Handler::with_verify_violation`], before a quarantine).
    pub fn with_active_violations(mut self, source: Arc<dyn ActiveViolations>) -> Self {
        self.active_violations = Some(source);
        self
    }

    /// Resolve certificate subjects to their things.
    pub fn with_certificate_things(mut self, lookup: Arc<dyn CertificateThings>) -> Self {
        self.certificates = Some(lookup);
        self
    }

    /// Expand audit tasks into their findings and look up published findings.
    pub fn with_audit_findings(mut self, audit: Arc<dyn AuditFindings>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Fan an audit's devices out as mitigation requests of their own (`FANOUT_QUEUE_URL`)
    /// instead of mitigating them all within the invocation.
    pub fn with_fan_out(mut self, fan_out: Arc<dyn FanOut>) -> Self {
        self.fan_out = Some(fan_out);
        self
    }

    /// `VERIFY_VIOLATION`: quarantine on a Detect in-alarm only when ListActiveViolations
    /// lists the violation for the thing (needs [`Handler::with_active_violations`]).
    pub fn with_verify_violation(mut self, verify: bool) -> Self {
        self.verify_violation = verify;
        self
    }

    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Write each invocation's figures as an EMF document (the functions do; replay and
    /// quarantinectl do not).
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = Some(sink);
        self
    }

    /// Handle an event with no deadline, log every record, answer.
    pub async fn handle_lambda(&self, event: Value) -> Result<LambdaAnswer, InvocationFailure> {
        self.handle_invocation(event, Deadline::NONE).await
    }

    /// The Lambda entry point: handle before `deadline`, log every record, answer.
    pub async fn handle_invocation(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> Result<LambdaAnswer, InvocationFailure> {
        self.handle_request(event, deadline, "").await
    }

    /// [`Handler::handle_invocation`] naming the Lambda request, which the ledger's history
    /// records.
    pub async fn handle_request(
        &self,
        event: Value,
        deadline: Deadline,
        request_id: &str,
    ) -> Result<LambdaAnswer, InvocationFailure> {
        let invocation = Invocation {
            deadline,
            request_id,
        };
        match self.decide_and_act(&event, invocation).await {
            Ok(report) => {
                report.records.iter().for_each(log_record);
                if let Some(sink) = &self.metrics {
                    sink.emit(&Figures::of(&report));
                }
                report.into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, error_type = "Permanent.NotAViolationEvent", "event rejected");
                if let Some(sink) = &self.metrics {
                    sink.emit(&Figures::rejected_event());
                }
                Err(InvocationFailure::Event(e))
            }
        }
    }

    /// Decode, decide and act on one event.
    pub async fn handle(&self, event: &Value) -> Result<EventReport, EventError> {
        self.handle_until(event, Deadline::NONE).await
    }

    /// Decode, decide and act on one event; work not started before the deadline fails
    /// retryably.
    pub async fn handle_until(
        &self,
        event: &Value,
        deadline: Deadline,
    ) -> Result<EventReport, EventError> {
        let invocation = Invocation {
            deadline,
            request_id: "",
        };
        self.decide_and_act(event, invocation).await
    }

    async fn decide_and_act(
        &self,
        event: &Value,
        invocation: Invocation<'_>,
    ) -> Result<EventReport, EventError> {
        let decoded = decode_event(event)?;
        let verdicts = decide_event(&decoded, &self.policy);
        Ok(EventReport {
            trigger: decoded.trigger,
            records: self.execute(verdicts, invocation).await,
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        let live = !self.dry_run;
        Resolver {
            policy: &self.policy,
            certificates: self.certificates.as_deref().filter(|_| live),
            audit: self.audit.as_deref().filter(|_| live),
            verify: self
                .active_violations
                .as_deref()
                .filter(|_| live && self.verify_violation),
            fan_out: self.fan_out.as_deref().filter(|_| live),
            concurrency: self.max_concurrency,
        }
    }

    /// Act on decided records. Each record's subjects are resolved to things first; then
    /// every (action, thing) of the batch gets one call however many records ask for it,
    /// at most `max_concurrency` at once, each in a span naming the record and thing.
    async fn execute(
        &self,
        verdicts: Vec<Verdict>,
        invocation: Invocation<'_>,
    ) -> Vec<RecordReport> {
        let verdicts: Vec<Verdict> = match &self.release_sources {
            Some(sources) => verdicts.into_iter().map(|v| sources.screen(v)).collect(),
            None => verdicts,
        };
        let resolver = self.resolver();
        let resolved: Vec<Resolved> = stream::iter(verdicts.iter())
            .map(|v| resolver.resolve(v))
            .buffered(self.max_concurrency)
            .collect()
            .await;
        let plan = BatchPlan::new(&resolved);
        let done: HashMap<&Target, Mitigation> =
            match self.ledger.as_ref().filter(|_| !self.dry_run) {
                Some(ledger) => {
                    self.record_refusals(ledger, &verdicts, invocation).await;
                    let sizes: Vec<usize> = resolved
                        .iter()
                        .map(|r| targets(&r.resolution).len())
                        .collect();
                    self.run_from_ledger(ledger, &plan, &verdicts, &sizes, invocation)
                        .await
                }
                None => {
                    stream::iter(plan.work.iter())
                        .map(|work| self.run_work(work, &plan, &verdicts, invocation.deadline))
                        .buffered(self.max_concurrency)
                        .collect()
                        .await
                }
            };
        let reports: Vec<Mitigation> = resolved
            .iter()
            .map(|r| record_mitigation(&r.resolution, &done))
            .collect();
        let mut reports: Vec<RecordReport> = verdicts
            .into_iter()
            .zip(resolved.iter().zip(reports))
            .map(|(verdict, (r, mitigation))| {
                RecordReport::new(verdict, mitigation)
                    .with_resolution(targets(&r.resolution), r.notes.clone())
            })
            .collect();
        self.put_back_drifted(&mut reports, invocation).await;
        reports
    }

    /// One (action, thing) of the batch, in a span naming its first record.
    async fn run_work<'w>(
        &self,
        work: &Work<'w>,
        plan: &BatchPlan<'w>,
        verdicts: &[Verdict],
        deadline: Deadline,
    ) -> (&'w Target, Mitigation) {
        let Target { action, thing } = work.target;
        let first = work.members.first().map(|&i| &verdicts[i]);
        let span = tracing::info_span!(
            "record",
            record_id = first.map_or("", |v| v.record_id.as_str()),
            thing = %thing,
            action = action.as_str(),
            records = work.members.len(),
        );
        let kept = match action {
            Action::Release => plan
                .quarantined_by(thing, verdicts)
                .map(|held_by| (KeptBecause::QuarantinedInBatch, held_by)),
            Action::Quarantine => self.protected.protecting(thing).map(|pattern| {
                (
                    KeptBecause::Protected,
                    vec![format!("PROTECTED_THINGS: {pattern}")],
                )
            }),
        };
        let own: Vec<&str> = work
            .members
            .iter()
            .filter_map(|&i| verdicts[i].facts.violation_id.as_deref())
            .collect();
        let mitigation = async {
            match kept {
                Some((because, held_by)) => {
                    Mitigation::without_calls(RecordOutcome::Kept { because, held_by })
                }
                None if deadline.near() => Mitigation {
                    actions: vec![ActionReport {
                        action: DEADLINE_STEP,
                        thing: thing.to_string(),
                        outcome: ActionOutcome::Failed(deadline_error(thing)),
                    }],
                    ..Mitigation::without_calls(RecordOutcome::Failed {
                        retry: Retry::Retryable,
                    })
                },
                None => self.mitigate(*action, thing, &own).await,
            }
        }
        .instrument(span)
        .await;
        (work.target, mitigation)
    }

    /// One action on one thing: every configured mitigation, after the release check.
    async fn mitigate(&self, action: Action, thing: &ThingName, own: &[&str]) -> Mitigation {
        let started = Instant::now();
        let mut mitigation = if self.dry_run {
            self.planned(action, thing)
        } else {
            match self.release_check(action, thing, own).await {
                Some(stop) => stop,
                None => self.apply_all(action, thing).await,
            }
        };
        mitigation.duration = started.elapsed();
        mitigation
    }

    /// What a dry run reports: every action, none called.
    fn planned(&self, action: Action, thing: &ThingName) -> Mitigation {
        Mitigation {
            actions: self
                .actions
                .iter()
                .filter(|a| a.performs(action))
                .map(|a| ActionReport {
                    action: a.name(),
                    thing: thing.to_string(),
                    outcome: ActionOutcome::DryRun,
                })
                .collect(),
            ..Mitigation::without_calls(RecordOutcome::DryRun)
        }
    }

    /// Before a release: a thing that still has other active violations is kept. `None`
    /// when the release may go ahead.
    async fn release_check(
        &self,
        action: Action,
        thing: &ThingName,
        own: &[&str],
    ) -> Option<Mitigation> {
        let source = match (action, &self.active_violations) {
            (Action::Release, Some(source)) => source,
            _ => return None,
        };
        match source.active_violation_ids(thing).await {
            Ok(ids) => {
                let others: Vec<String> = ids
                    .into_iter()
                    .filter(|id| !own.contains(&id.as_str()))
                    .collect();
                (!others.is_empty()).then(|| {
                    Mitigation::without_calls(RecordOutcome::Kept {
                        because: KeptBecause::ActiveViolations,
                        held_by: others,
                    })
                })
            }
            Err(e) => Some(Mitigation {
                outcome: RecordOutcome::Failed { retry: e.retry },
                actions: vec![ActionReport {
                    action: ACTIVE_VIOLATIONS_CHECK,
                    thing: thing.to_string(),
                    outcome: ActionOutcome::Failed(e),
                }],
                ..Mitigation::without_calls(RecordOutcome::Done)
            }),
        }
    }

    /// The configured actions in order (a disconnect follows the group change it makes
    /// effective). The first failure stops the rest: they run when the record is retried.
    async fn apply_all(&self, action: Action, thing: &ThingName) -> Mitigation {
        let mut actions = Vec::new();
        for mitigation in self.actions.iter().filter(|a| a.performs(action)) {
            let outcome = match mitigation.apply(action, thing).await {
                Ok(Applied::Done) => ActionOutcome::Done,
                Ok(Applied::Kept { because, held_by }) => ActionOutcome::Kept { because, held_by },
                Ok(Applied::DoneKeeping { because, held_by }) => {
                    ActionOutcome::DoneKeeping { because, held_by }
                }
                Err(e) => ActionOutcome::Failed(e),
            };
            let stop = matches!(outcome, ActionOutcome::Failed(_));
            actions.push(ActionReport {
                action: mitigation.name(),
                thing: thing.to_string(),
                outcome,
            });
            if stop {
                break;
            }
        }
        let kept = actions.iter().find_map(|r| match &r.outcome {
            ActionOutcome::Kept { because, held_by } => Some(RecordOutcome::Kept {
                because: *because,
                held_by: held_by.clone(),
            }),
            _ => None,
        });
        let outcome = match actions.last().map(|r| &r.outcome) {
            Some(ActionOutcome::Failed(e)) => RecordOutcome::Failed { retry: e.retry },
            _ => kept.unwrap_or(RecordOutcome::Done),
        };
        Mitigation {
            actions,
            ..Mitigation::without_calls(outcome)
        }
    }
}
