//! The first alert after a cold start, measured as Lambda runs a 128 MB function: each
//! function in a fresh process, init at full CPU, then every invocation held to Lambda's
//! share of a core; AWS behind HTTPS (a throw-away CA the functions trust) across a link
//! with a round-trip delay. Per function: init, the first event (1 record), init + first,
//! a warm event, and the CPU time of the first event; beside them the figures issue 17
//! measured before the warm-up, and the floor (the runtime alone). The group and shadow
//! functions run a second time with the quarantine ledger (`LEDGER_TABLE`) on the stand-in's
//! DynamoDB table, whose conditions decide as DynamoDB's do: beside the figures, the ledger's
//! round trips per record for a free thing's first alert, a new alert of a quarantined thing
//! and a duplicate.

use std::time::Duration;

use serde_json::{Value, json};
use test_harness::{FunctionProcess, Op, RuntimeApi, StandIn};

use crate::cpu_cap::{CpuCap, SHARE_128_MB};
use crate::link::Link;
use crate::{
    Kind, Markdown, Res, Subject, fresh_batch, invoke_ok, median, ms, new_alert, task_cpu,
    verify_state_with,
};

/// Warm events per process, after the first.
const WARM_EVENTS: usize = 3;
/// The ledger's table on the stand-in (partition key `thing`, sort key `sk`, as the
/// template's).
const LEDGER_TABLE: &str = "quarantine-ledger";
/// The ledger's operations, in the order of the round-trip table.
const LEDGER_OPS: [Op; 4] = [
    Op::UpdateItem,
    Op::GetItem,
    Op::PutItem,
    Op::TransactWriteItems,
];

/// What issue 17 measured before the warm-up, in ms: init, first event, init + first, warm.
fn before(kind: Kind) -> Option<[f64; 4]> {
    match kind {
        Kind::Python => Some([398.0, 162.0, 554.0, 101.0]),
        Kind::Group => Some([18.0, 385.0, 403.0, 23.0]),
        Kind::Shadow => Some([16.0, 475.0, 488.0, 51.0]),
        Kind::Certificate | Kind::Floor => None,
    }
}

pub struct Setup {
    pub rtt: Duration,
    pub runs: usize,
    pub cpu_cap: bool,
}

#[derive(Default)]
struct Figures {
    init: Vec<Duration>,
    init_cpu: Vec<Duration>,
    first: Vec<Duration>,
    init_and_first: Vec<Duration>,
    warm: Vec<Duration>,
    first_cpu: Vec<Duration>,
    /// With the ledger: a new alert of a thing already quarantined, and its duplicate.
    second_cause: Vec<Duration>,
    duplicate: Vec<Duration>,
    /// With the ledger: the calls of each case (the same in every run, checked).
    calls: Vec<(Case, Calls)>,
    /// The DynamoDB warm-up requests init sent.
    ledger_warm_ups: Vec<usize>,
}

/// The kinds of record whose calls the ledger table counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    FirstOfFreeThing,
    SecondCause,
    Duplicate,
}

impl Case {
    fn describe(self) -> &'static str {
        match self {
            Case::FirstOfFreeThing => "first alert of a free thing (budget on)",
            Case::SecondCause => "new alert of a quarantined thing",
            Case::Duplicate => "duplicate alert (the same record again)",
        }
    }
}

/// The calls one 1-record event made: per ledger operation (as in [`LEDGER_OPS`]), and the
/// rest (the function's AWS action).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct Calls {
    ledger: [usize; 4],
    action: usize,
}

impl Calls {
    fn of(aws: &StandIn) -> Calls {
        let mut calls = Calls::default();
        for call in aws.calls() {
            match LEDGER_OPS.iter().position(|op| *op == call.op) {
                Some(i) => calls.ledger[i] += 1,
                None => calls.action += 1,
            }
        }
        calls
    }

    fn ledger_total(&self) -> usize {
        self.ledger.iter().sum()
    }
}

