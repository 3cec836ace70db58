//! The scheduled check (EventBridge, every 5 minutes): is the quarantine policy still attached
//! to the quarantine group? The answer is the figure `PolicyAttached` (1 or 0), in CloudWatch's
//! embedded metric format, which the stack's alarm watches; a check that cannot tell writes no
//! figure, which the alarm treats as breaching too.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use mitigation::ActionError;
use serde_json::{Value, json};

use crate::iot::IotSetup;
use crate::target::Target;

/// The `check` field of the schedule's input (infra/template.yaml, PolicyCheckSchedule).
pub const POLICY_ATTACHED: &str = "quarantine-policy-attached";

/// The metric, and the dimension that names the policy (the alarm's).
pub const METRIC: &str = "PolicyAttached";
pub const DIMENSION: &str = "QuarantinePolicy";

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    Attached,
    /// Not among the policy's targets, or the policy itself is gone.
    Detached,
}

/// Whether `target`'s policy is attached to its group.
pub async fn attachment(iot: &dyn IotSetup, target: &Target) -> Result<Attachment, ActionError> {
    match iot.policy_targets(&target.policy_name).await {
        Ok(targets) if targets.contains(&target.group.arn) => Ok(Attachment::Attached),
        Ok(_) => Ok(Attachment::Detached),
        Err(e) if e.code == "ResourceNotFoundException" => Ok(Attachment::Detached),
        Err(e) => Err(e),
    }
}

/// The EMF document of one check.
pub fn emf_document(
    namespace: &str,
    target: &Target,
    found: Attachment,
    timestamp_ms: u128,
) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{"Name": METRIC, "Unit": "Count"}],
            }],
        },
        DIMENSION: target.policy_name,
        "QuarantineGroupArn": target.group.arn,
        METRIC: u8::from(found == Attachment::Attached),
    })
}

/// Writes the document as its own line on stdout: CloudWatch extracts metrics only from a
/// log event that is the document itself.
pub fn emit(namespace: &str, target: &Target, found: Attachment) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = emf_document(namespace, target, found, now);
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::target;

    #[test]
    fn the_document_carries_the_alarm_s_metric_and_dimension() {
        let doc = emf_document("IotQuarantine", &target(), Attachment::Detached, 1);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "IotQuarantine");
        assert_eq!(directive["Dimensions"], json!([["QuarantinePolicy"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "PolicyAttached");
        assert_eq!(doc["QuarantinePolicy"], "s-quarantine");
        assert_eq!(doc["PolicyAttached"], 0);
        let attached = emf_document("IotQuarantine", &target(), Attachment::Attached, 1);
        assert_eq!(attached["PolicyAttached"], 1);
    }

    #[test]
    fn the_template_s_alarm_watches_this_metric() {
        let template = include_str!("../../../infra/template.yaml");
        let alarm = template
            .split("QuarantinePolicyDetachedAlarm:")
            .nth(1)
            .unwrap_or_default();
        assert!(alarm.contains(&format!("MetricName: {METRIC}")));
        assert!(alarm.contains(&format!("- Name: {DIMENSION}")));
        assert!(alarm.contains("TreatMissingData: breaching"));
        assert!(template.contains(&format!(r#"Input: '{{"check":"{POLICY_ATTACHED}"}}'"#)));
    }
}
