//! `lambda-bench`: the two function binaries and the seed article's Python handler, side by
//! side, each as a real process against the local Lambda Runtime API and the local AWS
//! stand-in ([`StandIn`]) with injected latency; then a burst of 10,000 violations against a
//! throttling, failing stand-in. See BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p quarantine-group -p quarantine-shadow -p test-harness
//! lambda-bench --group PATH --shadow PATH [--python PATH] [--quick | --burst-only]
//! ```
//!
//! It builds nothing: it runs the binaries it is given (`--group`/`--shadow`, or the
//! variables `QUARANTINE_GROUP_BIN`/`QUARANTINE_SHADOW_BIN`) and `.venv/bin/python
//! bench/baseline/bootstrap.py`. Every measured invocation is checked (empty
//! `batchItemFailures`, the things in the group / the shadows set / the connections cut in
//! the stand-in): the run aborts rather than measure failures.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::Value;
use test_harness::fixtures::{sns_envelope, sqs_message, violation};
use test_harness::scenarios::{GROUP, Mitigation};
use test_harness::{
    Env, FunctionProcess, Invocation, Op, RuntimeApi, StandIn, StandInConfig, local_aws_env,
    workspace_root,
};

mod as_lambda;
mod cpu_cap;
mod link;

type Res<T> = Result<T, String>;

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
    Certificate,
    Python,
    /// `lambda-floor`: the runtime alone, no AWS call.
    Floor,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Group => "quarantine-group",
            Kind::Shadow => "quarantine-shadow",
            Kind::Certificate => "quarantine-certificate",
            Kind::Python => "python seed (boto3)",
            Kind::Floor => "floor (runtime only)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::Shadow => "shadow",
            Kind::Certificate => "cert",
            Kind::Python => "python",
            Kind::Floor => "floor",
        }
    }

    /// What the function does to a quarantined thing, as the stand-in shows it.
    fn mitigations(self) -> &'static [Mitigation] {
        match self {
            Kind::Group => &[Mitigation::ThingGroup],
            Kind::Shadow => &[Mitigation::Shadow],
            Kind::Python => &[Mitigation::ThingGroup, Mitigation::Shadow],
            // Checked apart: the thing's certificate is INACTIVE (see `verify_state`).
            Kind::Certificate | Kind::Floor => &[],
        }
    }

    /// The function cuts the thing's live connection (DeleteConnection) after the group change.
    fn disconnects(self) -> bool {
        self == Kind::Group
    }

    /// AWS calls per quarantined thing.
    fn calls_per_record(self) -> usize {
        self.mitigations().len() + usize::from(self.disconnects())
    }
}

/// The programs to measure.
struct Programs {
    group: PathBuf,
    shadow: PathBuf,
    certificate: PathBuf,
    floor: PathBuf,
    python: PathBuf,
}

struct Subject {
    kind: Kind,
    program: PathBuf,
    args: Vec<String>,
    /// What the size row shows.
    size: String,
    /// With the quarantine ledger (`LEDGER_TABLE`, on the stand-in's DynamoDB table).
    ledger: bool,
}

impl Subject {
    fn binary(kind: Kind, program: &PathBuf) -> Res<Subject> {
        let bytes = fs::metadata(program)
            .map_err(|e| format!("{}: {e}", program.display()))?
            .len();
        Ok(Subject {
            kind,
            size: format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
            program: program.clone(),
            args: Vec::new(),
            ledger: false,
        })
    }

    /// The same function acting from the quarantine ledger.
    fn with_ledger(self) -> Subject {
        Subject {
            ledger: true,
            ..self
        }
    }

    /// The name `--functions` knows it by: `group`, `group+ledger`, `shadow`, ...
    fn short_label(&self) -> String {
        if self.ledger {
            format!("{}+ledger", self.kind.short())
        } else {
            self.kind.short().to_owned()
        }
    }

    fn label(&self) -> String {
        if self.ledger {
            format!("{} + ledger", self.kind.label())
        } else {
            self.kind.label().to_owned()
        }
    }

    /// Starts the function against its own Runtime API and `aws`, and waits for its first
    /// poll.
    fn start(&self, aws: &StandIn) -> Res<Running> {
        let api = RuntimeApi::start();
        let mut process = self.spawn(&api, &aws.endpoint(), &[])?;
        let ready = process.wait_ready(&api, Duration::from_secs(60))?;
        // The connections' warm-up requests are init's, not the events'.
        aws.reset_counters();
        Ok(Running {
            process,
            api,
            ready,
        })
    }

