//! One function's ledger state for one thing, and the rules every ledger applies to it (the
//! DynamoDB adapter writes the same rules as condition expressions).

use std::collections::BTreeMap;

/// The alert that asked for a quarantine: one active cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    /// Stable across the alert's deliveries and its clear: the violation id, alarm ARN and
    /// thing, finding id, request id (see [`crate::ledger::cause`]).
    pub id: String,
    /// The alert's source: `detect-violation`, `cloudwatch-alarm`, ... or `operator`.
    pub kind: String,
    /// Who sent it: a request's `source`, the operator's identity; empty when the alert does
    /// not say.
    pub sender: String,
    /// When the alert says it happened (epoch ms; when it was recorded if it does not say).
    pub occurred_at: i64,
    /// When the ledger first recorded it (epoch ms).
    pub recorded_at: i64,
    /// The record that carried it: SQS or SNS message id.
    pub record_id: String,
    /// How it came: `sns`, `sqs-sns`, `sqs-raw`, `direct`.
    pub delivery: String,
    /// The Lambda request id of the invocation that recorded it, when there was one.
    pub request_id: String,
}

/// How much older than the thing's newest clear a clear is still remembered (its
/// tombstone, which refuses a quarantine alert older than the clear as stale): 14 days, SQS's
/// longest retention. An alert delivered later still would quarantine again: the safe side.
pub const TOMBSTONE_SPAN_MS: i64 = 14 * 24 * 3_600_000;
/// At most this many tombstones per function state, the newest kept, so the item stays far
/// below DynamoDB's 400 KB whatever a flapping alarm does.
pub const MAX_TOMBSTONES: usize = 1_000;

/// What a record asks of a thing's causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CauseChange {
    /// A quarantine: the cause becomes active (or, active already, takes this newer time),
    /// unless it is active since this time or later, or was cleared at or after it.
    Add(Cause),
    /// A clear (alarm-cleared, CloudWatch OK, finding archived): only this cause goes, unless
    /// the clear is older than the cause, or the cause was recorded after `settled_before`
    /// (`MIN_QUARANTINE_MINUTES` has not passed since).
    Clear {
        id: String,
        at: i64,
        settled_before: i64,
    },
    /// A trusted release request: every cause goes.
    ClearAll { at: i64 },
}

impl CauseChange {
    pub fn cause_id(&self) -> Option<&str> {
        match self {
            CauseChange::Add(cause) => Some(&cause.id),
            CauseChange::Clear { id, .. } => Some(id),
            CauseChange::ClearAll { .. } => None,
        }
    }
}

/// Why a change was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Already so: the cause is active (a redelivery, a duplicate alert), or a clear of a
    /// cause already cleared at or after this time.
    Duplicate,
    /// Older than what the ledger knows: a quarantine older than its cause's clear, or a
    /// clear older than the cause's newest quarantine.
    Stale,
    /// A clear too soon after its cause was recorded (`MIN_QUARANTINE_MINUTES`).
    TooSoon,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Duplicate => "duplicate",
            Refused::Stale => "stale",
            Refused::TooSoon => "too-soon",
        }
    }
}

/// One function's state for one thing: its active causes, the clears it has seen, and
/// whether its mitigation is in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionState {
    pub causes: BTreeMap<String, Cause>,
    /// Cause id to the time of its newest clear (epoch ms).
    pub cleared: BTreeMap<String, i64>,
    /// This function's mitigation is in force.
    pub applied: bool,
    /// Bumped on every change of the causes: a write of `applied` is conditional on it.
    pub version: u64,
    /// `quarantinectl protect`: why and by whom; the function does not quarantine the thing
    /// (its causes are still recorded) unless the operator forces it.
    pub protected: Option<String>,
}

impl FunctionState {
    /// The thing should be quarantined (by this function) exactly when a cause is active.
    pub fn desired(&self) -> bool {
        !self.causes.is_empty()
    }

    pub fn cause_ids(&self) -> Vec<String> {
        self.causes.keys().cloned().collect()
    }

