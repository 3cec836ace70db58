//! The certificate mitigation (`quarantine-certificate`): contain the X.509 certificates a
//! thing uses, but never one that other things use too, and record what was contained in a
//! registry attribute of the thing, so that a release undoes exactly that. CERTIFICATE_ACTION
//! says how: `attach-policy` (the default; [`policy`]) attaches the quarantine policy to
//! them, `deactivate` deactivates them, as follows.
//!
//! On quarantine with `deactivate`:
//! 1. ListThingPrincipalsV2: the thing's certificates (other principals are skipped);
//! 2. DescribeThing: what an earlier attempt recorded (the record attribute);
//! 3. per certificate, DescribeCertificate (its status) and, for an ACTIVE one,
//!    ListPrincipalThingsV2: a certificate that other things also use is left ACTIVE and
//!    reported `kept` (`shared-certificate`, naming the other things); an INACTIVE one is
//!    ours only if it is recorded (a certificate someone else deactivated is not recorded,
//!    so a release never reactivates it);
//! 4. UpdateThing (merge): the recorded ids plus the ones about to be deactivated, FIRST;
//! 5. UpdateCertificate INACTIVE for each of those, THEN.
//!
//! Recording before deactivating means a failure between the two leaves a certificate
//! recorded and still ACTIVE (the retry deactivates it; a release reactivates an ACTIVE
//! certificate harmlessly), never a deactivated certificate nobody knows about.
//!
//! The result: `kept` only when nothing of the thing is (now) deactivated by us and at least
//! one certificate was kept because it is shared; otherwise `done` (shared certificates of a
//! thing whose own certificates were deactivated are logged, with the things sharing them).
//!
//! On release (either action, so that a switch of CERTIFICATE_ACTION never strands a
//! quarantine): DescribeThing → the deactivation record's ids → for each, DescribeCertificate
//! and UpdateCertificate ACTIVE when it is INACTIVE (a certificate revoked or deleted since is
//! left alone, with a warning) → UpdateThing removes the attribute; then the policy record, if
//! any, is undone as [`policy`] says. Every step is idempotent, so SNS/SQS redeliveries and
//! retries are safe.
//!
//! The record lives in the thing registry, which a device cannot write (unlike its shadow).
//!
//! - [`record`]: the attributes' value (certificate ids, at most 12 in 800 characters);
//! - [`policy`]: `attach-policy` and its release;
//! - [`registry`]: the registry calls the mitigation makes, as a trait (its adapter on the
//!   SDK is `mitigation_aws::certificates::IotCertificates`);
//! - [`plan`]: the decisions, pure: what each certificate is to the quarantine, what to
//!   record and deactivate, what a release reactivates, and the outcome;
//! - [`quarantine`]: the mitigation, reading through a registry and following the plan.

pub mod plan;
mod policy;
pub mod quarantine;
pub mod record;
pub mod registry;

pub use plan::{
    Assessment, QuarantinePlan, ReleaseStep, SharedCertificate, Standing, plan_quarantine,
    policy_standing, reads_other_things, release_step, standing,
};
pub use quarantine::{CertificateQuarantine, PolicyRecord};
pub use record::{ATTRIBUTE_VALUE_LIMIT, MAX_RECORDED_CERTIFICATES, parse_record, record_value};
pub use registry::{
    AttachedCertificate, CertStatus, CertificateRegistry, certificate_of_principal,
};
