//! `lambda-bench`: the two function binaries and the seed article's Python handler, side by
//! side, each as a real process against the local Lambda Runtime API and a local stand-in for
//! the IoT endpoints ([`FakeAws`]) with injected latency; then a burst of 10,000 violations
//! against a throttling, failing stand-in. See BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p quarantine-group -p quarantine-shadow
//! cargo run --release -p integration-tests --bin lambda-bench -- [--quick | --burst-only]
//! ```
//!
//! It builds nothing: it runs `target/release/quarantine-{group,shadow}` (or the ones in
//! `QUARANTINE_BIN_DIR`) and `.venv/bin/python bench/baseline/bootstrap.py`. Every measured
//! invocation is checked (empty `batchItemFailures`, the things in the group / the shadows
//! set in the stand-in): the run aborts rather than measure failures.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::fake_aws::{FakeAws, FakeAwsConfig, op};
use integration_tests::runtime_api::{
    Invocation, RuntimeApi, binary_path, peak_rss_kib, tail_lines,
};
use integration_tests::workspace_root;
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

const GROUP: &str = "Quarantine";
const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:DDD_Violations";
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:DDD_Violations_queue";
/// The injected latencies of the warm runs, per AWS call.
const LATENCIES_MS: [u64; 2] = [0, 20];
/// Batch sizes of the warm runs.
const BATCH_SIZES: [usize; 2] = [1, 10];
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The functions under test

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Group,
    Shadow,
    Python,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Group => "quarantine-group",
            Kind::Shadow => "quarantine-shadow",
            Kind::Python => "python seed (boto3)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::Shadow => "shadow",
            Kind::Python => "python",
        }
    }

    /// The function adds the thing to the quarantine group.
    fn sets_group(self) -> bool {
        matches!(self, Kind::Group | Kind::Python)
    }

    /// The function sets `desired.quarantine` in the classic shadow.
    fn sets_shadow(self) -> bool {
        matches!(self, Kind::Shadow | Kind::Python)
    }
}

struct Subject {
    kind: Kind,
    program: PathBuf,
    args: Vec<String>,
    /// What the size row shows.
    size: String,
}

fn subjects() -> Res<Vec<Subject>> {
    let mut out = Vec::new();
    for kind in [Kind::Group, Kind::Shadow] {
        let program = binary_path(kind.label());
        let bytes = fs::metadata(&program)
            .map_err(|e| format!("{}: {e}", program.display()))?
            .len();
        out.push(Subject {
            kind,
            size: format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
            program,
            args: Vec::new(),
        });
    }
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let bootstrap = root.join("bench/baseline/bootstrap.py");
    let handler = root.join("bench/baseline/seed_handler.py");
    if !python.is_file() {
        return Err(format!(
            "{} not found: create the project venv first (scripts/ensure-venv.sh)",
            python.display()
        ));
    }
    let scripts: u64 = [&bootstrap, &handler]
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()))
        .sum::<Result<u64, _>>()
        .map_err(|e| format!("bench/baseline scripts: {e}"))?;
    out.push(Subject {
        kind: Kind::Python,
        program: python,
        args: vec![bootstrap.display().to_string()],
        size: format!(
            "n/a (interpreter; scripts {:.1} KiB)",
            scripts as f64 / 1024.0
        ),
    });
    Ok(out)
}

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// A function process; killed and reaped on drop.
struct Proc {
    child: Child,
    started_at: Instant,
    log_path: PathBuf,
    label: &'static str,
}

