//! Configuration: command-line flags over a TOML file over defaults, resolved and checked once.
//!
//! Every error names the flag (and the file key), the value and what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Deserialize;

use crate::custom::{CustomMetricKind, CustomMetricSpec};
use crate::names::{self, MetricName, ShadowName, ThingName};

/// Shortest report interval: AWS IoT Device Defender throttles devices that report faster.
pub const MIN_INTERVAL_SECS: u64 = 300;
pub const DEFAULT_STATE_FILE: &str = "/var/lib/defender-agent/state.json";
pub const DEFAULT_PROCESS_NAME: &str = "myapp";
pub const DEFAULT_CHILD_METRIC: &str = "num_child_procs_myapp";

/// Wire format of the metrics report (and of its topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Cbor,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Cbor => "cbor",
        }
    }
}

/// AWS IoT Device Defender metrics agent for Linux devices.
///
/// Reports listening ports, network traffic, established TCP connections and custom metrics
/// (by default `num_child_procs_myapp`) to AWS IoT Device Defender over MQTT with mutual TLS,
/// and follows the thing's shadow: when `desired.quarantine` becomes true it runs the quarantine
/// command and reports `reported.quarantine: true`; when it becomes false or is removed it runs
/// the release command and reports false.
///
/// Settings come from the flags, then the TOML file given with --config, then the defaults.
#[derive(Debug, Default, Parser)]
#[command(name = "defender-agent", version)]
pub struct Cli {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`
    /// (e.g. thing_name, root_ca, interval), plus `[[custom_metric]]` tables.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// AWS IoT data endpoint host name, without scheme or port
    /// (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`).
    #[arg(long, value_name = "HOST")]
    pub endpoint: Option<String>,

    /// MQTT port [default: 8883]. On 443 the agent offers the ALPN protocol x-amzn-mqtt-ca.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// The thing name: used in every topic and, by default, as the MQTT client id.
    #[arg(long, value_name = "NAME")]
    pub thing_name: Option<String>,

    /// MQTT client id [default: the thing name]. AWS IoT policies that use
    /// ${iot:Connection.Thing.ThingName} need the client id to be the thing name.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// Device certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Private key of the device certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Root CA the endpoint's certificate chains to (PEM), e.g. AmazonRootCA1.pem.
    #[arg(long, value_name = "FILE")]
    pub root_ca: Option<PathBuf>,

    /// Seconds between reports [default: 300; at least 300, AWS throttles faster reports].
    /// The first report is sent right after the first connection.
    #[arg(long, value_name = "SECS")]
    pub interval: Option<u64>,

    /// Report format: json publishes to .../defender/metrics/json, cbor to .../cbor [default: json].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Use the long metric names (header, metrics, listening_tcp_ports, ...) instead of the short
    /// ones (hed, met, tp, ...) that the AWS agents send.
    #[arg(long)]
    pub long_names: bool,

    /// Follow this named shadow instead of the classic one, like the quarantine-shadow function's
    /// SHADOW_NAME.
    #[arg(long, env = "SHADOW_NAME", value_name = "NAME")]
    pub shadow_name: Option<String>,

    /// Shell command (run with /bin/sh -c) when desired.quarantine becomes true,
    /// e.g. "systemctl stop myapp". Its environment has THING_NAME and QUARANTINE=true.
    #[arg(long, value_name = "CMD")]
    pub quarantine_command: Option<String>,

    /// Shell command when desired.quarantine becomes false, e.g. "systemctl start myapp". Only an
    /// explicit false releases: a removed or non-boolean flag, or a deleted shadow, does not.
    /// Its environment has THING_NAME and QUARANTINE=false.
    #[arg(long, value_name = "CMD")]
    pub release_command: Option<String>,

    /// Never publish reported.quarantine to the shadow's update topic: for the Strict quarantine
    /// policy, which denies it (AWS IoT closes the connection of a client that publishes where
    /// it may not).
    #[arg(long)]
    pub no_report_quarantine: bool,

    /// Seconds a quarantine, release or custom-metric command may run before it is killed [default: 60].
    #[arg(long, value_name = "SECS")]
    pub command_timeout: Option<u64>,

    /// File holding the last report id and the quarantine state applied, so both survive restarts
    /// [default: /var/lib/defender-agent/state.json].
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Where procfs is mounted [default: /proc], e.g. /host/proc in a container.
    #[arg(long, value_name = "DIR")]
    pub proc_root: Option<PathBuf>,

    /// Process whose descendants are counted in the child-process metric [default: myapp].
    #[arg(long, value_name = "NAME")]
    pub process_name: Option<String>,

    /// Name of the child-process custom metric [default: num_child_procs_myapp].
    #[arg(long, value_name = "NAME")]
    pub child_metric: Option<String>,

    /// Do not report the child-process custom metric.
    #[arg(long)]
    pub no_child_metric: bool,

    /// MQTT keep-alive in seconds [default: 60; AWS IoT accepts 30 to 1200].
    #[arg(long, value_name = "SECS")]
    pub keep_alive: Option<u64>,

    /// Longest wait in seconds between reconnection attempts; the wait starts at 1 s and
    /// doubles [default: 120].
    #[arg(long, value_name = "SECS")]
    pub reconnect_max: Option<u64>,

    /// Collect once, print the JSON report on stdout and exit without connecting.
    #[arg(long, conflicts_with = "once")]
    pub print_report: bool,

    /// Connect, publish one report, wait for the answer on /accepted or /rejected and exit:
    /// 0 when accepted, 1 otherwise. Does not follow the shadow.
    #[arg(long)]
    pub once: bool,
}

