//! The handler acting from the ledger: per thing, every record of the batch changes the
//! thing's causes, then the function's mitigation is reconciled with them once, and each
//! record's history entry is written with the outcome.

use std::collections::HashMap;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use tracing::Instrument;
use violation_core::{Action, Decision, RejectReason, ThingName, Verdict};

use super::{BatchPlan, DEADLINE_STEP, Handler, Invocation, LedgerUse, Work, deadline_error};
use crate::action::{ActionError, KeptBecause, Retry};
use crate::function::FunctionKind;
use crate::ledger::{
    Arrival, CauseOutcome, Claim, FunctionState, HistoryEntry, Refused, Settled, change_of,
};
use crate::report::{ActionOutcome, ActionReport, Mitigation, RecordOutcome, first_failure};
use crate::targets::Target;

/// Reconciliation rounds before a record gives up to concurrent changes (and is retried).
const MAX_ROUNDS: usize = 5;

/// The label of a failed ledger call in action reports.
pub const LEDGER_STEP: &str = "ledger";

/// One record's part in a thing's round: what it asked and what became of its cause.
struct Asked<'v> {
    verdict: &'v Verdict,
    action: Action,
    cause_id: String,
    cause: CauseOutcome,
}

/// The history entries of a round, from the state and the calls made (and whether they
/// failed).
type HistoryOf<'a> =
    dyn Fn(&FunctionState, &[ActionReport], Option<&'static str>) -> Vec<HistoryEntry> + Sync + 'a;

/// What stops a free thing from being quarantined in a round.
#[derive(Clone, Copy)]
struct Stops<'a> {
    /// A record asking for it names too many things (why).
    oversized: Option<&'a str>,
    /// The thing is protected (the environment or the ledger), and nobody forces it.
    protected: bool,
}

/// Whether a quarantine may go ahead.
enum Claimed {
    Go,
    /// Held: by the budget or the size of a record (why).
    Held(String),
    /// Protected: kept as it is.
    Kept,
}

/// What the reconciliation did: the calls made, and how it ended.
struct Reconciled {
    state: FunctionState,
    actions: Vec<ActionReport>,
    failure: Option<ActionError>,
    /// The budget is spent: the quarantine was not carried out (why).
    held: Option<String>,
}

