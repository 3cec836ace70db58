//! Security Hub findings sent by EventBridge ("Security Hub Findings - Custom Action" and
//! "Security Hub Findings - Imported"; `detail.findings[]` in ASFF).
//!
//! A finding quarantines its IoT resources only when it can be trusted and is open:
//! - it comes from a product of `SECURITY_HUB_PRODUCTS` (by default AWS IoT Device
//!   Defender's Detect and Audit products), or an analyst sent it to the custom action;
//! - it is of this account (`AwsAccountId`) and region, when they are known;
//! - its `RecordState` is ACTIVE and its `Workflow.Status` NEW (or, without it, the older
//!   `WorkflowState` is NEW): RESOLVED, NOTIFIED and SUPPRESSED findings never act, so an
//!   analyst closing a finding after a release does not quarantine again;
//! - no analyst marked it FALSE_POSITIVE or BENIGN_POSITIVE (`VerificationState`);
//! - in an Imported event, it is not an analyst's update: BatchUpdateFindings emits a new
//!   Imported event but leaves `UpdatedAt` alone, so a `Note` newer than `UpdatedAt` shows
//!   that this event is an analyst's note, not a provider's new evidence.
//!
//! Its IoT resources are a `Resources[].Id` that is a thing or certificate ARN, and AWS's own
//! Device Defender form `{"Type": "AwsIotRegisteredThing", "Id": "MyThing"}` (a bare name;
//! the ARN, when given, under `Details.Other.ThingArn`). A finding that is not trusted or
//! not open is skipped with its reason; an event with nothing left to act on is ignored.

use crate::decision::{Action, Decision, DecisionPolicy, IgnoreReason, SkipWhy, SkippedFinding};
use crate::lenient::{Fields, Notes};
use crate::reject::{RejectReason, excerpt};
use crate::sources::{AlertSource, Decided};
use crate::subject::{InvalidSubject, Subject};
use crate::timestamp::epoch_millis;
use crate::trust::{LocalScope, ProductArn};
use crate::verdict::{AlertFacts, AlertTime};

const CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";

/// AWS's own resource type for a thing (Device Defender's findings).
const REGISTERED_THING: &str = "AwsIotRegisteredThing";

pub(crate) fn looks_like(f: Fields<'_>) -> bool {
    f.str("source") == Some("aws.securityhub")
        || f.str("detail-type")
            .is_some_and(|t| t.starts_with("Security Hub Findings"))
}

/// One finding, as far as the decision reads it.
struct Finding<'a> {
    id: String,
    fields: Fields<'a>,
}

pub(crate) fn decide(f: Fields<'_>, policy: &DecisionPolicy, notes: &mut Notes) -> Decided {
    let findings: Vec<Finding<'_>> = f
        .object("detail", notes)
        .map(|d| d.objects("findings", notes))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, fields)| Finding {
            id: fields
                .str("Id")
                .map_or_else(|| format!("findings[{i}]"), |id| excerpt(id, 300)),
            fields,
        })
        .collect();
    let titles: Vec<String> = findings
        .iter()
        .filter_map(|x| x.fields.str("Title").map(|t| excerpt(t, 200)))
        .collect();
    let mut facts = AlertFacts {
        event_type: f.text("detail-type", notes),
        time: f.text("time", notes).map(AlertTime::Text),
        alert_reason: (!titles.is_empty()).then(|| titles.join("; ")),
        finding_ids: findings.iter().map(|x| x.id.clone()).collect(),
        ..AlertFacts::default()
    };
    if findings.is_empty() {
        let decision = Decision::Reject(RejectReason::MissingField {
            alert: AlertSource::SecurityHub,
            field: "detail.findings",
        });
        return Decided { facts, decision };
    }
    let custom_action = f.str("detail-type") == Some(CUSTOM_ACTION);
    let mut named = Vec::new();
    let decision = decide_findings(&findings, custom_action, policy, &mut named, notes);
    facts.subject = (!named.is_empty()).then(|| named.join(", "));
    Decided { facts, decision }
}

