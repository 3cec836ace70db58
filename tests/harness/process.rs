//! The one process spawner: a Lambda function (a binary, or the Python baseline) against a
//! local [`RuntimeApi`], with a clean environment, its output captured in a log file, killed
//! on drop; plus [`LocalFunction`], the pair of both that most tests want.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::Env;
use crate::runtime_api::{Invocation, RuntimeApi};

/// How long [`LocalFunction`] waits for a start-up or an answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// A function process; killed and reaped on drop.
pub struct FunctionProcess {
    child: Child,
    label: String,
    /// Just before the process was spawned.
    pub started_at: Instant,
    /// The file holding the process's stdout and stderr.
    pub log_path: PathBuf,
}

impl FunctionProcess {
    /// Spawns `command` with a clean environment: `PATH`, the Runtime API's variables, then
    /// `env` (later entries win). Nothing of the caller's AWS settings leaks in. The output
    /// goes to a file in [`log_dir`].
    pub fn spawn(
        mut command: Command,
        runtime: &RuntimeApi,
        env: &Env,
    ) -> io::Result<FunctionProcess> {
        let label = Path::new(command.get_program())
            .file_name()
            .map_or_else(|| "function".into(), OsStr::to_string_lossy)
            .into_owned();
        let dir = log_dir();
        fs::create_dir_all(&dir)?;
        let seq = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log_path = dir.join(format!("{label}-{}-{seq}.log", std::process::id()));
        let log = File::create(&log_path)?;
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .envs(runtime.env())
            .envs(env.vars())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let started_at = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {label}: {e}")))?;
        Ok(FunctionProcess {
            child,
            label,
            started_at,
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The whole output so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the output.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The output lines that are JSON objects (with `AWS_LAMBDA_LOG_FORMAT=JSON`).
    pub fn json_log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The exit status if the process has exited (without blocking).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the function's first poll for an event; the time from spawn to that poll.
    pub fn wait_ready(
        &mut self,
        runtime: &RuntimeApi,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = runtime.wait_first_poll(Duration::from_millis(20)) {
                return Ok(at.saturating_duration_since(self.started_at));
            }
            if let Some((error_type, message)) = runtime.init_error() {
                return Err(format!(
                    "init error {error_type}: {message}; {}",
                    self.diagnose()
                ));
            }
            if self.try_exit_status().is_some() || Instant::now() >= deadline {
                return Err(format!(
                    "no poll for an event within {timeout:?}: {}",
                    self.diagnose()
                ));
            }
        }
    }

    /// Peak resident set size (`VmHWM` in `/proc/PID/status`) in KiB, if readable.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }

    /// Whether it still runs, and the end of its log.
    pub fn diagnose(&mut self) -> String {
        let status = match self.try_exit_status() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_owned(),
        };
        format!(
            "{} {status}; log {}:\n{}",
            self.label,
            self.log_path.display(),
            self.log_tail(30)
        )
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where function and emulator logs go: `logs/` next to the running test or benchmark
/// executable (so under `CARGO_TARGET_DIR` when that is set), else the temporary directory.
pub fn log_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    let profile = match dir {
        Some(d) if d.file_name().is_some_and(|n| n == "deps") => d.parent(),
        other => other,
    };
    profile
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
        .join("logs")
}

/// A function binary started against its own Runtime API; for tests (panics on failure).
/// Dropping it kills the process, then stops the API.
pub struct LocalFunction {
    pub process: FunctionProcess,
    pub runtime: RuntimeApi,
}

impl LocalFunction {
    /// Starts `binary` with `env` and waits until it polls for its first event.
    pub fn start(binary: impl AsRef<Path>, env: &Env) -> LocalFunction {
        let mut function = LocalFunction::spawn(binary, env);
        if let Err(problem) = function.process.wait_ready(&function.runtime, TIMEOUT) {
            panic!("the function did not start: {problem}");
        }
        function
    }

    /// Starts `binary` with `env` without waiting for it (for start-up failures).
    pub fn spawn(binary: impl AsRef<Path>, env: &Env) -> LocalFunction {
        let binary = binary.as_ref();
        let runtime = RuntimeApi::start();
        let process = FunctionProcess::spawn(Command::new(binary), &runtime, env)
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        LocalFunction { process, runtime }
    }

    /// Invokes the function; panics with its log if it does not answer in time.
    pub fn invoke(&self, event: &impl serde::Serialize) -> Invocation {
        let outcome = self.runtime.invoke(event, TIMEOUT);
        if outcome == Invocation::TimedOut {
            panic!(
                "the function did not answer within {TIMEOUT:?}; log:\n{}",
                self.process.log_tail(40)
            );
        }
        outcome
    }
}