pub fn table(subjects: &[Subject], setup: &Setup) -> Res<()> {
    let aws = StandIn::start();
    aws.create_table(LEDGER_TABLE, &["thing", "sk"]);
    let dir = test_harness::process::log_dir();
    let link = Link::start(aws.addr(), setup.rtt, &dir)?;
    let cap = if setup.cpu_cap {
        match CpuCap::create(SHARE_128_MB) {
            Ok(cap) => Some(cap),
            Err(why) => {
                println!("No CPU cap ({why}): the invocations below run uncapped.\n");
                None
            }
        }
    } else {
        println!("No CPU cap (--no-cpu-cap): the invocations below run uncapped.\n");
        None
    };
    println!(
        "## The first alert after a cold start, as Lambda runs a 128 MB function (median of {})\n",
        setup.runs
    );
    println!(
        "Each run a fresh process. AWS: the stand-in behind HTTPS (a throw-away CA, trusted with \
         the system's roots through SSL_CERT_FILE / AWS_CA_BUNDLE) across a link of {} ms round \
         trip, TCP handshake included. CPU after init: {}. quarantine-group with DISCONNECT=false \
         (one call per record, as in issue 17); quarantine-certificate with one certificate per \
         thing.\n",
        setup.rtt.as_millis(),
        cap.as_ref()
            .map_or_else(|| "uncapped".to_owned(), CpuCap::describe),
    );
    let mut figures: Vec<Figures> = subjects.iter().map(|_| Figures::default()).collect();
    for run in 0..setup.runs {
        for (subject, f) in subjects.iter().zip(figures.iter_mut()) {
            eprintln!("as Lambda {}/{}: {}", run + 1, setup.runs, subject.label());
            one_run(subject, &aws, &link, cap.as_ref(), f)?;
        }
    }
    print_figures(subjects, &figures, setup.rtt);
    print_ledger(subjects, &figures);
    let network = crate::link::three_round_trips(&link, 5)?;
    print_targets(subjects, &figures, setup.rtt, network);
    Ok(())
}

/// The function's environment on the link.
fn link_env(subject: &Subject, link: &Link) -> Vec<(&'static str, String)> {
    let bundle = link.ca_bundle.display().to_string();
    let mut env = vec![("SSL_CERT_FILE", bundle.clone()), ("AWS_CA_BUNDLE", bundle)];
    if subject.kind == Kind::Group {
        env.push(("DISCONNECT", "false".to_owned()));
    }
    // The bench checks the certificate INACTIVE (the default action, attach-policy, needs a
    // QUARANTINE_POLICY).
    if subject.kind == Kind::Certificate {
        env.push(("CERTIFICATE_ACTION", "deactivate".to_owned()));
    }
    if subject.ledger {
        env.push(("LEDGER_TABLE", LEDGER_TABLE.to_owned()));
        env.push(("AWS_ENDPOINT_URL_DYNAMODB", link.dynamodb_endpoint.clone()));
    }
    env
}

fn one_run(
    subject: &Subject,
    aws: &StandIn,
    link: &Link,
    cap: Option<&CpuCap>,
    figures: &mut Figures,
) -> Res<()> {
    let api = RuntimeApi::start();
    let env = link_env(subject, link);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut process = subject.spawn(&api, &link.endpoint, &env)?;
    let init = process.wait_ready(&api, Duration::from_secs(60))?;
    if let Some((_, cpu)) = task_cpu(process.pid()) {
        figures.init_cpu.push(cpu);
    }
    if subject.ledger {
        figures.ledger_warm_ups.push(ledger_warm_ups(aws));
    }
    // The warm-up's requests belong to init; the checks below are about the events.
    aws.reset_counters();
    if let Some(cap) = cap {
        cap.hold(process.pid())?;
    }
    let mut run = Run {
        subject,
        aws,
        api: &api,
        process: &mut process,
    };
    let (event, things) = fresh_batch(subject.kind, 1, aws);
    let (first, cpu) = run.event(&event, &things, true, Case::FirstOfFreeThing, figures)?;
    let mut warm = Vec::new();
    for _ in 0..WARM_EVENTS {
        let (event, things) = fresh_batch(subject.kind, 1, aws);
        warm.push(
            run.event(&event, &things, false, Case::FirstOfFreeThing, figures)?
                .0,
        );
    }
    if subject.ledger {
        // A second alarm of the first event's thing (quarantined by then), then the same
        // record delivered again.
        let again = new_alert(&things[0]);
        let took = run.event(&again, &things, false, Case::SecondCause, figures)?;
        figures.second_cause.push(took.0);
        let took = run.event(&again, &things, false, Case::Duplicate, figures)?;
        figures.duplicate.push(took.0);
    }
    figures.init.push(init);
    figures.first.push(first);
    figures.init_and_first.push(init + first);
    figures.warm.push(median(&warm));
    if let Some(cpu) = cpu {
        figures.first_cpu.push(cpu);
    }
    Ok(())
}