impl Proc {
    /// Starts the function with a clean environment: the Runtime API's variables, the
    /// function's settings and `extra` (which wins). Output goes to `target/function-logs/`.
    fn spawn(
        subject: &Subject,
        api: &RuntimeApi,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Res<Proc> {
        let log_dir = workspace_root().join("target/function-logs");
        fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let seq = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log_path = log_dir.join(format!(
            "bench-{}-{}-{seq}.log",
            subject.kind.short(),
            std::process::id()
        ));
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&subject.program);
        cmd.args(&subject.args)
            .env_clear()
            .current_dir(workspace_root());
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(api.env());
        cmd.envs([
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDLAMBDABENCH00000"),
            ("AWS_SECRET_ACCESS_KEY", "lambda-bench-secret-key"),
            ("AWS_SESSION_TOKEN", "lambda-bench-session-token"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            // No developer profile files can leak in.
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("QUARANTINE_GROUP", GROUP),
            ("MAX_CONCURRENCY", "10"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONUNBUFFERED", "1"),
        ]);
        cmd.envs(extra.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let started_at = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", subject.program.display()))?;
        Ok(Proc {
            child,
            started_at,
            log_path,
            label: subject.kind.label(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Exit status (if it exited) and the end of its log.
    fn diagnose(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited with {s}"),
            _ => "still running".to_owned(),
        };
        format!(
            "{} {status}; log {}:\n{}",
            self.label,
            self.log_path.display(),
            tail_lines(&self.log_path, 20)
        )
    }

    /// Waits for the first poll for an event; the time from spawn to that poll.
    fn wait_ready(&mut self, api: &RuntimeApi, timeout: Duration) -> Res<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = api.wait_first_poll(Duration::from_millis(50)) {
                return Ok(at.saturating_duration_since(self.started_at));
            }
            if let Some((t, m)) = api.init_error() {
                return Err(format!("init error {t}: {m}\n{}", self.diagnose()));
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) || Instant::now() >= deadline {
                return Err(format!(
                    "no poll for an event within {timeout:?}: {}",
                    self.diagnose()
                ));
            }
        }
    }

    /// Total CPU time (user + system, all threads) so far, from `/proc/PID/stat`.
    fn cpu_time(&self) -> Res<Duration> {
        cpu_time(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The thread ids of a process and the sum of their on-CPU time in nanoseconds (first field
/// of `/proc/PID/task/TID/schedstat`); the time of threads that exited is not included.
fn task_cpu(pid: u32) -> Option<(BTreeSet<u64>, Duration)> {
    let mut tids = BTreeSet::new();
    let mut total = 0u64;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let tid: u64 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        tids.insert(tid);
    }
    Some((tids, Duration::from_nanos(total)))
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

fn cpu_time(pid: u32) -> Res<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Res<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| "bad /proc/PID/stat".to_owned())
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second() as f64,
    ))
}

// ---------------------------------------------------------------------------------------------
// Events

static NEXT_THING: AtomicUsize = AtomicUsize::new(0);

fn message_id(n: usize) -> String {
    format!("0b6e5a7c-1f2d-4e3b-8a9c-{n:012x}")
}

/// The SNS `Message`: the seed article's aws:num-messages-sent violation for `thing`.
fn violation_message(thing: &str, n: usize) -> String {
    json!({
        "violationEventTime": 1_573_786_800_000u64,
        "thingName": thing,
        "behavior": {
            "criteria": {
                "consecutiveDatapointsToClear": 1, "value": {"count": 10}, "durationSeconds": 300,
                "consecutiveDatapointsToAlarm": 1, "comparisonOperator": "less-than"
            },
            "name": "MessagesPub",
            "metric": "aws:num-messages-sent"
        },
        "violationEventType": "in-alarm",
        "metricValue": {"count": 54},
        "violationId": format!("{n:032x}"),
        "securityProfileName": "MsgSentSecProfile"
    })
    .to_string()
}

/// One SQS record whose body is the SNS envelope (raw message delivery off).
fn sqs_record(n: usize, thing: &str, receive_count: u32) -> Value {
    let envelope = json!({
        "Type": "Notification",
        "MessageId": format!("1c7f6b8d-2031-4f4c-9bad-{n:012x}"),
        "TopicArn": TOPIC_ARN,
        "Subject": null,
        "Message": violation_message(thing, n),
        "Timestamp": "2019-11-15T03:00:36.527Z",
        "SignatureVersion": "1",
        "Signature": "C+wmlktdLSErFjclDOc4J3LPBLfDUuvIv85NCytpr8pX4Bq/dMnUp6PXCkFIgknG/StekbAJHU0tlKM==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem",
        "UnsubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:e17eb501"),
    });
    json!({
        "messageId": message_id(n),
        "receiptHandle": format!("AQEB-{n}-{receive_count}"),
        "body": envelope.to_string(),
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": "1573786836527",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1573786836530"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1"
    })
}

/// A batch of `size` records for fresh things; returns the event and the thing names.
fn fresh_batch(kind: Kind, size: usize) -> (Value, Vec<String>) {
    let mut records = Vec::with_capacity(size);
    let mut things = Vec::with_capacity(size);
    for _ in 0..size {
        let n = NEXT_THING.fetch_add(1, Ordering::Relaxed);
        let thing = format!("bench-{}-{n:06}", kind.short());
        records.push(sqs_record(n, &thing, 1));
        things.push(thing);
    }
    (json!({ "Records": records }), things)
}

// ---------------------------------------------------------------------------------------------
// Checked invocations

/// The `itemIdentifier`s of an SQS answer, or None if the answer is not an SQS answer.
fn batch_item_failures(answer: &Value) -> Option<Vec<String>> {
    answer
        .get("batchItemFailures")?
        .as_array()?
        .iter()
        .map(|f| f.get("itemIdentifier")?.as_str().map(str::to_owned))
        .collect()
}

/// Invokes and times one batch; fails unless the answer is an empty `batchItemFailures`.
fn invoke_ok(api: &RuntimeApi, proc: &mut Proc, event: Value) -> Res<Duration> {
    let started = Instant::now();
    let outcome = api.invoke(event, INVOKE_TIMEOUT);
    let elapsed = started.elapsed();
    let label = proc.label;
    match &outcome {
        Invocation::Response(answer) => match batch_item_failures(answer) {
            Some(failed) if failed.is_empty() => Ok(elapsed),
            _ => Err(format!(
                "{label} answered {answer} instead of an empty batchItemFailures: {}",
                proc.diagnose()
            )),
        },
        other => Err(format!(
            "{label} invocation failed: {other:?}: {}",
            proc.diagnose()
        )),
    }
}

/// Checks the stand-in's state: every thing quarantined as the function should, and every
/// call answered 200.
fn verify_state(fake: &FakeAws, kind: Kind, things: &[String]) -> Res<()> {
    if kind.sets_group() {
        let members = fake.group_members(GROUP);
        let missing: Vec<&String> = things.iter().filter(|t| !members.contains(*t)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: {} of {} things are not in group {GROUP} (e.g. {})",
                kind.label(),
                missing.len(),
                things.len(),
                missing[0]
            ));
        }
    }
    if kind.sets_shadow() {
        let want = json!({"quarantine": true});
        let missing: Vec<&String> = things
            .iter()
            .filter(|t| fake.shadow_desired(t, None).as_ref() != Some(&want))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: {} of {} shadows do not have desired.quarantine = true (e.g. {})",
                kind.label(),
                missing.len(),
                things.len(),
                missing[0]
            ));
        }
    }
    let bad: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.status != 200)
        .map(|c| format!("{} {:?} -> {}", c.op, c.thing, c.status))
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "{}: {} calls were not answered 200 (e.g. {})",
            kind.label(),
            bad.len(),
            bad[0]
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cold start and warm runs

