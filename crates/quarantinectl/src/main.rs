//! `quarantinectl`: the operator's command for the quarantine.
//!
//! - `status THING...`: per thing, membership of the quarantine group, the shadow's
//!   `quarantine` flag, the live connection, the certificates and the active violations;
//!   what cannot be read is shown as unknown with the reason.
//! - `doctor`: whether the quarantine can contain anything: the quarantine policy attached
//!   to the group, the device policy pinning the client id to the thing name, the
//!   dead-letter queues empty (see [`doctor`]).
//! - `quarantine THING... --reason TEXT` / `release THING... --reason TEXT`: a mitigation
//!   request per thing, run through the functions' own handler (`mitigation::Handler` on the
//!   real adapters), so it does exactly what the functions do, idempotently, and logs alike.
//!
//! - `list` / `held` / `history THING`: the quarantine ledger (`--ledger-table`): what holds
//!   each thing, what the budget held, and what happened to it; `approve THING...|--all`
//!   carries out held quarantines.
//!
//! Exit status: 0 when everything asked for was done (or, for status, read or shown as
//! unknown); 1 when an action failed, a request was rejected, a thing is not registered, or
//! doctor found a problem;
//! 2 for usage and configuration errors.

mod act;
mod doctor;
mod ledger;
mod sdk;
mod status;

use std::process::ExitCode;

use clap::{Args as ClapArgs, CommandFactory, FromArgMatches, Parser, Subcommand};
use mitigation::FunctionConfig;
use mitigation::settings::{self, Reader};
use violation_core::ThingName;

