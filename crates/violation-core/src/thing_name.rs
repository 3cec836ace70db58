//! A thing name that the IoT registry and shadow APIs accept.

use std::fmt;

/// Longest thing name the registry accepts.
pub const MAX_THING_NAME_LEN: usize = 128;

/// Whether `c` may stand in a name of the IoT registry and shadow APIs (a thing, a thing
/// group, a shadow): `[a-zA-Z0-9:_-]`.
pub fn is_iot_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
}

/// Whether `name` is 1 to `max_len` characters of [`is_iot_name_char`]: a thing group name
/// (128), a shadow name (64).
pub fn is_iot_name(name: &str, max_len: usize) -> bool {
    !name.is_empty() && name.len() <= max_len && name.chars().all(is_iot_name_char)
}

/// A validated thing name: 1 to 128 characters of `[a-zA-Z0-9:_-]`, the rule of the registry
/// and shadow APIs. Nothing else can reach an AWS call, so a hostile name (a path, a query
/// string, an over-long string) is rejected before any request is built.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThingName(String);

/// Why a string is not a valid thing name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidThingName {
    #[error("thing name is empty")]
    Empty,
    #[error("thing name is {len} characters long; at most {MAX_THING_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "thing name contains {found:?} at character {position}; only letters, digits, ':', '_' and '-' are allowed"
    )]
    BadCharacter { found: char, position: usize },
}

impl ThingName {
    pub fn parse(name: &str) -> Result<Self, InvalidThingName> {
        if name.is_empty() {
            return Err(InvalidThingName::Empty);
        }
        if let Some((position, found)) = name
            .chars()
            .enumerate()
            .find(|(_, c)| !is_iot_name_char(*c))
        {
            return Err(InvalidThingName::BadCharacter {
                found,
                position: position + 1,
            });
        }
        // All characters are ASCII here, so bytes == characters.
        if name.len() > MAX_THING_NAME_LEN {
            return Err(InvalidThingName::TooLong { len: name.len() });
        }
        Ok(ThingName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ThingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ThingName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_registry_names() {
        for ok in [
            "dev-IZWB",
            "test_thing",
            "a",
            "arn:like:name",
            &"x".repeat(128),
        ] {
            assert_eq!(
                ThingName::parse(ok).map(|t| t.to_string()),
                Ok(ok.to_string())
            );
        }
    }

    #[test]
    fn rejects_what_the_registry_rejects() {
        assert_eq!(ThingName::parse(""), Err(InvalidThingName::Empty));
        assert_eq!(
            ThingName::parse(&"x".repeat(129)),
            Err(InvalidThingName::TooLong { len: 129 })
        );
        assert_eq!(
            ThingName::parse("dev/../admin"),
            Err(InvalidThingName::BadCharacter {
                found: '/',
                position: 4
            })
        );
        assert_eq!(
            ThingName::parse("caf\u{e9}"),
            Err(InvalidThingName::BadCharacter {
                found: '\u{e9}',
                position: 4
            })
        );
        assert!(ThingName::parse("a b").is_err());
        assert!(ThingName::parse("a?name=x").is_err());
    }

    proptest! {
        #[test]
        fn valid_iff_matches_the_pattern(s in "\\PC{0,140}") {
            let expected = !s.is_empty()
                && s.chars().count() <= 128
                && s.chars().all(|c| c.is_ascii_alphanumeric() || ":_-".contains(c));
            prop_assert_eq!(ThingName::parse(&s).is_ok(), expected);
        }

        #[test]
        fn every_pattern_string_is_accepted(s in "[a-zA-Z0-9:_-]{1,128}") {
            prop_assert_eq!(ThingName::parse(&s).map(|t| t.to_string()), Ok(s));
        }
    }
}