#[derive(Default)]
struct Results {
    cold_start: Vec<Duration>,
    first_invoke: Vec<Duration>,
    /// Indexed [latency][batch size].
    warm: [[Vec<Duration>; 2]; 2],
    cpu: Duration,
    /// The same from the scheduler's nanosecond counters (None if a thread exited meanwhile).
    cpu_precise: Option<Duration>,
    records: usize,
    calls: usize,
    peak_kib: u64,
}

/// A new process: time to the first poll, then one 1-record invocation (0 ms latency).
fn cold_run(subject: &Subject, fake: &FakeAws, results: &mut Results) -> Res<()> {
    let api = RuntimeApi::start();
    let mut proc = Proc::spawn(subject, &api, &fake.endpoint(), &[])?;
    let ready = proc.wait_ready(&api, Duration::from_secs(60))?;
    let (event, things) = fresh_batch(subject.kind, 1);
    let first = invoke_ok(&api, &mut proc, event)?;
    verify_state(fake, subject.kind, &things)?;
    results.cold_start.push(ready);
    results.first_invoke.push(first);
    results.peak_kib = results.peak_kib.max(peak_rss_kib(proc.pid()).unwrap_or(0));
    Ok(())
}

/// One process against a stand-in with `latency_ms` per call: a warm-up batch, then `reps`
/// invocations of each batch size.
fn warm_runs(subject: &Subject, li: usize, reps: usize, results: &mut Results) -> Res<()> {
    let latency = Duration::from_millis(LATENCIES_MS[li]);
    let fake = FakeAws::start(FakeAwsConfig::new().latency(latency));
    let api = RuntimeApi::start();
    let mut proc = Proc::spawn(subject, &api, &fake.endpoint(), &[])?;
    proc.wait_ready(&api, Duration::from_secs(60))?;
    // Warm-up: the SDK loads credentials and opens its connections on first use.
    let mut things = Vec::new();
    for size in BATCH_SIZES {
        let (event, mut batch) = fresh_batch(subject.kind, size);
        invoke_ok(&api, &mut proc, event)?;
        things.append(&mut batch);
    }
    verify_state(&fake, subject.kind, &things)?;
    fake.reset_counters();
    let cpu_before = proc.cpu_time()?;
    let precise_before = task_cpu(proc.pid());
    let mut measured = Vec::new();
    for (si, size) in BATCH_SIZES.into_iter().enumerate() {
        for _ in 0..reps {
            let (event, mut batch) = fresh_batch(subject.kind, size);
            let took = invoke_ok(&api, &mut proc, event)?;
            results.warm[li][si].push(took);
            measured.append(&mut batch);
        }
    }
    let cpu_after = proc.cpu_time()?;
    let precise_after = task_cpu(proc.pid());
    verify_state(&fake, subject.kind, &measured)?;
    results.cpu += cpu_after.saturating_sub(cpu_before);
    let precise = match (precise_before, precise_after) {
        (Some((tids_before, before)), Some((tids_after, after)))
            if tids_before.is_subset(&tids_after) =>
        {
            Some(after.saturating_sub(before))
        }
        _ => None,
    };
    results.cpu_precise = match (li, results.cpu_precise, precise) {
        (0, _, p) => p,
        (_, Some(sum), Some(p)) => Some(sum + p),
        _ => None,
    };
    results.records += measured.len();
    results.calls += fake.calls().len();
    results.peak_kib = results.peak_kib.max(peak_rss_kib(proc.pid()).unwrap_or(0));
    Ok(())
}

