//! An X.509 certificate id that the IoT certificate APIs accept.

use std::fmt;

/// Length of a certificate id: the hex SHA-256 fingerprint of the certificate.
pub const CERTIFICATE_ID_LEN: usize = 64;

/// A certificate id: exactly 64 hexadecimal characters, as AWS IoT names certificates (the
/// last part of `arn:aws:iot:REGION:ACCOUNT:cert/ID`). Like [`crate::ThingName`], it is the
/// only door to an AWS call: once a value has this type, nobody checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateId(String);

/// Why a string is not a certificate id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCertificateId {
    #[error("certificate id is empty")]
    Empty,
    #[error(
        "certificate id contains {found:?} at character {position}; only hexadecimal digits are allowed"
    )]
    BadCharacter { found: char, position: usize },
    #[error("certificate id is {len} characters long; it must be {CERTIFICATE_ID_LEN}")]
    WrongLength { len: usize },
}

impl CertificateId {
    pub fn parse(id: &str) -> Result<Self, InvalidCertificateId> {
        if id.is_empty() {
            return Err(InvalidCertificateId::Empty);
        }
        if let Some((position, found)) =
            id.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(InvalidCertificateId::BadCharacter {
                found,
                position: position + 1,
            });
        }
        // All characters are ASCII here, so bytes == characters.
        if id.len() != CERTIFICATE_ID_LEN {
            return Err(InvalidCertificateId::WrongLength { len: id.len() });
        }
        Ok(CertificateId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CertificateId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "7f6c1a4b8e2d3c5f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

    #[test]
    fn accepts_a_certificate_fingerprint() {
        assert_eq!(
            CertificateId::parse(ID).map(|c| c.to_string()),
            Ok(ID.to_owned())
        );
        let upper = ID.to_uppercase();
        assert_eq!(
            CertificateId::parse(&upper).map(|c| c.to_string()),
            Ok(upper)
        );
    }

    #[test]
    fn rejects_what_is_not_a_fingerprint() {
        assert_eq!(CertificateId::parse(""), Err(InvalidCertificateId::Empty));
        assert_eq!(
            CertificateId::parse(&ID[..63]),
            Err(InvalidCertificateId::WrongLength { len: 63 })
        );
        assert_eq!(
            CertificateId::parse("abc/../x"),
            Err(InvalidCertificateId::BadCharacter {
                found: '/',
                position: 4
            })
        );
        assert!(CertificateId::parse(&format!("{ID}0")).is_err());
    }

    proptest! {
        #[test]
        fn valid_iff_64_hex_digits(s in "[0-9a-fA-Fg/]{60,68}") {
            let expected = s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit());
            prop_assert_eq!(CertificateId::parse(&s).is_ok(), expected);
        }
    }
}
