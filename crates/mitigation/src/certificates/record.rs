//! The record of what the quarantine did to certificates (deactivated them, or attached the
//! quarantine policy to them): certificate ids, comma-separated, in one thing attribute per
//! action. An attribute value holds at most 800 characters: 12 certificate ids (64
//! characters each, comma-separated). A thing that would need more is a permanent error, with
//! nothing changed.

use violation_core::{CertificateId, ThingName};

use crate::action::ActionError;

/// Certificate ids an attribute value can hold: 12 × 64 characters + 11 commas = 779 ≤ 800.
pub const MAX_RECORDED_CERTIFICATES: usize = 12;
/// The longest thing attribute value AWS IoT accepts.
pub const ATTRIBUTE_VALUE_LIMIT: usize = 800;

/// The ids recorded in an attribute value: comma-separated certificate ids. Anything else
/// in it is returned apart (and never acted on).
pub fn parse_record(value: &str) -> (Vec<CertificateId>, Vec<String>) {
    let mut ids = Vec::new();
    let mut odd = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match CertificateId::parse(&part.to_ascii_lowercase()) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => odd.push(part.to_owned()),
        }
    }
    (ids, odd)
}

/// The attribute value that records `ids`.
pub fn record_value(ids: &[CertificateId]) -> String {
    let ids: Vec<&str> = ids.iter().map(CertificateId::as_str).collect();
    ids.join(",")
}

/// More certificates than the attribute can record: nothing is changed.
pub(crate) fn too_many(thing: &ThingName, attribute: &str, n: usize) -> ActionError {
    ActionError::permanent(
        "UpdateThing",
        thing.to_string(),
        "TooManyCertificates",
        format!(
            "{n} certificate ids would have to be recorded in attribute {attribute}, whose {ATTRIBUTE_VALUE_LIMIT}-character value holds at most {MAX_RECORDED_CERTIFICATES}; nothing was changed"
        ),
    )
    .with_hint(format!(
        "contain the certificates of thing {thing} by hand (aws iot attach-policy, or aws iot update-certificate --new-status INACTIVE) and keep your own record of them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("{:064x}", u64::from(n) + 0xabc0)
    }

    #[test]
    fn records_are_read_tolerantly() {
        let (ids, odd) = parse_record(&format!(" {} ,,junk,{}", id(1), id(1).to_uppercase()));
        assert_eq!(ids.len(), 1);
        assert_eq!(odd, ["junk"]);
    }

    #[test]
    fn twelve_ids_fit_in_an_attribute_value_and_read_back() {
        let ids: Vec<CertificateId> = (0..12)
            .map(|n| CertificateId::parse(&id(n)).unwrap())
            .collect();
        let value = record_value(&ids);
        assert_eq!(value.len(), 12 * 64 + 11);
        assert!(value.len() <= ATTRIBUTE_VALUE_LIMIT);
        assert_eq!(parse_record(&value), (ids, Vec::new()));
    }
}
