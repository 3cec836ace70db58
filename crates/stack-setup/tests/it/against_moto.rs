#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Integration tests may unwrap and panic: a failed assertion is the point.

//! The handler with the real IoT adapter against moto (server mode, one per test) and the
//! real HTTP responder against a local `ResponseURL` receiver: what the stack's create,
//! update and delete really do to the account.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_iot::types::{
    DeviceDefenderIndexingMode, ThingConnectivityIndexingMode, ThingIndexingConfiguration,
    ThingIndexingMode,
};
use serde_json::Value;
use stack_setup::handler::Invocation;
use stack_setup::respond::{HttpResponder, RetryPolicy};
use stack_setup::{AwsIotSetup, Handler};

use common::{Receiver, event, properties};
use test_harness::moto::Moto;
use test_harness::sdk::{ClientSettings, iot_client};

const POLICY_DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]}"#;

struct Fixture {
    moto: Moto,
    iot: aws_sdk_iot::Client,
    handler: Handler,
    receiver: Receiver,
    group_arn: String,
}

impl Fixture {
    /// moto with the policy `s-quarantine` (when `with_policy`) and the group `Quarantine`.
    async fn new(with_policy: bool) -> Fixture {
        let moto = Moto::start();
        let iot = iot_client(&moto.endpoint, ClientSettings::attempts(1));
        if with_policy {
            iot.create_policy()
                .policy_name("s-quarantine")
                .policy_document(POLICY_DOCUMENT)
                .send()
                .await
                .unwrap();
        }
        let group_arn = iot
            .create_thing_group()
            .thing_group_name("Quarantine")
            .send()
            .await
            .unwrap()
            .thing_group_arn
            .unwrap();
        let responder = HttpResponder::new(RetryPolicy {
            attempts: 2,
            attempt_timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(50),
        })
        .unwrap();
        let handler = Handler::new(
            Arc::new(AwsIotSetup::new(iot.clone())),
            Arc::new(common::Leaving),
            common::target("s-quarantine", &group_arn),
            common::trust(),
            Arc::new(responder),
        );
        Fixture {
            moto,
            iot,
            handler,
            receiver: Receiver::start(&[]).await,
            group_arn,
        }
    }

    /// Sends a request through the handler; returns what the receiver got.
    async fn request(
        &self,
        request_type: &str,
        request_id: &str,
        physical_id: Option<&str>,
        props: Value,
    ) -> Value {
        self.send(request_type, request_id, physical_id, props, None)
            .await
    }

    /// An Update, with the properties it replaces.
    async fn update(&self, request_id: &str, physical_id: &str, props: Value, old: Value) -> Value {
        self.send("Update", request_id, Some(physical_id), props, Some(old))
            .await
    }

    async fn send(
        &self,
        request_type: &str,
        request_id: &str,
        physical_id: Option<&str>,
        props: Value,
        old: Option<Value>,
    ) -> Value {
        let before = self.receiver.received().len();
        let url = self.receiver.url(request_id);
        let mut e = event(request_type, request_id, &url, physical_id, props);
        if let Some(old) = old {
            e["OldResourceProperties"] = old;
        }
        let invocation = Invocation {
            lambda_request_id: format!("lambda-{request_id}"),
            log_group: "/aws/lambda/s-stack-setup".into(),
            log_stream: "2026/11/22/[$LATEST]moto".into(),
            deadline: Some(SystemTime::now() + Duration::from_secs(120)),
        };
        let result = self.handler.handle(e, &invocation).await;
        assert!(
            result.is_ok(),
            "{result:?}; moto log:\n{}",
            self.moto.log_tail(30)
        );
        let got = self.receiver.received();
        assert_eq!(got.len(), before + 1, "one answer per request");
        let last = got.last().unwrap();
        assert_eq!(last.method, "PUT");
        assert_eq!(last.content_type.as_deref(), Some(&b""[..]));
        last.json()
    }

    fn props(&self, policy: &str, indexing: bool) -> Value {
        properties(policy, "Quarantine", &self.group_arn, indexing)
    }

