//! The blast-radius budget: at most `MAX_NEW_QUARANTINES` things go from free to quarantined
//! per `BUDGET_WINDOW_MINUTES`, across all functions and invocations, each thing counted once
//! however many functions act on it. Beyond it the cause stays recorded and the thing is
//! held: nothing is acted on, and nothing is lost.

use super::time::format_rfc3339_millis;

/// `MAX_NEW_QUARANTINES` per `BUDGET_WINDOW_MINUTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_new: u32,
    pub window_ms: i64,
}

impl Budget {
    /// The start of the window `now` falls in (epoch ms); windows are aligned on the epoch.
    pub fn window_start(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.window_ms.max(1))
    }

    /// Why a thing is held, in words.
    pub fn describe(&self, window_start: i64) -> String {
        format!(
            "budget: {} new quarantines per {} minutes reached in the window from {} (MAX_NEW_QUARANTINES, BUDGET_WINDOW_MINUTES)",
            self.max_new,
            self.window_ms / 60_000,
            format_rfc3339_millis(window_start)
        )
    }
}

/// The answer to a claim on the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The thing counts in this window (now, or already by another function).
    Granted,
    /// The window's budget is spent: the thing is held.
    Exhausted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_described() {
        let budget = Budget {
            max_new: 5,
            window_ms: 3_600_000,
        };
        assert_eq!(budget.window_start(7_200_000), 7_200_000);
        assert_eq!(budget.window_start(7_199_999), 3_600_000);
        assert_eq!(
            budget.describe(3_600_000),
            "budget: 5 new quarantines per 60 minutes reached in the window from 1970-01-01T01:00:00.000Z (MAX_NEW_QUARANTINES, BUDGET_WINDOW_MINUTES)"
        );
    }
}
