use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::*;

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// docs/configuration.md is generated: `UPDATE_REFERENCE=1` rewrites it, otherwise any
/// difference (an edit by hand, or a setting changed without regenerating) fails.
#[test]
fn the_configuration_reference_is_generated_from_the_table() {
    let want = reference_markdown();
    let path = repo_file("docs/configuration.md");
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &want).expect("write docs/configuration.md");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/configuration.md differs from the settings table in crates/mitigation/src/settings.rs; \
         regenerate it with `UPDATE_REFERENCE=1 cargo test -p mitigation settings` \
         (first differing line: {:?})",
        have.lines()
            .zip(want.lines())
            .find(|(a, b)| a != b)
            .or(Some(("<end of file>", "<more lines>")))
    );
}

/// Each function's `Environment: Variables:` keys in infra/template.yaml, by binary. A
/// line-based reading of the template's own layout: a resource at two spaces of indent, its
/// `Binary:` under `BuildProperties`, its `Variables:` block.
fn template_environments(template: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut environments = BTreeMap::new();
    let mut binary: Option<String> = None;
    let mut variables_indent: Option<usize> = None;
    for line in template.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.ends_with(':') {
            binary = None;
            variables_indent = None;
        }
        if let Some(name) = trimmed.strip_prefix("Binary: ") {
            binary = Some(name.trim().to_owned());
        }
        match variables_indent {
            Some(block) if indent > block => {
                if let (Some(bin), Some((key, _))) = (&binary, trimmed.split_once(':')) {
                    environments
                        .entry(bin.clone())
                        .or_insert_with(BTreeSet::new)
                        .insert(key.to_owned());
                }
            }
            Some(_) => variables_indent = None,
            None if trimmed == "Variables:" => variables_indent = Some(indent),
            None => {}
        }
    }
    environments
}

/// What the table says the template sets on `reader`.
fn expected_in_template(reader: Reader) -> BTreeSet<String> {
    SETTINGS
        .iter()
        .filter(|s| s.in_template && s.is_read_by(reader))
        .map(|s| s.name.to_owned())
        .collect()
}

#[test]
fn the_template_sets_exactly_the_table_s_variables_on_each_function() {
    let environments = template_environments(&read("infra/template.yaml"));
    for reader in Reader::ALL.into_iter().filter(|r| r.is_function()) {
        let have = environments
            .get(reader.binary())
            .cloned()
            .unwrap_or_default();
        let want = expected_in_template(reader);
        assert_eq!(
            have,
            want,
            "infra/template.yaml: the environment of {} disagrees with the settings table \
             (crates/mitigation/src/settings.rs: read_by and in_template)",
            reader.binary()
        );
    }
    assert_eq!(
        environments.len(),
        4,
        "a function of the template that is not in the table: {:?}",
        environments.keys()
    );
}

#[test]
fn the_template_reader_catches_an_edit_by_hand() {
    let template = read("infra/template.yaml").replacen(
        "          DISCONNECT: !Ref DisconnectOnQuarantine\n",
        "          DISCONNECT: !Ref DisconnectOnQuarantine\n          NOT_A_SETTING: x\n",
        1,
    );
    let group = template_environments(&template)
        .remove("quarantine-group")
        .unwrap_or_default();
    assert!(group.contains("NOT_A_SETTING") && group.contains("RUST_LOG"));
    assert_ne!(group, expected_in_template(Reader::Group));
}

/// `[package.metadata.lambda.deploy] env = { ... }` of each function crate (cargo lambda
/// deploy) sets only variables that function reads.
#[test]
fn the_cargo_lambda_metadata_sets_only_variables_the_function_reads() {
    for reader in Reader::ALL.into_iter().filter(|r| r.is_function()) {
        let manifest = read(&format!("crates/{}/Cargo.toml", reader.binary()));
        let Some(env) = manifest.lines().find_map(|l| l.strip_prefix("env = {")) else {
            continue;
        };
        for key in env
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, _)| k.trim())
        {
            let read_by = find(key).is_some_and(|s| s.is_read_by(reader));
            assert!(
                read_by,
                "crates/{}/Cargo.toml sets {key}, which it does not read",
                reader.binary()
            );
        }
    }
}

#[test]
fn every_written_default_parses_to_the_default_configuration() {
    for setting in SETTINGS {
        let DefaultValue::Value(value) = setting.default else {
            continue;
        };
        let config = configure_all(|name| (name == setting.name).then(|| value.to_owned()));
        assert_eq!(
            config,
            Ok(FunctionConfig::default()),
            "{}={value}",
            setting.name
        );
    }
}

#[test]
fn names_and_flags_are_unique() {
    let names: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), SETTINGS.len());
    for reader in Reader::ALL {
        let mut seen = BTreeSet::new();
        for setting in SETTINGS.iter().filter(|s| s.is_read_by(reader)) {
            if let Flag::Value { long, .. } | Flag::Switch { long, .. } = setting.flag {
                assert!(seen.insert(long), "--{long} twice for {}", reader.binary());
            }
        }
    }
}