impl Handler {
    /// Every thing of the batch, at most `max_concurrency` at once.
    pub(super) async fn run_from_ledger<'w>(
        &self,
        ledger: &LedgerUse,
        plan: &BatchPlan<'w>,
        verdicts: &[Verdict],
        sizes: &[usize],
        invocation: Invocation<'_>,
    ) -> HashMap<&'w Target, Mitigation> {
        let mut things: Vec<(&ThingName, Vec<&Work<'w>>)> = Vec::new();
        let mut slot: HashMap<&ThingName, usize> = HashMap::new();
        for work in &plan.work {
            let at = *slot.entry(&work.target.thing).or_insert_with(|| {
                things.push((&work.target.thing, Vec::new()));
                things.len() - 1
            });
            things[at].1.push(work);
        }
        stream::iter(things)
            .map(|(thing, works)| {
                let oversized = self.oversized(&works, verdicts, sizes);
                self.thing_round(ledger, thing, works, verdicts, oversized, invocation)
            })
            .buffered(self.max_concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Release requests refused by `RELEASE_SOURCES` go into the thing's history too: who
    /// tried to release it, and how. A history that cannot be written is logged; the record
    /// is refused either way.
    pub(super) async fn record_refusals(
        &self,
        ledger: &LedgerUse,
        verdicts: &[Verdict],
        invocation: Invocation<'_>,
    ) {
        for verdict in verdicts {
            let Decision::Reject(RejectReason::ReleaseNotAllowed { sender }) = &verdict.decision
            else {
                continue;
            };
            let Some(thing) = verdict
                .facts
                .thing_name
                .as_deref()
                .and_then(|n| ThingName::parse(n).ok())
            else {
                continue;
            };
            let entry = HistoryEntry {
                asked: Action::Release.as_str(),
                outcome: "rejected".to_owned(),
                caller: sender.clone(),
                ..record_entry(verdict, invocation, ledger.function, (ledger.clock)())
            };
            if let Err(e) = ledger.ledger.append(&thing, &[entry]).await {
                tracing::warn!(thing = %thing, error = %e, "history of a refused release not written");
            }
        }
    }

    /// `MAX_THINGS_PER_RECORD`: why a quarantine of this thing is held when one of the
    /// records asking for it names too many things.
    fn oversized(
        &self,
        works: &[&Work<'_>],
        verdicts: &[Verdict],
        sizes: &[usize],
    ) -> Option<String> {
        let max = self.max_things_per_record;
        works
            .iter()
            .filter(|w| w.target.action == Action::Quarantine)
            .flat_map(|w| w.members.iter())
            .find(|&&i| sizes[i] > max)
            .map(|&i| {
                format!(
                    "MAX_THINGS_PER_RECORD: record {} names {} things (at most {max} are acted on automatically)",
                    verdicts[i].record_id, sizes[i]
                )
            })
    }

    /// One thing: record every cause change, reconcile, report each (action, thing).
    async fn thing_round<'w>(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        works: Vec<&Work<'w>>,
        verdicts: &[Verdict],
        oversized: Option<String>,
        invocation: Invocation<'_>,
    ) -> Vec<(&'w Target, Mitigation)> {
        let span = tracing::info_span!(
            "thing",
            thing = %thing,
            records = works.iter().map(|w| w.members.len()).sum::<usize>(),
        );
        async {
            let started = Instant::now();
            let mut results = if invocation.deadline.near() {
                let failed = failed(vec![], deadline_error(thing), DEADLINE_STEP, thing);
                works.iter().map(|w| (w.target, failed.clone())).collect()
            } else {
                self.round(ledger, thing, &works, verdicts, oversized, invocation)
                    .await
            };
            for (_, mitigation) in &mut results {
                mitigation.duration = started.elapsed();
            }
            results
        }
        .instrument(span)
        .await
    }

    async fn round<'w>(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        works: &[&Work<'w>],
        verdicts: &[Verdict],
        oversized: Option<String>,
        invocation: Invocation<'_>,
    ) -> Vec<(&'w Target, Mitigation)> {
        let now = (ledger.clock)();
        let arrival = Arrival {
            now,
            min_quarantine_ms: ledger.min_quarantine_ms,
            request_id: invocation.request_id,
        };
        let mut protected = self
            .protected
            .protecting(thing)
            .map(|pattern| format!("PROTECTED_THINGS: {pattern}"));
        let (asked, state) = match self
            .record_all(ledger, thing, works, verdicts, arrival, protected.is_some())
            .await
        {
            Ok(recorded) => recorded,
            Err(e) => {
                let failure = failed(vec![], e, LEDGER_STEP, thing);
                return works.iter().map(|w| (w.target, failure.clone())).collect();
            }
        };
        // Protected in the ledger (quarantinectl protect): the causes are recorded, the
        // quarantine is not carried out unless the operator forces it.
        if protected.is_none() && !self.override_protection {
            protected = state.as_ref().and_then(|s| s.protected.clone());
        }
        let history =
            |state: &FunctionState, actions: &[ActionReport], ended: Option<&'static str>| {
                let round = Round {
                    ledger,
                    protected: protected.as_deref(),
                    now,
                    invocation,
                };
                round.history(&asked, state, actions, ended)
            };
        let reconciled = match state {
            Some(state) => {
                let stops = Stops {
                    oversized: oversized.as_deref(),
                    protected: protected.is_some(),
                };
                self.reconcile(ledger, thing, state, stops, &history).await
            }
            // Only protected quarantines: nothing recorded, nothing to reconcile.
            None => {
                let state = FunctionState::default();
                let entries = history(&state, &[], None);
                let failure = ledger.ledger.append(thing, &entries).await.err();
                Reconciled {
                    state,
                    actions: Vec::new(),
                    failure,
                    held: None,
                }
            }
        };
        works
            .iter()
            .map(|w| {
                let mitigation = match (&reconciled.failure, &reconciled.held) {
                    (Some(e), _) => {
                        failed(reconciled.actions.clone(), e.clone(), LEDGER_STEP, thing)
                    }
                    (None, Some(reason)) if w.target.action == Action::Quarantine => {
                        Mitigation::without_calls(RecordOutcome::Held {
                            reason: reason.clone(),
                        })
                    }
                    (None, _) => {
                        let too_soon = asked.iter().any(|a| {
                            a.action == w.target.action && a.cause == CauseOutcome::TooSoon
                        });
                        let outcome = work_outcome(
                            w.target.action,
                            &reconciled.state,
                            protected.as_deref(),
                            too_soon,
                        );
                        Mitigation {
                            actions: reconciled.actions.clone(),
                            ..Mitigation::without_calls(outcome)
                        }
                    }
                };
                (w.target, mitigation)
            })
            .collect()
    }

    /// Every record's cause change, in turn (a protected thing's quarantines are not
    /// recorded): what each asked and came to, and the state after the last.
    async fn record_all<'v>(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        works: &[&Work<'_>],
        verdicts: &'v [Verdict],
        arrival: Arrival<'_>,
        protected: bool,
    ) -> Result<(Vec<Asked<'v>>, Option<FunctionState>), ActionError> {
        let mut asked = Vec::new();
        let mut state = None;
        for work in works {
            let action = work.target.action;
            for &i in &work.members {
                let verdict = &verdicts[i];
                let change = change_of(verdict, action, thing, arrival);
                let cause_id = change.cause_id().unwrap_or("*").to_owned();
                let cause = if action == Action::Quarantine && protected {
                    CauseOutcome::NotRecorded
                } else {
                    let recorded = ledger
                        .ledger
                        .record(thing, ledger.function, &change)
                        .await?;
                    state = Some(recorded.state);
                    match recorded.refused {
                        None => CauseOutcome::Recorded,
                        Some(Refused::Duplicate) => CauseOutcome::Duplicate,
                        Some(Refused::Stale) => CauseOutcome::Stale,
                        Some(Refused::TooSoon) => CauseOutcome::TooSoon,
                    }
                };
                asked.push(Asked {
                    verdict,
                    action,
                    cause_id,
                    cause,
                });
            }
        }
        Ok((asked, state))
    }

    /// Bring the function's mitigation in line with the causes: act when they disagree with
    /// what is in force, then write `applied` if the causes have not changed meanwhile
    /// (else read them again and go round). A failed action leaves `applied` as it was, so
    /// the record's redelivery acts again.
    async fn reconcile(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        mut state: FunctionState,
        stops: Stops<'_>,
        history: &HistoryOf<'_>,
    ) -> Reconciled {
        let mut actual = state.applied;
        let mut actions: Vec<ActionReport> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let desired = state.desired();
            if desired != actual {
                let action = if desired {
                    Action::Quarantine
                } else {
                    Action::Release
                };
                if desired && !state.applied {
                    match self
                        .claim(ledger, thing, &state, &actions, stops, history)
                        .await
                    {
                        Ok(Claimed::Go) => {}
                        Ok(Claimed::Held(reason)) => {
                            return Reconciled {
                                state,
                                actions,
                                failure: None,
                                held: Some(reason),
                            };
                        }
                        Ok(Claimed::Kept) => {
                            return Reconciled {
                                state,
                                actions,
                                failure: None,
                                held: None,
                            };
                        }
                        Err(e) => {
                            return Reconciled {
                                state,
                                actions,
                                failure: Some(e),
                                held: None,
                            };
                        }
                    }
                }
                let done = self.apply_all(action, thing).await;
                let failure = first_failure(&done.actions);
                actions.extend(done.actions);
                match failure {
                    None => actual = desired,
                    Some(e) => match self
                        .after_failure(ledger, thing, &state, actual, &actions, history)
                        .await
                    {
                        Some(read) => {
                            state = read;
                            continue;
                        }
                        None => {
                            return Reconciled {
                                state,
                                actions,
                                failure: Some(e),
                                held: None,
                            };
                        }
                    },
                }
            }
            let entries = history(&state, &actions, None);
            let written = if actual == state.applied {
                ledger
                    .ledger
                    .append(thing, &entries)
                    .await
                    .map(|()| Settled::Won)
            } else {
                ledger
                    .ledger
                    .settle(thing, ledger.function, actual, state.version, &entries)
                    .await
            };
            let next = match written {
                Ok(Settled::Won) => {
                    state.applied = actual;
                    return Reconciled {
                        state,
                        actions,
                        failure: None,
                        held: None,
                    };
                }
                Ok(Settled::Lost) => ledger.ledger.read(thing, ledger.function).await,
                Err(e) => Err(e),
            };
            match next {
                Ok(read) => state = read,
                Err(e) => {
                    return Reconciled {
                        state,
                        actions,
                        failure: Some(e),
                        held: None,
                    };
                }
            }
        }
        Reconciled {
            state,
            actions,
            failure: Some(contention(thing)),
            held: None,
        }
    }

    /// Before a free thing is quarantined: hold it when a record asking for it names too many
    /// things, else count it in the budget. `Some(why)` when held (the history then says so).
    async fn claim(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        state: &FunctionState,
        actions: &[ActionReport],
        stops: Stops<'_>,
        history: &HistoryOf<'_>,
    ) -> Result<Claimed, ActionError> {
        if stops.protected {
            ledger
                .ledger
                .append(thing, &history(state, actions, None))
                .await?;
            return Ok(Claimed::Kept);
        }
        let held = match (stops.oversized, ledger.budget) {
            (Some(reason), _) => Some(reason.to_owned()),
            (None, None) => None,
            (None, Some(budget)) => {
                let window = budget.window_start((ledger.clock)());
                match ledger.ledger.claim(thing, window, budget.max_new).await? {
                    Claim::Granted => None,
                    Claim::Exhausted => Some(budget.describe(window)),
                }
            }
        };
        match held {
            None => Ok(Claimed::Go),
            Some(reason) => {
                let entries = history(state, actions, Some("held"));
                ledger.ledger.append(thing, &entries).await?;
                Ok(Claimed::Held(reason))
            }
        }
    }

    /// An action failed: the record fails and its redelivery acts again, provided the
    /// ledger says what is in force. When an earlier round of this record changed it (then
    /// the causes moved and it went round), that is written first; if the causes moved
    /// again meanwhile, the state read back is returned to go round once more.
    async fn after_failure(
        &self,
        ledger: &LedgerUse,
        thing: &ThingName,
        state: &FunctionState,
        actual: bool,
        actions: &[ActionReport],
        history: &HistoryOf<'_>,
    ) -> Option<FunctionState> {
        let entries = history(state, actions, Some("failed"));
        let written = if actual == state.applied {
            ledger
                .ledger
                .append(thing, &entries)
                .await
                .map(|()| Settled::Won)
        } else {
            ledger
                .ledger
                .settle(thing, ledger.function, actual, state.version, &entries)
                .await
        };
        match written {
            Ok(Settled::Won) => None,
            Ok(Settled::Lost) => ledger.ledger.read(thing, ledger.function).await.ok(),
            Err(write) => {
                tracing::warn!(error = %write, "ledger not written after a failed action");
                None
            }
        }
    }
}