/// The requests init sent to DynamoDB (the warm-up names an operation DynamoDB does not
/// have; the stand-in logs it as an unknown operation on its DynamoDB route).
fn ledger_warm_ups(aws: &StandIn) -> usize {
    aws.calls()
        .iter()
        .filter(|c| {
            c.op == Op::Unknown
                && c.subject
                    .as_deref()
                    .is_some_and(|s| s.starts_with("DynamoDB_20120810."))
        })
        .count()
}

/// One function process under measurement.
struct Run<'a> {
    subject: &'a Subject,
    aws: &'a StandIn,
    api: &'a RuntimeApi,
    process: &'a mut FunctionProcess,
}

impl Run<'_> {
    /// One checked 1-record event: its time and, when asked, the process's CPU time during
    /// it (None if a thread exited meanwhile). With the ledger, its calls are counted for
    /// `case`, and the ledger must say the thing is quarantined.
    fn event(
        &mut self,
        event: &Value,
        things: &[String],
        with_cpu: bool,
        case: Case,
        figures: &mut Figures,
    ) -> Res<(Duration, Option<Duration>)> {
        let kind = self.subject.kind;
        self.aws.reset_counters();
        let before = with_cpu.then(|| task_cpu(self.process.pid())).flatten();
        let took = invoke_ok(self.api, self.process, event)?;
        let after = with_cpu.then(|| task_cpu(self.process.pid())).flatten();
        // quarantine-group runs with DISCONNECT=false here (see `link_env`).
        verify_state_with(self.aws, kind, things, false)?;
        if self.subject.ledger {
            check_ledger(self.aws, kind, things)?;
            record_calls(figures, case, Calls::of(self.aws), &self.subject.label())?;
        }
        let cpu = match (before, after) {
            (Some((tids_before, before)), Some((tids_after, after)))
                if tids_before.is_subset(&tids_after) =>
            {
                Some(after.saturating_sub(before))
            }
            _ => None,
        };
        Ok((took, cpu))
    }
}

/// The function's state item of each thing says the quarantine is applied.
fn check_ledger(aws: &StandIn, kind: Kind, things: &[String]) -> Res<()> {
    let function = match kind {
        Kind::Shadow => "fn#shadow",
        Kind::Certificate => "fn#certificate",
        _ => "fn#group",
    };
    for thing in things {
        let item = aws.table_item(LEDGER_TABLE, &[thing, function]);
        if item.as_ref().and_then(|i| i.get("applied")) != Some(&json!({ "BOOL": true })) {
            return Err(format!(
                "{}: the ledger does not say {thing} is quarantined: {item:?}",
                kind.label()
            ));
        }
    }
    Ok(())
}

/// Keeps a case's calls, which must be the same every time: a case that varies is a fault
/// of the bench or of the function, not a figure.
fn record_calls(figures: &mut Figures, case: Case, calls: Calls, label: &str) -> Res<()> {
    match figures.calls.iter().find(|(c, _)| *c == case) {
        Some((_, seen)) if *seen != calls => Err(format!(
            "{label}: a {} made {calls:?}, another {seen:?}",
            case.describe()
        )),
        Some(_) => Ok(()),
        None => {
            figures.calls.push((case, calls));
            Ok(())
        }
    }
}

fn print_figures(subjects: &[Subject], figures: &[Figures], rtt: Duration) {
    let table = Markdown {
        columns: subjects,
        results: figures,
    };
    let cell = |v: &[Duration]| {
        if v.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.1} ms", ms(median(v)))
        }
    };
    let was = |s: &Subject, i: usize| before(s.kind).map(|b| format!(" (was {:.0})", b[i]));
    table.header("", Subject::label);
    table.row("init (spawn to first poll)", |s, f| {
        format!("{}{}", cell(&f.init), was(s, 0).unwrap_or_default())
    });
    table.row("CPU time of init (threads alive at its end)", |_, f| {
        cell(&f.init_cpu)
    });
    table.row("first event, 1 record", |s, f| {
        format!("{}{}", cell(&f.first), was(s, 1).unwrap_or_default())
    });
    table.row("init + first event", |s, f| {
        format!(
            "{}{}",
            cell(&f.init_and_first),
            was(s, 2).unwrap_or_default()
        )
    });
    table.row(
        &format!("a warm event, 1 record (median of {WARM_EVENTS} per run)"),
        |s, f| format!("{}{}", cell(&f.warm), was(s, 3).unwrap_or_default()),
    );
    table.row("first event minus warm event, in round trips", |_, f| {
        format!("{:.2}", first_over_warm(f) / ms(rtt))
    });
    table.row("CPU time of the first event (all threads)", |_, f| {
        cell(&f.first_cpu)
    });
    table.row(
        "with the ledger: a new alert of a quarantined thing",
        |s, f| {
            if s.ledger {
                cell(&f.second_cause)
            } else {
                String::new()
            }
        },
    );
    table.row("with the ledger: a duplicate alert", |s, f| {
        if s.ledger {
            cell(&f.duplicate)
        } else {
            String::new()
        }
    });
    println!();
    println!("(was N): issue 17's measurement before the warm-up, same set-up.\n");
}

