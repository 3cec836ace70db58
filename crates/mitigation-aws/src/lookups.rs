//! The lookups that resolve a record's subjects to things, on the IoT client:
//! certificates to their things, audit findings by task and check, and one finding by id.

use aws_sdk_iot::types::AuditFinding;
use futures::future::BoxFuture;
use mitigation::{ActionError, AuditFindings, CertificateThings, FindingsPage};
use violation_core::{AuditFindingFields, AuditFindingId, AuditTaskId, CertificateId};

use crate::errors::classify;

/// Pages of a certificate's things read at most.
const MAX_THING_PAGES: usize = 100;
/// Findings per ListAuditFindings page (the API's maximum).
const FINDINGS_PER_PAGE: i32 = 250;

/// Certificates and audit findings, read with the IoT control-plane client.
pub struct IotDirectory {
    client: aws_sdk_iot::Client,
}

impl IotDirectory {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        IotDirectory { client }
    }

    /// ListPrincipalThingsV2 takes the certificate's ARN; DescribeCertificate gives it.
    async fn certificate_arn(&self, certificate: &CertificateId) -> Result<String, ActionError> {
        let subject = format!("cert/{certificate}");
        let out = self
            .client
            .describe_certificate()
            .certificate_id(certificate.as_str())
            .send()
            .await
            .map_err(|e| classify("DescribeCertificate", &subject, e))?;
        out.certificate_description()
            .and_then(|d| d.certificate_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                ActionError::retryable(
                    "DescribeCertificate",
                    subject,
                    "EmptyCertificateArn",
                    "DescribeCertificate returned no certificateArn",
                )
            })
    }
}

impl CertificateThings for IotDirectory {
    fn things_of<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let arn = self.certificate_arn(certificate).await?;
            let subject = format!("cert/{certificate}");
            let mut things = Vec::new();
            let mut pages = self
                .client
                .list_principal_things_v2()
                .principal(&arn)
                .into_paginator()
                .send();
            for _ in 0..MAX_THING_PAGES {
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| classify("ListPrincipalThingsV2", &subject, e))?;
                things.extend(
                    page.principal_thing_objects()
                        .iter()
                        .map(|o| o.thing_name().to_owned()),
                );
            }
            Ok(things)
        })
    }
}

/// The fields the core decides a finding on.
fn finding_fields(finding: &AuditFinding) -> AuditFindingFields {
    let identifier = finding
        .non_compliant_resource()
        .and_then(|r| r.resource_identifier());
    let id = |get: fn(&aws_sdk_iot::types::ResourceIdentifier) -> Option<&str>| {
        identifier.and_then(get).map(str::to_owned)
    };
    AuditFindingFields {
        finding_id: finding.finding_id().map(str::to_owned),
        task_id: finding.task_id().map(str::to_owned),
        check_name: finding.check_name().map(str::to_owned),
        is_suppressed: finding.is_suppressed(),
        device_certificate_id: id(|i| i.device_certificate_id()),
        device_certificate_arn: id(|i| i.device_certificate_arn()),
        client_id: id(|i| i.client_id()),
    }
}

impl AuditFindings for IotDirectory {
    fn list_findings<'a>(
        &'a self,
        task: &'a AuditTaskId,
        check: &'a str,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<FindingsPage, ActionError>> {
        Box::pin(async move {
            let page = self
                .client
                .list_audit_findings()
                .task_id(task.as_str())
                .check_name(check)
                .max_results(FINDINGS_PER_PAGE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| classify("ListAuditFindings", &format!("audit task {task}"), e))?;
            Ok(FindingsPage {
                findings: page.findings().iter().map(finding_fields).collect(),
                next_token: page.next_token().map(str::to_owned),
            })
        })
    }

    fn describe_finding<'a>(
        &'a self,
        finding: &'a AuditFindingId,
    ) -> BoxFuture<'a, Result<AuditFindingFields, ActionError>> {
        Box::pin(async move {
            let subject = format!("audit finding {finding}");
            let out = self
                .client
                .describe_audit_finding()
                .finding_id(finding.as_str())
                .send()
                .await
                .map_err(|e| classify("DescribeAuditFinding", &subject, e))?;
            out.finding().map(finding_fields).ok_or_else(|| {
                ActionError::permanent(
                    "DescribeAuditFinding",
                    subject,
                    "EmptyFinding",
                    "DescribeAuditFinding returned no finding",
                )
            })
        })
    }
}