/// A history entry with what the record and the invocation say (when, which function, the
/// record's source, reason, ids and delivery); the rest empty, for each entry to fill in: nothing
/// asked, no cause, no outcome, nothing called, no caller.
pub(super) fn record_entry(
    verdict: &Verdict,
    invocation: Invocation<'_>,
    function: FunctionKind,
    at: i64,
) -> HistoryEntry {
    HistoryEntry {
        at,
        function,
        asked: "",
        cause_id: String::new(),
        cause: CauseOutcome::NotRecorded,
        outcome: String::new(),
        actions: Vec::new(),
        active_causes: Vec::new(),
        source: verdict.source.map_or("", |s| s.as_str()).to_owned(),
        reason: verdict.reason(),
        record_id: verdict.record_id.clone(),
        delivery: verdict.envelope.as_str().to_owned(),
        request_id: invocation.request_id.to_owned(),
        caller: String::new(),
    }
}

/// The calls made, as the history lists them: `name=outcome` each.
pub(super) fn called(actions: &[ActionReport]) -> Vec<String> {
    actions
        .iter()
        .map(|r| format!("{}={}", r.action, r.outcome.as_str()))
        .collect()
}

/// What every history entry of a thing's round shares.
struct Round<'a> {
    ledger: &'a LedgerUse,
    protected: Option<&'a str>,
    now: i64,
    invocation: Invocation<'a>,
}

