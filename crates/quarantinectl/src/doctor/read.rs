//! Each check, read with the SDK clients. A check that cannot read what it needs is a
//! problem, with the reason: the doctor never reports ok on what it did not see.

use std::collections::BTreeSet;

use aws_sdk_sqs::types::QueueAttributeName;
use mitigation::ActionError;
use mitigation_aws::classify;

use super::pinning::{Pinning, THING_NAME_CLIENT, pinning};
use super::{Finding, Verdict};

/// Things whose certificates' policies are read when no device policy is named.
pub const SAMPLE_THINGS: i32 = 10;

fn said(e: &ActionError) -> String {
    format!("{} on {}: {}: {}", e.operation, e.thing, e.code, e.message)
}

/// Is `policy` (any policy when `None`) attached to the thing group `group`?
pub async fn quarantine_policy(
    iot: &aws_sdk_iot::Client,
    group: &str,
    policy: Option<&str>,
) -> Finding {
    let finding = |verdict, reason: String| Finding::new("quarantine-policy", verdict, reason);
    let arn = match iot
        .describe_thing_group()
        .thing_group_name(group)
        .send()
        .await
    {
        Ok(out) => out.thing_group_arn.unwrap_or_default(),
        Err(e) => {
            let e = classify("DescribeThingGroup", group, e);
            return finding(Verdict::Problem, said(&e));
        }
    };
    let attached = match attached_policies(iot, &arn).await {
        Ok(names) => names,
        Err(e) => return finding(Verdict::Problem, said(&e)),
    };
    let listed = if attached.is_empty() {
        "none".to_owned()
    } else {
        attached.join(", ")
    };
    match policy {
        Some(p) if attached.iter().any(|a| a == p) => finding(
            Verdict::Ok,
            format!("policy {p} is attached to thing group {group}"),
        ),
        Some(p) => finding(
            Verdict::Problem,
            format!(
                "policy {p} is NOT attached to thing group {group} (attached: {listed}): quarantined devices are not restricted; re-attach it (docs/operator.md)"
            ),
        ),
        None if attached.is_empty() => finding(
            Verdict::Problem,
            format!(
                "no policy is attached to thing group {group}: quarantined devices are not restricted"
            ),
        ),
        None => finding(
            Verdict::Ok,
            format!(
                "attached to thing group {group}: {listed} (give --quarantine-policy to check the stack's own)"
            ),
        ),
    }
}

async fn attached_policies(
    iot: &aws_sdk_iot::Client,
    target: &str,
) -> Result<Vec<String>, ActionError> {
    let mut pages = iot
        .list_attached_policies()
        .target(target)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAttachedPolicies", target, e))?;
        names.extend(page.policies().iter().filter_map(|p| p.policy_name.clone()));
    }
    Ok(names)
}

/// Do the devices' policies pin the client id to the thing name? `named`, or the policies
/// attached to the certificates of up to [`SAMPLE_THINGS`] things.
pub async fn device_policy(iot: &aws_sdk_iot::Client, named: Option<&str>) -> Finding {
    let finding = |verdict, reason: String| Finding::new("device-policy", verdict, reason);
    let names = match named {
        Some(name) => Ok(BTreeSet::from([name.to_owned()])),
        None => sampled_policies(iot).await,
    };
    let names = match names {
        Ok(n) if n.is_empty() => {
            return finding(
                Verdict::Problem,
                format!(
                    "no policy found on the certificates of the first {SAMPLE_THINGS} things; name it with --device-policy"
                ),
            );
        }
        Ok(n) => n,
        Err(e) => return finding(Verdict::Problem, said(&e)),
    };
    let mut pinned = Vec::new();
    let mut unpinned = Vec::new();
    for name in &names {
        let document = match iot.get_policy().policy_name(name).send().await {
            Ok(out) => out.policy_document.unwrap_or_default(),
            Err(e) => return finding(Verdict::Problem, said(&classify("GetPolicy", name, e))),
        };
        match pinning(&document) {
            Ok(Pinning::Pinned) => pinned.push(name.clone()),
            Ok(Pinning::Unpinned(resources)) => {
                unpinned.push(format!("{name} ({})", resources.join(", ")));
            }
            Ok(Pinning::NoConnect) => {}
            Err(problem) => return finding(Verdict::Problem, format!("policy {name}: {problem}")),
        }
    }
    if !unpinned.is_empty() {
        return finding(
            Verdict::Problem,
            format!(
                "iot:Connect is allowed with other client ids than the thing name by {}: a quarantined device can reconnect under another client id, where the group policy does not apply; allow only {THING_NAME_CLIENT}",
                unpinned.join("; ")
            ),
        );
    }
    if pinned.is_empty() {
        let read: Vec<&str> = names.iter().map(String::as_str).collect();
        return finding(
            Verdict::Problem,
            format!(
                "none of {} allows iot:Connect: which policy lets the devices connect is unknown",
                read.join(", ")
            ),
        );
    }
    finding(
        Verdict::Ok,
        format!(
            "{} allow(s) iot:Connect only as {THING_NAME_CLIENT}",
            pinned.join(", ")
        ),
    )
}