/// The TOML file. Unknown keys are refused so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub thing_name: Option<String>,
    pub client_id: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub root_ca: Option<PathBuf>,
    pub interval: Option<u64>,
    pub format: Option<Format>,
    pub long_names: Option<bool>,
    pub shadow_name: Option<String>,
    pub quarantine_command: Option<String>,
    pub release_command: Option<String>,
    pub report_quarantine: Option<bool>,
    pub command_timeout: Option<u64>,
    pub state_file: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
    pub process_name: Option<String>,
    pub child_metric: Option<String>,
    pub child_metric_enabled: Option<bool>,
    pub keep_alive: Option<u64>,
    pub reconnect_max: Option<u64>,
    #[serde(default)]
    pub custom_metric: Vec<FileCustomMetric>,
}

/// A `[[custom_metric]]` table: the command's standard output is the value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCustomMetric {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: CustomMetricKind,
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--config {path}: cannot read the file: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--config {path}: not a valid configuration file: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("{option} is required to connect (flag or key in the --config file)")]
    Missing { option: &'static str },
    #[error("{option} {value:?}: {expected}")]
    Invalid {
        option: &'static str,
        value: String,
        expected: String,
    },
}

fn invalid(option: &'static str, value: impl ToString, expected: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        option,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// What the collectors need: enough for --print-report.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub proc_root: PathBuf,
    /// Process name and metric name of the child-process metric, when it is reported.
    pub child_metric: Option<(String, MetricName)>,
    pub custom_metrics: Vec<CustomMetricSpec>,
    pub command_timeout: Duration,
    pub long_names: bool,
}

/// What connecting needs.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub endpoint: String,
    pub port: u16,
    pub thing_name: ThingName,
    pub client_id: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub root_ca: PathBuf,
    pub interval: Duration,
    pub format: Format,
    pub shadow_name: Option<ShadowName>,
    pub quarantine_command: Option<String>,
    pub release_command: Option<String>,
    /// Whether the agent publishes `reported.quarantine`.
    pub report_quarantine: bool,
    pub state_file: PathBuf,
    pub keep_alive: Duration,
    pub reconnect_max: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    PrintReport,
    Once,
    Run,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub collect: CollectConfig,
    /// Present unless the mode is --print-report.
    pub connection: Option<ConnectionConfig>,
}

impl Config {
    /// Reads the --config file (if any) and resolves every setting.
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::resolve(cli, file)
    }

    pub fn resolve(mut cli: Cli, mut file: FileConfig) -> Result<Config, ConfigError> {
        let mode = if cli.print_report {
            Mode::PrintReport
        } else if cli.once {
            Mode::Once
        } else {
            Mode::Run
        };
        let collect = collect_config(&mut cli, &mut file)?;
        let connection = match mode {
            Mode::PrintReport => None,
            Mode::Once | Mode::Run => Some(connection_config(&mut cli, &mut file)?),
        };
        Ok(Config {
            mode,
            collect,
            connection,
        })
    }
}

/// The flag if given, else the file's key.
macro_rules! pick {
    ($cli:ident, $file:ident, $field:ident) => {
        $cli.$field.take().or($file.$field.take())
    };
}

