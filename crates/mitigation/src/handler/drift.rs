//! Drift: a thing taken out of the quarantine group outside these tools while the ledger
//! holds it quarantined is put back. The record is a registry membership event
//! ([`Decision::Reconcile`]); quarantine-group reads the thing's state (one ledger read) and,
//! when it has active causes and the quarantine is in force, quarantines it again through
//! its own actions (AddThingToThingGroup, then DeleteConnection with `DISCONNECT`, so a
//! device that reconnected while outside the group is bound by the quarantine policy again),
//! and writes a history entry. The event never adds or clears a cause.
//!
//! The put-back is written with "in force" on the version of the causes it read: when they
//! changed meanwhile and no cause is left (a release raced it), the put-back is undone, so a
//! released thing is never left in the group. Our own put-back's ADDED event is ignored by
//! the decision: no loop.

use std::time::Instant;

use futures::stream::{self, StreamExt};
use tracing::Instrument;
use violation_core::{Action, Decision, ThingName, Verdict};

use super::ledger_flow::{LEDGER_STEP, called, failed, record_entry};
use super::{DEADLINE_STEP, Handler, Invocation, LedgerUse, deadline_error};
use crate::function::FunctionKind;
use crate::ledger::{FunctionState, HistoryEntry, Settled};
use crate::report::{ActionReport, Mitigation, RecordOutcome, RecordReport, first_failure};

/// What a history entry of a drift record says was asked.
pub const RECONCILE: &str = "reconcile";
/// The caller a drift record's history entry names.
pub const REGISTRY_CALLER: &str = "registry event";

/// The label of a failed membership check in action reports.
const MEMBERSHIP_STEP: &str = "group-membership";

/// The history outcomes of a drift record.
const PUT_BACK: &str = "put back";
const UNDONE: &str = "put back, then undone: released meanwhile";
const FAILED: &str = "failed";

impl Handler {
    /// Every reconcile record of the batch (the others are left as they are), at most
    /// `max_concurrency` at once. Run after the batch's alerts, so a quarantine or release
    /// in the same batch is seen.
    pub(super) async fn put_back_drifted(
        &self,
        reports: &mut [RecordReport],
        invocation: Invocation<'_>,
    ) {
        stream::iter(
            reports
                .iter_mut()
                .filter(|r| matches!(r.verdict.decision, Decision::Reconcile { .. })),
        )
        .for_each_concurrent(self.max_concurrency, |report| {
            self.reconcile_record(report, invocation)
        })
        .await;
    }

    async fn reconcile_record(&self, report: &mut RecordReport, invocation: Invocation<'_>) {
        let Decision::Reconcile { thing } = &report.verdict.decision else {
            return;
        };
        let thing = thing.clone();
        let span = tracing::info_span!(
            "record",
            record_id = report.verdict.record_id.as_str(),
            thing = %thing,
            action = RECONCILE,
        );
        let started = Instant::now();
        let (mitigation, note) = self
            .drift(&report.verdict, &thing, invocation)
            .instrument(span)
            .await;
        report.things = vec![thing.to_string()];
        report.actions = mitigation.actions;
        report.outcome = mitigation.outcome;
        report.duration = started.elapsed();
        report.notes.push(note);
    }

