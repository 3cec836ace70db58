//! The state file: the last report id, the quarantine state the device applied and the newest
//! shadow version taken into account, so that report ids keep increasing across restarts (even if
//! the clock goes back), a restart does not run the quarantine or release command again, and an
//! old shadow document delivered after a restart cannot undo a newer one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub last_rid: u64,
    /// The quarantine state last applied by running a command (or found at first start).
    #[serde(default)]
    pub quarantined: Option<bool>,
    /// The version of the newest shadow document the agent took into account.
    #[serde(default)]
    pub shadow_version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("--state-file {path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "--state-file {path}: not a state file written by defender-agent ({message}); move it away to start afresh"
    )]
    Corrupt { path: PathBuf, message: String },
}

/// The next report id: epoch milliseconds, or one more than the last id if the clock is behind.
pub fn next_rid(now_millis: u64, last_rid: u64) -> u64 {
    now_millis.max(last_rid.saturating_add(1))
}

pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub struct StateFile {
    path: PathBuf,
    state: State,
}

impl StateFile {
    /// Loads the state and writes it back, so that an unwritable file fails at start-up rather
    /// than at the first report. A missing file is a first start.
    pub fn open(path: &Path) -> Result<StateFile, StateError> {
        let file = StateFile::load(path)?;
        file.save()?;
        Ok(file)
    }

    /// Loads the state; a missing file is a first start.
    pub fn load(path: &Path) -> Result<StateFile, StateError> {
        let state = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                path: path.to_owned(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(StateError::Io {
                    path: path.to_owned(),
                    action: "read it",
                    source,
                });
            }
        };
        Ok(StateFile {
            path: path.to_owned(),
            state,
        })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Takes the next report id and records it before the report leaves, so that a crash right
    /// after publishing can never reuse it.
    pub fn take_rid(&mut self) -> Result<u64, StateError> {
        let rid = next_rid(now_millis(), self.state.last_rid);
        self.state.last_rid = rid;
        self.save()?;
        Ok(rid)
    }

    pub fn set_quarantined(&mut self, quarantined: bool) -> Result<(), StateError> {
        self.state.quarantined = Some(quarantined);
        self.save()
    }

    pub fn set_shadow_version(&mut self, version: u64) -> Result<(), StateError> {
        if self.state.shadow_version == Some(version) {
            return Ok(());
        }
        self.state.shadow_version = Some(version);
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        let io = |action, source| StateError::Io {
            path: self.path.clone(),
            action,
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create its directory", e))?;
        }
        let text = serde_json::to_string(&self.state).unwrap_or_default();
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, text).map_err(|e| io("write it", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("replace it", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rid_increases_even_when_the_clock_goes_back() {
        assert_eq!(next_rid(1000, 0), 1000);
        assert_eq!(next_rid(1000, 999), 1000);
        assert_eq!(next_rid(1000, 5000), 5001);
        assert_eq!(next_rid(0, u64::MAX), u64::MAX);
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut s = StateFile::load(&path).unwrap();
        assert_eq!(s.state(), &State::default());
        let r1 = s.take_rid().unwrap();
        s.set_quarantined(true).unwrap();
        s.set_shadow_version(7).unwrap();
        let mut s = StateFile::load(&path).unwrap();
        assert_eq!(s.state().quarantined, Some(true));
        assert_eq!(s.state().shadow_version, Some(7));
        assert!(s.take_rid().unwrap() > r1);
        // A path that cannot be written (here under a regular file, which fails even for root)
        // is refused when the agent starts, not at its first report.
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "").unwrap();
        let e = StateFile::open(&blocker.join("state.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "--state-file {}/state.json: cannot ",
                blocker.display()
            )),
            "{e}"
        );
        std::fs::write(&path, "not json").unwrap();
        let e = StateFile::load(&path).err().unwrap().to_string();
        assert!(e.starts_with("--state-file "), "{e}");
    }
}