fn decide_findings(
    findings: &[Finding<'_>],
    custom_action: bool,
    policy: &DecisionPolicy,
    named: &mut Vec<String>,
    notes: &mut Notes,
) -> Decision {
    let mut subjects = Vec::new();
    let mut skipped = Vec::new();
    let mut first_invalid = None;
    for finding in findings {
        let skip = untrusted(finding.fields, custom_action, policy, notes)
            .or_else(|| closed(finding.fields, custom_action, notes));
        if let Some(why) = skip {
            skipped.push(SkippedFinding {
                finding_id: finding.id.clone(),
                why,
            });
            continue;
        }
        let found = finding_subjects(finding, &policy.scope, named, notes);
        if found.subjects.is_empty() {
            skipped.push(SkippedFinding {
                finding_id: finding.id.clone(),
                why: SkipWhy::NoIotResource,
            });
        }
        subjects.extend(found.subjects);
        if let Some(reason) = found.first_invalid {
            first_invalid.get_or_insert(reason);
        }
    }
    if let Some(decision) = Decision::act(Action::Quarantine, subjects) {
        skipped
            .iter()
            .for_each(|s| notes.push(format!("finding {} not acted on: {}", s.finding_id, s.why)));
        return decision;
    }
    match first_invalid {
        Some(reason) => Decision::Reject(reason),
        None => Decision::Ignore(IgnoreReason::NoActionableFinding { skipped }),
    }
}

/// The subjects of one trusted, open finding, and the first resource refused.
struct FindingSubjects {
    subjects: Vec<Subject>,
    first_invalid: Option<RejectReason>,
}

fn finding_subjects(
    finding: &Finding<'_>,
    scope: &LocalScope,
    named: &mut Vec<String>,
    notes: &mut Notes,
) -> FindingSubjects {
    let mut out = FindingSubjects {
        subjects: Vec::new(),
        first_invalid: None,
    };
    for resource in finding.fields.objects("Resources", notes) {
        let Some(found) = resource_subject(finding.fields, resource, scope, notes) else {
            continue;
        };
        named.push(excerpt(&found.written, 200));
        match found.subject {
            Ok(subject) => out.subjects.push(subject),
            Err(problem) => {
                notes.push(format!(
                    "finding {}: resource {:?} skipped: {problem}",
                    finding.id, found.written
                ));
                out.first_invalid
                    .get_or_insert(RejectReason::InvalidSubject {
                        field: found.field.to_owned(),
                        value: excerpt(&found.written, 200),
                        problem,
                    });
            }
        }
    }
    out
}

/// Why a finding cannot be trusted, if it cannot: its product, account or region.
fn untrusted(
    finding: Fields<'_>,
    custom_action: bool,
    policy: &DecisionPolicy,
    notes: &mut Notes,
) -> Option<SkipWhy> {
    let product_arn = finding.str("ProductArn");
    let by_analyst = custom_action && policy.security_hub_products.trusts_custom_action();
    if !by_analyst && !product_arn.is_some_and(|p| policy.security_hub_products.allows_product(p)) {
        return Some(SkipWhy::ProductNotAllowed {
            product_arn: product_arn.map(|p| excerpt(p, 200)),
        });
    }
    let scope = &policy.scope;
    if let Some(expected) = &scope.account {
        let account = finding.text("AwsAccountId", notes);
        if account.as_deref() != Some(expected.as_str()) {
            return Some(SkipWhy::OtherAccount {
                account: account.map(|a| excerpt(&a, 40)),
                expected: expected.clone(),
            });
        }
    }
    let product_region = product_arn.and_then(ProductArn::parse).map(|p| p.region);
    let regions = [finding.str("Region"), product_region];
    let foreign = regions
        .into_iter()
        .flatten()
        .find(|r| !r.is_empty() && scope.region.as_deref().is_some_and(|e| e != *r))?;
    Some(SkipWhy::OtherRegion {
        region: excerpt(foreign, 40),
        expected: scope.region.clone().unwrap_or_default(),
    })
}

/// Why a trusted finding asks for no action, if it does not.
fn closed(finding: Fields<'_>, custom_action: bool, notes: &mut Notes) -> Option<SkipWhy> {
    let record = finding.str("RecordState");
    if record != Some("ACTIVE") {
        return Some(SkipWhy::RecordNotActive {
            state: record.map(|r| excerpt(r, 40)),
        });
    }
    let workflow = finding
        .object("Workflow", notes)
        .and_then(|w| w.str("Status"))
        .or_else(|| finding.str("WorkflowState"));
    if workflow != Some("NEW") {
        return Some(SkipWhy::WorkflowNotNew {
            status: workflow.map(|w| excerpt(w, 40)),
        });
    }
    if let Some(state @ ("FALSE_POSITIVE" | "BENIGN_POSITIVE")) = finding.str("VerificationState") {
        return Some(SkipWhy::VerifiedNotAThreat {
            state: state.to_owned(),
        });
    }
    if !custom_action && analyst_update(finding, notes) {
        return Some(SkipWhy::AnalystUpdate);
    }
    None
}

/// Whether an Imported event is an analyst's update rather than the provider's: its note
/// is newer than the provider's `UpdatedAt`, which BatchUpdateFindings never changes. A note
/// whose time cannot be compared counts as the analyst's, so a human decision is not
/// overridden on a guess.
fn analyst_update(finding: Fields<'_>, notes: &mut Notes) -> bool {
    let Some(note) = finding.object("Note", notes) else {
        return false;
    };
    let noted = note.str("UpdatedAt").and_then(epoch_millis);
    let updated = finding.str("UpdatedAt").and_then(epoch_millis);
    match (noted, updated) {
        (Some(noted), Some(updated)) => noted > updated,
        _ => true,
    }
}

/// An IoT resource of a finding: how it was written, where, and the subject it names.
struct FoundResource {
    written: String,
    field: &'static str,
    subject: Result<Subject, InvalidSubject>,
}

/// The subject a resource names, if it names a thing or certificate.
fn resource_subject(
    finding: Fields<'_>,
    resource: Fields<'_>,
    scope: &LocalScope,
    notes: &mut Notes,
) -> Option<FoundResource> {
    let id = resource.str("Id");
    if let Some(arn) = id.filter(|id| Subject::is_iot_resource_arn(id)) {
        return Some(FoundResource {
            written: arn.to_owned(),
            field: "Resources[].Id",
            subject: Subject::from_arn_in(arn, scope),
        });
    }
    if resource.str("Type") != Some(REGISTERED_THING) {
        return None;
    }
    let other = resource
        .object("Details", notes)
        .and_then(|d| d.object("Other", notes));
    if let Some(arn) = other.and_then(|o| o.str("ThingArn")) {
        let subject = Subject::from_arn_in(arn, scope);
        if let (Some(id), Ok(Subject::Thing(name))) = (id, &subject)
            && id != name.as_str()
        {
            notes.push(format!(
                "resource Id {id:?} and its ThingArn name different things; the ThingArn is acted on"
            ));
        }
        return Some(FoundResource {
            written: arn.to_owned(),
            field: "Resources[].Details.Other.ThingArn",
            subject,
        });
    }
    let (name, field) = match id {
        Some(id) => (id, "Resources[].Id"),
        None => (
            finding
                .object("ProductFields", notes)
                .and_then(|p| p.str("ThingName"))?,
            "ProductFields.ThingName",
        ),
    };
    Some(FoundResource {
        written: name.to_owned(),
        field,
        subject: bare_thing(name, resource.str("Region"), scope),
    })
}

/// A thing named without its ARN: its resource's `Region`, when given, must be the stack's.
fn bare_thing(
    name: &str,
    region: Option<&str>,
    scope: &LocalScope,
) -> Result<Subject, InvalidSubject> {
    let subject = Subject::thing(name)?;
    match (region, scope.region.as_deref()) {
        (Some(found), Some(expected)) if found != expected => Err(InvalidSubject::Foreign {
            arn: excerpt(name, 200),
            found: format!("region {}", excerpt(found, 40)),
            expected: format!("region {expected}"),
        }),
        _ => Ok(subject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Verdict, verdict_of};
    use serde_json::{Value, json};

    const ACCOUNT: &str = "123456789012";
    const DETECT: &str = "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-detect";
    const OWN: &str = "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default";

    fn finding(id: &str, product: &str, resources: Value) -> Value {
        json!({"SchemaVersion": "2018-10-08", "Id": id, "ProductArn": product,
               "GeneratorId": "iot-device-defender", "AwsAccountId": ACCOUNT, "Region": "eu-west-1",
               "Types": ["Unusual Behaviors/Device"], "CreatedAt": "2026-11-20T10:00:00Z",
               "UpdatedAt": "2026-11-20T10:00:00Z", "Severity": {"Label": "HIGH"},
               "Title": format!("title of {id}"), "Description": "d", "Resources": resources,
               "Workflow": {"Status": "NEW"}, "WorkflowState": "NEW", "RecordState": "ACTIVE"})
    }

    fn with(mut finding: Value, key: &str, value: Value) -> Value {
        finding[key] = value;
        finding
    }

    fn event(detail_type: &str, findings: Value) -> Value {
        json!({"version": "0", "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506",
               "detail-type": detail_type, "source": "aws.securityhub",
               "account": ACCOUNT, "time": "2026-11-20T10:05:00Z", "region": "eu-west-1",
               "resources": ["arn:aws:securityhub:eu-west-1:123456789012:action/custom/Quarantine"],
               "detail": {"actionName": "Quarantine", "findings": findings}})
    }

    fn custom_action(findings: Value) -> Value {
        event(CUSTOM_ACTION, findings)
    }

    fn imported(findings: Value) -> Value {
        event("Security Hub Findings - Imported", findings)
    }

    fn thing(name: &str) -> Value {
        json!({"Type": "Other", "Id": format!("arn:aws:iot:eu-west-1:123456789012:thing/{name}")})
    }

    /// AWS's own Device Defender resource: the thing by name, its ARN in the details.
    fn registered(name: &str, arn_account: Option<&str>) -> Value {
        let mut r = json!({"Type": "AwsIotRegisteredThing", "Id": name, "Partition": "aws",
                           "Region": "eu-west-1",
                           "Details": {"Other": {"IsRegisteredThing": "true"}}});
        if let Some(account) = arn_account {
            r["Details"]["Other"]["ThingArn"] =
                json!(format!("arn:aws:iot:eu-west-1:{account}:thing/{name}"));
        }
        r
    }

    fn local() -> DecisionPolicy {
        DecisionPolicy {
            scope: LocalScope::new(Some(ACCOUNT), Some("eu-west-1")),
            ..Default::default()
        }
    }

    fn skipped(verdict: &Verdict) -> Vec<SkipWhy> {
        match &verdict.decision {
            Decision::Ignore(IgnoreReason::NoActionableFinding { skipped }) => {
                skipped.iter().map(|s| s.why.clone()).collect()
            }
            other => panic!("not ignored: {other:?}"),
        }
    }

    fn thing_subjects(names: &[&str]) -> Vec<Subject> {
        names
            .iter()
            .filter_map(|n| Subject::thing(n).ok())
            .collect()
    }

    #[test]
    fn the_custom_action_quarantines_the_iot_resources_of_new_active_findings() {
        let message = custom_action(json!([
            finding(
                "f-1",
                OWN,
                json!([thing("dev-1"), {"Type": "AwsAccount", "Id": "AWS::::Account:123456789012"}])
            ),
            with(
                finding("f-2", OWN, json!([thing("dev-2")])),
                "Workflow",
                json!({"Status": "NOTIFIED"})
            ),
            with(
                finding("f-3", OWN, json!([thing("dev-3")])),
                "Workflow",
                json!({"Status": "SUPPRESSED"})
            ),
        ]));
        let verdict = verdict_of(message, &local());
        assert_eq!(verdict.source, Some(AlertSource::SecurityHub));
        assert_eq!(
            verdict.decision,
            Decision::Act {
                action: Action::Quarantine,
                subjects: thing_subjects(&["dev-1"])
            }
        );
        assert_eq!(verdict.facts.finding_ids, ["f-1", "f-2", "f-3"]);
        assert_eq!(
            verdict.notes,
            [
                "finding f-2 not acted on: its workflow status is NOTIFIED; only NEW findings act",
                "finding f-3 not acted on: its workflow status is SUPPRESSED; only NEW findings act"
            ]
        );
        assert!(
            verdict
                .reason()
                .starts_with("Security Hub finding f-1, f-2, f-3: title of f-1")
        );
    }

    #[test]
    fn device_defenders_own_finding_quarantines_its_thing_named_bare() {
        let dd = with(
            finding(
                "dd-1",
                DETECT,
                json!([registered("MyThing", Some(ACCOUNT))]),
            ),
            "ProductFields",
            json!({"ThingName": "MyThing", "ViolationId": "e92a782593c6f5b1fc7cb6a443dc1a12"}),
        );
        for policy in [DecisionPolicy::default(), local()] {
            let verdict = verdict_of(imported(json!([dd.clone()])), &policy);
            assert_eq!(verdict.decision.subjects(), thing_subjects(&["MyThing"]));
            assert_eq!(
                verdict.facts.subject.as_deref(),
                Some("arn:aws:iot:eu-west-1:123456789012:thing/MyThing")
            );
        }
        // Without the ARN: the bare Id, then ProductFields.ThingName.
        let bare = finding("dd-2", DETECT, json!([registered("cam-1", None)]));
        let verdict = verdict_of(imported(json!([bare])), &local());
        assert_eq!(verdict.decision.subjects(), thing_subjects(&["cam-1"]));
        assert_eq!(verdict.facts.subject.as_deref(), Some("cam-1"));
        let mut nameless = registered("x", None);
        nameless.as_object_mut().map(|r| r.remove("Id"));
        let by_fields = with(
            finding("dd-3", DETECT, json!([nameless])),
            "ProductFields",
            json!({"ThingName": "cam-2"}),
        );
        let verdict = verdict_of(imported(json!([by_fields])), &local());
        assert_eq!(verdict.decision.subjects(), thing_subjects(&["cam-2"]));
        // The audit product is trusted too.
        let audit = finding(
            "dd-4",
            "arn:aws:securityhub:eu-west-1::product/aws/iot-device-defender-audit",
            json!([registered("cam-3", None)]),
        );
        assert_eq!(
            verdict_of(imported(json!([audit])), &local())
                .decision
                .kind(),
            "quarantine"
        );
    }

    #[test]
    fn a_thing_of_another_account_or_region_is_refused_naming_it() {
        let foreign = finding(
            "dd-1",
            DETECT,
            json!([registered("gw-01", Some("999999999999"))]),
        );
        let verdict = verdict_of(imported(json!([foreign])), &local());
        assert!(matches!(
            &verdict.decision,
            Decision::Reject(RejectReason::InvalidSubject {
                problem: InvalidSubject::Foreign { .. },
                ..
            })
        ));
        let reason = verdict.reason();
        assert!(
            reason.contains("arn:aws:iot:eu-west-1:999999999999:thing/gw-01")
                && reason.contains("account 123456789012 in region eu-west-1"),
            "{reason}"
        );
        let mut elsewhere = registered("gw-02", None);
        elsewhere["Region"] = json!("us-east-1");
        let verdict = verdict_of(
            imported(json!([finding("dd-2", DETECT, json!([elsewhere]))])),
            &local(),
        );
        assert_eq!(verdict.to_json()["error"], "ForeignResource");
        // One foreign resource among local ones: the local ones act, the other is noted.
        let mixed = custom_action(json!([finding(
            "f-1",
            OWN,
            json!([thing("dev-1"), {"Type": "Other",
                   "Id": "arn:aws:iot:eu-west-1:999999999999:thing/dev-9"}])
        )]));
        let verdict = verdict_of(mixed, &local());
        assert_eq!(verdict.decision.subjects(), thing_subjects(&["dev-1"]));
        assert!(
            verdict.notes[0].contains("999999999999"),
            "{:?}",
            verdict.notes
        );
    }

    #[test]
    fn findings_of_untrusted_products_accounts_or_regions_are_ignored() {
        // Anyone with BatchImportFindings can import a finding of the account's own product.
        let forged = imported(json!([finding("f-1", OWN, json!([thing("victim")]))]));
        assert_eq!(
            skipped(&verdict_of(forged, &local())),
            [SkipWhy::ProductNotAllowed {
                product_arn: Some(OWN.to_owned())
            }]
        );
        let mut no_product = finding("f-2", DETECT, json!([thing("victim")]));
        no_product.as_object_mut().map(|f| f.remove("ProductArn"));
        assert_eq!(
            skipped(&verdict_of(imported(json!([no_product])), &local())),
            [SkipWhy::ProductNotAllowed { product_arn: None }]
        );
        let member = with(
            finding("f-3", DETECT, json!([registered("cam-1", None)])),
            "AwsAccountId",
            json!("999999999999"),
        );
        let verdict = verdict_of(imported(json!([member.clone()])), &local());
        assert_eq!(
            skipped(&verdict),
            [SkipWhy::OtherAccount {
                account: Some("999999999999".into()),
                expected: ACCOUNT.into()
            }]
        );
        assert!(
            verdict
                .reason()
                .contains("its AwsAccountId is 999999999999, not this account 123456789012")
        );
        // Not checked while the account is unknown.
        assert_eq!(
            verdict_of(imported(json!([member])), &DecisionPolicy::default())
                .decision
                .kind(),
            "quarantine"
        );
        let other_region = finding(
            "f-4",
            "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-detect",
            json!([registered("cam-1", None)]),
        );
        assert_eq!(
            skipped(&verdict_of(imported(json!([other_region])), &local())),
            [SkipWhy::OtherRegion {
                region: "us-east-1".into(),
                expected: "eu-west-1".into()
            }]
        );
        // Without custom-action in the list, the custom action is held to the products too.
        let strict = DecisionPolicy {
            security_hub_products: crate::trust::SecurityHubProducts::from_comma_list(
                "aws/iot-device-defender-detect",
            )
            .expect("valid"),
            ..local()
        };
        let chosen = custom_action(json!([finding("f-5", OWN, json!([thing("dev-5")]))]));
        assert_eq!(
            verdict_of(chosen.clone(), &local()).decision.kind(),
            "quarantine"
        );
        assert_eq!(verdict_of(chosen, &strict).decision.kind(), "ignore");
    }

    #[test]
    fn only_new_active_findings_act() {
        let dd = finding("dd-1", DETECT, json!([registered("cam-1", None)]));
        let cases = [
            (
                "Workflow",
                json!({"Status": "RESOLVED"}),
                SkipWhy::WorkflowNotNew {
                    status: Some("RESOLVED".into()),
                },
            ),
            (
                "Workflow",
                json!({"Status": "NOTIFIED"}),
                SkipWhy::WorkflowNotNew {
                    status: Some("NOTIFIED".into()),
                },
            ),
            (
                "Workflow",
                json!({"Status": "SUPPRESSED"}),
                SkipWhy::WorkflowNotNew {
                    status: Some("SUPPRESSED".into()),
                },
            ),
            (
                "RecordState",
                json!("ARCHIVED"),
                SkipWhy::RecordNotActive {
                    state: Some("ARCHIVED".into()),
                },
            ),
            (
                "RecordState",
                Value::Null,
                SkipWhy::RecordNotActive { state: None },
            ),
            (
                "VerificationState",
                json!("FALSE_POSITIVE"),
                SkipWhy::VerifiedNotAThreat {
                    state: "FALSE_POSITIVE".into(),
                },
            ),
            (
                "VerificationState",
                json!("BENIGN_POSITIVE"),
                SkipWhy::VerifiedNotAThreat {
                    state: "BENIGN_POSITIVE".into(),
                },
            ),
        ];
        for (key, value, why) in cases {
            let changed = with(dd.clone(), key, value.clone());
            for message in [
                imported(json!([changed.clone()])),
                custom_action(json!([changed])),
            ] {
                let verdict = verdict_of(message, &local());
                assert_eq!(
                    skipped(&verdict),
                    std::slice::from_ref(&why),
                    "{key} = {value}"
                );
            }
        }
        // Without Workflow, the older WorkflowState decides; without either, nothing acts.
        let mut legacy = dd.clone();
        legacy.as_object_mut().map(|f| f.remove("Workflow"));
        assert_eq!(
            verdict_of(imported(json!([legacy.clone()])), &local())
                .decision
                .kind(),
            "quarantine"
        );
        legacy["WorkflowState"] = json!("RESOLVED");
        assert_eq!(
            skipped(&verdict_of(imported(json!([legacy.clone()])), &local())),
            [SkipWhy::WorkflowNotNew {
                status: Some("RESOLVED".into())
            }]
        );
        legacy.as_object_mut().map(|f| f.remove("WorkflowState"));
        assert_eq!(
            skipped(&verdict_of(imported(json!([legacy])), &local())),
            [SkipWhy::WorkflowNotNew { status: None }]
        );
        let verified = with(dd, "VerificationState", json!("TRUE_POSITIVE"));
        assert_eq!(
            verdict_of(imported(json!([verified])), &local())
                .decision
                .kind(),
            "quarantine"
        );
    }

    #[test]
    fn an_analysts_note_on_a_new_finding_does_not_quarantine_again() {
        let dd = finding("dd-1", DETECT, json!([registered("cam-1", None)]));
        let note = |at: &str| json!({"Text": "released after review", "UpdatedBy": "alice", "UpdatedAt": at});
        let noted = with(dd.clone(), "Note", note("2026-11-20T11:30:00.000Z"));
        assert_eq!(
            skipped(&verdict_of(imported(json!([noted.clone()])), &local())),
            [SkipWhy::AnalystUpdate]
        );
        // The same finding sent to the custom action: the analyst asks for it.
        assert_eq!(
            verdict_of(custom_action(json!([noted])), &local())
                .decision
                .kind(),
            "quarantine"
        );
        // The provider updated the finding after the note: new evidence acts.
        let reimported = with(
            with(dd.clone(), "Note", note("2026-11-20T09:30:00Z")),
            "UpdatedAt",
            json!("2026-11-20T10:00:00.000+00:00"),
        );
        assert_eq!(
            verdict_of(imported(json!([reimported])), &local())
                .decision
                .kind(),
            "quarantine"
        );
        // A note whose time cannot be compared is taken as the analyst's.
        let odd = with(dd, "Note", json!({"Text": "x", "UpdatedAt": "yesterday"}));
        assert_eq!(
            skipped(&verdict_of(imported(json!([odd])), &local())),
            [SkipWhy::AnalystUpdate]
        );
    }

    #[test]
    fn findings_without_iot_resources_are_ignored_and_invalid_iot_arns_rejected() {
        let message = imported(json!([finding(
            "f-1",
            DETECT,
            json!([{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"},
                   {"Type": "Other", "Id": "MyThing"}])
        )]));
        assert_eq!(
            skipped(&verdict_of(message, &local())),
            [SkipWhy::NoIotResource]
        );
        let cert = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
        let message = imported(json!([finding(
            "f-1",
            DETECT,
            json!([{"Type": "Other", "Id": format!("arn:aws:iot:eu-west-1:123456789012:cert/{cert}")}])
        )]));
        assert_eq!(
            verdict_of(message, &local()).decision.subjects(),
            [Subject::certificate(cert).expect("cert")]
        );
        for bad in [thing("a/../b"), registered("a b", None)] {
            let message = imported(json!([finding("f-1", DETECT, json!([bad]))]));
            assert!(matches!(
                verdict_of(message, &local()).decision,
                Decision::Reject(RejectReason::InvalidSubject { .. })
            ));
        }
        assert!(matches!(
            verdict_of(imported(json!([])), &local()).decision,
            Decision::Reject(RejectReason::MissingField { .. })
        ));
    }
}
