//! Lambda's CPU share for a 128 MB function: a full core during init, then 128/1769 of one
//! (Lambda gives a whole vCPU at 1,769 MB). Applied with a cgroup CPU quota (v2 `cpu.max`,
//! else v1 `cpu.cfs_quota_us`) to a process once its init is over.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Res;

/// The share of one core a 128 MB function gets.
pub const SHARE_128_MB: f64 = 128.0 / 1769.0;
const PERIOD_US: u64 = 100_000;

enum Version {
    V1,
    V2,
}

/// A cgroup of this bench with a CPU quota; removed on drop (once its processes are gone).
pub struct CpuCap {
    dir: PathBuf,
    version: Version,
    pub share: f64,
}

impl CpuCap {
    /// A cgroup holding its processes to `share` of a core, or why none can be made (no
    /// cgroup file system with the cpu controller, or not root).
    pub fn create(share: f64) -> Res<CpuCap> {
        let quota = ((PERIOD_US as f64) * share).round() as u64;
        let name = format!("lambda-bench-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup");
        let v2_cpu = fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"));
        let (dir, version, settings) = if v2_cpu {
            // The parent must hand the cpu controller down (a no-op if it already does).
            let _ = fs::write(v2.join("cgroup.subtree_control"), "+cpu");
            (
                v2.join(&name),
                Version::V2,
                vec![("cpu.max", format!("{quota} {PERIOD_US}"))],
            )
        } else {
            (
                Path::new("/sys/fs/cgroup/cpu").join(&name),
                Version::V1,
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        };
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cap = CpuCap {
            dir,
            version,
            share,
        };
        for (file, value) in settings {
            fs::write(cap.dir.join(file), &value).map_err(|e| {
                format!(
                    "cannot write {value} to {}: {e}",
                    cap.dir.join(file).display()
                )
            })?;
        }
        Ok(cap)
    }

    /// Moves the process (all its threads) into the cgroup.
    pub fn hold(&self, pid: u32) -> Res<()> {
        let procs = self.dir.join("cgroup.procs");
        fs::write(&procs, pid.to_string())
            .map_err(|e| format!("cannot move {pid} to {}: {e}", procs.display()))
    }

    /// How the quota is set, for the report.
    pub fn describe(&self) -> String {
        let how = match self.version {
            Version::V1 => "cgroup v1 cpu.cfs_quota_us",
            Version::V2 => "cgroup v2 cpu.max",
        };
        format!(
            "{how}, {:.0} µs per {PERIOD_US} µs ({:.1}% of a core)",
            PERIOD_US as f64 * self.share,
            self.share * 100.0
        )
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}