    /// What became of one reconcile record, and a note saying why.
    async fn drift(
        &self,
        verdict: &Verdict,
        thing: &ThingName,
        invocation: Invocation<'_>,
    ) -> (Mitigation, String) {
        let ignored = |note: String| (Mitigation::without_calls(RecordOutcome::Ignored), note);
        if self.dry_run {
            return (
                Mitigation::without_calls(RecordOutcome::DryRun),
                format!(
                    "quarantine-group would read {thing}'s causes in the ledger and put it back in the group if they are active and the quarantine is in force"
                ),
            );
        }
        let Some(ledger) = &self.ledger else {
            return ignored(
                "not put back: telling drift from a release needs the ledger (LEDGER_TABLE); without it a thing removed from the group stays out".to_owned(),
            );
        };
        if ledger.function != FunctionKind::ThingGroup {
            return ignored(format!(
                "only quarantine-group puts a thing back in its group; quarantine-{} ignores membership events",
                ledger.function.ledger_name()
            ));
        }
        if invocation.deadline.near() {
            return (
                failed(vec![], deadline_error(thing), DEADLINE_STEP, thing),
                "not checked: the invocation's time ran out; retried".to_owned(),
            );
        }
        let state = match ledger.ledger.read(thing, ledger.function).await {
            Ok(state) => state,
            Err(e) => {
                return (
                    failed(vec![], e, LEDGER_STEP, thing),
                    "the ledger could not be read; retried".to_owned(),
                );
            }
        };
        if !state.desired() {
            return ignored(
                "not put back: the thing has no active cause in the ledger (released by these tools or by an operator, or never quarantined)".to_owned(),
            );
        }
        if !state.applied {
            return ignored(format!(
                "not put back: its causes ({}) are recorded but the quarantine is not in force (held by the budget, protected, or still being carried out)",
                state.cause_ids().join(", ")
            ));
        }
        if let Some(membership) = &self.membership {
            match membership.in_group(thing).await {
                Ok(true) => {
                    return ignored(
                        "not put back: it is in the quarantine group already (a duplicate or late REMOVED event, or it was put back meanwhile)".to_owned(),
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    return (
                        failed(vec![], e, MEMBERSHIP_STEP, thing),
                        "its group membership could not be read; retried".to_owned(),
                    );
                }
            }
        }
        let entry = DriftEntry {
            ledger,
            verdict,
            invocation,
        };
        self.put_back(&entry, thing, state).await
    }

    /// Quarantine the thing again, then write the history with "in force" on the version
    /// read; when the causes moved meanwhile, read them again and undo the put-back if none
    /// is left.
    async fn put_back(
        &self,
        entry: &DriftEntry<'_>,
        thing: &ThingName,
        state: FunctionState,
    ) -> (Mitigation, String) {
        let ledger = entry.ledger;
        let causes = state.cause_ids().join(", ");
        let done = self.apply_all(Action::Quarantine, thing).await;
        let mut actions = done.actions;
        if let Some(e) = first_failure(&actions) {
            let history = [entry.history(&state, &actions, FAILED)];
            if let Err(write) = ledger.ledger.append(thing, &history).await {
                tracing::warn!(thing = %thing, error = %write, "history of a failed put-back not written");
            }
            return (
                failed(actions, e, LEDGER_STEP, thing),
                format!("put-back failed (causes {causes}); retried"),
            );
        }
        let history = [entry.history(&state, &actions, PUT_BACK)];
        let settled = ledger
            .ledger
            .settle(thing, ledger.function, true, state.version, &history)
            .await;
        let put_back = format!(
            "put back in the quarantine group: its causes ({causes}) are active and the quarantine is in force"
        );
        let now = match settled {
            Ok(Settled::Won) => return (done_with(actions), put_back),
            Ok(Settled::Lost) => ledger.ledger.read(thing, ledger.function).await,
            Err(e) => Err(e),
        };
        let now = match now {
            Ok(now) => now,
            Err(e) => {
                return (
                    failed(actions, e, LEDGER_STEP, thing),
                    format!("{put_back}; the history could not be written, retried"),
                );
            }
        };
        let (outcome, note) = if now.desired() {
            (PUT_BACK, put_back)
        } else {
            let undo = self.apply_all(Action::Release, thing).await;
            actions.extend(undo.actions);
            (
                UNDONE,
                "put back, then taken out again: a release removed its causes meanwhile".to_owned(),
            )
        };
        let history = [entry.history(&now, &actions, outcome)];
        let written = ledger.ledger.append(thing, &history).await;
        match (first_failure(&actions), written) {
            (Some(e), _) | (None, Err(e)) => (failed(actions, e, LEDGER_STEP, thing), note),
            (None, Ok(())) => (done_with(actions), note),
        }
    }
}

/// What a drift record's history entries share.
struct DriftEntry<'a> {
    ledger: &'a LedgerUse,
    verdict: &'a Verdict,
    invocation: Invocation<'a>,
}

impl DriftEntry<'_> {
    fn history(
        &self,
        state: &FunctionState,
        actions: &[ActionReport],
        outcome: &str,
    ) -> HistoryEntry {
        let (ledger, invocation) = (self.ledger, self.invocation);
        HistoryEntry {
            asked: RECONCILE,
            outcome: outcome.to_owned(),
            actions: called(actions),
            active_causes: state.cause_ids(),
            caller: REGISTRY_CALLER.to_owned(),
            ..record_entry(self.verdict, invocation, ledger.function, (ledger.clock)())
        }
    }
}

fn done_with(actions: Vec<ActionReport>) -> Mitigation {
    Mitigation {
        actions,
        ..Mitigation::without_calls(RecordOutcome::Done)
    }
}