impl Round<'_> {
    /// One entry per record, but none for a duplicate that changed nothing: a redelivery or
    /// a repeated alert is neither a quarantine nor a release, the log line says it came,
    /// and leaving it out keeps a duplicate at one ledger round trip.
    fn history(
        &self,
        asked: &[Asked<'_>],
        state: &FunctionState,
        actions: &[ActionReport],
        ended: Option<&'static str>,
    ) -> Vec<HistoryEntry> {
        let (ledger, protected, now, invocation) =
            (self.ledger, self.protected, self.now, self.invocation);
        let quiet = ended.is_none() && actions.is_empty();
        asked
            .iter()
            .filter(|a| !(quiet && a.cause == CauseOutcome::Duplicate))
            .map(|a| {
                let outcome = match ended {
                    Some(ended) if a.action == Action::Quarantine || ended == "failed" => ended,
                    _ => {
                        let too_soon = a.cause == CauseOutcome::TooSoon;
                        work_outcome(a.action, state, protected, too_soon).as_str()
                    }
                };
                HistoryEntry {
                    asked: a.action.as_str(),
                    cause_id: a.cause_id.clone(),
                    cause: a.cause,
                    outcome: outcome.to_owned(),
                    actions: called(actions),
                    active_causes: state.cause_ids(),
                    caller: a.verdict.facts.request_source.clone().unwrap_or_default(),
                    ..record_entry(a.verdict, invocation, ledger.function, now)
                }
            })
            .collect()
    }
}

