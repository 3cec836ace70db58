//! Decoding a Lambda event into records, each carrying one alert message.
//!
//! Four deliveries reach the functions:
//! - an SNS event (`Records[].Sns.Message` holds the alert JSON as a string);
//! - an SQS event whose bodies are SNS envelopes (SNS to SQS, raw delivery off; note the
//!   `SigningCertURL` / `UnsubscribeURL` casing);
//! - an SQS event whose bodies are the alert JSON itself (raw message delivery on, or an
//!   EventBridge rule targeting the queue);
//! - a direct invocation, where the event itself is the alert (a mitigation request, the
//!   CloudWatch alarm Lambda action, an EventBridge rule targeting the function).
//!
//! Only what is needed is read: the record's id, its source key and the message. SNS
//! signature fields (absent on FIFO topics), message attributes and SQS attributes are
//! never read, so an odd value there cannot block a record. Every record is decoded on its
//! own: one malformed record becomes a rejected [`InboundRecord`] naming its message id,
//! and never hides its neighbours.

use serde_json::{Map, Value};

use crate::lenient::json_type;
use crate::reject::{RejectReason, excerpt};

/// The kind of Lambda event, which decides the shape of the function's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SNS invokes the function asynchronously; a failed record fails the invocation.
    Sns,
    /// An SQS event source mapping; failed records are listed in `batchItemFailures`.
    Sqs,
    /// A direct invocation (the event is the alert); answered like SNS: a failed record
    /// fails the invocation.
    Direct,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sns => "sns",
            Trigger::Sqs => "sqs",
            Trigger::Direct => "direct",
        }
    }

    /// Whether a failed record fails the whole invocation (SNS, direct) rather than
    /// being listed in `batchItemFailures` (SQS).
    pub fn fails_invocation(self) -> bool {
        matches!(self, Trigger::Sns | Trigger::Direct)
    }
}

/// How one record carried its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// An SNS Lambda record.
    Sns,
    /// An SQS record whose body is an SNS envelope.
    SqsSns,
    /// An SQS record whose body is the alert itself (raw message delivery, EventBridge).
    SqsRaw,
    /// An SQS record whose body could not be read far enough to tell.
    Sqs,
    /// The invocation event itself.
    Direct,
}

impl Envelope {
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Sns => "sns",
            Envelope::SqsSns => "sqs-sns",
            Envelope::SqsRaw => "sqs-raw",
            Envelope::Sqs => "sqs",
            Envelope::Direct => "direct",
        }
    }
}

/// One record of a Lambda event, unwrapped as far as it would go.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    /// Position in the event's `Records` array (0 for a direct invocation).
    pub index: usize,
    /// The SQS `messageId` (what `batchItemFailures` must name), the SNS `MessageId`, or
    /// for a direct invocation the EventBridge event `id` (a registry event's `eventId`);
    /// `Records[i]` or `event` when there is none.
    pub id: String,
    pub envelope: Envelope,
    /// The alert message, parsed as JSON, or why it could not be reached.
    pub message: Result<Value, RejectReason>,
    /// What was odd in the envelope (never blocking).
    pub notes: Vec<String>,
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
    #[error("event is {found}, not a JSON object")]
    NotAnObject { found: &'static str },
    #[error("event has \"Records\" but it is {found}, not an array")]
    RecordsNotArray { found: &'static str },
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
/// An object without `Records` is a direct invocation: one record, the event itself.
pub fn decode_event(event: &Value) -> Result<DecodedEvent, EventError> {
    let object = event.as_object().ok_or(EventError::NotAnObject {
        found: json_type(event),
    })?;
    let records = match object.get("Records") {
        None => return Ok(direct(object)),
        Some(Value::Array(records)) => records,
        Some(other) => {
            return Err(EventError::RecordsNotArray {
                found: json_type(other),
            });
        }
    };
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
            Trigger::Sqs => decode_sqs_record(index, record),
            Trigger::Sns | Trigger::Direct => decode_sns_record(index, record),
        })
        .collect();
    Ok(DecodedEvent {
        trigger: Some(trigger),
        records,
    })
}