fn collect_config(cli: &mut Cli, file: &mut FileConfig) -> Result<CollectConfig, ConfigError> {
    let child_enabled = !cli.no_child_metric && file.child_metric_enabled.unwrap_or(true);
    let child_metric = if child_enabled {
        let process =
            pick!(cli, file, process_name).unwrap_or_else(|| DEFAULT_PROCESS_NAME.to_owned());
        if process.is_empty() || process.contains('/') {
            return Err(invalid(
                "--process-name",
                process,
                "a process name (as in /proc/PID/comm), not empty and without '/'",
            ));
        }
        let metric =
            pick!(cli, file, child_metric).unwrap_or_else(|| DEFAULT_CHILD_METRIC.to_owned());
        let metric =
            MetricName::parse(&metric).map_err(|e| invalid("--child-metric", &metric, e))?;
        Some((process, metric))
    } else {
        None
    };
    let custom_metrics = custom_metrics(
        std::mem::take(&mut file.custom_metric),
        child_metric.as_ref(),
    )?;
    Ok(CollectConfig {
        proc_root: pick!(cli, file, proc_root).unwrap_or_else(|| PathBuf::from("/proc")),
        child_metric,
        custom_metrics,
        command_timeout: positive_secs(
            "--command-timeout",
            pick!(cli, file, command_timeout).unwrap_or(60),
        )?,
        long_names: cli.long_names || file.long_names.unwrap_or(false),
    })
}

fn custom_metrics(
    tables: Vec<FileCustomMetric>,
    child_metric: Option<&(String, MetricName)>,
) -> Result<Vec<CustomMetricSpec>, ConfigError> {
    let mut specs: Vec<CustomMetricSpec> = Vec::new();
    for m in tables {
        let name =
            MetricName::parse(&m.name).map_err(|e| invalid("custom_metric.name", &m.name, e))?;
        if child_metric.is_some_and(|(_, c)| *c == name) || specs.iter().any(|c| c.name == name) {
            return Err(invalid(
                "custom_metric.name",
                name,
                "a name used once (it is already a custom metric)",
            ));
        }
        if m.command.trim().is_empty() {
            return Err(invalid(
                "custom_metric.command",
                &m.command,
                "a shell command printing the value",
            ));
        }
        specs.push(CustomMetricSpec {
            name,
            kind: m.kind,
            command: m.command,
        });
    }
    Ok(specs)
}