    /// Whether `change` would change anything, and if not why.
    pub fn check(&self, change: &CauseChange) -> Result<(), Refused> {
        match change {
            // A newer alarm of an active cause refreshes it (a later clear must be newer
            // still); the same alarm again is a duplicate.
            CauseChange::Add(cause) => match self.causes.get(&cause.id) {
                Some(active) if active.occurred_at >= cause.occurred_at => Err(Refused::Duplicate),
                Some(_) => Ok(()),
                None => match self.cleared.get(&cause.id) {
                    Some(&cleared) if cleared >= cause.occurred_at => Err(Refused::Stale),
                    _ => Ok(()),
                },
            },
            CauseChange::Clear {
                id,
                at,
                settled_before,
            } => {
                if let Some(cause) = self.causes.get(id) {
                    if cause.occurred_at > *at {
                        return Err(Refused::Stale);
                    }
                    if cause.recorded_at > *settled_before {
                        return Err(Refused::TooSoon);
                    }
                }
                match self.cleared.get(id) {
                    Some(&cleared) if cleared >= *at => Err(Refused::Duplicate),
                    _ => Ok(()),
                }
            }
            CauseChange::ClearAll { .. } if self.causes.is_empty() => Err(Refused::Duplicate),
            CauseChange::ClearAll { .. } => Ok(()),
        }
    }

    /// Tombstones to forget, as (cause id, cleared at): those more than
    /// [`TOMBSTONE_SPAN_MS`] older than the newest, and the oldest beyond
    /// [`MAX_TOMBSTONES`]. Measured from the newest clear, not the clock, so a replay of old
    /// alerts keeps its tombstones.
    pub fn expired_tombstones(&self) -> Vec<(String, i64)> {
        let Some(&newest) = self.cleared.values().max() else {
            return Vec::new();
        };
        let horizon = newest.saturating_sub(TOMBSTONE_SPAN_MS);
        let mut oldest_first: Vec<(&String, i64)> =
            self.cleared.iter().map(|(id, &at)| (id, at)).collect();
        oldest_first.sort_by_key(|&(id, at)| (at, id));
        let excess = oldest_first.len().saturating_sub(MAX_TOMBSTONES);
        oldest_first
            .into_iter()
            .enumerate()
            .filter(|&(i, (_, at))| i < excess || at < horizon)
            .map(|(_, (id, at))| (id.clone(), at))
            .collect()
    }

    /// Forget these tombstones, each only if it still has the time it was read with.
    pub fn forget(&mut self, tombstones: &[(String, i64)]) {
        for (id, at) in tombstones {
            if self.cleared.get(id) == Some(at) {
                self.cleared.remove(id);
            }
        }
    }