fn direct(event: &Map<String, Value>) -> DecodedEvent {
    // An EventBridge event's `id`, a registry event's `eventId`.
    let id = ["id", "eventId"]
        .iter()
        .find_map(|key| {
            event
                .get(*key)
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
        })
        .map_or_else(|| "event".to_owned(), |id| excerpt(id, 200));
    DecodedEvent {
        trigger: Some(Trigger::Direct),
        records: vec![InboundRecord {
            index: 0,
            id,
            envelope: Envelope::Direct,
            message: Ok(Value::Object(event.clone())),
            notes: Vec::new(),
        }],
    }
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
    let sns = record.get("Sns");
    let id = sns
        .and_then(|s| s.get("MessageId"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| fallback_id(index), |id| excerpt(id, 200));
    let mut notes = Vec::new();
    let message = match (record.get("EventSource").and_then(Value::as_str), sns) {
        (Some("aws:sns"), Some(Value::Object(sns))) => sns_message(sns, &mut notes),
        (Some("aws:sns"), _) => Err(RejectReason::MalformedRecord {
            detail: "SNS record has no \"Sns\" object".into(),
        }),
        _ => Err(RejectReason::MalformedRecord {
            detail: "record in an SNS event does not have EventSource \"aws:sns\"".into(),
        }),
    };
    InboundRecord {
        index,
        id,
        envelope: Envelope::Sns,
        message,
        notes,
    }
}

/// The message of an SNS notification: `Type` (when present) must be `Notification`,
/// `Message` a string of JSON. Nothing else is read.
fn sns_message(sns: &Map<String, Value>, notes: &mut Vec<String>) -> Result<Value, RejectReason> {
    match sns.get("Type") {
        Some(Value::String(t)) if t == "Notification" => {}
        Some(Value::String(t)) => {
            return Err(RejectReason::NotANotification {
                sns_type: excerpt(t, 60),
            });
        }
        _ => notes.push("SNS Type: absent or not text; read as a Notification".to_owned()),
    }
    match sns.get("Message") {
        Some(Value::String(text)) => parse_message(text),
        Some(other) => Err(RejectReason::MalformedRecord {
            detail: format!("SNS Message is {}, not a string", json_type(other)),
        }),
        None => Err(RejectReason::MalformedRecord {
            detail: "SNS record has no Message".into(),
        }),
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
    let mut notes = Vec::new();
    let (envelope, message) = match record.get("eventSource").and_then(Value::as_str) {
        Some("aws:sqs") => match record.get("body") {
            Some(Value::String(body)) => decode_sqs_body(body, &mut notes),
            None | Some(Value::Null) => (Envelope::Sqs, Err(RejectReason::MissingBody)),
            Some(other) => (
                Envelope::Sqs,
                Err(RejectReason::MalformedRecord {
                    detail: format!("SQS body is {}, not a string", json_type(other)),
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
        message,
        notes,
    }
}

/// The outcome of reading an SQS body: how it was wrapped, and its alert.
type BodyOutcome = (Envelope, Result<Value, RejectReason>);

fn decode_sqs_body(body: &str, notes: &mut Vec<String>) -> BodyOutcome {
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
    match value {
        Value::Object(envelope) if is_sns_envelope(&envelope) => {
            let message = sns_message(&envelope, notes).map_err(|reason| match reason {
                RejectReason::MalformedRecord { detail } => {
                    RejectReason::MalformedSnsEnvelope { detail }
                }
                other => other,
            });
            (Envelope::SqsSns, message)
        }
        other => (Envelope::SqsRaw, Ok(other)),
    }
}

/// An SNS envelope has `Type` and `Message`; no alert has both.
fn is_sns_envelope(value: &Map<String, Value>) -> bool {
    value.contains_key("Type") && value.contains_key("Message")
}

/// Parse the alert JSON text (an SNS `Message` string).
fn parse_message(text: &str) -> Result<Value, RejectReason> {
    serde_json::from_str(text).map_err(|e| RejectReason::MessageNotJson {
        detail: e.to_string(),
        excerpt: excerpt(text, 120),
    })
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
                    r.message
                        .as_ref()
                        .ok()
                        .and_then(|v| v["thingName"].as_str().map(str::to_owned)),
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
                .message
                .as_ref()
                .ok()
                .and_then(|v| v["thingName"].as_str()),
            Some("enveloped")
        );
        assert_eq!(decoded.records[1].envelope, Envelope::SqsRaw);
        assert_eq!(
            decoded.records[1]
                .message
                .as_ref()
                .ok()
                .and_then(|v| v["thingName"].as_str()),
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
            .map(|r| (r.id.as_str(), r.message.is_ok()))
            .collect();
        assert_eq!(
            outcome,
            vec![
                ("good", true),
                ("not-json", false),
                ("array", true),
                ("no-body", false),
                ("wrong-source", false)
            ]
        );
        assert!(matches!(
            decoded.records[1].message,
            Err(RejectReason::BodyNotJson { .. })
        ));
        // An array body is JSON: the decision rejects it as not an object.
        assert_eq!(decoded.records[2].envelope, Envelope::SqsRaw);
        assert_eq!(decoded.records[3].message, Err(RejectReason::MissingBody));
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
            decoded.records[1].message.is_ok(),
            "{:?}",
            decoded.records[1].message
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
        match &decoded.records[0].message {
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
            decoded.records[0].message,
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
            decoded.records[0].message,
            Err(RejectReason::NotANotification {
                sns_type: "SubscriptionConfirmation".into()
            })
        );
    }

    #[test]
    fn events_that_are_not_objects_or_lambda_records_are_errors() {
        assert_eq!(
            decode_event(&json!({"Records": 3})),
            Err(EventError::RecordsNotArray { found: "a number" })
        );
        assert_eq!(
            decode_event(&json!([1])),
            Err(EventError::NotAnObject { found: "an array" })
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

    #[test]
    fn an_event_without_records_is_a_direct_invocation() {
        let request = json!({"thingName": "x", "action": "quarantine"});
        let decoded = decode_event(&request).expect("direct");
        assert_eq!(decoded.trigger, Some(Trigger::Direct));
        assert!(Trigger::Direct.fails_invocation());
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.records[0].id, "event");
        assert_eq!(decoded.records[0].envelope, Envelope::Direct);
        assert_eq!(decoded.records[0].message.as_ref(), Ok(&request));
        let eventbridge = json!({"id": "4c1d-77", "source": "aws.securityhub", "detail": {}});
        assert_eq!(
            decode_event(&eventbridge).expect("direct").records[0].id,
            "4c1d-77"
        );
        let registry = json!({"eventType": "THING_GROUP_MEMBERSHIP_EVENT", "eventId": "d684"});
        assert_eq!(
            decode_event(&registry).expect("direct").records[0].id,
            "d684"
        );
    }

    #[test]
    fn fifo_sns_without_signature_fields_decodes() {
        let mut record = sns_record("m1", &violation("a"));
        for key in [
            "SignatureVersion",
            "Signature",
            "SigningCertUrl",
            "UnsubscribeUrl",
        ] {
            record["Sns"].as_object_mut().map(|s| s.remove(key));
        }
        record["Sns"]["MessageAttributes"] = json!({"odd": 5});
        record["Sns"]["SequenceNumber"] = json!("10000000000000003000");
        let decoded = decode_event(&json!({"Records": [record]})).expect("sns");
        assert!(
            decoded.records[0].message.is_ok(),
            "{:?}",
            decoded.records[0].message
        );
        assert!(decoded.records[0].notes.is_empty());
    }

    #[test]
    fn odd_sqs_attributes_do_not_block() {
        let mut record = sqs_record("q1", &violation("a"));
        record["messageAttributes"] = json!({"x": {"dataType": 7, "stringValue": ["odd"]}});
        record["attributes"] = json!("not an object");
        record["md5OfBody"] = json!(12);
        let decoded = decode_event(&json!({"Records": [record]})).expect("sqs");
        assert!(
            decoded.records[0].message.is_ok(),
            "{:?}",
            decoded.records[0].message
        );
    }

    #[test]
    fn an_sqs_sns_envelope_whose_message_is_not_text_is_malformed() {
        let mut envelope = sns_message("s1", "x", true);
        envelope["Message"] = json!({"thingName": "a"});
        let event = json!({"Records": [sqs_record("q1", &envelope.to_string())]});
        let decoded = decode_event(&event).expect("sqs");
        assert!(matches!(
            decoded.records[0].message,
            Err(RejectReason::MalformedSnsEnvelope { .. })
        ));
    }

    #[test]
    fn an_eventbridge_event_published_to_sns_is_the_message() {
        let event_json = json!({"version": "0", "id": "e-1", "source": "aws.securityhub",
                                "detail-type": "Security Hub Findings - Imported", "detail": {}});
        let event = json!({"Records": [sns_record("m1", &event_json.to_string())]});
        let decoded = decode_event(&event).expect("sns");
        assert_eq!(decoded.records[0].message.as_ref(), Ok(&event_json));
        assert_eq!(decoded.records[0].id, "m1");
    }

    #[test]
    fn an_sns_record_without_type_is_read_with_a_note() {
        let mut record = sns_record("m1", &violation("a"));
        record["Sns"].as_object_mut().map(|s| s.remove("Type"));
        let decoded = decode_event(&json!({"Records": [record]})).expect("sns");
        assert!(decoded.records[0].message.is_ok());
        assert_eq!(decoded.records[0].notes.len(), 1);
    }
}
