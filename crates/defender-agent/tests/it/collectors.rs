//! Collectors on fixture /proc files and on the live system.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use defender_agent::collect::{Collector, Interfaces};
use defender_agent::config::{Cli, CollectConfig, Config};
use serde_json::{Value, json};

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn collect_config(proc_root: PathBuf) -> CollectConfig {
    let cli = Cli {
        print_report: true,
        proc_root: Some(proc_root),
        ..Cli::default()
    };
    Config::resolve(cli, Default::default()).unwrap().collect
}

fn fixture_interfaces() -> Interfaces {
    Interfaces::Fixed(vec![
        (IpAddr::V4(Ipv4Addr::LOCALHOST), "lo".into()),
        (IpAddr::V6(Ipv6Addr::LOCALHOST), "lo".into()),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), "eth0".into()),
    ])
}

/// The fixtures were written on a little-endian machine, as the kernel prints addresses in host
/// byte order.
#[tokio::test]
async fn fixture_proc_gives_the_expected_report() {
    let mut collector =
        Collector::new(collect_config(fixture_root())).with_interfaces(fixture_interfaces());
    let report = collector.report(42).await.unwrap();
    let v = report.to_value(false).unwrap();
    assert_eq!(
        v,
        json!({
            "hed": {"rid": 42, "v": "1.0"},
            "met": {
                // :::22 and 0.0.0.0:22 are one port on every interface; the damaged line and the
                // TIME_WAIT socket are left out.
                "tp": {"pts": [{"pt": 22}, {"pt": 631, "if": "lo"}, {"pt": 8080, "if": "lo"}], "t": 3},
                // The connected UDP socket (to 8.8.8.8:53) is not listening.
                "up": {"pts": [{"pt": 68}, {"pt": 5353, "if": "eth0"}], "t": 2},
                "tc": {"ec": {"cs": [
                    {"rad": "198.51.100.7:8883", "lp": 41000, "li": "eth0"},
                    {"rad": "203.0.113.10:443", "lp": 40000, "li": "eth0"}
                ], "t": 2}}
            },
            // myapp (100) -> sh (101) -> "crypto (miner)" (102)
            "cmet": {"num_child_procs_myapp": [{"number": 2}]}
        })
    );
}

#[tokio::test]
async fn network_stats_are_deltas_without_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    std::fs::create_dir(&net).unwrap();
    for f in ["tcp", "tcp6", "udp", "udp6", "dev"] {
        std::fs::copy(fixture_root().join("net").join(f), net.join(f)).unwrap();
    }
    let mut config = collect_config(dir.path().to_owned());
    config.child_metric = None;
    let mut collector = Collector::new(config).with_interfaces(fixture_interfaces());
    let first = collector.report(1).await.unwrap();
    assert_eq!(
        first.met.as_ref().unwrap().ns,
        None,
        "no delta without a previous sample"
    );
    assert!(first.cmet.is_empty());
    let dev = std::fs::read_to_string(net.join("dev"))
        .unwrap()
        .replace("    1000      10", "    9999      99")
        .replace(
            "5000      50    0    0    0     0          0         0     7000      70",
            "5600      56    0    0    0     0          0         0     7100      71",
        );
    std::fs::write(net.join("dev"), dev).unwrap();
    let second = collector.report(2).await.unwrap().to_value(false).unwrap();
    assert_eq!(
        second["met"]["ns"],
        json!({"bi": 600, "bo": 100, "pi": 6, "po": 1})
    );
}

#[tokio::test]
async fn a_missing_proc_root_is_a_clear_error() {
    let mut collector = Collector::new(collect_config("/nonexistent/proc".into()));
    let e = collector.report(1).await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read /nonexistent/proc/net/tcp"),
        "{e}"
    );
}

fn print_report(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_defender-agent"))
        .arg("--print-report")
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct KillGroup(Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // The shell and its sleeps share a process group of their own.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn live_myapp_with_two_children_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let myapp = dir.path().join("myapp");
    // Copied by cp, not std::fs::copy: a writable descriptor of the new file in this process
    // could leak into a child forked by a concurrent test and make exec fail with ETXTBSY.
    let copied = Command::new("cp")
        .arg("/bin/sh")
        .arg(&myapp)
        .status()
        .unwrap();
    assert!(copied.success());
    let _app = KillGroup(
        Command::new(&myapp)
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    // The children exist once the shell has forked them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = print_report(&[]);
        let value = &report["cmet"]["num_child_procs_myapp"];
        if *value == json!([{"number": 2}]) {
            break;
        }
        assert!(Instant::now() < deadline, "still {value} after 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The process and metric names are configurable.
    let report = print_report(&["--process-name", "no-such-proc", "--child-metric", "kids"]);
    assert_eq!(report["cmet"], json!({"kids": [{"number": 0}]}));
}

#[test]
fn live_listening_ports_appear_with_their_interface() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp_port = udp.local_addr().unwrap().port();
    let report = print_report(&["--no-child-metric"]);
    let tp = report["met"]["tp"]["pts"].as_array().unwrap();
    assert!(
        tp.contains(&json!({"pt": tcp_port, "if": "lo"})),
        "{tcp_port} not in {tp:?}"
    );
    let up = report["met"]["up"]["pts"].as_array().unwrap();
    assert!(
        up.contains(&json!({"pt": udp_port, "if": "lo"})),
        "{udp_port} not in {up:?}"
    );
    assert_eq!(report["met"]["tp"]["t"], json!(tp.len()));
    assert!(report.get("cmet").is_none());
    // A client connection to the listener is an established connection.
    let _client = std::net::TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    let report = print_report(&["--no-child-metric"]);
    let cs = report["met"]["tc"]["ec"]["cs"].as_array().unwrap();
    assert!(
        cs.iter()
            .any(|c| c["rad"] == json!(format!("127.0.0.1:{tcp_port}")) && c["li"] == "lo"),
        "{cs:?}"
    );
}
