//! The quarantine ledger: for each thing and function, the active causes of its quarantine
//! and whether the function's mitigation is in force; and each thing's append-only history.
//! The functions act from it (`LEDGER_TABLE`): a record first changes the causes (a
//! conditional write: duplicates, retries and concurrent functions converge), then the
//! function reconciles, quarantining exactly when a cause is active. The DynamoDB adapter is
//! in `mitigation-aws`; an in-memory one (feature `testing`) serves the tests.
//!
//! - [`budget`]: the blast-radius budget;
//! - [`state`]: causes, changes and the rules every ledger applies;
//! - [`cause`]: which cause a record adds or clears;
//! - [`history`]: the history's entries;
//! - [`time`]: alert times as numbers, history keys as text.

pub mod budget;
pub mod cause;
pub mod history;
#[cfg(feature = "testing")]
pub mod memory;
pub mod state;
pub mod time;

use futures::future::BoxFuture;
use violation_core::ThingName;

pub use budget::{Budget, Claim};
pub use cause::{Arrival, change_of};
pub use history::{CauseOutcome, HistoryEntry};
pub use state::{Cause, CauseChange, FunctionState, Refused};

use crate::action::ActionError;
use crate::function::FunctionKind;

/// What a cause change came to, with the state after it (or as it is, when refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub state: FunctionState,
    pub refused: Option<Refused>,
}

/// Whether the write of `applied` won: it loses when the causes changed since they were
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Won,
    Lost,
}

/// The ledger's operations, each one round trip. Implementations apply the rules of
/// [`FunctionState::check`] atomically.
pub trait Ledger: Send + Sync {
    /// Change `thing`'s causes for `function` if the rules allow it.
    fn record<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        change: &'a CauseChange,
    ) -> BoxFuture<'a, Result<Recorded, ActionError>>;

    /// The state as it is now.
    fn read<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
    ) -> BoxFuture<'a, Result<FunctionState, ActionError>>;

    /// Write `applied` if the causes are still at `seen_version`, with the history entries,
    /// in one transaction.
    fn settle<'a>(
        &'a self,
        thing: &'a ThingName,
        function: FunctionKind,
        applied: bool,
        seen_version: u64,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<Settled, ActionError>>;

    /// Count `thing` in the budget's window starting at `window_start` (once, however many
    /// functions claim it) if fewer than `max` things were counted there.
    fn claim<'a>(
        &'a self,
        thing: &'a ThingName,
        window_start: i64,
        max: u32,
    ) -> BoxFuture<'a, Result<Claim, ActionError>>;

    /// Append history entries alone; none is no round trip.
    fn append<'a>(
        &'a self,
        thing: &'a ThingName,
        history: &'a [HistoryEntry],
    ) -> BoxFuture<'a, Result<(), ActionError>>;
}