    /// Starts the function against `api` and the stand-in at `endpoint`.
    fn spawn(
        &self,
        api: &RuntimeApi,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Res<FunctionProcess> {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(workspace_root());
        let mut env: Env = local_aws_env(Some(endpoint))
            .set("AWS_MAX_ATTEMPTS", "3")
            .set("QUARANTINE_GROUP", GROUP)
            .set("MAX_CONCURRENCY", "10")
            .set("PYTHONDONTWRITEBYTECODE", "1")
            .set("PYTHONUNBUFFERED", "1");
        for (name, value) in extra {
            env = env.set(name, *value);
        }
        FunctionProcess::spawn(command, api, &env)
            .map_err(|e| format!("{}: {e}", self.kind.label()))
    }
}

/// A function process polling its own Runtime API. (Fields drop in order: the process is
/// stopped before its Runtime API.)
struct Running {
    process: FunctionProcess,
    api: RuntimeApi,
    /// From the spawn to the first poll.
    ready: Duration,
}

fn subjects(programs: &Programs) -> Res<Vec<Subject>> {
    Ok(vec![
        Subject::binary(Kind::Group, &programs.group)?,
        Subject::binary(Kind::Shadow, &programs.shadow)?,
        python_subject(programs)?,
    ])
}

/// Every function of the as-Lambda table: the three functions, the seed, the floor.
fn lambda_subjects(programs: &Programs) -> Res<Vec<Subject>> {
    Ok(vec![
        Subject::binary(Kind::Group, &programs.group)?,
        Subject::binary(Kind::Group, &programs.group)?.with_ledger(),
        Subject::binary(Kind::Shadow, &programs.shadow)?,
        Subject::binary(Kind::Shadow, &programs.shadow)?.with_ledger(),
        Subject::binary(Kind::Certificate, &programs.certificate)?,
        python_subject(programs)?,
        Subject::binary(Kind::Floor, &programs.floor)?,
    ])
}

/// The seed article's handler under `.venv/bin/python bench/baseline/bootstrap.py`.
fn python_subject(programs: &Programs) -> Res<Subject> {
    let root = workspace_root();
    let bootstrap = root.join("bench/baseline/bootstrap.py");
    let handler = root.join("bench/baseline/seed_handler.py");
    if !programs.python.is_file() {
        return Err(format!(
            "{} not found: create the project venv first (scripts/ensure-venv.sh)",
            programs.python.display()
        ));
    }
    let scripts: u64 = [&bootstrap, &handler]
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()))
        .sum::<Result<u64, _>>()
        .map_err(|e| format!("bench/baseline scripts: {e}"))?;
    Ok(Subject {
        kind: Kind::Python,
        program: programs.python.clone(),
        args: vec![bootstrap.display().to_string()],
        size: format!(
            "n/a (interpreter; scripts {:.1} KiB)",
            scripts as f64 / 1024.0
        ),
        ledger: false,
    })
}

