//! An in-memory [`Ledger`] with the same rules as the DynamoDB one, for tests: it counts its
//! round trips and can be told to lose the next settles (a concurrent change).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;
use violation_core::ThingName;

use super::{CauseChange, Claim, FunctionState, HistoryEntry, Ledger, Recorded, Settled};
use crate::action::ActionError;
use crate::function::FunctionKind;

type Key = (String, FunctionKind);

#[derive(Default)]
pub struct MemoryLedger {
    states: Mutex<HashMap<Key, FunctionState>>,
    history: Mutex<Vec<(String, HistoryEntry)>>,
    round_trips: AtomicUsize,
    /// Window start to the things counted in it.
    windows: Mutex<HashMap<i64, std::collections::HashSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self, thing: &str, function: FunctionKind) -> FunctionState {
        lock(&self.states)
            .get(&(thing.to_owned(), function))
            .cloned()
            .unwrap_or_default()
    }

    /// The history of `thing`, in the order written.
    pub fn history(&self, thing: &str) -> Vec<HistoryEntry> {
        lock(&self.history)
            .iter()
            .filter(|(t, _)| t == thing)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// `quarantinectl protect` (Some) or `unprotect` (None) for `function`.
    pub fn protect(&self, thing: &str, function: FunctionKind, protected: Option<String>) {
        lock(&self.states)
            .entry((thing.to_owned(), function))
            .or_default()
            .protected = protected;
    }

    /// Ledger calls made so far.
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }

    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
    }
}

impl Ledger for MemoryLedger {
    fn record<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        change: &'a CauseChange,
    ) -> BoxFuture<'a, Result<Recorded, ActionError>> {
        self.trip();
        let mut states = lock(&self.states);
        let state = states.entry((thing.to_string(), function)).or_default();
        let refused = state.apply(change).err();
        // As the DynamoDB ledger does: a clear that was recorded forgets expired tombstones.
        if refused.is_none() && !matches!(change, CauseChange::Add(_)) {
            let expired = state.expired_tombstones();
            state.forget(&expired);
        }
        let recorded = Recorded {
            state: state.clone(),
            refused,
        };
        Box::pin(async move { Ok(recorded) })
    }

    fn read<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
    ) -> BoxFuture<'a, Result<FunctionState, ActionError>> {
        self.trip();
        let state = self.state(thing.as_str(), function);
        Box::pin(async move { Ok(state) })
    }

    fn settle<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        applied: bool,
        seen_version: u64,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<Settled, ActionError>> {
        self.trip();
        let mut states = lock(&self.states);
        let state = states.entry((thing.to_string(), function)).or_default();
        let settled = if state.version == seen_version {
            state.applied = applied;
            lock(&self.history).extend(history.iter().map(|e| (thing.to_string(), e.clone())));
            Settled::Won
        } else {
            Settled::Lost
        };
        Box::pin(async move { Ok(settled) })
    }

    fn claim<'a>(
        &'a self,
        thing: &'a ThingName,
        window_start: i64,
        max: u32,
    ) -> BoxFuture<'a, Result<Claim, ActionError>> {
        self.trip();
        let mut windows = lock(&self.windows);
        let counted = windows.entry(window_start).or_default();
        let claim = if counted.contains(thing.as_str()) {
            Claim::Granted
        } else if counted.len() < max as usize {
            counted.insert(thing.to_string());
            Claim::Granted
        } else {
            Claim::Exhausted
        };
        Box::pin(async move { Ok(claim) })
    }

    fn append<'a>(
        &'a self,
        thing: &'a ThingName,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        if !history.is_empty() {
            self.trip();
        }
        lock(&self.history).extend(history.iter().map(|e| (thing.to_string(), e.clone())));
        Box::pin(async move { Ok(()) })
    }
}
