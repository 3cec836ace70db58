//! Decoding a Lambda event into violation records.
//!
//! Three shapes reach the functions:
//! - an SNS event (`Records[].Sns.Message` holds the violation JSON as a string);
//! - an SQS event whose bodies are SNS envelopes (SNS to SQS, raw delivery off; note the
//!   `SigningCertURL` / `UnsubscribeURL` casing);
//! - an SQS event whose bodies are the violation JSON itself (raw message delivery on).
//!
//! Every record is decoded on its own: one malformed record becomes a rejected
//! [`InboundRecord`] naming its message id, and never hides its neighbours.

use aws_lambda_events::event::sns::{SnsMessage, SnsRecord};
use aws_lambda_events::event::sqs::SqsMessage;
use serde_json::Value;

use crate::reject::{RejectReason, excerpt};
use crate::violation::ViolationNotification;

/// The kind of Lambda event, which decides the shape of the function's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SNS invokes the function asynchronously; a failed record fails the invocation.
    Sns,
    /// An SQS event source mapping; failed records are listed in `batchItemFailures`.
    Sqs,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sns => "sns",
            Trigger::Sqs => "sqs",
        }
    }
}

/// How one record carried its violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// An SNS Lambda record.
    Sns,
    /// An SQS record whose body is an SNS envelope.
    SqsSns,
    /// An SQS record whose body is the violation itself (raw message delivery).
    SqsRaw,
    /// An SQS record whose body could not be read far enough to tell.
    Sqs,
}

impl Envelope {
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Sns => "sns",
            Envelope::SqsSns => "sqs-sns",
            Envelope::SqsRaw => "sqs-raw",
            Envelope::Sqs => "sqs",
        }
    }
}

/// One record of a Lambda event, decoded as far as it would go.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    /// Position in the event's `Records` array.
    pub index: usize,
    /// The SQS `messageId` (what `batchItemFailures` must name) or the SNS `MessageId`;
    /// `Records[i]` when the record carries none.
    pub id: String,
    pub envelope: Envelope,
    pub violation: Result<ViolationNotification, RejectReason>,
}

/// A decoded Lambda event.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    /// `None` only for an event with an empty `Records` array.
    pub trigger: Option<Trigger>,
    pub records: Vec<InboundRecord>,
}

/// The event as a whole is not something this function handles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not JSON: {0}")]
    NotJson(String),
    #[error("event is not an SNS or SQS Lambda event: it has no \"Records\" array")]
    NoRecords,
    #[error(
        "event is not an SNS or SQS Lambda event: no record has EventSource \"aws:sns\" or eventSource \"aws:sqs\""
    )]
    UnknownSource,
}

/// Decode raw invocation bytes.
pub fn decode_event_bytes(bytes: &[u8]) -> Result<DecodedEvent, EventError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
    decode_event(&value)
}

/// Decode a Lambda event already parsed as JSON (what `lambda_runtime` hands the function).
pub fn decode_event(event: &Value) -> Result<DecodedEvent, EventError> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or(EventError::NoRecords)?;
    if records.is_empty() {
        return Ok(DecodedEvent {
            trigger: None,
            records: Vec::new(),
        });
    }
    let trigger = records
        .iter()
        .find_map(record_trigger)
        .ok_or(EventError::UnknownSource)?;
    let records = records
        .iter()
        .enumerate()
        .map(|(index, record)| match trigger {
            Trigger::Sns => decode_sns_record(index, record),
            Trigger::Sqs => decode_sqs_record(index, record),
        })
        .collect();
    Ok(DecodedEvent {
        trigger: Some(trigger),
        records,
    })
}

fn record_trigger(record: &Value) -> Option<Trigger> {
    if record.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
        return Some(Trigger::Sns);
    }
    match record.get("eventSource").and_then(Value::as_str) {
        Some("aws:sqs") => Some(Trigger::Sqs),
        _ => None,
    }
}

fn fallback_id(index: usize) -> String {
    format!("Records[{index}]")
}

fn decode_sns_record(index: usize, record: &Value) -> InboundRecord {
    let id = record
        .get("Sns")
        .and_then(|s| s.get("MessageId"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| fallback_id(index), |id| excerpt(id, 200));
    let violation = match record.get("EventSource").and_then(Value::as_str) {
        Some("aws:sns") => serde_json::from_value::<SnsRecord>(record.clone())
            .map_err(|e| RejectReason::MalformedRecord {
                detail: format!("not a valid SNS record: {e}"),
            })
            .and_then(|r| parse_sns_message(&r.sns)),
        _ => Err(RejectReason::MalformedRecord {
            detail: "record in an SNS event does not have EventSource \"aws:sns\"".into(),
        }),
    };
    InboundRecord {
        index,
        id,
        envelope: Envelope::Sns,
        violation,
    }
}

fn decode_sqs_record(index: usize, record: &Value) -> InboundRecord {
    // Verbatim, never cut: `batchItemFailures` must name the message exactly, or Lambda
    // finds no such message and retries the whole batch (SNS ids are only ever logged).
    let id = record
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| fallback_id(index), str::to_owned);
    let (envelope, violation) = match record.get("eventSource").and_then(Value::as_str) {
        Some("aws:sqs") => match serde_json::from_value::<SqsMessage>(record.clone()) {
            Ok(message) => decode_sqs_body(message.body.as_deref()),
            Err(e) => (
                Envelope::Sqs,
                Err(RejectReason::MalformedRecord {
                    detail: format!("not a valid SQS record: {e}"),
                }),
            ),
        },
        _ => (
            Envelope::Sqs,
            Err(RejectReason::MalformedRecord {
                detail: "record in an SQS event does not have eventSource \"aws:sqs\"".into(),
            }),
        ),
    };
    InboundRecord {
        index,
        id,
        envelope,
        violation,
    }
}

