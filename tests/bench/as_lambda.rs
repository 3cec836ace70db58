//! The first alert after a cold start, measured as Lambda runs a 128 MB function: each
//! function in a fresh process, init at full CPU, then every invocation held to Lambda's
//! share of a core; AWS behind HTTPS (a throw-away CA the functions trust) across a link
//! with a round-trip delay. Per function: init, the first event (1 record), init + first,
//! a warm event, and the CPU time of the first event; beside them the figures issue 17
//! measured before the warm-up, and the floor (the runtime alone).

use std::path::Path;
use std::time::Duration;

use test_harness::{FunctionProcess, RuntimeApi, StandIn};

use crate::cpu_cap::{CpuCap, SHARE_128_MB};
use crate::link::Link;
use crate::{
    Kind, Markdown, Res, Subject, fresh_batch, invoke_ok, median, ms, task_cpu, verify_state_with,
};

/// Warm events per process, after the first.
const WARM_EVENTS: usize = 3;

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
}

pub fn table(subjects: &[Subject], setup: &Setup) -> Res<()> {
    let aws = StandIn::start();
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
            eprintln!(
                "as Lambda {}/{}: {}",
                run + 1,
                setup.runs,
                subject.kind.label()
            );
            one_run(subject, &aws, &link, cap.as_ref(), f)?;
        }
    }
    print_figures(subjects, &figures, setup.rtt);
    print_targets(subjects, &figures, setup.rtt);
    Ok(())
}

/// The function's environment on the link.
fn link_env(kind: Kind, ca_bundle: &Path) -> Vec<(&'static str, String)> {
    let bundle = ca_bundle.display().to_string();
    let mut env = vec![("SSL_CERT_FILE", bundle.clone()), ("AWS_CA_BUNDLE", bundle)];
    if kind == Kind::Group {
        env.push(("DISCONNECT", "false".to_owned()));
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
    let env = link_env(subject.kind, &link.ca_bundle);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut process = subject.spawn(&api, &link.endpoint, &env)?;
    let init = process.wait_ready(&api, Duration::from_secs(60))?;
    if let Some((_, cpu)) = task_cpu(process.pid()) {
        figures.init_cpu.push(cpu);
    }
    // The warm-up's requests belong to init; the checks below are about the events.
    aws.reset_counters();
    if let Some(cap) = cap {
        cap.hold(process.pid())?;
    }
    let (first, cpu) = timed_event(subject.kind, aws, &api, &mut process, true)?;
    let mut warm = Vec::new();
    for _ in 0..WARM_EVENTS {
        warm.push(timed_event(subject.kind, aws, &api, &mut process, false)?.0);
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

/// One checked 1-record event: its time and, when asked, the process's CPU time during it
/// (None if a thread exited meanwhile).
fn timed_event(
    kind: Kind,
    aws: &StandIn,
    api: &RuntimeApi,
    process: &mut FunctionProcess,
    with_cpu: bool,
) -> Res<(Duration, Option<Duration>)> {
    let (event, things) = fresh_batch(kind, 1, aws);
    let before = with_cpu.then(|| task_cpu(process.pid())).flatten();
    let took = invoke_ok(api, process, &event)?;
    let after = with_cpu.then(|| task_cpu(process.pid())).flatten();
    // quarantine-group runs with DISCONNECT=false here (see `link_env`).
    verify_state_with(aws, kind, &things, false)?;
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
    table.header("", |s| s.kind.label().to_owned());
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
    println!();
    println!("(was N): issue 17's measurement before the warm-up, same set-up.\n");
}

/// The first event's extra time over a warm one, in ms (medians).
fn first_over_warm(f: &Figures) -> f64 {
    ms(median(&f.first)) - ms(median(&f.warm))
}

fn print_targets(subjects: &[Subject], figures: &[Figures], rtt: Duration) {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let find = |kind: Kind| {
        subjects
            .iter()
            .zip(figures)
            .find(|(s, _)| s.kind == kind)
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
        let name = s.kind.label();
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