fn median(values: &[Duration]) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn table(settings: &Settings) -> Res<()> {
    let subjects = subjects()?;
    let mut results: Vec<Results> = subjects.iter().map(|_| Results::default()).collect();
    println!(
        "## Cold start and warm invocations ({} cold runs, {} warm invocations per cell)\n",
        settings.cold_runs, settings.warm_reps
    );
    // Cold starts, taking the functions in turn so that drift on the machine hits all alike.
    let fake = FakeAws::start(FakeAwsConfig::new());
    for run in 0..settings.cold_runs {
        for (subject, r) in subjects.iter().zip(results.iter_mut()) {
            eprintln!(
                "cold start {}/{}: {}",
                run + 1,
                settings.cold_runs,
                subject.kind.label()
            );
            cold_run(subject, &fake, r)?;
        }
    }
    drop(fake);
    for (subject, r) in subjects.iter().zip(results.iter_mut()) {
        for (li, latency) in LATENCIES_MS.iter().enumerate() {
            eprintln!(
                "warm runs: {} at {latency} ms per call",
                subject.kind.label()
            );
            warm_runs(subject, li, settings.warm_reps, r)?;
        }
    }
    print_table(&subjects, &results, settings);
    print_targets(&subjects, &results);
    Ok(())
}

fn print_table(subjects: &[Subject], results: &[Results], settings: &Settings) {
    let mut header = String::from("| metric |");
    let mut rule = String::from("|---|");
    for s in subjects {
        header.push_str(&format!(" {} |", s.kind.label()));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    let row = |name: String, cell: &dyn Fn(&Subject, &Results) -> String| {
        let mut line = format!("| {name} |");
        for (s, r) in subjects.iter().zip(results) {
            line.push_str(&format!(" {} |", cell(s, r)));
        }
        println!("{line}");
    };
    row(
        format!(
            "cold start: spawn to first poll (median of {}; min-max)",
            settings.cold_runs
        ),
        &|_, r| {
            let min = r.cold_start.iter().min().copied().unwrap_or_default();
            let max = r.cold_start.iter().max().copied().unwrap_or_default();
            format!(
                "{:.1} ms ({:.1}-{:.1})",
                ms(median(&r.cold_start)),
                ms(min),
                ms(max)
            )
        },
    );
    row(
        "first invocation after cold start, 1 record, 0 ms/call (median)".into(),
        &|_, r| format!("{:.1} ms", ms(median(&r.first_invoke))),
    );
    for (li, latency) in LATENCIES_MS.iter().enumerate() {
        for (si, size) in BATCH_SIZES.iter().enumerate() {
            row(
                format!(
                    "warm, {size}-record SQS batch, {latency} ms/call: median (p90) of {}",
                    settings.warm_reps
                ),
                &|_, r| {
                    let v = &r.warm[li][si];
                    format!("{:.1} ms ({:.1})", ms(median(v)), ms(percentile(v, 90.0)))
                },
            );
        }
    }
    row(
        "CPU time per record (utime+stime over the warm runs)".into(),
        &|_, r| {
            format!(
                "{:.3} ms ({} records)",
                ms(r.cpu) / r.records.max(1) as f64,
                r.records
            )
        },
    );
    row(
        "CPU time per record (sum of /proc/PID/task/*/schedstat, ns)".into(),
        &|_, r| match r.cpu_precise {
            Some(cpu) => format!("{:.3} ms", ms(cpu) / r.records.max(1) as f64),
            None => "n/a (a thread exited)".to_owned(),
        },
    );
    row("peak memory (VmHWM, max over processes)".into(), &|_, r| {
        format!("{:.1} MiB", r.peak_kib as f64 / 1024.0)
    });
    row("AWS calls per record (warm runs)".into(), &|_, r| {
        format!("{:.2}", r.calls as f64 / r.records.max(1) as f64)
    });
    row("binary size".into(), &|s, _| s.size.clone());
    println!();
}

fn print_targets(subjects: &[Subject], results: &[Results]) {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let baseline = subjects
        .iter()
        .zip(results)
        .find(|(s, _)| s.kind == Kind::Python)
        .map(|(_, r)| median(&r.cold_start));
    println!("## Targets\n");
    println!("| target | function | measured | limit | result |");
    println!("|---|---|---:|---:|---|");
    for (s, r) in subjects.iter().zip(results) {
        if s.kind == Kind::Python {
            continue;
        }
        let name = s.kind.label();
        if let Some(base) = baseline {
            let cold = median(&r.cold_start);
            let limit = base / 20;
            println!(
                "| cold start <= 1/20 of the Python baseline's | {name} | {:.1} ms (1/{:.0}) | {:.1} ms | {} |",
                ms(cold),
                ms(base) / ms(cold).max(0.001),
                ms(limit),
                verdict(cold <= limit)
            );
        }
        let batch = median(&r.warm[1][1]);
        println!(
            "| 10-record batch at 20 ms/call within 1.5 round trips | {name} | {:.1} ms | 30.0 ms | {} |",
            ms(batch),
            verdict(batch <= Duration::from_millis(30))
        );
        let per_record = r.calls as f64 / r.records.max(1) as f64;
        println!(
            "| <= 1 AWS call per record | {name} | {per_record:.2} | 1.00 | {} |",
            verdict(per_record <= 1.0)
        );
        let mib = r.peak_kib as f64 / 1024.0;
        let mb = r.peak_kib as f64 * 1024.0 / 1e6;
        println!(
            "| peak memory < 30 MB | {name} | {mb:.1} MB ({mib:.1} MiB) | 30.0 MB | {} |",
            verdict(mb < 30.0)
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// Burst

struct BurstSpec {
    retry_mode: &'static str,
    records: usize,
    processes: usize,
    rate_per_second: f64,
    failure_share: f64,
    latency: Duration,
    max_receive_count: u32,
    /// How long a failed record stays invisible before SQS hands it out again (scaled down
    /// from SQS's default 30 s so that the burst fits the run).
    visibility_timeout: Duration,
    time_limit: Duration,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<usize>,
    delayed: VecDeque<(Instant, usize)>,
    in_flight: usize,
    receives: Vec<u32>,
    /// The receive on which the function reported the record done (0: never).
    done_on: Vec<u32>,
    dead: Vec<bool>,
    invocations: usize,
    failed_invocations: usize,
    stopped_by_time_limit: bool,
}

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes up to 10 visible records, as a Lambda SQS poller does; None when all is finished.
fn next_batch(queue: &Mutex<Queue>, deadline: Instant) -> Option<Vec<(usize, u32)>> {
    loop {
        {
            let mut q = lock(queue);
            let now = Instant::now();
            if now >= deadline {
                q.stopped_by_time_limit = true;
                return None;
            }
            while q.delayed.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, idx)) = q.delayed.pop_front() {
                    q.ready.push_back(idx);
                }
            }
            if !q.ready.is_empty() {
                let n = q.ready.len().min(10);
                let batch: Vec<usize> = q.ready.drain(..n).collect();
                q.in_flight += batch.len();
                return Some(
                    batch
                        .into_iter()
                        .map(|idx| {
                            q.receives[idx] += 1;
                            (idx, q.receives[idx])
                        })
                        .collect(),
                );
            }
            if q.delayed.is_empty() && q.in_flight == 0 {
                return None;
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
}

struct BurstOutcome {
    first_try: usize,
    after_redelivery: usize,
    dead: usize,
    dead_but_in_group: usize,
    unfinished: usize,
    lost: usize,
    false_success: usize,
    elapsed: Duration,
    calls: usize,
    accepted: usize,
    throttled: usize,
    failed_5xx: usize,
    invocations: usize,
    failed_invocations: usize,
    stopped_by_time_limit: bool,
}

fn burst_run(spec: &BurstSpec) -> Res<BurstOutcome> {
    let group = binary_path(Kind::Group.label());
    let subject = Subject {
        kind: Kind::Group,
        program: group,
        args: Vec::new(),
        size: String::new(),
    };
    let fake = FakeAws::start(
        FakeAwsConfig::new()
            .latency(spec.latency)
            .rate_limit(spec.rate_per_second)
            .failure_share(spec.failure_share)
            .seed(5),
    );
    let api = RuntimeApi::start();
    let mut procs = Vec::new();
    for _ in 0..spec.processes {
        procs.push(Proc::spawn(
            &subject,
            &api,
            &fake.endpoint(),
            &[("AWS_RETRY_MODE", spec.retry_mode)],
        )?);
    }
    let ready_by = Instant::now() + Duration::from_secs(30);
    while api.polls() < spec.processes {
        for p in procs.iter_mut() {
            if matches!(p.child.try_wait(), Ok(Some(_))) {
                return Err(format!("a burst function exited: {}", p.diagnose()));
            }
        }
        if Instant::now() >= ready_by {
            return Err(format!(
                "only {} of {} processes polled within 30 s",
                api.polls(),
                spec.processes
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
    let things: Vec<String> = (0..spec.records)
        .map(|i| format!("burst-{}-{i:05}", spec.retry_mode))
        .collect();
    let queue = Mutex::new(Queue {
        ready: (0..spec.records).collect(),
        receives: vec![0; spec.records],
        done_on: vec![0; spec.records],
        dead: vec![false; spec.records],
        ..Queue::default()
    });
    let started = Instant::now();
    let deadline = started + spec.time_limit;
    // One driver per process: Lambda's SQS poller keeps `processes` invocations in flight.
    thread::scope(|scope| {
        for _ in 0..spec.processes {
            scope.spawn(|| {
                while let Some(batch) = next_batch(&queue, deadline) {
                    let records: Vec<Value> = batch
                        .iter()
                        .map(|&(idx, receive)| sqs_record(idx, &things[idx], receive))
                        .collect();
                    let outcome = api.invoke(json!({ "Records": records }), INVOKE_TIMEOUT);
                    // Whole-batch failure unless the answer names the failed records.
                    let failed: Option<Vec<String>> = match &outcome {
                        Invocation::Response(answer) => batch_item_failures(answer),
                        _ => None,
                    };
                    let mut q = lock(&queue);
                    q.invocations += 1;
                    if failed.is_none() {
                        q.failed_invocations += 1;
                    }
                    q.in_flight -= batch.len();
                    let now = Instant::now();
                    for (idx, receive) in batch {
                        let id = message_id(idx);
                        let ok = failed.as_ref().is_some_and(|f| !f.contains(&id));
                        if ok {
                            q.done_on[idx] = receive;
                        } else if receive >= spec.max_receive_count {
                            q.dead[idx] = true;
                        } else {
                            q.delayed.push_back((now + spec.visibility_timeout, idx));
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let q = lock(&queue);
    let members: BTreeSet<String> = fake.group_members(GROUP);
    let mut out = BurstOutcome {
        first_try: 0,
        after_redelivery: 0,
        dead: 0,
        dead_but_in_group: 0,
        unfinished: 0,
        lost: 0,
        false_success: 0,
        elapsed,
        calls: fake.count(op::ADD_THING_TO_THING_GROUP),
        accepted: fake.count_status(op::ADD_THING_TO_THING_GROUP, 200),
        throttled: fake.count_status(op::ADD_THING_TO_THING_GROUP, 400),
        failed_5xx: fake.count_status(op::ADD_THING_TO_THING_GROUP, 500),
        invocations: q.invocations,
        failed_invocations: q.failed_invocations,
        stopped_by_time_limit: q.stopped_by_time_limit,
    };
    for (idx, thing) in things.iter().enumerate() {
        let in_group = members.contains(thing);
        let pending = q.ready.contains(&idx) || q.delayed.iter().any(|(_, i)| *i == idx);
        if q.done_on[idx] > 0 {
            if !in_group {
                out.false_success += 1;
                out.lost += 1;
            } else if q.done_on[idx] == 1 {
                out.first_try += 1;
            } else {
                out.after_redelivery += 1;
            }
        } else if q.dead[idx] {
            out.dead += 1;
            if in_group {
                out.dead_but_in_group += 1;
            }
        } else if pending {
            out.unfinished += 1;
        } else {
            out.lost += 1;
        }
    }
    let other_ops = fake.calls().len() - out.calls;
    if other_ops > 0 {
        return Err(format!(
            "quarantine-group made {other_ops} calls other than AddThingToThingGroup"
        ));
    }
    drop(procs);
    Ok(out)
}

fn burst(specs: &[BurstSpec]) -> Res<()> {
    let Some(first) = specs.first() else {
        return Ok(());
    };
    println!(
        "## Burst: {} violations in SQS batches of 10, {} quarantine-group processes\n",
        first.records, first.processes
    );
    println!(
        "Stand-in: {} req/s token bucket (HTTP 400 ThrottlingException above it), {:.0}% of requests 500, \
         {} ms latency per call. SQS simulation: a failed record is redelivered after {} ms, \
         dead-lettered after maxReceiveCount = {}. SDK: AWS_MAX_ATTEMPTS default (3), MAX_CONCURRENCY 10.\n",
        first.rate_per_second,
        first.failure_share * 100.0,
        first.latency.as_millis(),
        first.visibility_timeout.as_millis(),
        first.max_receive_count,
    );
    let mut outcomes = Vec::new();
    for spec in specs {
        eprintln!(
            "burst: AWS_RETRY_MODE={} ({} records, limit {:?})",
            spec.retry_mode, spec.records, spec.time_limit
        );
        outcomes.push(burst_run(spec)?);
    }
    let mut header = String::from("| | ");
    let mut rule = String::from("|---|");
    for spec in specs {
        header.push_str(&format!("AWS_RETRY_MODE={} | ", spec.retry_mode));
        rule.push_str("---:|");
    }
    println!("{}\n{rule}", header.trim_end());
    let row = |name: &str, cell: &dyn Fn(&BurstSpec, &BurstOutcome) -> String| {
        let mut line = format!("| {name} |");
        for (s, o) in specs.iter().zip(&outcomes) {
            line.push_str(&format!(" {} |", cell(s, o)));
        }
        println!("{line}");
    };
    row("done on first delivery", &|_, o| o.first_try.to_string());
    row("done after redelivery", &|_, o| {
        o.after_redelivery.to_string()
    });
    row("dead-lettered (maxReceiveCount reached)", &|_, o| {
        if o.dead_but_in_group > 0 {
            format!(
                "{} ({} of them in the group anyway)",
                o.dead, o.dead_but_in_group
            )
        } else {
            o.dead.to_string()
        }
    });
    row("still queued at the time limit", &|_, o| {
        o.unfinished.to_string()
    });
    row("lost (must be 0)", &|_, o| o.lost.to_string());
    row("elapsed", &|_, o| {
        format!("{:.1} s", o.elapsed.as_secs_f64())
    });
    row("records done per second", &|_, o| {
        format!(
            "{:.0}",
            (o.first_try + o.after_redelivery) as f64 / o.elapsed.as_secs_f64()
        )
    });
    row("accepted calls per second vs the set rate", &|s, o| {
        let rate = o.accepted as f64 / o.elapsed.as_secs_f64();
        format!(
            "{rate:.0} / {:.0} ({:.0}%)",
            s.rate_per_second,
            100.0 * rate / s.rate_per_second
        )
    });
    row("AddThingToThingGroup calls (all answers)", &|_, o| {
        o.calls.to_string()
    });
    row("  answered 400 ThrottlingException", &|_, o| {
        o.throttled.to_string()
    });
    row("  answered 500 (injected)", &|_, o| {
        o.failed_5xx.to_string()
    });
    row("calls per record", &|s, o| {
        format!("{:.2}", o.calls as f64 / s.records as f64)
    });
    row(
        "invocations (of which failed without a batch answer)",
        &|_, o| format!("{} ({})", o.invocations, o.failed_invocations),
    );
    println!();
    let mut problems = Vec::new();
    for (s, o) in specs.iter().zip(&outcomes) {
        if o.lost > 0 {
            problems.push(format!(
                "AWS_RETRY_MODE={}: {} records lost ({} reported done but not in the group)",
                s.retry_mode, o.lost, o.false_success
            ));
        }
        if o.stopped_by_time_limit {
            println!(
                "Note: AWS_RETRY_MODE={} stopped at its time limit of {:?}.",
                s.retry_mode, s.time_limit
            );
        }
    }
    if problems.is_empty() {
        println!(
            "Every record ended done or dead-lettered: none lost.{}\n",
            if outcomes.iter().any(|o| o.unfinished > 0) {
                " (Records still queued at a time limit are counted apart.)"
            } else {
                ""
            }
        );
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------

struct Settings {
    cold_runs: usize,
    warm_reps: usize,
    table: bool,
    burst: bool,
}

fn usage() -> &'static str {
    "usage: lambda-bench [--quick | --burst-only]\n\
     \x20 --quick       3 cold starts and 10 warm invocations per cell, no burst\n\
     \x20 --burst-only  only the burst test\n\
     Runs target/release/quarantine-{group,shadow} (or QUARANTINE_BIN_DIR) and the Python\n\
     baseline in .venv; build first: cargo build --release -p quarantine-group -p quarantine-shadow"
}

fn main() {
    let mut settings = Settings {
        cold_runs: 5,
        warm_reps: 20,
        table: true,
        burst: true,
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => {
                settings.cold_runs = 3;
                settings.warm_reps = 10;
                settings.burst = false;
            }
            "--burst-only" => settings.table = false,
            "-h" | "--help" => {
                println!("{}", usage());
                return;
            }
            other => {
                eprintln!("lambda-bench: unknown argument {other}\n{}", usage());
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let result = run(&settings);
    eprintln!("lambda-bench: {:.1} s", started.elapsed().as_secs_f64());
    if let Err(e) = result {
        eprintln!("lambda-bench: ABORTED: {e}");
        std::process::exit(1);
    }
}

/// The first three fields of /proc/loadavg: other work on the machine skews the figures.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn run(settings: &Settings) -> Res<()> {
    println!("# lambda-bench\n");
    println!(
        "Machine: {} CPUs. Functions: {}, {}. Local stand-ins, not AWS.\n",
        thread::available_parallelism().map_or(0, |n| n.get()),
        binary_path(Kind::Group.label()).display(),
        binary_path(Kind::Shadow.label()).display(),
    );
    println!(
        "Load average at the start (1, 5, 15 min): {}\n",
        load_average()
    );
    if settings.table {
        table(settings)?;
        println!("Load average after the table: {}\n", load_average());
    }
    if settings.burst {
        let spec = |retry_mode| BurstSpec {
            retry_mode,
            records: 10_000,
            processes: 4,
            rate_per_second: 200.0,
            failure_share: 0.02,
            latency: Duration::from_millis(10),
            max_receive_count: 5,
            visibility_timeout: Duration::from_millis(500),
            time_limit: Duration::from_secs(75),
        };
        burst(&[spec("adaptive"), spec("standard")])?;
        println!("Load average after the burst: {}\n", load_average());
    }
    Ok(())
}