/// Total CPU time (user + system, all threads) of a process so far, from `/proc/PID/stat`.
fn process_cpu_time(process: &FunctionProcess) -> Res<Duration> {
    cpu_time(process.pid())
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

/// One SQS record whose body is the SNS envelope of an in-alarm violation for `thing`.
fn sqs_record(n: usize, thing: &str, receive_count: u32) -> SqsMessage {
    let message = violation(thing, "in-alarm", &format!("{n:032x}")).to_string();
    let envelope = sns_envelope(&format!("1c7f6b8d-2031-4f4c-9bad-{n:012x}"), &message);
    let mut record = sqs_message(&message_id(n), &envelope);
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    record
}

/// The SQS Lambda event of these records.
fn sqs_event(records: Vec<SqsMessage>) -> Value {
    let mut event = SqsEvent::default();
    event.records = records;
    serde_json::to_value(event).unwrap_or_default()
}

/// One record of a new alert (a violation id not seen before) for `thing`, already known to
/// the stand-in.
fn new_alert(thing: &str) -> Value {
    let n = NEXT_THING.fetch_add(1, Ordering::Relaxed);
    sqs_event(vec![sqs_record(n, thing, 1)])
}

/// A batch of `size` records for fresh things, connected in the stand-in; returns the event
/// and the thing names.
fn fresh_batch(kind: Kind, size: usize, aws: &StandIn) -> (Value, Vec<String>) {
    let mut records = Vec::with_capacity(size);
    let mut things = Vec::with_capacity(size);
    for _ in 0..size {
        let n = NEXT_THING.fetch_add(1, Ordering::Relaxed);
        let thing = format!("bench-{}-{n:06}", kind.short());
        aws.connect(&thing, Some(&thing));
        if kind == Kind::Certificate {
            aws.attach_certificate(&thing, &certificate_of(&thing));
        }
        records.push(sqs_record(n, &thing, 1));
        things.push(thing);
    }
    (
        serde_json::to_value(sqs_event(records)).unwrap_or_default(),
        things,
    )
}

/// The one certificate of a benchmark thing: its name in hex, padded to a certificate id's
/// 64 digits (benchmark names are shorter than 32 bytes).
fn certificate_of(thing: &str) -> String {
    let hex: String = thing.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<64}")
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
fn invoke_ok(api: &RuntimeApi, process: &mut FunctionProcess, event: &Value) -> Res<Duration> {
    let started = Instant::now();
    let outcome = api.invoke(event, INVOKE_TIMEOUT);
    let elapsed = started.elapsed();
    match &outcome {
        Invocation::Response(answer) => match batch_item_failures(answer) {
            Some(failed) if failed.is_empty() => Ok(elapsed),
            _ => Err(format!(
                "answered {answer} instead of an empty batchItemFailures: {}",
                process.diagnose()
            )),
        },
        other => Err(format!(
            "invocation failed: {other:?}: {}",
            process.diagnose()
        )),
    }
}

/// Checks the stand-in's state: every thing quarantined as the function should (and its
/// connection cut, if the function does that), and every call answered 200.
fn verify_state(aws: &StandIn, kind: Kind, things: &[String]) -> Res<()> {
    verify_state_with(aws, kind, things, kind.disconnects())
}

/// [`verify_state`], saying whether the function was configured to cut connections.
fn verify_state_with(aws: &StandIn, kind: Kind, things: &[String], disconnects: bool) -> Res<()> {
    for mitigation in kind.mitigations() {
        let missing: Vec<&String> = things
            .iter()
            .filter(|t| !mitigation.is_applied(aws, t))
            .collect();
        if let Some(first) = missing.first() {
            return Err(format!(
                "{}: {} of {} things are not quarantined by {mitigation:?} (e.g. {first})",
                kind.label(),
                missing.len(),
                things.len(),
            ));
        }
    }
    if kind == Kind::Certificate
        && let Some(active) = things
            .iter()
            .find(|t| aws.certificate_status(&certificate_of(t)).as_deref() != Some("INACTIVE"))
    {
        return Err(format!(
            "{}: {active}'s certificate is still active",
            kind.label()
        ));
    }
    if disconnects && let Some(still) = things.iter().find(|t| aws.is_connected(t)) {
        return Err(format!("{}: {still} is still connected", kind.label()));
    }
    // The ledger's refusals (a duplicate's ConditionalCheckFailedException, a budget marker
    // already there) are answers the function expects; a ledger error it did not expect
    // fails the record, which `invoke_ok` catches.
    let ledger_refusal = |c: &test_harness::stand_in::Call| {
        c.status == 400 && matches!(c.op, Op::UpdateItem | Op::PutItem | Op::TransactWriteItems)
    };
    let bad: Vec<String> = aws
        .calls()
        .iter()
        .filter(|c| c.status != 200 && !ledger_refusal(c))
        .map(|c| format!("{:?} {:?} -> {}", c.op, c.subject, c.status))
        .collect();
    if let Some(first) = bad.first() {
        return Err(format!(
            "{}: {} calls were not answered 200 (e.g. {first})",
            kind.label(),
            bad.len(),
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

impl Results {
    /// Keeps the process's peak memory if it is the highest yet.
    fn note_peak(&mut self, process: &FunctionProcess) {
        self.peak_kib = self.peak_kib.max(process.peak_rss_kib().unwrap_or(0));
    }
}

/// A new process: time to the first poll, then one 1-record invocation (0 ms latency).
fn cold_run(subject: &Subject, aws: &StandIn, results: &mut Results) -> Res<()> {
    let mut run = subject.start(aws)?;
    let (event, things) = fresh_batch(subject.kind, 1, aws);
    let first = invoke_ok(&run.api, &mut run.process, &event)?;
    verify_state(aws, subject.kind, &things)?;
    results.cold_start.push(run.ready);
    results.first_invoke.push(first);
    results.note_peak(&run.process);
    Ok(())
}

/// One process against a stand-in with `latency_ms` per call: a warm-up batch, then `reps`
/// invocations of each batch size.
fn warm_runs(subject: &Subject, li: usize, reps: usize, results: &mut Results) -> Res<()> {
    let latency = Duration::from_millis(LATENCIES_MS[li]);
    let aws = StandIn::with(StandInConfig::default().latency(latency));
    let mut run = subject.start(&aws)?;
    // Warm-up: the SDK loads credentials and opens its connections on first use.
    let mut things = Vec::new();
    for size in BATCH_SIZES {
        let (event, mut batch) = fresh_batch(subject.kind, size, &aws);
        invoke_ok(&run.api, &mut run.process, &event)?;
        things.append(&mut batch);
    }
    verify_state(&aws, subject.kind, &things)?;
    aws.reset_counters();
    let cpu_before = process_cpu_time(&run.process)?;
    let precise_before = task_cpu(run.process.pid());
    let mut measured = Vec::new();
    for (si, size) in BATCH_SIZES.into_iter().enumerate() {
        for _ in 0..reps {
            let (event, mut batch) = fresh_batch(subject.kind, size, &aws);
            let took = invoke_ok(&run.api, &mut run.process, &event)?;
            results.warm[li][si].push(took);
            measured.append(&mut batch);
        }
    }
    let cpu_after = process_cpu_time(&run.process)?;
    let precise_after = task_cpu(run.process.pid());
    verify_state(&aws, subject.kind, &measured)?;
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
    results.calls += aws.calls().len();
    results.note_peak(&run.process);
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
    let subjects = subjects(&settings.programs)?;
    let mut results: Vec<Results> = subjects.iter().map(|_| Results::default()).collect();
    println!(
        "## Cold start and warm invocations ({} cold runs, {} warm invocations per cell)\n",
        settings.cold_runs, settings.warm_reps
    );
    // Cold starts, taking the functions in turn so that drift on the machine hits all alike.
    let aws = StandIn::start();
    for run in 0..settings.cold_runs {
        for (subject, r) in subjects.iter().zip(results.iter_mut()) {
            eprintln!(
                "cold start {}/{}: {}",
                run + 1,
                settings.cold_runs,
                subject.kind.label()
            );
            cold_run(subject, &aws, r)?;
        }
    }
    drop(aws);
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
    let table = Markdown {
        columns: subjects,
        results,
    };
    table.header("metric", |s| s.kind.label().to_owned());
    table.row(
        &format!(
            "cold start: spawn to first poll (median of {}; min-max)",
            settings.cold_runs
        ),
        |_, r| {
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
    table.row(
        "first invocation after cold start, 1 record, 0 ms/call (median)",
        |_, r| format!("{:.1} ms", ms(median(&r.first_invoke))),
    );
    for (li, latency) in LATENCIES_MS.iter().enumerate() {
        for (si, size) in BATCH_SIZES.iter().enumerate() {
            table.row(
                &format!(
                    "warm, {size}-record SQS batch, {latency} ms/call: median (p90) of {}",
                    settings.warm_reps
                ),
                |_, r| {
                    let v = &r.warm[li][si];
                    format!("{:.1} ms ({:.1})", ms(median(v)), ms(percentile(v, 90.0)))
                },
            );
        }
    }
    table.row(
        "CPU time per record (utime+stime over the warm runs)",
        |_, r| {
            format!(
                "{:.3} ms ({} records)",
                ms(r.cpu) / r.records.max(1) as f64,
                r.records
            )
        },
    );
    table.row(
        "CPU time per record (sum of /proc/PID/task/*/schedstat, ns)",
        |_, r| match r.cpu_precise {
            Some(cpu) => format!("{:.3} ms", ms(cpu) / r.records.max(1) as f64),
            None => "n/a (a thread exited)".to_owned(),
        },
    );
    table.row("peak memory (VmHWM, max over processes)", |_, r| {
        format!("{:.1} MiB", r.peak_kib as f64 / 1024.0)
    });
    table.row("AWS calls per record (warm runs)", |_, r| {
        format!("{:.2}", r.calls as f64 / r.records.max(1) as f64)
    });
    table.row("binary size", |s, _| s.size.clone());
    println!();
}

/// A Markdown table with a column per subject of a measurement: a row names a figure and
/// shows it for each.
struct Markdown<'a, C, R> {
    columns: &'a [C],
    /// One per column.
    results: &'a [R],
}

impl<C, R> Markdown<'_, C, R> {
    /// Prints the header: `corner` over the row names, then each column's label.
    fn header(&self, corner: &str, label: impl Fn(&C) -> String) {
        let mut header = if corner.is_empty() {
            "| |".to_owned()
        } else {
            format!("| {corner} |")
        };
        let mut rule = String::from("|---|");
        for column in self.columns {
            header.push_str(&format!(" {} |", label(column)));
            rule.push_str("---:|");
        }
        println!("{header}\n{rule}");
    }

    fn row(&self, name: &str, cell: impl Fn(&C, &R) -> String) {
        let mut line = format!("| {name} |");
        for (column, result) in self.columns.iter().zip(self.results) {
            line.push_str(&format!(" {} |", cell(column, result)));
        }
        println!("{line}");
    }
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
        // The records of a batch run at once: a 10-record batch takes the calls of ONE
        // record in sequence (the group function with DISCONNECT: AddThingToThingGroup, then
        // DeleteConnection), plus half a round trip of slack.
        let batch = median(&r.warm[1][1]);
        let trips = s.kind.calls_per_record() as f64 + 0.5;
        let limit = Duration::from_secs_f64(0.020 * trips);
        println!(
            "| 10-record batch at 20 ms/call within {trips:.1} round trips | {name} | {:.1} ms | {:.1} ms | {} |",
            ms(batch),
            ms(limit),
            verdict(batch <= limit)
        );
        let per_record = r.calls as f64 / r.records.max(1) as f64;
        let limit = s.kind.calls_per_record() as f64;
        println!(
            "| <= 1 AWS call per record and action | {name} | {per_record:.2} | {limit:.2} | {} |",
            verdict(per_record <= limit)
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

impl BurstSpec {
    /// Today's burst: `records` violations against a 200 req/s quota with 2% failures, 4
    /// processes, standard retries.
    fn quota(records: usize) -> BurstSpec {
        BurstSpec {
            retry_mode: "standard",
            records,
            processes: 4,
            rate_per_second: 200.0,
            failure_share: 0.02,
            latency: Duration::from_millis(10),
            max_receive_count: 5,
            visibility_timeout: Duration::from_millis(500),
            // Twice what the rate limit allows for the group function's calls per record
            // (AddThingToThingGroup, then DeleteConnection: both count against the bucket).
            time_limit: Duration::from_secs_f64(
                records as f64 * Kind::Group.calls_per_record() as f64 / 200.0 * 2.0,
            ),
        }
    }
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

impl Queue {
    /// `records` records, all visible, none received yet.
    fn new(records: usize) -> Queue {
        Queue {
            ready: (0..records).collect(),
            receives: vec![0; records],
            done_on: vec![0; records],
            dead: vec![false; records],
            ..Queue::default()
        }
    }

    /// Settles an invoked batch of (record, receive): a record the answer does not name as
    /// failed is done; any other is dead-lettered on its last receive, else made visible
    /// again after the visibility timeout. `failed` is None when the invocation gave no
    /// batch answer: the whole batch failed.
    fn settle(&mut self, batch: Vec<(usize, u32)>, failed: Option<Vec<String>>, spec: &BurstSpec) {
        self.invocations += 1;
        if failed.is_none() {
            self.failed_invocations += 1;
        }
        self.in_flight -= batch.len();
        let now = Instant::now();
        for (idx, receive) in batch {
            let id = message_id(idx);
            let ok = failed.as_ref().is_some_and(|f| !f.contains(&id));
            if ok {
                self.done_on[idx] = receive;
            } else if receive >= spec.max_receive_count {
                self.dead[idx] = true;
            } else {
                self.delayed.push_back((now + spec.visibility_timeout, idx));
            }
        }
    }

    /// What became of record `idx`, whose thing is in the quarantine group or not.
    fn fate(&self, idx: usize, in_group: bool) -> Fate {
        if self.done_on[idx] > 0 {
            if !in_group {
                Fate::FalseSuccess
            } else if self.done_on[idx] == 1 {
                Fate::FirstTry
            } else {
                Fate::AfterRedelivery
            }
        } else if self.dead[idx] {
            Fate::DeadLettered { in_group }
        } else if self.ready.contains(&idx) || self.delayed.iter().any(|(_, i)| *i == idx) {
            Fate::Unfinished
        } else {
            Fate::Lost
        }
    }
}

/// What became of one record of the burst.
enum Fate {
    FirstTry,
    AfterRedelivery,
    /// Reported done, but the thing is not in the group: lost too.
    FalseSuccess,
    DeadLettered {
        in_group: bool,
    },
    /// Still queued when the time limit stopped the run.
    Unfinished,
    /// Neither done, dead-lettered nor queued.
    Lost,
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

#[derive(Default)]
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
    /// DeleteConnection calls (all answers), and things whose connection was cut.
    disconnects: usize,
    cut: usize,
    invocations: usize,
    failed_invocations: usize,
    stopped_by_time_limit: bool,
    /// Peak memory (VmHWM) of each process, KiB.
    peak_kib: Vec<u64>,
}

impl BurstOutcome {
    /// The fate of every record and the stand-in's counts, once the drivers are done.
    fn tally(queue: &Queue, aws: &StandIn, things: &[String], elapsed: Duration) -> BurstOutcome {
        let members: BTreeSet<String> = aws.group_members(GROUP);
        let mut out = BurstOutcome {
            elapsed,
            calls: aws.count(Op::AddThingToThingGroup),
            accepted: aws.count_status(Op::AddThingToThingGroup, 200),
            throttled: aws.count_status(Op::AddThingToThingGroup, 400),
            failed_5xx: aws.count_status(Op::AddThingToThingGroup, 500),
            disconnects: aws.count(Op::DeleteConnection),
            cut: things.iter().filter(|t| !aws.is_connected(t)).count(),
            invocations: queue.invocations,
            failed_invocations: queue.failed_invocations,
            stopped_by_time_limit: queue.stopped_by_time_limit,
            ..BurstOutcome::default()
        };
        for (idx, thing) in things.iter().enumerate() {
            out.count(queue.fate(idx, members.contains(thing)));
        }
        out
    }

    fn count(&mut self, fate: Fate) {
        match fate {
            Fate::FirstTry => self.first_try += 1,
            Fate::AfterRedelivery => self.after_redelivery += 1,
            Fate::FalseSuccess => {
                self.false_success += 1;
                self.lost += 1;
            }
            Fate::DeadLettered { in_group } => {
                self.dead += 1;
                if in_group {
                    self.dead_but_in_group += 1;
                }
            }
            Fate::Unfinished => self.unfinished += 1,
            Fate::Lost => self.lost += 1,
        }
    }
}

fn burst_run(spec: &BurstSpec, group: &Subject) -> Res<BurstOutcome> {
    let aws = StandIn::with(
        StandInConfig::default()
            .latency(spec.latency)
            .rate_limit(spec.rate_per_second)
            .failure_share(spec.failure_share)
            .seed(5),
    );
    let api = RuntimeApi::start();
    let procs = start_burst_processes(spec, group, &api, &aws)?;
    // The connections' warm-up requests are init's, not the burst's.
    aws.reset_counters();
    let things: Vec<String> = (0..spec.records)
        .map(|i| format!("burst-{}-{i:05}", spec.retry_mode))
        .collect();
    for thing in &things {
        aws.connect(thing, Some(thing));
    }
    let queue = Mutex::new(Queue::new(spec.records));
    let started = Instant::now();
    let deadline = started + spec.time_limit;
    // One driver per process: Lambda's SQS poller keeps `processes` invocations in flight.
    thread::scope(|scope| {
        for _ in 0..spec.processes {
            scope.spawn(|| drive(&api, &queue, &things, spec, deadline));
        }
    });
    let elapsed = started.elapsed();
    let mut out = BurstOutcome::tally(&lock(&queue), &aws, &things, elapsed);
    out.peak_kib = procs
        .iter()
        .map(|p| p.peak_rss_kib().unwrap_or(0))
        .collect();
    let other_ops = aws.calls().len() - out.calls - out.disconnects;
    if other_ops > 0 {
        return Err(format!(
            "quarantine-group made {other_ops} calls other than AddThingToThingGroup and DeleteConnection"
        ));
    }
    drop(procs);
    Ok(out)
}

/// `spec.processes` quarantine-group processes, once every one polls `api`.
fn start_burst_processes(
    spec: &BurstSpec,
    group: &Subject,
    api: &RuntimeApi,
    aws: &StandIn,
) -> Res<Vec<FunctionProcess>> {
    let mut procs = Vec::new();
    for _ in 0..spec.processes {
        procs.push(group.spawn(api, &aws.endpoint(), &[("AWS_RETRY_MODE", spec.retry_mode)])?);
    }
    let ready_by = Instant::now() + Duration::from_secs(30);
    while api.polls() < spec.processes {
        for p in procs.iter_mut() {
            if p.try_exit_status().is_some() {
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
    Ok(procs)
}

/// One poller: invokes the batches the queue hands out and settles each, until the queue
/// is finished or the deadline passes.
fn drive(
    api: &RuntimeApi,
    queue: &Mutex<Queue>,
    things: &[String],
    spec: &BurstSpec,
    deadline: Instant,
) {
    while let Some(batch) = next_batch(queue, deadline) {
        let records: Vec<SqsMessage> = batch
            .iter()
            .map(|&(idx, receive)| sqs_record(idx, &things[idx], receive))
            .collect();
        let outcome = api.invoke(&sqs_event(records), INVOKE_TIMEOUT);
        // Whole-batch failure unless the answer names the failed records.
        let failed: Option<Vec<String>> = match &outcome {
            Invocation::Response(answer) => batch_item_failures(answer),
            _ => None,
        };
        lock(queue).settle(batch, failed, spec);
    }
}

fn burst(specs: &[BurstSpec], group: &Subject) -> Res<()> {
    let Some(first) = specs.first() else {
        return Ok(());
    };
    print_burst_setup(first);
    let mut outcomes = Vec::new();
    for spec in specs {
        eprintln!(
            "burst: AWS_RETRY_MODE={} ({} records, limit {:?})",
            spec.retry_mode, spec.records, spec.time_limit
        );
        outcomes.push(burst_run(spec, group)?);
    }
    print_burst_table(specs, &outcomes);
    burst_verdict(specs, &outcomes)
}

fn print_burst_setup(spec: &BurstSpec) {
    println!(
        "## Burst: {} violations in SQS batches of 10, {} quarantine-group processes\n",
        spec.records, spec.processes
    );
    println!(
        "Stand-in: {} req/s token bucket (HTTP 400 ThrottlingException above it), {:.0}% of requests 500, \
         {} ms latency per call. SQS simulation: a failed record is redelivered after {} ms, \
         dead-lettered after maxReceiveCount = {}. SDK: AWS_MAX_ATTEMPTS default (3), MAX_CONCURRENCY 10.\n",
        spec.rate_per_second,
        spec.failure_share * 100.0,
        spec.latency.as_millis(),
        spec.visibility_timeout.as_millis(),
        spec.max_receive_count,
    );
}

fn print_burst_table(specs: &[BurstSpec], outcomes: &[BurstOutcome]) {
    let table = Markdown {
        columns: specs,
        results: outcomes,
    };
    table.header("", |s| format!("AWS_RETRY_MODE={}", s.retry_mode));
    table.row("done on first delivery", |_, o| o.first_try.to_string());
    table.row("done after redelivery", |_, o| {
        o.after_redelivery.to_string()
    });
    table.row("dead-lettered (maxReceiveCount reached)", |_, o| {
        if o.dead_but_in_group > 0 {
            format!(
                "{} ({} of them in the group anyway)",
                o.dead, o.dead_but_in_group
            )
        } else {
            o.dead.to_string()
        }
    });
    table.row("still queued at the time limit", |_, o| {
        o.unfinished.to_string()
    });
    table.row("lost (must be 0)", |_, o| o.lost.to_string());
    table.row("elapsed", |_, o| {
        format!("{:.1} s", o.elapsed.as_secs_f64())
    });
    table.row("records done per second", |_, o| {
        format!(
            "{:.0}",
            (o.first_try + o.after_redelivery) as f64 / o.elapsed.as_secs_f64()
        )
    });
    table.row("accepted calls per second vs the set rate", |s, o| {
        let rate = o.accepted as f64 / o.elapsed.as_secs_f64();
        format!(
            "{rate:.0} / {:.0} ({:.0}%)",
            s.rate_per_second,
            100.0 * rate / s.rate_per_second
        )
    });
    table.row("AddThingToThingGroup calls (all answers)", |_, o| {
        o.calls.to_string()
    });
    table.row("  answered 400 ThrottlingException", |_, o| {
        o.throttled.to_string()
    });
    table.row("  answered 500 (injected)", |_, o| o.failed_5xx.to_string());
    table.row(
        "DeleteConnection calls (all answers); connections cut",
        |_, o| format!("{}; {}", o.disconnects, o.cut),
    );
    table.row("AddThingToThingGroup calls per record", |s, o| {
        format!("{:.2}", o.calls as f64 / s.records as f64)
    });
    table.row(
        "invocations (of which failed without a batch answer)",
        |_, o| format!("{} ({})", o.invocations, o.failed_invocations),
    );
    println!();
}

/// Notes the runs that stopped at their time limit; fails if any run lost a record.
fn burst_verdict(specs: &[BurstSpec], outcomes: &[BurstOutcome]) -> Res<()> {
    let mut problems = Vec::new();
    for (s, o) in specs.iter().zip(outcomes) {
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
    programs: Programs,
    cold_runs: usize,
    warm_reps: usize,
    /// The sections to run.
    table: bool,
    as_lambda: bool,
    burst: bool,
    scale: bool,
    lambda: as_lambda::Setup,
    /// `--functions`: the as-Lambda table's functions (all when None).
    functions: Option<Vec<String>>,
}

const USAGE: &str = "usage: lambda-bench --group PATH --shadow PATH [--certificate PATH] [--floor PATH]
                    [--python PATH] [--rtt-ms N] [--no-cpu-cap] [--functions LIST]
                    [--quick | --burst-only | --only LIST]
  --group PATH        the quarantine-group binary (default: $QUARANTINE_GROUP_BIN)
  --shadow PATH       the quarantine-shadow binary (default: $QUARANTINE_SHADOW_BIN)
  --certificate PATH  the quarantine-certificate binary (default: $QUARANTINE_CERTIFICATE_BIN,
                      else next to the group binary)
  --floor PATH        the lambda-floor binary (default: $LAMBDA_FLOOR_BIN, else next to lambda-bench)
  --python PATH       the Python for the seed baseline (default: .venv/bin/python)
  --rtt-ms N          the link's round trip in the as-Lambda table (default 20)
  --no-cpu-cap        run the as-Lambda table without the 128 MB CPU share
  --functions LIST    the as-Lambda table's functions only, comma-separated, of: group,
                      group+ledger, shadow, shadow+ledger, cert, python, floor (default all)
  --quick             3 cold starts and 10 warm invocations per cell, no burst or scale run
  --burst-only        only the burst (200 req/s quota) and the scale run
  --only LIST         only these sections, comma-separated: table, lambda, burst, scale
Build first: cargo build --release -p quarantine-group -p quarantine-shadow -p quarantine-certificate -p test-harness";

/// The settings from the command line and the environment.
fn settings() -> Res<Option<Settings>> {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let mut group = from_env("QUARANTINE_GROUP_BIN");
    let mut shadow = from_env("QUARANTINE_SHADOW_BIN");
    let mut certificate = from_env("QUARANTINE_CERTIFICATE_BIN");
    let mut floor = from_env("LAMBDA_FLOOR_BIN");
    let mut python = workspace_root().join(".venv/bin/python");
    let (mut cold_runs, mut warm_reps) = (5, 20);
    let mut sections = vec!["table", "lambda", "burst", "scale"];
    let mut lambda = as_lambda::Setup {
        rtt: Duration::from_millis(20),
        runs: 3,
        cpu_cap: true,
    };
    let mut functions = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--group" => group = Some(value()?.into()),
            "--shadow" => shadow = Some(value()?.into()),
            "--certificate" => certificate = Some(value()?.into()),
            "--floor" => floor = Some(value()?.into()),
            "--python" => python = value()?.into(),
            "--rtt-ms" => {
                let v = value()?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--rtt-ms {v}: not a number of ms"))?;
                lambda.rtt = Duration::from_millis(n);
            }
            "--no-cpu-cap" => lambda.cpu_cap = false,
            "--functions" => {
                functions = Some(value()?.split(',').map(|f| f.trim().to_owned()).collect());
            }
            "--quick" => {
                (cold_runs, warm_reps) = (3, 10);
                sections.retain(|s| !matches!(*s, "burst" | "scale"));
            }
            "--burst-only" => sections = vec!["burst", "scale"],
            "--only" => {
                let list = value()?;
                sections = Vec::new();
                for name in list.split(',') {
                    match name.trim() {
                        "table" => sections.push("table"),
                        "lambda" => sections.push("lambda"),
                        "burst" => sections.push("burst"),
                        "scale" => sections.push("scale"),
                        other => return Err(format!("--only: unknown section {other}")),
                    }
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let (Some(group), Some(shadow)) = (group, shadow) else {
        return Err("the function binaries are needed: --group PATH --shadow PATH".into());
    };
    let sibling = |of: &Path, name: &str| of.parent().map(|d| d.join(name)).unwrap_or_default();
    let certificate = certificate.unwrap_or_else(|| sibling(&group, "quarantine-certificate"));
    let floor = match floor {
        Some(floor) => floor,
        None => sibling(
            &std::env::current_exe().map_err(|e| e.to_string())?,
            "lambda-floor",
        ),
    };
    Ok(Some(Settings {
        programs: Programs {
            group,
            shadow,
            certificate,
            floor,
            python,
        },
        cold_runs,
        warm_reps,
        table: sections.contains(&"table"),
        as_lambda: sections.contains(&"lambda"),
        burst: sections.contains(&"burst"),
        scale: sections.contains(&"scale"),
        lambda,
        functions,
    }))
}

fn main() {
    let settings = match settings() {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(problem) => {
            eprintln!("lambda-bench: {problem}\n{USAGE}");
            std::process::exit(2);
        }
    };
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
        "Machine: {} CPUs. Functions: {}, {}, {}. Local stand-ins, not AWS.\n",
        thread::available_parallelism().map_or(0, |n| n.get()),
        settings.programs.group.display(),
        settings.programs.shadow.display(),
        settings.programs.certificate.display(),
    );
    println!(
        "Load average at the start (1, 5, 15 min): {}\n",
        load_average()
    );
    if settings.table {
        table(settings)?;
        println!("Load average after the table: {}\n", load_average());
    }
    if settings.as_lambda {
        let mut subjects = lambda_subjects(&settings.programs)?;
        if let Some(only) = &settings.functions {
            subjects.retain(|s| only.iter().any(|name| *name == s.short_label()));
        }
        as_lambda::table(&subjects, &settings.lambda)?;
        println!(
            "Load average after the as-Lambda table: {}\n",
            load_average()
        );
    }
    let group = Subject::binary(Kind::Group, &settings.programs.group)?;
    if settings.burst {
        let spec = |retry_mode| BurstSpec {
            retry_mode,
            ..BurstSpec::quota(10_000)
        };
        burst(&[spec("adaptive"), spec("standard")], &group)?;
        println!("Load average after the burst: {}\n", load_average());
    }
    if settings.scale {
        scale(&group)?;
        println!("Load average after the scale run: {}\n", load_average());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scale

/// Past today's burst: the quota raised so far that the software is the limit, 10,000 then
/// 100,000 records through 4 fresh processes each time; none may be lost, and each process's
/// memory must not grow with the burst.
fn scale(group: &Subject) -> Res<()> {
    // No injected 500s either: with 2% of calls failing, a third of the 10-record batches
    // wait out the SDK's retry back-off, and that back-off, not the software, sets the pace.
    let spec = |records| BurstSpec {
        rate_per_second: 1_000_000.0,
        failure_share: 0.0,
        time_limit: Duration::from_secs(900),
        ..BurstSpec::quota(records)
    };
    let specs = [spec(10_000), spec(100_000)];
    println!(
        "## Scale: 10,000 and 100,000 violations, quota raised to {:.0} req/s\n",
        specs[0].rate_per_second
    );
    println!(
        "{} quarantine-group processes (DISCONNECT on: 2 calls per record), SQS batches of 10, \
         {} ms latency per call, {:.0}% of requests 500, AWS_RETRY_MODE=standard; fresh processes \
         for each run.\n",
        specs[0].processes,
        specs[0].latency.as_millis(),
        specs[0].failure_share * 100.0
    );
    let mut outcomes = Vec::new();
    for spec in &specs {
        eprintln!("scale: {} records", spec.records);
        outcomes.push(burst_run(spec, group)?);
    }
    let table = Markdown {
        columns: &specs[..],
        results: &outcomes,
    };
    let done = |o: &BurstOutcome| (o.first_try + o.after_redelivery) as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    table.header("", |s| format!("{} records", s.records));
    table.row("done (first delivery + redelivered)", |_, o| {
        format!("{} + {}", o.first_try, o.after_redelivery)
    });
    table.row("dead-lettered; still queued; lost (must be 0)", |_, o| {
        format!("{}; {}; {}", o.dead, o.unfinished, o.lost)
    });
    table.row("elapsed", |_, o| {
        format!("{:.1} s", o.elapsed.as_secs_f64())
    });
    table.row("records per second (all processes)", |_, o| {
        format!("{:.0}", done(o) / o.elapsed.as_secs_f64())
    });
    table.row("records per second per process", |s, o| {
        format!(
            "{:.0}",
            done(o) / o.elapsed.as_secs_f64() / s.processes as f64
        )
    });
    table.row("peak memory per process (VmHWM, min-max)", |_, o| {
        let min = o.peak_kib.iter().min().copied().unwrap_or(0);
        let max = o.peak_kib.iter().max().copied().unwrap_or(0);
        format!("{:.1}-{:.1} MiB", mib(min), mib(max))
    });
    table.row("AWS calls per record", |s, o| {
        format!("{:.2}", (o.calls + o.disconnects) as f64 / s.records as f64)
    });
    println!();
    scale_verdict(&outcomes)
}

/// None lost; the peak memory of a process at 100,000 records within 10% (or 1 MiB) of its
/// peak at 10,000.
fn scale_verdict(outcomes: &[BurstOutcome]) -> Res<()> {
    let peak = |o: &BurstOutcome| o.peak_kib.iter().max().copied().unwrap_or(0) as f64;
    let lost: usize = outcomes.iter().map(|o| o.lost + o.unfinished).sum();
    let (Some(small), Some(large)) = (outcomes.first(), outcomes.last()) else {
        return Ok(());
    };
    let flat = peak(large) <= (peak(small) * 1.1).max(peak(small) + 1024.0);
    println!(
        "Memory per process {} (peak {:.1} MiB at the largest burst, {:.1} MiB at the smallest). {}\n",
        if flat { "flat" } else { "GROWS" },
        peak(large) / 1024.0,
        peak(small) / 1024.0,
        if lost == 0 {
            "None lost or left queued."
        } else {
            "Records lost or left queued!"
        }
    );
    if lost > 0 {
        return Err(format!("scale: {lost} records lost or left queued"));
    }
    Ok(())
}