    /// Make `change` if [`FunctionState::check`] allows it; the version moves when it does.
    pub fn apply(&mut self, change: &CauseChange) -> Result<(), Refused> {
        self.check(change)?;
        match change {
            CauseChange::Add(cause) => {
                self.causes.insert(cause.id.clone(), cause.clone());
            }
            CauseChange::Clear { id, at, .. } => {
                self.causes.remove(id);
                self.cleared.insert(id.clone(), *at);
            }
            CauseChange::ClearAll { at } => {
                for id in std::mem::take(&mut self.causes).into_keys() {
                    self.cleared.insert(id, *at);
                }
            }
        }
        self.version += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_far_older_than_the_newest_or_beyond_the_cap_are_forgotten() {
        let day = 24 * 3_600_000;
        let mut state = FunctionState::default();
        state.cleared.insert("old".into(), 0);
        state.cleared.insert("edge".into(), day);
        state.cleared.insert("new".into(), 15 * day);
        assert_eq!(state.expired_tombstones(), [("old".to_owned(), 0)]);
        state.forget(&state.expired_tombstones());
        assert_eq!(state.cleared.keys().collect::<Vec<_>>(), ["edge", "new"]);
        assert!(state.expired_tombstones().is_empty());

        let mut many = FunctionState::default();
        for i in 0..MAX_TOMBSTONES + 3 {
            many.cleared.insert(format!("c{i}"), i as i64);
        }
        assert_eq!(
            many.expired_tombstones(),
            [
                ("c0".to_owned(), 0),
                ("c1".to_owned(), 1),
                ("c2".to_owned(), 2)
            ],
            "the oldest beyond the cap"
        );
    }

    #[test]
    fn a_tombstone_renewed_since_it_was_read_is_not_forgotten() {
        let mut state = FunctionState::default();
        state.cleared.insert("a".into(), 5);
        state.forget(&[("a".to_owned(), 4)]);
        assert_eq!(state.cleared.get("a"), Some(&5));
    }

    fn cause(id: &str, occurred_at: i64) -> Cause {
        Cause {
            id: id.into(),
            kind: "detect-violation".into(),
            occurred_at,
            recorded_at: occurred_at,
            ..Cause::default()
        }
    }

    fn clear(id: &str, at: i64) -> CauseChange {
        CauseChange::Clear {
            id: id.into(),
            at,
            settled_before: i64::MAX,
        }
    }

    #[test]
    fn a_clear_removes_only_its_cause() {
        let mut state = FunctionState::default();
        state.apply(&CauseChange::Add(cause("v1", 10))).unwrap();
        state
            .apply(&CauseChange::Add(cause("operator:alice:1", 11)))
            .unwrap();
        state.apply(&clear("v1", 20)).unwrap();
        assert!(state.desired(), "the operator's cause remains");
        assert_eq!(state.cause_ids(), ["operator:alice:1"]);
        assert_eq!(state.version, 3);
    }

    #[test]
    fn duplicates_and_stale_changes_change_nothing() {
        let mut state = FunctionState::default();
        state.apply(&CauseChange::Add(cause("v1", 10))).unwrap();
        assert_eq!(
            state.apply(&CauseChange::Add(cause("v1", 10))),
            Err(Refused::Duplicate)
        );
        assert_eq!(
            state.apply(&clear("v1", 5)),
            Err(Refused::Stale),
            "older than its cause"
        );
        state.apply(&clear("v1", 20)).unwrap();
        assert_eq!(state.apply(&clear("v1", 20)), Err(Refused::Duplicate));
        assert_eq!(
            state.apply(&CauseChange::Add(cause("v1", 15))),
            Err(Refused::Stale),
            "a quarantine older than its cause's clear is dropped"
        );
        assert_eq!(state.version, 2);
        state.apply(&CauseChange::Add(cause("v1", 30))).unwrap();
        assert!(
            state.desired(),
            "a newer alarm of the same cause counts again"
        );
    }

    #[test]
    fn a_clear_delivered_before_its_quarantine_wins() {
        let mut state = FunctionState::default();
        state.apply(&clear("v1", 20)).unwrap();
        assert_eq!(
            state.apply(&CauseChange::Add(cause("v1", 10))),
            Err(Refused::Stale)
        );
        assert!(!state.desired());
    }

    #[test]
    fn a_clear_too_soon_after_its_cause_is_refused() {
        let mut state = FunctionState::default();
        state.apply(&CauseChange::Add(cause("v1", 100))).unwrap();
        let soon = CauseChange::Clear {
            id: "v1".into(),
            at: 200,
            settled_before: 99,
        };
        assert_eq!(state.apply(&soon), Err(Refused::TooSoon));
        let later = CauseChange::Clear {
            id: "v1".into(),
            at: 200,
            settled_before: 100,
        };
        assert_eq!(state.apply(&later), Ok(()));
    }

    #[test]
    fn clear_all_empties_and_marks_every_cause() {
        let mut state = FunctionState::default();
        assert_eq!(
            state.apply(&CauseChange::ClearAll { at: 5 }),
            Err(Refused::Duplicate)
        );
        state.apply(&CauseChange::Add(cause("a", 10))).unwrap();
        state.apply(&CauseChange::Add(cause("b", 10))).unwrap();
        state.apply(&CauseChange::ClearAll { at: 50 }).unwrap();
        assert!(!state.desired());
        assert_eq!(state.cleared.get("b"), Some(&50));
    }
}