async fn sampled_policies(iot: &aws_sdk_iot::Client) -> Result<BTreeSet<String>, ActionError> {
    let things = iot
        .list_things()
        .max_results(SAMPLE_THINGS)
        .send()
        .await
        .map_err(|e| classify("ListThings", "the account", e))?;
    let mut policies = BTreeSet::new();
    for thing in things.things().iter().filter_map(|t| t.thing_name()) {
        let principals = iot
            .list_thing_principals()
            .thing_name(thing)
            .send()
            .await
            .map_err(|e| classify("ListThingPrincipals", thing, e))?;
        for certificate in principals
            .principals()
            .iter()
            .filter(|p| p.contains(":cert/"))
        {
            policies.extend(attached_policies(iot, certificate).await?);
        }
    }
    Ok(policies)
}

/// The depth of a dead-letter queue: a problem when it holds anything.
pub async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Finding {
    let finding = |verdict, reason: String| Finding::new("dead-letter-queue", verdict, reason);
    let out = match sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return finding(
                Verdict::Problem,
                said(&classify("GetQueueAttributes", url, e)),
            );
        }
    };
    let depth = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse::<u64>().ok());
    match depth {
        Some(0) => finding(Verdict::Ok, format!("{url}: empty")),
        Some(n) => finding(
            Verdict::Problem,
            format!(
                "{url}: {n} message(s) the stack gave up on; read them, then replay or purge (docs/operator.md)"
            ),
        ),
        None => finding(
            Verdict::Problem,
            format!("{url}: GetQueueAttributes did not answer ApproximateNumberOfMessages"),
        ),
    }
}

/// The quarantine ledger's table (`LEDGER_TABLE`): reachable and active, and whether it is
/// protected from deletion.
pub async fn ledger_table(dynamodb: &aws_sdk_dynamodb::Client, table: Option<&str>) -> Finding {
    let finding = |verdict, reason: String| Finding::new("ledger-table", verdict, reason);
    let Some(table) = table else {
        return finding(
            Verdict::Skipped,
            "no ledger table given (--ledger-table or LEDGER_TABLE: the stack's LedgerTableName output)".into(),
        );
    };
    let out = match dynamodb.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e) => return finding(Verdict::Problem, said(&classify("DescribeTable", table, e))),
    };
    let Some(description) = out.table() else {
        return finding(
            Verdict::Problem,
            format!("{table}: DescribeTable answered no table"),
        );
    };
    let status = description
        .table_status()
        .map_or("unknown", |s| s.as_str())
        .to_owned();
    let protected = if description.deletion_protection_enabled() == Some(true) {
        "deletion protection on"
    } else {
        "deletion protection off"
    };
    match status.as_str() {
        "ACTIVE" => finding(Verdict::Ok, format!("{table}: ACTIVE, {protected}")),
        _ => finding(
            Verdict::Problem,
            format!("{table}: {status}, not ACTIVE: the functions' ledger writes fail until it is"),
        ),
    }
}