fn decode_sqs_body(body: Option<&str>) -> (Envelope, Result<ViolationNotification, RejectReason>) {
    let Some(body) = body else {
        return (Envelope::Sqs, Err(RejectReason::MissingBody));
    };
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                Envelope::Sqs,
                Err(RejectReason::BodyNotJson {
                    detail: e.to_string(),
                    excerpt: excerpt(body, 120),
                }),
            );
        }
    };
    if is_sns_envelope(&value) {
        let result = serde_json::from_value::<SnsMessage>(value)
            .map_err(|e| RejectReason::MalformedSnsEnvelope {
                detail: e.to_string(),
            })
            .and_then(|m| parse_sns_message(&m));
        (Envelope::SqsSns, result)
    } else {
        (Envelope::SqsRaw, violation_from_value(value))
    }
}

/// An SNS envelope has `Type` and `Message`; a violation has neither.
fn is_sns_envelope(value: &Value) -> bool {
    value.get("Type").is_some() && value.get("Message").is_some()
}

fn parse_sns_message(message: &SnsMessage) -> Result<ViolationNotification, RejectReason> {
    if message.sns_message_type != "Notification" {
        return Err(RejectReason::NotANotification {
            sns_type: excerpt(&message.sns_message_type, 60),
        });
    }
    parse_violation_json(&message.message)
}

/// Parse the violation JSON text (the SNS `Message` string or a raw SQS body).
pub fn parse_violation_json(text: &str) -> Result<ViolationNotification, RejectReason> {
    let value: Value = serde_json::from_str(text).map_err(|e| RejectReason::MessageNotJson {
        detail: e.to_string(),
        excerpt: excerpt(text, 120),
    })?;
    violation_from_value(value)
}