    async fn policies_on_group(&self) -> Vec<String> {
        self.iot
            .list_attached_policies()
            .target(&self.group_arn)
            .send()
            .await
            .unwrap()
            .policies
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.policy_name)
            .collect()
    }

    async fn targets_of(&self, policy: &str) -> Vec<String> {
        self.iot
            .list_targets_for_policy()
            .policy_name(policy)
            .send()
            .await
            .unwrap()
            .targets
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_attaches_the_policy_to_the_group_and_delete_detaches_it() {
    let f = Fixture::new(true).await;
    assert!(f.policies_on_group().await.is_empty());

    let created = f
        .request("Create", "req-create", None, f.props("s-quarantine", false))
        .await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(created["PhysicalResourceId"], "s-quarantine|Quarantine");
    assert_eq!(created["Data"]["FleetIndexing"], "not-requested");
    assert_eq!(f.policies_on_group().await, ["s-quarantine"]);
    assert_eq!(
        f.targets_of("s-quarantine").await,
        vec![f.group_arn.clone()]
    );

    let deleted = f
        .request(
            "Delete",
            "req-delete",
            Some("s-quarantine|Quarantine"),
            f.props("s-quarantine", false),
        )
        .await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    assert!(f.policies_on_group().await.is_empty());
    assert!(f.targets_of("s-quarantine").await.is_empty());

    // A second Delete (CloudFormation retries, or the attachment went by hand): nothing to
    // detach is still SUCCESS.
    let again = f
        .request(
            "Delete",
            "req-delete-2",
            Some("s-quarantine|Quarantine"),
            f.props("s-quarantine", false),
        )
        .await;
    assert_eq!(again["Status"], "SUCCESS", "{again}");
    let reason = again["Reason"].as_str().unwrap();
    assert!(reason.contains("ResourceNotFoundException"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_policy_fails_the_create_naming_attach_policy_and_the_rollback_delete_succeeds() {
    let f = Fixture::new(false).await;
    let created = f
        .request("Create", "req-create", None, f.props("s-quarantine", false))
        .await;
    assert_eq!(created["Status"], "FAILED", "{created}");
    let reason = created["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("AttachPolicy for policy s-quarantine on arn:aws:iot:"),
        "{reason}"
    );
    assert!(reason.contains("ResourceNotFoundException"), "{reason}");
    assert!(reason.contains("2026/11/22/[$LATEST]moto"), "{reason}");

    // CloudFormation rolls back with a Delete of the id the FAILED answer carried.
    let failed_id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(failed_id, "create-failed:req-create");
    let deleted = f
        .request(
            "Delete",
            "req-rollback",
            Some(&failed_id),
            f.props("s-quarantine", false),
        )
        .await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_naming_another_policy_are_refused_and_change_nothing() {
    let f = Fixture::new(true).await;
    f.iot
        .create_policy()
        .policy_name("permissive")
        .policy_document(POLICY_DOCUMENT)
        .send()
        .await
        .unwrap();
    let created = f
        .request("Create", "req-create", None, f.props("permissive", false))
        .await;
    assert_eq!(created["Status"], "FAILED", "{created}");
    let reason = created["Reason"].as_str().unwrap();
    assert!(reason.contains("QUARANTINE_POLICY"), "{reason}");
    assert!(f.policies_on_group().await.is_empty());
    assert!(f.targets_of("permissive").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_attaches_the_environment_s_pair_and_the_clean_up_of_an_old_id_detaches_nothing()
{
    let f = Fixture::new(true).await;
    // The resource was issued for a group the stack has since replaced.
    let updated = f
        .update(
            "req-update",
            "s-quarantine|Old",
            f.props("s-quarantine", false),
            f.props("s-quarantine", false),
        )
        .await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], "s-quarantine|Quarantine");
    assert_eq!(f.policies_on_group().await, ["s-quarantine"]);

    // CloudFormation's clean-up: Delete of the old id. Not this function's pair: no call.
    let cleaned = f
        .request(
            "Delete",
            "req-cleanup",
            Some("s-quarantine|Old"),
            f.props("s-quarantine", false),
        )
        .await;
    assert_eq!(cleaned["Status"], "SUCCESS", "{cleaned}");
    assert_eq!(f.policies_on_group().await, ["s-quarantine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_indexing_is_turned_on_keeping_the_account_settings_and_never_turned_off() {
    let f = Fixture::new(true).await;
    // The account already indexes shadows and connectivity.
    f.iot
        .update_indexing_configuration()
        .thing_indexing_configuration(
            ThingIndexingConfiguration::builder()
                .thing_indexing_mode(ThingIndexingMode::RegistryAndShadow)
                .thing_connectivity_indexing_mode(ThingConnectivityIndexingMode::Status)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let created = f
        .request("Create", "req-create", None, f.props("s-quarantine", true))
        .await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(created["Data"]["FleetIndexing"], "enabled");
    let now = f
        .iot
        .get_indexing_configuration()
        .send()
        .await
        .unwrap()
        .thing_indexing_configuration
        .unwrap();
    assert_eq!(
        now.device_defender_indexing_mode,
        Some(DeviceDefenderIndexingMode::Violations)
    );
    assert_eq!(
        now.thing_indexing_mode,
        ThingIndexingMode::RegistryAndShadow
    );
    assert_eq!(
        now.thing_connectivity_indexing_mode,
        Some(ThingConnectivityIndexingMode::Status)
    );
    assert_eq!(f.policies_on_group().await, ["s-quarantine"]);

    // An update with nothing changed finds violations already indexed.
    let updated = f
        .update(
            "req-update",
            "s-quarantine|Quarantine",
            f.props("s-quarantine", true),
            f.props("s-quarantine", true),
        )
        .await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["Data"]["FleetIndexing"], "already-enabled");
    assert_eq!(updated["PhysicalResourceId"], "s-quarantine|Quarantine");

    // Delete detaches but leaves the account's indexing alone.
    let deleted = f
        .request(
            "Delete",
            "req-delete",
            Some("s-quarantine|Quarantine"),
            f.props("s-quarantine", true),
        )
        .await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    let after = f
        .iot
        .get_indexing_configuration()
        .send()
        .await
        .unwrap()
        .thing_indexing_configuration
        .unwrap();
    assert_eq!(
        after.device_defender_indexing_mode,
        Some(DeviceDefenderIndexingMode::Violations)
    );
    assert!(f.policies_on_group().await.is_empty());
}
