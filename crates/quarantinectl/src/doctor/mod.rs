//! `doctor`: is the quarantine able to contain anything? The quarantine policy attached to
//! the group, the devices' policies pinning the client id to the thing name, and the
//! dead-letter queues empty. One line (or JSON object) per check, ok or problem with the
//! reason; any problem fails the command.
//!
//! - [`pinning`]: what a policy document says about `iot:Connect` (pure);
//! - [`read`]: each check, read with the SDK clients.

mod pinning;
mod read;

use aws_config::SdkConfig;
use mitigation::FunctionConfig;
use serde_json::json;

use crate::act::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Problem,
    /// Not configured: nothing to check.
    Skipped,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Problem => "problem",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub reason: String,
}

impl Finding {
    fn new(check: &'static str, verdict: Verdict, reason: String) -> Finding {
        Finding {
            check,
            verdict,
            reason,
        }
    }

    fn line(&self) -> String {
        // A reason is one line, whatever an AWS error message carried.
        let reason = self.reason.escape_debug().to_string();
        format!("{:<8} {:<18} {reason}", self.verdict.as_str(), self.check)
    }

    fn json(&self) -> serde_json::Value {
        json!({"check": self.check, "status": self.verdict.as_str(), "reason": self.reason})
    }
}

pub async fn run(
    sdk: &SdkConfig,
    config: &FunctionConfig,
    json_output: bool,
) -> Result<(), Failure> {
    let iot = aws_sdk_iot::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let mut findings = vec![
        read::quarantine_policy(
            &iot,
            &config.quarantine_group,
            config.quarantine_policy.as_deref(),
        )
        .await,
        read::device_policy(&iot, config.doctor.device_policy.as_deref()).await,
        read::ledger_table(&dynamodb, config.ledger_table.as_deref()).await,
    ];
    if config.doctor.dead_letter_queues.is_empty() {
        findings.push(Finding::new(
            "dead-letter-queue",
            Verdict::Skipped,
            "no queue given (--dead-letter-queues or DEAD_LETTER_QUEUE_URLS: the stack's outputs ending in QueueUrl)".into(),
        ));
    }
    for url in &config.doctor.dead_letter_queues {
        findings.push(read::dead_letter_queue(&sqs, url).await);
    }
    for finding in &findings {
        if json_output {
            println!("{}", finding.json());
        } else {
            println!("{}", finding.line());
        }
    }
    let problems = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Problem)
        .count();
    if problems == 0 {
        Ok(())
    } else {
        Err(Failure::Failed(format!("{problems} problem(s) found")))
    }
}
