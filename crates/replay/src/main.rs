//! `replay`: run Lambda event files through the same handler code as the quarantine
//! functions, and print one JSON line per record on stdout.
//!
//! Exit status: 0 when every record got a decision (a reject is a decision) and no action
//! failed; 1 when an action failed; 2 when a file could not be read or is not an SNS or SQS
//! Lambda event, or the configuration is invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use mitigation::{FunctionConfig, FunctionKind, Handler, dry_run_handler};
use mitigation_aws::build_handler;
use serde_json::Value;

/// Replay Device Defender violation events (SNS or SQS Lambda events) through the
/// quarantine handlers: as a dry run that only prints decisions, against AWS with the
/// default credential chain, or against an emulator with --endpoint-url.
///
/// Prints one JSON object per record on stdout: file, recordId, thingName, violationId,
/// decision (quarantine | release | ignore | reject), reason, outcome and actions. Options
/// not given on the command line are read from the same environment variables as the
/// functions.
#[derive(Debug, Parser)]
#[command(name = "replay", version)]
struct Args {
    /// Lambda event files (JSON): SNS events, or SQS events of SNS envelopes or raw messages.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Only decide and print; build no AWS client and call nothing [env: DRY_RUN].
    #[arg(long)]
    dry_run: bool,

    /// Send every AWS call to this endpoint, e.g. a local moto server
    /// (http://127.0.0.1:5000). Without it the standard AWS_ENDPOINT_URL* variables and
    /// the account's endpoints are used.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,

    /// Which function's action to run on each record.
    #[arg(long, value_enum, default_value_t = FunctionChoice::Both)]
    function: FunctionChoice,

    /// Static thing group to add quarantined things to [env: QUARANTINE_GROUP] [default: Quarantine].
    #[arg(long, value_name = "NAME")]
    quarantine_group: Option<String>,

    /// Named shadow to set the flag in, instead of the classic shadow [env: SHADOW_NAME].
    #[arg(long, value_name = "NAME")]
    shadow_name: Option<String>,

    /// The account's IoT data-plane endpoint; looked up with DescribeEndpoint when absent
    /// and no endpoint URL is set [env: IOT_DATA_ENDPOINT].
    #[arg(long, value_name = "HOST_OR_URL")]
    iot_data_endpoint: Option<String>,

    /// Release a thing when its alarm clears and it has no other active violation
    /// [env: RELEASE_ON_CLEAR].
    #[arg(long)]
    release_on_clear: bool,

    /// Only act on these security profiles, comma-separated [env: SECURITY_PROFILE_FILTER].
    #[arg(long, value_name = "NAMES")]
    security_profile_filter: Option<String>,

    /// Only act on these behaviors, comma-separated [env: BEHAVIOR_FILTER].
    #[arg(long, value_name = "NAMES")]
    behavior_filter: Option<String>,

    /// Only act on these metrics, comma-separated, e.g. aws:num-messages-sent [env: METRIC_FILTER].
    #[arg(long, value_name = "NAMES")]
    metric_filter: Option<String>,

    /// Do not cut a quarantined thing's live connection after adding it to the group
    /// (DeleteConnection; emulators such as moto lack it) [env: DISCONNECT=false].
    #[arg(long)]
    no_disconnect: bool,

    /// Records of one event processed at once [env: MAX_CONCURRENCY] [default: 10].
    #[arg(long, value_name = "N")]
    max_concurrency: Option<String>,

    /// Attempts per AWS call, the first included [env: AWS_MAX_ATTEMPTS] [default: 3].
    #[arg(long, value_name = "N")]
    max_attempts: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FunctionChoice {
    /// quarantine-group: the thing group.
    Group,
    /// quarantine-shadow: the shadow flag.
    Shadow,
    /// Both functions' actions.
    Both,
}

impl FunctionChoice {
    fn kinds(self) -> &'static [FunctionKind] {
        match self {
            FunctionChoice::Group => &[FunctionKind::ThingGroup],
            FunctionChoice::Shadow => &[FunctionKind::Shadow],
            FunctionChoice::Both => &[FunctionKind::ThingGroup, FunctionKind::Shadow],
        }
    }
}

impl Args {
    /// The functions' configuration: flags first, then the environment.
    fn config(&self) -> Result<FunctionConfig, mitigation::ConfigError> {
        let flags = [
            ("QUARANTINE_GROUP", self.quarantine_group.clone()),
            ("SHADOW_NAME", self.shadow_name.clone()),
            ("IOT_DATA_ENDPOINT", self.iot_data_endpoint.clone()),
            (
                "SECURITY_PROFILE_FILTER",
                self.security_profile_filter.clone(),
            ),
            ("BEHAVIOR_FILTER", self.behavior_filter.clone()),
            ("METRIC_FILTER", self.metric_filter.clone()),
            ("MAX_CONCURRENCY", self.max_concurrency.clone()),
            ("AWS_MAX_ATTEMPTS", self.max_attempts.clone()),
            (
                "RELEASE_ON_CLEAR",
                self.release_on_clear.then(|| "true".into()),
            ),
            ("DRY_RUN", self.dry_run.then(|| "true".into())),
            ("DISCONNECT", self.no_disconnect.then(|| "false".into())),
        ];
        let mut config = FunctionConfig::from_flags(&flags, |name| std::env::var(name).ok())?;
        config.aws.endpoint_url = self.endpoint_url.clone();
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    mitigation::init_cli_logging("warn");
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let kinds = args.function.kinds();
    let handler = if config.dry_run {
        dry_run_handler(kinds, &config)
    } else {
        match build_handler(kinds, &config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("replay: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let mut bad_files = 0;
    let mut failed_records = 0;
    for file in &args.files {
        match replay_file(&handler, file).await {
            Ok(failed) => failed_records += failed,
            Err(message) => {
                eprintln!("replay: {}: {message}", file.display());
                bad_files += 1;
            }
        }
    }
    if bad_files > 0 {
        ExitCode::from(2)
    } else if failed_records > 0 {
        eprintln!("replay: {failed_records} record(s) failed");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Replay one file; the number of records whose action failed.
async fn replay_file(handler: &Handler, file: &PathBuf) -> Result<usize, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let event: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let report = handler.handle(&event).await.map_err(|e| e.to_string())?;
    let mut failed = 0;
    for record in &report.records {
        let mut line = record.to_json();
        if let Some(map) = line.as_object_mut() {
            map.insert("file".into(), Value::from(file.display().to_string()));
        }
        println!("{line}");
        if matches!(record.outcome, mitigation::RecordOutcome::Failed { .. }) {
            failed += 1;
        }
    }
    let trigger = report.trigger.map_or("empty", |t| t.as_str());
    let response = match report.into_response() {
        Ok(answer) => serde_json::to_string(&answer).unwrap_or_default(),
        Err(e) => format!("invocation error {}: {e}", e.error_type()),
    };
    eprintln!(
        "replay: {}: {trigger} event; Lambda answer: {response}",
        file.display()
    );
    Ok(failed)
}
