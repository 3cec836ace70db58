//! [`CertificateRegistry`] on the IoT control-plane client: the SDK calls of the certificate
//! mitigation, whose rules are in `mitigation::certificates`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use aws_sdk_iot::types::{AttributePayload, CertificateStatus};
use futures::future::BoxFuture;
use mitigation::ActionError;
use mitigation::certificates::{
    AttachedCertificate, CertStatus, CertificateRegistry, certificate_of_principal,
};
use violation_core::{CertificateId, ThingName};

use crate::errors::classify;
use crate::paging::read_pages;

/// Pages read at most when listing a thing's principals or a certificate's things.
const MAX_PAGES: usize = 10;

/// [`CertificateRegistry`] on the IoT control-plane client.
#[derive(Clone)]
pub struct IotCertificates {
    client: aws_sdk_iot::Client,
}

impl IotCertificates {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        IotCertificates { client }
    }
}

fn cert_subject(id: &CertificateId) -> String {
    format!("cert/{id}")
}

impl CertificateRegistry for IotCertificates {
    fn thing_certificates<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<AttachedCertificate>, ActionError>> {
        Box::pin(async move {
            let mut certificates: Vec<AttachedCertificate> = Vec::new();
            let mut skipped = 0;
            let pages = self
                .client
                .list_thing_principals_v2()
                .thing_name(thing.as_str())
                .into_paginator()
                .send();
            read_pages(
                pages,
                MAX_PAGES,
                "ListThingPrincipalsV2",
                thing.as_str(),
                |page| {
                    for object in page.thing_principal_objects() {
                        match certificate_of_principal(object.principal()) {
                            Some(c) if !certificates.contains(&c) => certificates.push(c),
                            Some(_) => {}
                            None => skipped += 1,
                        }
                    }
                    ControlFlow::Continue(())
                },
            )
            .await?;
            if skipped > 0 {
                tracing::debug!(thing = %thing, skipped, "principals that are not X.509 certificates skipped");
            }
            Ok(certificates)
        })
    }

    fn other_things<'a>(
        &'a self,
        certificate: &'a AttachedCertificate,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let mut others = Vec::new();
            let pages = self
                .client
                .list_principal_things_v2()
                .principal(&certificate.arn)
                .into_paginator()
                .send();
            let subject = cert_subject(&certificate.id);
            read_pages(
                pages,
                MAX_PAGES,
                "ListPrincipalThingsV2",
                &subject,
                |page| {
                    others.extend(
                        page.principal_thing_objects()
                            .iter()
                            .map(|o| o.thing_name())
                            .filter(|t| *t != thing.as_str())
                            .map(str::to_owned),
                    );
                    // The first page that names another thing is enough.
                    if others.is_empty() {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                },
            )
            .await?;
            Ok(others)
        })
    }

    fn status<'a>(
        &'a self,
        certificate: &'a CertificateId,
    ) -> BoxFuture<'a, Result<Option<CertStatus>, ActionError>> {
        Box::pin(async move {
            let result = self
                .client
                .describe_certificate()
                .certificate_id(certificate.as_str())
                .send()
                .await;
            match result {
                Ok(out) => Ok(Some(
                    out.certificate_description()
                        .and_then(|d| d.status())
                        .map_or(CertStatus::Other("UNKNOWN".into()), |s| {
                            CertStatus::parse(s.as_str())
                        }),
                )),
                Err(e) => {
                    let e = classify("DescribeCertificate", &cert_subject(certificate), e);
                    if e.code == "ResourceNotFoundException" {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        })
    }

    fn set_active<'a>(
        &'a self,
        certificate: &'a CertificateId,
        active: bool,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let status = if active {
                CertificateStatus::Active
            } else {
                CertificateStatus::Inactive
            };
            self.client
                .update_certificate()
                .certificate_id(certificate.as_str())
                .new_status(status)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateCertificate", &cert_subject(certificate), e))
        })
    }

    fn attributes<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, ActionError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_thing()
                .thing_name(thing.as_str())
                .send()
                .await
                .map_err(|e| classify("DescribeThing", thing.as_str(), e))?;
            Ok(out
                .attributes()
                .map(|a| {
                    a.iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn set_attribute<'a>(
        &'a self,
        thing: &'a ThingName,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let payload = AttributePayload::builder()
                .attributes(name, value)
                .merge(true)
                .build();
            self.client
                .update_thing()
                .thing_name(thing.as_str())
                .attribute_payload(payload)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("UpdateThing", thing.as_str(), e))
        })
    }

    fn attached_policies<'a>(
        &'a self,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let mut names = Vec::new();
            let pages = self
                .client
                .list_attached_policies()
                .target(&certificate.arn)
                .into_paginator()
                .send();
            let subject = cert_subject(&certificate.id);
            read_pages(pages, MAX_PAGES, "ListAttachedPolicies", &subject, |page| {
                names.extend(
                    page.policies()
                        .iter()
                        .filter_map(|p| p.policy_name())
                        .map(str::to_owned),
                );
                ControlFlow::Continue(())
            })
            .await?;
            Ok(names)
        })
    }

    fn attach_policy<'a>(
        &'a self,
        policy: &'a str,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            self.client
                .attach_policy()
                .policy_name(policy)
                .target(&certificate.arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("AttachPolicy", &cert_subject(&certificate.id), e))
        })
    }

    fn detach_policy<'a>(
        &'a self,
        policy: &'a str,
        certificate: &'a AttachedCertificate,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let result = self
                .client
                .detach_policy()
                .policy_name(policy)
                .target(&certificate.arn)
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(e) => {
                    let e = classify("DetachPolicy", &cert_subject(&certificate.id), e);
                    if e.code == "ResourceNotFoundException" {
                        Ok(false)
                    } else {
                        Err(e)
                    }
                }
            }
        })
    }
}
