//! `replay`: run Lambda event files through the same handler code as the quarantine
//! functions, and print one JSON line per record on stdout.
//!
//! Exit status: 0 when every record got a decision (a reject is a decision) and no action
//! failed; 1 when an action failed; 2 when a file could not be read or is not an SNS or SQS
//! Lambda event, or the configuration is invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use mitigation::settings::{self, Reader};
use mitigation::{FunctionConfig, FunctionKind, Handler, dry_run_handler};
use mitigation_aws::build_per_function;
use serde_json::Value;

/// Replay Device Defender violation events (SNS or SQS Lambda events) through the
/// quarantine handlers: as a dry run that only prints decisions, against AWS with the
/// default credential chain, or against an emulator with --endpoint-url.
///
/// Prints one JSON object per record on stdout: file, recordId, thingName, violationId,
/// decision (quarantine | release | ignore | reject), reason, outcome and actions; with the
/// ledger (--ledger-table), one per record and function, naming the function. Settings
/// not given on the command line are read from the same environment variables as the
/// functions (docs/configuration.md).
#[derive(Debug, Parser)]
#[command(name = "replay", version)]
struct Args {
    /// Lambda event files (JSON): SNS events, or SQS events of SNS envelopes or raw messages.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Send every AWS call to this endpoint, e.g. a local moto server
    /// (http://127.0.0.1:5000). Without it the standard AWS_ENDPOINT_URL* variables and
    /// the account's endpoints are used.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,

    /// Which function's action to run on each record.
    #[arg(long, value_enum, default_value_t = FunctionChoice::Both)]
    function: FunctionChoice,
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
    /// The arguments, with a flag for every setting replay reads (crates/mitigation's settings
    /// table), and the functions' configuration: flags first, then the environment.
    fn parse_with_config() -> (Self, Result<FunctionConfig, mitigation::ConfigError>) {
        let command = settings::cli::add_flags(Args::command(), Reader::Replay, false);
        let matches = command.get_matches();
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let config = settings::cli::configure(&matches, Reader::Replay).map(|mut config| {
            config.aws.endpoint_url = args.endpoint_url.clone();
            config
        });
        (args, config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (args, config) = Args::parse_with_config();
    mitigation::init_cli_logging("warn");
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let handlers = match handlers(args.function.kinds(), &config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad_files = 0;
    let mut failed_records = 0;
    for file in &args.files {
        match replay_file(&handlers, file).await {
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

/// The handlers each file goes through, deciding as the functions do (an untrusted release
/// request is refused). With the ledger (`LEDGER_TABLE`), one per function, each acting from
/// its own place in the ledger as the deployed function does; else one performing every
/// function's actions.
async fn handlers(
    kinds: &[FunctionKind],
    config: &FunctionConfig,
) -> Result<Vec<(Option<FunctionKind>, Handler)>, mitigation_aws::StartupError> {
    let handlers = if config.dry_run {
        vec![(None, dry_run_handler(kinds, config))]
    } else {
        let sdk = mitigation_aws::sdk::load_sdk_config(&config.aws).await;
        build_per_function(kinds, config, &sdk).await?
    };
    Ok(handlers
        .into_iter()
        .map(|(function, handler)| {
            (
                function,
                handler.with_release_sources(config.release_sources.clone()),
            )
        })
        .collect())
}

/// Replay one file through every handler; the number of records whose action failed.
async fn replay_file(
    handlers: &[(Option<FunctionKind>, Handler)],
    file: &PathBuf,
) -> Result<usize, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let event: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut failed = 0;
    for (function, handler) in handlers {
        let report = handler.handle(&event).await.map_err(|e| e.to_string())?;
        for record in &report.records {
            let mut line = record.to_json();
            if let Some(map) = line.as_object_mut() {
                map.insert("file".into(), Value::from(file.display().to_string()));
                if let Some(function) = function {
                    map.insert("function".into(), Value::from(function.ledger_name()));
                }
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
        let by = function.map_or(String::new(), |f| format!(" ({})", f.ledger_name()));
        eprintln!(
            "replay: {}{by}: {trigger} event; Lambda answer: {response}",
            file.display()
        );
    }
    Ok(failed)
}
