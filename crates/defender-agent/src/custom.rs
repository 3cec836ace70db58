//! Custom metrics from the configuration file, and the shell commands the agent runs.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::names::MetricName;
use crate::report::{CustomValue, Number};

/// The custom metric kinds of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomMetricKind {
    /// The command prints one number.
    Number,
    /// Numbers separated by spaces, commas or new lines.
    NumberList,
    /// One string a line (empty lines are skipped).
    StringList,
    /// IP addresses separated by spaces, commas or new lines.
    IpList,
}

#[derive(Debug, Clone)]
pub struct CustomMetricSpec {
    pub name: MetricName,
    pub kind: CustomMetricKind,
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start /bin/sh: {0}")]
    Spawn(std::io::Error),
    #[error("still running after {0:?}; killed")]
    Timeout(Duration),
    #[error("exited with {status}: {stderr}")]
    Failed { status: String, stderr: String },
    #[error("printed {output:?}, which is not {expected}")]
    BadOutput {
        output: String,
        expected: &'static str,
    },
}

/// Runs `command` with `/bin/sh -c`, killing it after `timeout`; returns its standard output.
pub async fn run_shell(
    command: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, CommandError> {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(CommandError::Timeout(timeout)),
        Ok(Err(e)) => return Err(CommandError::Spawn(e)),
        Ok(Ok(o)) => o,
    };
    if !output.status.success() {
        return Err(CommandError::Failed {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs the metric's command and reads its value.
pub async fn evaluate(
    spec: &CustomMetricSpec,
    timeout: Duration,
) -> Result<CustomValue, CommandError> {
    let out = run_shell(&spec.command, &[], timeout).await?;
    parse_value(spec.kind, &out)
}

pub fn parse_value(kind: CustomMetricKind, output: &str) -> Result<CustomValue, CommandError> {
    let bad = |expected| CommandError::BadOutput {
        output: output.trim().chars().take(200).collect(),
        expected,
    };
    let tokens = || {
        output
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
    };
    match kind {
        CustomMetricKind::Number => Number::parse(output.trim())
            .map(CustomValue::Number)
            .ok_or_else(|| bad("a number")),
        CustomMetricKind::NumberList => tokens()
            .map(Number::parse)
            .collect::<Option<Vec<_>>>()
            .map(CustomValue::NumberList)
            .ok_or_else(|| bad("a list of numbers")),
        CustomMetricKind::StringList => Ok(CustomValue::StringList(
            output
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        CustomMetricKind::IpList => tokens()
            .map(|t| t.parse::<IpAddr>().ok().map(|ip| ip.to_string()))
            .collect::<Option<Vec<_>>>()
            .map(CustomValue::IpList)
            .ok_or_else(|| bad("a list of IP addresses")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_each_kind() {
        use CustomMetricKind::*;
        assert_eq!(
            parse_value(Number, " 42\n").unwrap(),
            CustomValue::Number(crate::report::Number::Int(42))
        );
        assert!(parse_value(Number, "forty").is_err());
        assert_eq!(
            parse_value(NumberList, "1, 2.5\n3").unwrap(),
            CustomValue::NumberList(vec![
                crate::report::Number::Int(1),
                crate::report::Number::Float(2.5),
                crate::report::Number::Int(3)
            ])
        );
        assert_eq!(
            parse_value(StringList, "a b\n\nc\n").unwrap(),
            CustomValue::StringList(vec!["a b".into(), "c".into()])
        );
        assert_eq!(
            parse_value(IpList, "10.0.0.1 ::1").unwrap(),
            CustomValue::IpList(vec!["10.0.0.1".into(), "::1".into()])
        );
        assert!(parse_value(IpList, "10.0.0.300").is_err());
    }

    #[tokio::test]
    async fn commands_fail_clearly() {
        let t = Duration::from_secs(5);
        assert_eq!(run_shell("echo hi", &[], t).await.unwrap(), "hi\n");
        assert_eq!(
            run_shell("printf %s \"$X\"", &[("X", "y")], t)
                .await
                .unwrap(),
            "y"
        );
        let e = run_shell("echo oops >&2; exit 3", &[], t)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "exited with exit status: 3: oops");
        let e = run_shell("sleep 5", &[], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(e, CommandError::Timeout(_)));
    }
}