/// Operator command for the AWS IoT quarantine: see the state of things, and quarantine or
/// release them by hand exactly as the quarantine functions do.
///
/// AWS credentials, region and profile come from the standard AWS environment and files
/// (AWS_PROFILE, AWS_REGION, ~/.aws/config, SSO, ...) unless --profile / --region say
/// otherwise. Settings not given are read from the same environment variables as the
/// functions (QUARANTINE_GROUP, SHADOW_NAME, IOT_DATA_ENDPOINT, DISCONNECT,
/// CERTIFICATE_RECORD_ATTRIBUTE, AWS_MAX_ATTEMPTS, ...; docs/configuration.md).
///
/// Exit status: 0 ok; 1 an action failed, a request was rejected, a thing is not
/// registered, or doctor found a problem; 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "quarantinectl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show, per thing: in the quarantine group or not, the shadow's desired and reported
    /// `quarantine`, connected now (GetConnection), its certificates and their status, and
    /// its active Device Defender violations. What cannot be read is shown as unknown, with
    /// the reason.
    Status {
        /// Thing names.
        #[arg(required = true, value_name = "THING")]
        things: Vec<String>,

        /// One JSON object per thing on stdout (thingName, inQuarantineGroup,
        /// shadowQuarantine, ..., and `unknown`: what could not be read, and why) instead of
        /// a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that the quarantine can contain anything: the quarantine policy
    /// (--quarantine-policy) attached to the group, the devices' policy (--device-policy, or
    /// the policies of the certificates of up to 10 things) allowing iot:Connect only as the
    /// thing name, and the dead-letter queues (--dead-letter-queues) empty. One line per
    /// check, ok or problem with the reason; exit 1 on any problem.
    Doctor {
        /// One JSON object per check (check, status: ok/problem/skipped, reason).
        #[arg(long)]
        json: bool,
    },
    /// Quarantine things by hand: what the functions do on an in-alarm (quarantine group,
    /// live connection cut, shadow flag; certificates with --certificates).
    Quarantine(ActArgs),
    /// Release things by hand: what the functions do on a release (out of the group, shadow
    /// flag false; with --certificates, undo what the quarantine recorded on the
    /// certificates).
    Release(ActArgs),
    /// Every thing a function holds quarantined or has causes for, per function, with its
    /// causes: what, by whom, since when (the quarantine ledger, --ledger-table).
    List {
        /// One JSON object per thing and function.
        #[arg(long)]
        json: bool,
    },
    /// Things the blast-radius budget held: a cause is recorded, the function's mitigation is
    /// not in force (the quarantine ledger, --ledger-table).
    Held {
        /// One JSON object per thing and function.
        #[arg(long)]
        json: bool,
    },
    /// Carry out held quarantines: quarantine the things by hand (an operator cause, no
    /// budget), as `quarantine` does.
    Approve {
        /// Thing names (or --all).
        #[arg(value_name = "THING", required_unless_present = "all")]
        things: Vec<String>,

        /// Every held thing.
        #[arg(long, conflicts_with = "things")]
        all: bool,

        /// Why: logged with the operator's user name, and sent as the request's reason.
        #[arg(long, required = true, value_name = "TEXT")]
        reason: String,

        /// Print one JSON line per thing and function instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Protect things in the quarantine ledger (--ledger-table): the functions record their
    /// alerts' causes but never quarantine them (only `quarantine --force` does).
    Protect {
        #[arg(required = true, value_name = "THING")]
        things: Vec<String>,

        /// Why: kept in the ledger with the operator's user name.
        #[arg(long, required = true, value_name = "TEXT")]
        reason: String,
    },
    /// Undo `protect`.
    Unprotect {
        #[arg(required = true, value_name = "THING")]
        things: Vec<String>,
    },
    /// The history of a thing in the quarantine ledger (--ledger-table): every record each
    /// function handled for it, its cause, outcome, actions, request and caller.
    History {
        #[arg(value_name = "THING")]
        thing: String,

        /// One JSON object per entry.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, ClapArgs)]
struct ActArgs {
    /// Thing names.
    #[arg(required = true, value_name = "THING")]
    things: Vec<String>,

    /// Why: logged with the operator's user name, and sent as the request's reason.
    #[arg(long, required = true, value_name = "TEXT")]
    reason: String,

    /// Also contain (quarantine) or free (release) the things' certificates as the
    /// quarantine-certificate function does (--certificate-action: attach the quarantine
    /// policy, which needs --quarantine-policy, or deactivate): only certificates no other
    /// thing uses, recorded in a thing attribute; a release undoes only what is recorded.
    #[arg(long)]
    certificates: bool,

    /// Only print what would be done; call nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print one JSON line per thing (the functions' record report) instead of a sentence.
    #[arg(long)]
    json: bool,

    /// (quarantine, with the ledger) Quarantine things protected with `protect` all the same.
    #[arg(long)]
    force: bool,

    /// (release, with the ledger) Mark the Device Defender violations among the released
    /// causes so they do not fire again (PutVerificationStateOnViolation).
    #[arg(long, value_name = "STATE", value_parser = ["BENIGN_POSITIVE", "FALSE_POSITIVE"])]
    verification_state: Option<String>,

    /// (release, with the ledger) Clear only this cause (an id `list` or `status` shows);
    /// the thing is released only if no other cause remains.
    #[arg(long, value_name = "ID")]
    cause: Option<String>,
}

/// Options for every command.
#[derive(Debug, ClapArgs)]
struct Common {
    /// Send every AWS call to this endpoint, e.g. a local moto server
    /// (http://127.0.0.1:5000). Without it the standard AWS_ENDPOINT_URL* variables and the
    /// account's endpoints are used.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,

    /// AWS region (instead of AWS_REGION or the profile's region).
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,

    /// Named profile from ~/.aws/config and ~/.aws/credentials (instead of AWS_PROFILE).
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
}

impl Cli {
    /// The arguments, with a global flag for every setting quarantinectl reads
    /// (crates/mitigation's settings table; the decision filters of a function's environment
    /// are deliberately not among them: an operator's request is acted on as asked), and the
    /// functions' configuration: flags first, then the environment.
    fn parse_with_config() -> (Self, Result<FunctionConfig, mitigation::ConfigError>) {
        let command = settings::cli::add_flags(Cli::command(), Reader::Quarantinectl, true);
        let matches = command.get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let dry_run =
            matches!(&cli.command, Command::Quarantine(a) | Command::Release(a) if a.dry_run);
        let config = settings::cli::configure(&matches, Reader::Quarantinectl).map(|mut config| {
            config.aws.endpoint_url = cli.common.endpoint_url.clone();
            config.dry_run = dry_run;
            config
        });
        (cli, config)
    }
}

/// Thing names, checked before anything is called.
fn thing_names(names: &[String]) -> Result<Vec<ThingName>, String> {
    names
        .iter()
        .map(|n| ThingName::parse(n).map_err(|e| format!("{n:?} is not a thing name: {e}")))
        .collect()
}

/// Without `--ledger-table` or `LEDGER_TABLE`, the ledger the quarantine group names (the
/// stack sets it), so that the operator acts through the functions' ledger and not around
/// it. When the group cannot be read, a warning, and the command goes on without a ledger.
async fn with_group_ledger(sdk: &aws_config::SdkConfig, config: FunctionConfig) -> FunctionConfig {
    if config.ledger_table.is_some() {
        return config;
    }
    match ledger::table_of_group(sdk, &config.quarantine_group).await {
        Ok(Some(table)) => {
            eprintln!(
                "quarantinectl: ledger table {table} (named by thing group {}'s attribute {})",
                config.quarantine_group,
                ledger::GROUP_LEDGER_ATTRIBUTE
            );
            FunctionConfig {
                ledger_table: Some(table),
                ..config
            }
        }
        Ok(None) => config,
        Err(e) => {
            eprintln!(
                "quarantinectl: warning: no ledger table given and the quarantine group's could not be read ({e}); going on without the ledger"
            );
            config
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (cli, config) = Cli::parse_with_config();
    mitigation::init_cli_logging("info");
    let dry_run = config.as_ref().is_ok_and(|c| c.dry_run);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quarantinectl: {e}");
            return ExitCode::from(2);
        }
    };
    let history_thing;
    let names: &[String] = match &cli.command {
        Command::Status { things, .. } => things,
        Command::Doctor { .. } => &[],
        Command::Quarantine(a) | Command::Release(a) => &a.things,
        Command::History { thing, .. } => {
            history_thing = vec![thing.clone()];
            &history_thing
        }
        Command::Approve { things, .. }
        | Command::Protect { things, .. }
        | Command::Unprotect { things } => things,
        Command::List { .. } | Command::Held { .. } => &[],
    };
    let things = match thing_names(names) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("quarantinectl: {e}");
            return ExitCode::from(2);
        }
    };
    let sdk = if dry_run {
        None
    } else {
        match sdk::load(
            &config.aws,
            cli.common.region.clone(),
            cli.common.profile.clone(),
        )
        .await
        {
            Ok(sdk) => Some(sdk),
            Err(e) => {
                eprintln!("quarantinectl: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let config = match &sdk {
        Some(sdk) => with_group_ledger(sdk, config).await,
        None => config,
    };
    let result = match (&cli.command, sdk) {
        (Command::Status { json, .. }, Some(sdk)) => {
            status::run(&sdk, &config, &things, *json).await
        }
        (Command::Quarantine(a), sdk) => {
            act::run(violation_core::Action::Quarantine, a, &things, &config, sdk).await
        }
        (Command::Release(a), sdk) => {
            act::run(violation_core::Action::Release, a, &things, &config, sdk).await
        }
        (Command::Doctor { json }, Some(sdk)) => doctor::run(&sdk, &config, *json).await,
        (Command::List { json }, Some(sdk)) => ledger::list(&sdk, &config, *json, false).await,
        (Command::Held { json }, Some(sdk)) => ledger::list(&sdk, &config, *json, true).await,
        (
            Command::Approve {
                all, reason, json, ..
            },
            Some(sdk),
        ) => ledger::approve(&sdk, &config, &things, *all, reason, *json).await,
        (Command::Protect { reason, .. }, Some(sdk)) => {
            ledger::protect(&sdk, &config, &things, Some(reason)).await
        }
        (Command::Unprotect { .. }, Some(sdk)) => {
            ledger::protect(&sdk, &config, &things, None).await
        }
        (Command::History { json, .. }, Some(sdk)) => match things.first() {
            Some(thing) => ledger::history(&sdk, &config, thing, *json).await,
            None => Err(act::Failure::Usage("history needs a thing".into())),
        },
        (
            Command::Status { .. }
            | Command::Doctor { .. }
            | Command::List { .. }
            | Command::Held { .. }
            | Command::Approve { .. }
            | Command::Protect { .. }
            | Command::Unprotect { .. }
            | Command::History { .. },
            None,
        ) => Err(act::Failure::Usage(
            "only quarantine and release have a dry run".into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(act::Failure::Usage(message)) => {
            eprintln!("quarantinectl: {message}");
            ExitCode::from(2)
        }
        Err(act::Failure::Failed(message)) => {
            eprintln!("quarantinectl: {message}");
            ExitCode::from(1)
        }
    }
}
