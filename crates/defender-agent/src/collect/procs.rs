//! Descendants of a named process, from /proc/PID/stat (and /proc/PID/cmdline for long names).

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The kernel keeps the first 15 bytes of a process name in `comm`.
const COMM_LEN: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub comm: String,
    pub ppid: u32,
}

/// `PID (COMM) STATE PPID ...`; COMM may hold spaces and parentheses, so it ends at the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find(" (")?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 2..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcStat { pid, comm, ppid })
}

/// Every process of `proc_root` (processes that exit while being read are skipped).
pub fn processes(proc_root: &Path) -> std::io::Result<Vec<ProcStat>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            out.push(stat);
        }
    }
    Ok(out)
}

/// Whether the process is called `name`: `comm` matches, and for names longer than `comm` can
/// hold, the base name of `argv[0]` matches too.
fn is_named(proc_root: &Path, p: &ProcStat, name: &str) -> bool {
    if name.len() <= COMM_LEN {
        return p.comm == name;
    }
    if name.get(..COMM_LEN) != Some(p.comm.as_str()) {
        return false;
    }
    std::fs::read(proc_root.join(p.pid.to_string()).join("cmdline"))
        .ok()
        .and_then(|cmd| {
            let argv0 = cmd.split(|b| *b == 0).next()?.to_vec();
            let argv0 = String::from_utf8(argv0).ok()?;
            Some(argv0.rsplit('/').next() == Some(name))
        })
        .unwrap_or(false)
}

/// Number of distinct processes that descend from a process called `name` (0 when none runs).
/// With several such processes (say a forking server), every descendant is counted once.
pub fn count_descendants(proc_root: &Path, procs: &[ProcStat], name: &str) -> u64 {
    let named: HashSet<u32> = procs
        .iter()
        .filter(|p| is_named(proc_root, p, name))
        .map(|p| p.pid)
        .collect();
    if named.is_empty() {
        return 0;
    }
    let parent: HashMap<u32, u32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let descends = |pid: u32| {
        let mut current = pid;
        // Bounded walk: a pid table read while processes come and go may hold a cycle.
        for _ in 0..procs.len() {
            match parent.get(&current) {
                Some(&pp) if pp != 0 && pp != current => {
                    if named.contains(&pp) {
                        return true;
                    }
                    current = pp;
                }
                _ => return false,
            }
        }
        false
    };
    procs.iter().filter(|p| descends(p.pid)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_names() {
        assert_eq!(
            parse_stat("42 (my app) (x)) S 7 42 42 0 -1"),
            Some(ProcStat {
                pid: 42,
                comm: "my app) (x)".into(),
                ppid: 7
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn counts_all_descendants_once() {
        let p = |pid, comm: &str, ppid| ProcStat {
            pid,
            comm: comm.into(),
            ppid,
        };
        let procs = vec![
            p(1, "init", 0),
            p(10, "myapp", 1),
            p(11, "sh", 10),
            p(12, "miner", 11),
            p(13, "myapp", 10),
            p(20, "other", 1),
        ];
        let root = Path::new("/nonexistent");
        assert_eq!(count_descendants(root, &procs, "myapp"), 3);
        assert_eq!(count_descendants(root, &procs, "absent"), 0);
        // Names longer than comm holds are confirmed with argv[0].
        let dir = tempfile::tempdir().unwrap();
        for (pid, argv0) in [
            (30, "/opt/bin/a-very-long-app-name"),
            (40, "a-very-long-app-other"),
        ] {
            let d = dir.path().join(pid.to_string());
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("cmdline"), format!("{argv0}\0--flag\0")).unwrap();
        }
        let long = vec![
            p(30, "a-very-long-app", 1),
            p(31, "sh", 30),
            p(40, "a-very-long-app", 1),
            p(41, "sh", 40),
            p(42, "sh", 40),
        ];
        assert_eq!(
            count_descendants(dir.path(), &long, "a-very-long-app-name"),
            1
        );
        assert_eq!(count_descendants(dir.path(), &long, "a-very-long-app"), 3);
        // A cycle in a torn read does not loop forever.
        let cyclic = vec![p(5, "a", 6), p(6, "b", 5), p(7, "myapp", 1)];
        assert_eq!(count_descendants(root, &cyclic, "myapp"), 0);
    }
}
