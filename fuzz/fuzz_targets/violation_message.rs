//! Arbitrary text as the violation JSON (an SNS `Message` or a raw SQS body).

#![no_main]

use libfuzzer_sys::fuzz_target;
use violation_core::parse_violation_json;

fuzz_target!(|text: &str| {
    match parse_violation_json(text) {
        // What parsed must serialise again (the model derives Serialize).
        Ok(v) => {
            serde_json::to_string(&v).expect("a parsed violation serialises");
        }
        // Every rejection renders and has a code.
        Err(reason) => {
            assert!(!reason.code().is_empty());
            let _ = reason.to_string();
        }
    }
});
