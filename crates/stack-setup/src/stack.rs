//! Is the stack leaving? A Delete of the attachment is the one request whose forgery frees
//! every quarantined device, and the request itself cannot be authenticated. So a Delete acts
//! only while CloudFormation itself reports the stack deleting, rolling back or cleaning up
//! (DescribeStacks on `STACK_ID`): a Delete sent while the stack stands changes nothing.

use futures::future::BoxFuture;
use mitigation::ActionError;

/// The stack's status, as CloudFormation reports it.
pub trait StackStatus: Send + Sync {
    /// DescribeStacks(`stack_id`)'s `StackStatus`; `None` when no stack is described.
    fn stack_status<'a>(
        &'a self,
        stack_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ActionError>>;
}

/// The statuses in which CloudFormation deletes resources: the stack's deletion, the
/// rollback of a failed creation, update or import, and the clean-up after an update that
/// removed the resource. `DELETE_COMPLETE` too: `STACK_ID` names a deleted stack only when
/// the function's own stack is gone, and with it the policy and the group.
pub const LEAVING: &[&str] = &[
    "DELETE_IN_PROGRESS",
    "DELETE_COMPLETE",
    "ROLLBACK_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "IMPORT_ROLLBACK_IN_PROGRESS",
];

/// Why a Delete may not act, or `None` when the stack is leaving.
pub fn refusal(stack_id: &str, status: Option<&str>) -> Option<String> {
    match status {
        Some(s) if LEAVING.contains(&s) => None,
        Some(s) => Some(format!(
            "refused: stack {stack_id} is {s}, not being deleted, rolled back or cleaned up; a Delete detaches the quarantine policy only then"
        )),
        None => Some(format!(
            "refused: DescribeStacks describes no stack {stack_id}"
        )),
    }
}

/// [`StackStatus`] on the CloudFormation client.
pub struct AwsStackStatus {
    client: aws_sdk_cloudformation::Client,
}

impl AwsStackStatus {
    pub fn new(client: aws_sdk_cloudformation::Client) -> Self {
        AwsStackStatus { client }
    }
}

impl StackStatus for AwsStackStatus {
    fn stack_status<'a>(
        &'a self,
        stack_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ActionError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_stacks()
                .stack_name(stack_id)
                .send()
                .await
                .map_err(|e| {
                    let mut e = mitigation_aws::classify("DescribeStacks", stack_id, e);
                    e.hint = None;
                    e
                })?;
            Ok(out
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .map(|s| s.as_str().to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leaving_stack_lets_a_delete_act() {
        let id = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid";
        for status in LEAVING {
            assert_eq!(refusal(id, Some(status)), None, "{status}");
        }
        for status in [
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
            "UPDATE_IN_PROGRESS",
            "CREATE_IN_PROGRESS",
        ] {
            let reason = refusal(id, Some(status)).unwrap();
            assert!(reason.contains(status) && reason.contains(id), "{reason}");
        }
        assert!(refusal(id, None).is_some());
    }
}