/// The first event's extra time over a warm one, in ms (medians).
fn first_over_warm(f: &Figures) -> f64 {
    ms(median(&f.first)) - ms(median(&f.warm))
}

/// The ledger's requests per 1-record event, by case and operation, as the stand-in's table
/// received them (the same in every run).
fn print_ledger(subjects: &[Subject], figures: &[Figures]) {
    let with_ledger: Vec<(&Subject, &Figures)> = subjects
        .iter()
        .zip(figures)
        .filter(|(s, _)| s.ledger)
        .collect();
    if with_ledger.is_empty() {
        return;
    }
    println!(
        "### The ledger's round trips per record (LEDGER_TABLE, default MAX_NEW_QUARANTINES)\n"
    );
    println!(
        "| function | record | UpdateItem | GetItem | PutItem | TransactWriteItems | ledger round trips | AWS action calls |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (subject, f) in &with_ledger {
        for (case, calls) in &f.calls {
            let [update, get, put, transact] = calls.ledger;
            println!(
                "| {} | {} | {update} | {get} | {put} | {transact} | {} | {} |",
                subject.label(),
                case.describe(),
                calls.ledger_total(),
                calls.action
            );
        }
    }
    for (subject, f) in &with_ledger {
        println!(
            "\n{}: DynamoDB warm-up requests at init, per run: {:?} (1 each: the table's connection opened during init).",
            subject.label(),
            f.ledger_warm_ups
        );
    }
    println!();
}

fn print_targets(subjects: &[Subject], figures: &[Figures], rtt: Duration, network: Duration) {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let find = |kind: Kind| {
        subjects
            .iter()
            .zip(figures)
            .find(|(s, _)| s.kind == kind && !s.ledger)
            .map(|(_, f)| f)
    };
    let rtt_ms = ms(rtt);
    println!("### Targets (issue 17)\n");
    println!("| target | function | measured | limit | result |");
    println!("|---|---|---:|---:|---|");
    let floor_init = find(Kind::Floor).map(|f| ms(median(&f.init)));
    for (s, f) in subjects.iter().zip(figures) {
        if matches!(s.kind, Kind::Python | Kind::Floor) {
            continue;
        }
        let name = s.label();
        let extra = first_over_warm(f);
        println!(
            "| first event at most half a round trip over a warm one | {name} | {extra:.1} ms | {:.1} ms | {} |",
            rtt_ms / 2.0,
            verdict(extra <= rtt_ms / 2.0)
        );
        if let Some(floor) = floor_init {
            let init = ms(median(&f.init));
            println!(
                "| init at most 3 round trips above the floor ({floor:.1} ms) | {name} | {init:.1} ms | {:.1} ms | {} |",
                floor + 3.0 * rtt_ms,
                verdict(init <= floor + 3.0 * rtt_ms)
            );
        }
    }
    if let Some(floor) = floor_init {
        // What no client can go below on this link, and what each function adds to it: its own
        // CPU on the path to the warm-up's first packet and after its answer.
        let network = ms(network);
        println!(
            "| (for reading the above) the link's own TCP + TLS + one request, a bare rustls client: {network:.1} ms; floor + that | | | {:.1} ms | |",
            floor + network
        );
        for (s, f) in subjects.iter().zip(figures) {
            if matches!(s.kind, Kind::Python | Kind::Floor) {
                continue;
            }
            let own = ms(median(&f.init)) - floor - network;
            println!(
                "| (for reading the above) init minus the floor and the link's own three round trips | {} | {own:.1} ms ({:.2} round trips) | | |",
                s.label(),
                own / rtt_ms
            );
        }
    }
    if let (Some(group), Some(seed)) = (find(Kind::Group), find(Kind::Python)) {
        let ours = ms(median(&group.init_and_first));
        let limit = ms(median(&seed.init_and_first)) / 5.0;
        println!(
            "| init + first event at most 1/5 of the seed's | quarantine-group | {ours:.1} ms | {limit:.1} ms | {} |",
            verdict(ours <= limit)
        );
    }
    println!();
}
