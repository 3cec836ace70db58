//! Lambda events for tests, fuzzing and benchmarks, built on the `aws_lambda_events` types
//! so that they have the shape Lambda delivers. One set, used everywhere a test needs an
//! event it does not read from `events/`.

use aws_lambda_events::event::sns::{SnsEvent, SnsMessage, SnsRecord};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{Value, json};

/// The account, region and topic the fixtures name.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:device-defender-violations";
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:quarantine-group";

/// A Device Defender Detect violation (the SNS `Message`) on `aws:num-messages-sent`.
pub fn violation(thing: &str, event_type: &str, violation_id: &str) -> Value {
    violation_on_metric(thing, event_type, violation_id, "aws:num-messages-sent")
}

/// A Device Defender Detect violation on `metric`.
pub fn violation_on_metric(
    thing: &str,
    event_type: &str,
    violation_id: &str,
    metric: &str,
) -> Value {
    json!({
        "violationEventAdditionalInfo": {"confidenceLevel": "HIGH"},
        "violationId": violation_id,
        "thingName": thing,
        "securityProfileName": "SecurityProfile",
        "behavior": {
            "name": "Behavior",
            "metric": metric,
            "criteria": {"comparisonOperator": "greater-than", "value": {"count": 100},
                          "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}
        },
        "metricValue": {"count": 500},
        "violationEventType": event_type,
        "violationEventTime": 1_573_786_800_000_i64
    })
}

/// A registry thing-group membership event (`operation` `ADDED` or `REMOVED`), as the topic
/// rule's Lambda action delivers it.
pub fn membership_event(event_id: &str, operation: &str, group: &str, thing: &str) -> Value {
    json!({
        "eventType": "THING_GROUP_MEMBERSHIP_EVENT",
        "eventId": event_id,
        "timestamp": 1_764_881_354_123_i64,
        "operation": operation,
        "accountId": ACCOUNT,
        "groupArn": format!("arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"),
        "groupId": "06838589-373f-4312-b1f2-53f2192291c4",
        "thingArn": format!("arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"),
        "thingId": "b604ecb6-f6a4-4e7a-bd28-36e2bb5c9ff7",
        "membershipId": "8505ebf8-4d32-4286-80e9-c23a4a16bbd8"
    })
}

/// The SNS message as SNS hands it to Lambda.
pub fn sns_message(message_id: &str, message: &str) -> SnsMessage {
    let mut sns = SnsMessage::default();
    sns.sns_message_type = "Notification".into();
    sns.message_id = message_id.into();
    sns.topic_arn = TOPIC_ARN.into();
    sns.message = message.into();
    sns.signature_version = "1".into();
    sns.signature = "c2lnbmF0dXJl".into();
    sns.signing_cert_url =
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem".into();
    sns.unsubscribe_url = format!(
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:0"
    );
    sns
}

/// An SNS Lambda event with one record per `(message id, message)`.
pub fn sns_event(messages: &[(&str, &str)]) -> Value {
    let mut event = SnsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, message)| {
            let mut record = SnsRecord::default();
            record.event_source = "aws:sns".into();
            record.event_version = "1.0".into();
            record.event_subscription_arn = format!("{TOPIC_ARN}:0b1d6c4e");
            record.sns = sns_message(id, message);
            record
        })
        .collect();
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// The body SNS delivers to an SQS queue with raw delivery off: the SNS envelope, with
/// `SigningCertURL` / `UnsubscribeURL` spelled as SNS spells them there.
pub fn sns_envelope(message_id: &str, message: &str) -> String {
    let mut envelope = serde_json::to_value(sns_message(message_id, message)).unwrap_or_default();
    if let Some(map) = envelope.as_object_mut() {
        for (from, to) in [
            ("SigningCertUrl", "SigningCertURL"),
            ("UnsubscribeUrl", "UnsubscribeURL"),
        ] {
            if let Some(v) = map.remove(from) {
                map.insert(to.into(), v);
            }
        }
        map.remove("MessageAttributes");
    }
    envelope.to_string()
}

/// An SQS message as the event source mapping hands it to Lambda.
pub fn sqs_message(message_id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(message_id.into());
    message.receipt_handle = Some(format!("AQEB{message_id}"));
    message.body = Some(body.into());
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some(QUEUE_ARN.into());
    message.aws_region = Some(REGION.into());
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    message
}

/// An SQS Lambda event with one record per `(message id, body)`.
pub fn sqs_event(bodies: &[(&str, &str)]) -> Value {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .map(|(id, body)| sqs_message(id, body))
        .collect();
    serde_json::to_value(event).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, Trigger, decode_event};

    #[test]
    fn every_builder_decodes_as_its_delivery() {
        let message = violation("dev-1", "in-alarm", "v-1").to_string();
        let sns = decode_event(&sns_event(&[("m-1", &message)])).expect("sns");
        assert_eq!(sns.trigger, Some(Trigger::Sns));
        assert!(sns.records[0].message.is_ok(), "{:?}", sns.records[0]);

        let envelope = sns_envelope("m-2", &message);
        let sqs = decode_event(&sqs_event(&[("q-1", &envelope), ("q-2", &message)])).expect("sqs");
        assert_eq!(sqs.trigger, Some(Trigger::Sqs));
        assert_eq!(sqs.records[0].envelope, Envelope::SqsSns);
        assert_eq!(sqs.records[1].envelope, Envelope::SqsRaw);
        assert!(sqs.records.iter().all(|r| r.message.is_ok()));
        assert_eq!(sqs.records[0].id, "q-1");
    }
}