fn connection_config(
    cli: &mut Cli,
    file: &mut FileConfig,
) -> Result<ConnectionConfig, ConfigError> {
    let endpoint = pick!(cli, file, endpoint).ok_or(ConfigError::Missing {
        option: "--endpoint",
    })?;
    names::check_endpoint(&endpoint).map_err(|e| invalid("--endpoint", &endpoint, e))?;
    let thing = pick!(cli, file, thing_name).ok_or(ConfigError::Missing {
        option: "--thing-name",
    })?;
    let thing_name = ThingName::parse(&thing).map_err(|e| invalid("--thing-name", &thing, e))?;
    let client_id = pick!(cli, file, client_id).unwrap_or_else(|| thing_name.to_string());
    if client_id.is_empty() || client_id.len() > 128 || client_id.starts_with('$') {
        return Err(invalid(
            "--client-id",
            client_id,
            "1 to 128 characters, not starting with '$'",
        ));
    }
    let interval = pick!(cli, file, interval).unwrap_or(MIN_INTERVAL_SECS);
    if interval < MIN_INTERVAL_SECS {
        return Err(invalid(
            "--interval",
            interval,
            format!(
                "at least {MIN_INTERVAL_SECS} seconds; AWS IoT Device Defender throttles devices that report more often (use --once for an immediate report)"
            ),
        ));
    }
    let keep_alive = pick!(cli, file, keep_alive).unwrap_or(60);
    if !(30..=1200).contains(&keep_alive) {
        return Err(invalid(
            "--keep-alive",
            keep_alive,
            "30 to 1200 seconds (the range AWS IoT accepts)",
        ));
    }
    let shadow_name = match pick!(cli, file, shadow_name) {
        // An empty SHADOW_NAME means the classic shadow, as for the functions.
        Some(s) if s.trim().is_empty() => None,
        Some(s) => Some(ShadowName::parse(&s).map_err(|e| invalid("--shadow-name", &s, e))?),
        None => None,
    };
    Ok(ConnectionConfig {
        endpoint,
        port: pick!(cli, file, port).unwrap_or(8883),
        client_id,
        thing_name,
        cert: required_path("--cert", pick!(cli, file, cert))?,
        key: required_path("--key", pick!(cli, file, key))?,
        root_ca: required_path("--root-ca", pick!(cli, file, root_ca))?,
        interval: Duration::from_secs(interval),
        format: pick!(cli, file, format).unwrap_or(Format::Json),
        shadow_name,
        quarantine_command: non_empty(pick!(cli, file, quarantine_command)),
        release_command: non_empty(pick!(cli, file, release_command)),
        report_quarantine: !cli.no_report_quarantine && file.report_quarantine.unwrap_or(true),
        state_file: pick!(cli, file, state_file)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE)),
        keep_alive: Duration::from_secs(keep_alive),
        reconnect_max: positive_secs(
            "--reconnect-max",
            pick!(cli, file, reconnect_max).unwrap_or(120),
        )?,
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

fn required_path(option: &'static str, value: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    value.ok_or(ConfigError::Missing { option })
}

fn positive_secs(option: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(invalid(option, secs, "a number of seconds above 0"));
    }
    Ok(Duration::from_secs(secs))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_cli() -> Cli {
        Cli {
            endpoint: Some("abc-ats.iot.eu-west-1.amazonaws.com".into()),
            thing_name: Some("mything1".into()),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            root_ca: Some("ca.pem".into()),
            ..Cli::default()
        }
    }

    fn resolve_err(cli: Cli, file: &str) -> String {
        let file: FileConfig = toml::from_str(file).unwrap();
        Config::resolve(cli, file).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(connect_cli(), FileConfig::default()).unwrap();
        assert_eq!(c.mode, Mode::Run);
        let conn = c.connection.unwrap();
        assert_eq!(conn.client_id, "mything1");
        assert_eq!(conn.port, 8883);
        assert_eq!(conn.interval, Duration::from_secs(300));
        assert_eq!(conn.format, Format::Json);
        assert!(conn.shadow_name.is_none());
        assert!(conn.report_quarantine);
        assert_eq!(conn.state_file, PathBuf::from(DEFAULT_STATE_FILE));
        let (process, metric) = c.collect.child_metric.unwrap();
        assert_eq!(process, "myapp");
        assert_eq!(metric.as_str(), "num_child_procs_myapp");
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            thing_name = "from-file"
            interval = 600
            shadow_name = "security"
            format = "cbor"
            process_name = "otherapp"
            report_quarantine = false
            [[custom_metric]]
            name = "disk_free_mb"
            type = "number"
            command = "echo 5"
            "#,
        )
        .unwrap();
        let mut cli = connect_cli();
        cli.interval = Some(900);
        let c = Config::resolve(cli, file).unwrap();
        let conn = c.connection.unwrap();
        assert_eq!(conn.thing_name.as_str(), "mything1");
        assert_eq!(conn.interval, Duration::from_secs(900));
        assert_eq!(conn.format, Format::Cbor);
        assert_eq!(conn.shadow_name.unwrap().as_str(), "security");
        assert!(!conn.report_quarantine);
        assert_eq!(c.collect.child_metric.unwrap().0, "otherapp");
        assert_eq!(c.collect.custom_metrics.len(), 1);
        assert_eq!(c.collect.custom_metrics[0].kind, CustomMetricKind::Number);
    }

    #[test]
    fn interval_below_300_is_refused_with_the_reason() {
        let mut cli = connect_cli();
        cli.interval = Some(60);
        let e = resolve_err(cli, "");
        assert!(e.contains("--interval \"60\""), "{e}");
        assert!(e.contains("at least 300 seconds"), "{e}");
    }

    #[test]
    fn missing_and_invalid_settings_name_the_option() {
        let mut cli = connect_cli();
        cli.cert = None;
        assert_eq!(
            resolve_err(cli, ""),
            "--cert is required to connect (flag or key in the --config file)"
        );
        let mut cli = connect_cli();
        cli.endpoint = Some("https://abc.iot.eu-west-1.amazonaws.com/".into());
        let e = resolve_err(cli, "");
        assert!(e.starts_with("--endpoint \"https://"), "{e}");
        let mut cli = connect_cli();
        cli.thing_name = Some("a/b".into());
        assert!(resolve_err(cli, "").starts_with("--thing-name \"a/b\""));
        let mut cli = connect_cli();
        cli.keep_alive = Some(5);
        assert!(resolve_err(cli, "").contains("30 to 1200"));
    }

    #[test]
    fn print_report_needs_no_connection_settings() {
        let cli = Cli {
            print_report: true,
            ..Cli::default()
        };
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        assert_eq!(c.mode, Mode::PrintReport);
        assert!(c.connection.is_none());
    }

    #[test]
    fn empty_shadow_name_is_the_classic_shadow() {
        let mut cli = connect_cli();
        cli.shadow_name = Some(String::new());
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        assert!(c.connection.unwrap().shadow_name.is_none());
    }

    #[test]
    fn file_typos_and_bad_custom_metrics_are_refused() {
        assert!(toml::from_str::<FileConfig>("thing = \"x\"").is_err());
        let e = resolve_err(
            connect_cli(),
            "[[custom_metric]]\nname = \"aws:x\"\ntype = \"number\"\ncommand = \"echo 1\"",
        );
        assert!(e.starts_with("custom_metric.name \"aws:x\""), "{e}");
        let e = resolve_err(
            connect_cli(),
            "[[custom_metric]]\nname = \"num_child_procs_myapp\"\ntype = \"number\"\ncommand = \"echo 1\"",
        );
        assert!(e.contains("used once"), "{e}");
    }
}
