//! The IoT adapter's registry event calls on the wire, against the AWS stand-in (moto has no
//! DescribeEventConfigurations or UpdateEventConfigurations).

use std::time::Duration;

use stack_setup::AwsIotSetup;
use stack_setup::handler::execute;
use stack_setup::indexing::Switch;
use stack_setup::plan::{Plan, Step};
use test_harness::sdk::{ClientSettings, iot_client};
use test_harness::{Fault, Op, StandIn};
use tokio::time::Instant;

use crate::common::Leaving;

fn membership_events_plan() -> Plan {
    Plan {
        steps: vec![Step::MembershipEvents],
        refused: None,
        success_id: "s-quarantine|Quarantine".into(),
        failure_id: "s-quarantine|Quarantine".into(),
        target: None,
        note: None,
    }
}

async fn run(aws: &StandIn) -> Result<Switch, String> {
    let iot = AwsIotSetup::new(iot_client(&aws.endpoint(), ClientSettings::attempts(1)));
    let until = Instant::now() + Duration::from_secs(30);
    execute(
        &iot,
        &Leaving,
        &membership_events_plan(),
        until,
        Duration::from_millis(10),
    )
    .await
    .map(|done| done.membership_events)
    .map_err(|failure| failure.describe())
}

#[tokio::test]
async fn membership_events_are_turned_on_leaving_the_other_event_types_as_they_are() {
    let aws = StandIn::start();
    aws.set_event_configuration("THING", true);
    aws.set_event_configuration("JOB", false);
    assert_eq!(run(&aws).await, Ok(Switch::Enabled));
    assert_eq!(
        aws.event_configuration("THING_GROUP_MEMBERSHIP"),
        Some(true)
    );
    assert_eq!(aws.event_configuration("THING"), Some(true));
    assert_eq!(aws.event_configuration("JOB"), Some(false));
    assert_eq!(aws.count(Op::UpdateEventConfigurations), 1);
    // Already on: read, not written again.
    assert_eq!(run(&aws).await, Ok(Switch::AlreadyEnabled));
    assert_eq!(aws.count(Op::DescribeEventConfigurations), 2);
    assert_eq!(aws.count(Op::UpdateEventConfigurations), 1);
}

#[tokio::test]
async fn a_refused_update_names_the_operation_and_the_permission() {
    let aws = StandIn::start();
    aws.set_fault_for_op(
        "account",
        Op::UpdateEventConfigurations,
        Fault::Status(403, Some("AccessDeniedException")),
    );
    let failure = run(&aws).await.expect_err("denied");
    assert!(failure.contains("UpdateEventConfigurations"), "{failure}");
    assert!(
        failure.contains("must allow iot:UpdateEventConfigurations"),
        "{failure}"
    );
    assert_eq!(aws.event_configuration("THING_GROUP_MEMBERSHIP"), None);
}
