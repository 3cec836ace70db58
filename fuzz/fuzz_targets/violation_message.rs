//! Arbitrary text as the violation JSON (an SNS `Message` or a raw SQS body), read
//! tolerantly by `parse_violation_json`.
//!
//! Invariants:
//! - only text that is not a JSON object is refused: `MessageNotJson` when it is not JSON,
//!   `MessageNotObject` when it is JSON of another type;
//! - every refusal renders and has a code;
//! - what parsed serialises again (the model derives Serialize), and keeps the two fields
//!   the decision needs as sent: `thingName` and `violationEventType` when they are text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use violation_core::{RejectReason, parse_violation_json};

fuzz_target!(|text: &str| {
    let raw = serde_json::from_str::<Value>(text);
    match parse_violation_json(text) {
        Ok(v) => {
            let raw = raw.expect("parsed text is JSON");
            let object = raw.as_object().expect("parsed text is an object");
            serde_json::to_string(&v).expect("a parsed violation serialises");
            let text_of = |key: &str| object.get(key).and_then(Value::as_str);
            assert_eq!(v.thing_name.as_deref(), text_of("thingName"));
            assert_eq!(
                v.violation_event_type.as_deref(),
                text_of("violationEventType")
            );
        }
        Err(reason) => {
            assert!(!reason.code().is_empty());
            assert!(!reason.to_string().is_empty());
            match (&raw, &reason) {
                (Err(_), RejectReason::MessageNotJson { .. }) => {}
                (Ok(v), RejectReason::MessageNotObject { .. }) => assert!(!v.is_object()),
                _ => panic!("refused {text:?} with {reason}"),
            }
        }
    }
});