/// A record's outcome once the round is over: a protected thing's quarantine is kept; a
/// clear whose thing still has causes is kept (by them, or by the minimum time); the rest
/// is done, with or without calls.
fn work_outcome(
    action: Action,
    state: &FunctionState,
    protected: Option<&str>,
    too_soon: bool,
) -> RecordOutcome {
    match (action, protected) {
        (Action::Quarantine, Some(why)) => RecordOutcome::Kept {
            because: KeptBecause::Protected,
            held_by: vec![why.to_owned()],
        },
        (Action::Release, _) if state.desired() => RecordOutcome::Kept {
            because: if too_soon {
                KeptBecause::MinQuarantineTime
            } else {
                KeptBecause::OtherCauses
            },
            held_by: state.cause_ids(),
        },
        _ => RecordOutcome::Done,
    }
}

pub(super) fn failed(
    mut actions: Vec<ActionReport>,
    e: ActionError,
    step: &'static str,
    thing: &ThingName,
) -> Mitigation {
    let retry = e.retry;
    if !actions
        .iter()
        .any(|r| matches!(&r.outcome, ActionOutcome::Failed(f) if *f == e))
    {
        actions.push(ActionReport {
            action: step,
            thing: thing.to_string(),
            outcome: ActionOutcome::Failed(e),
        });
    }
    Mitigation {
        actions,
        ..Mitigation::without_calls(RecordOutcome::Failed { retry })
    }
}

fn contention(thing: &ThingName) -> ActionError {
    ActionError::new(
        "Ledger",
        thing.to_string(),
        Retry::Retryable,
        "LedgerContention",
        format!("the causes changed {MAX_ROUNDS} times while this record was reconciled"),
    )
    .with_hint("the record is retried; many alerts for one thing at once cause this")
}