fn violation_from_value(value: Value) -> Result<ViolationNotification, RejectReason> {
    if !value.is_object() {
        return Err(RejectReason::MessageNotObject {
            found: json_type(&value),
        });
    }
    serde_json::from_value(value).map_err(|e| RejectReason::InvalidViolation {
        detail: e.to_string(),
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violation(thing: &str) -> String {
        json!({"thingName": thing, "violationEventType": "in-alarm", "violationId": "v1"})
            .to_string()
    }

    fn sns_message(id: &str, message: &str, sqs_casing: bool) -> Value {
        let (cert, unsub) = if sqs_casing {
            ("SigningCertURL", "UnsubscribeURL")
        } else {
            ("SigningCertUrl", "UnsubscribeUrl")
        };
        json!({
            "Type": "Notification", "MessageId": id, "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Subject": null, "Message": message, "Timestamp": "2019-11-15T03:00:36.527Z",
            "SignatureVersion": "1", "Signature": "c2ln", cert: "https://example.invalid/c.pem",
            unsub: "https://example.invalid/u", "MessageAttributes": {}
        })
    }

    fn sns_record(id: &str, message: &str) -> Value {
        json!({"EventSource": "aws:sns", "EventVersion": "1.0",
               "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
               "Sns": sns_message(id, message, false)})
    }

    fn sqs_record(id: &str, body: &str) -> Value {
        json!({"messageId": id, "receiptHandle": "rh", "body": body, "attributes": {},
               "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
    }

    #[test]
    fn every_sns_record_is_decoded() {
        let event = json!({"Records": [sns_record("m1", &violation("a")), sns_record("m2", &violation("b"))]});
        let decoded = decode_event(&event).expect("sns event");
        assert_eq!(decoded.trigger, Some(Trigger::Sns));
        let things: Vec<_> = decoded
            .records
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.violation.as_ref().ok().and_then(|v| v.thing_name.clone()),
                )
            })
            .collect();
        assert_eq!(
            things,
            vec![("m1", Some("a".into())), ("m2", Some("b".into()))]
        );
    }

    #[test]
    fn sqs_bodies_may_be_sns_envelopes_or_raw_violations() {
        let envelope = sns_message("sns-1", &violation("enveloped"), true).to_string();
        let event =
            json!({"Records": [sqs_record("q1", &envelope), sqs_record("q2", &violation("raw"))]});
        let decoded = decode_event(&event).expect("sqs event");
        assert_eq!(decoded.trigger, Some(Trigger::Sqs));
        assert_eq!(decoded.records[0].id, "q1");
        assert_eq!(decoded.records[0].envelope, Envelope::SqsSns);
        assert_eq!(
            decoded.records[0]
                .violation
                .as_ref()
                .ok()
                .and_then(|v| v.thing_name.as_deref()),
            Some("enveloped")
        );
        assert_eq!(decoded.records[1].envelope, Envelope::SqsRaw);
        assert_eq!(
            decoded.records[1]
                .violation
                .as_ref()
                .ok()
                .and_then(|v| v.thing_name.as_deref()),
            Some("raw")
        );
    }

    #[test]
    fn a_bad_record_is_rejected_alone_and_named() {
        let event = json!({"Records": [
            sqs_record("good", &violation("a")),
            sqs_record("not-json", "{oops"),
            sqs_record("array", "[1,2]"),
            {"messageId": "no-body", "eventSource": "aws:sqs"},
            {"messageId": "wrong-source", "eventSource": "aws:kinesis"},
        ]});
        let decoded = decode_event(&event).expect("sqs event");
        let outcome: Vec<_> = decoded
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.violation.is_ok()))
            .collect();
        assert_eq!(
            outcome,
            vec![
                ("good", true),
                ("not-json", false),
                ("array", false),
                ("no-body", false),
                ("wrong-source", false)
            ]
        );
        assert!(matches!(
            decoded.records[1].violation,
            Err(RejectReason::BodyNotJson { .. })
        ));
        assert_eq!(
            decoded.records[2].violation,
            Err(RejectReason::MessageNotObject { found: "an array" })
        );
        assert_eq!(decoded.records[3].violation, Err(RejectReason::MissingBody));
    }

    #[test]
    fn a_record_with_both_source_keys_is_read_as_the_event_kind() {
        // Found by fuzzing: the SNS key used to win and the SQS record was rejected with a
        // message saying it had no eventSource "aws:sqs".
        let mut record = sqs_record("q1", &violation("a"));
        record["EventSource"] = json!("aws:sns");
        let decoded =
            decode_event(&json!({"Records": [sqs_record("q0", &violation("b")), record]}))
                .expect("sqs");
        assert_eq!(decoded.trigger, Some(Trigger::Sqs));
        assert!(
            decoded.records[1].violation.is_ok(),
            "{:?}",
            decoded.records[1].violation
        );
    }

    #[test]
    fn a_long_sqs_message_id_is_kept_whole() {
        // Found by fuzzing the handler (fuzz/fuzz_targets/handler_input.rs): ids were cut
        // to 200 characters, so `batchItemFailures` named no message of the batch.
        let long_id = format!("m-{}", "x".repeat(300));
        let event = json!({"Records": [sqs_record(&long_id, "{not json")]});
        let decoded = decode_event(&event).expect("sqs event");
        assert_eq!(decoded.records[0].id, long_id);
    }

    #[test]
    fn sns_message_that_is_not_json_is_rejected() {
        let event = json!({"Records": [sns_record("m1", "this is not json")]});
        let decoded = decode_event(&event).expect("sns event");
        match &decoded.records[0].violation {
            Err(RejectReason::MessageNotJson { excerpt, .. }) => {
                assert_eq!(excerpt, "this is not json")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sns_record_missing_its_message_is_rejected_with_fallback_id() {
        let event = json!({"Records": [{"EventSource": "aws:sns"}]});
        let decoded = decode_event(&event).expect("sns event");
        assert_eq!(decoded.records[0].id, "Records[0]");
        assert!(matches!(
            decoded.records[0].violation,
            Err(RejectReason::MalformedRecord { .. })
        ));
    }

    #[test]
    fn subscription_confirmation_is_not_a_notification() {
        let mut envelope = sns_message("s1", "confirm", true);
        envelope["Type"] = json!("SubscriptionConfirmation");
        let event = json!({"Records": [sqs_record("q1", &envelope.to_string())]});
        let decoded = decode_event(&event).expect("sqs event");
        assert_eq!(
            decoded.records[0].violation,
            Err(RejectReason::NotANotification {
                sns_type: "SubscriptionConfirmation".into()
            })
        );
    }

    #[test]
    fn events_that_are_not_sns_or_sqs_are_errors() {
        assert_eq!(
            decode_event(&json!({"thingName": "x"})),
            Err(EventError::NoRecords)
        );
        assert_eq!(
            decode_event(&json!({"Records": 3})),
            Err(EventError::NoRecords)
        );
        assert_eq!(
            decode_event(&json!({"Records": [{"eventSource": "aws:s3"}]})),
            Err(EventError::UnknownSource)
        );
        assert!(matches!(
            decode_event_bytes(b"\xff\xfe"),
            Err(EventError::NotJson(_))
        ));
        let empty = decode_event(&json!({"Records": []})).expect("empty");
        assert_eq!(empty.trigger, None);
        assert!(empty.records.is_empty());
    }
}