#[test]
fn a_program_reads_only_its_own_settings() {
    let env = |name: &str| match name {
        "RELEASE_ON_CLEAR" => Some("true".to_owned()),
        "QUARANTINE_GROUP" => Some("Isolated".to_owned()),
        "SHADOW_NAME" => Some("security".to_owned()),
        _ => None,
    };
    let ctl = configure(Reader::Quarantinectl, env).expect("valid");
    assert!(
        !ctl.policy.release_on_clear,
        "quarantinectl ignores the decision settings"
    );
    assert_eq!(ctl.quarantine_group, "Isolated");
    let shadow = configure(Reader::Shadow, env).expect("valid");
    assert!(shadow.policy.release_on_clear);
    assert_eq!(shadow.quarantine_group, DEFAULT_QUARANTINE_GROUP);
    assert_eq!(shadow.shadow_name.as_deref(), Some("security"));
    // Only the program that manages the group re-checks a thing taken out of it.
    assert_eq!(shadow.policy.quarantine_group, None);
    let group = configure(Reader::Group, env).expect("valid");
    assert_eq!(group.policy.quarantine_group.as_deref(), Some("Isolated"));
    let unset = configure(Reader::Group, |_| None).expect("valid");
    assert_eq!(
        unset.policy.quarantine_group.as_deref(),
        Some(DEFAULT_QUARANTINE_GROUP)
    );
}

#[test]
fn sdk_retries_are_left_to_aws_config_unless_set() {
    let unset = configure(Reader::Group, |_| None).expect("valid");
    assert_eq!((unset.aws.max_attempts, unset.aws.retry_mode), (None, None));
    let set = configure(Reader::StackSetup, |name| match name {
        "AWS_MAX_ATTEMPTS" => Some("4".into()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(set.aws.max_attempts, Some(4));
    let bad = configure(Reader::StackSetup, |name| {
        (name == "AWS_RETRY_MODE").then(|| "sometimes".into())
    });
    assert_eq!(bad.map_err(|e| e.variable), Err("AWS_RETRY_MODE"));
}

use crate::config::DEFAULT_QUARANTINE_GROUP;

#[cfg(feature = "cli")]
mod cli_flags {
    use super::*;

    fn matches(reader: Reader, args: &[&str]) -> clap::ArgMatches {
        cli::add_flags(clap::Command::new("tool"), reader, false)
            .try_get_matches_from(std::iter::once("tool").chain(args.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn flags_win_over_the_environment_and_switches_set_their_value() {
        let m = matches(
            Reader::Replay,
            &[
                "--quarantine-group",
                "FromFlag",
                "--no-disconnect",
                "--release-on-clear",
            ],
        );
        let config = cli::configure(&m, Reader::Replay).expect("valid");
        assert_eq!(config.quarantine_group, "FromFlag");
        assert!(!config.disconnect && config.policy.release_on_clear);
        let bad = cli::configure(
            &matches(Reader::Replay, &["--max-concurrency", "0"]),
            Reader::Replay,
        );
        assert_eq!(bad.map_err(|e| e.variable), Err("MAX_CONCURRENCY"));
    }

    #[test]
    fn a_tool_has_flags_only_for_what_it_reads() {
        let help = cli::add_flags(clap::Command::new("tool"), Reader::Quarantinectl, true)
            .render_long_help()
            .to_string();
        assert!(
            help.contains("--certificate-record-attribute")
                && help.contains("[env: QUARANTINE_GROUP]")
        );
        assert!(!help.contains("--release-on-clear"), "{help}");
    }
}

#[test]
fn the_account_turns_the_scope_check_on_with_the_region_it_runs_in() {
    let env = |account: Option<&'static str>| {
        move |name: &str| match name {
            "ACCOUNT_ID" => account.map(str::to_owned),
            "AWS_REGION" => Some("eu-west-1".to_owned()),
            _ => None,
        }
    };
    let open = configure(Reader::Group, env(None)).expect("valid");
    assert!(open.policy.scope.is_open(), "no account: nothing checked");
    let scoped = configure(Reader::Group, env(Some("123456789012"))).expect("valid");
    assert_eq!(
        scoped.policy.scope,
        violation_core::LocalScope::new(Some("123456789012"), Some("eu-west-1"))
    );
    let bad = configure(Reader::Group, env(Some("12345")));
    assert_eq!(bad.map_err(|e| e.variable), Err("ACCOUNT_ID"));
    let products = configure(Reader::Replay, |name| {
        (name == "SECURITY_HUB_PRODUCTS").then(|| "not a product".to_owned())
    });
    assert_eq!(
        products.map_err(|e| e.variable),
        Err("SECURITY_HUB_PRODUCTS")
    );
}
