//! The ids of Device Defender Audit that reach an AWS call: a task id (ListAuditFindings)
//! and a finding id (DescribeAuditFinding, where it is part of the URL path).

use std::fmt;

/// Why a string is not an audit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAuditId {
    #[error("id is empty")]
    Empty,
    #[error("id is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("id contains {found:?} at character {position}; only {allowed} are allowed")]
    BadCharacter {
        found: char,
        position: usize,
        allowed: &'static str,
    },
}

fn check(
    id: &str,
    max: usize,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), InvalidAuditId> {
    if id.is_empty() {
        return Err(InvalidAuditId::Empty);
    }
    if let Some((position, found)) = id.chars().enumerate().find(|(_, c)| !ok(*c)) {
        return Err(InvalidAuditId::BadCharacter {
            found,
            position: position + 1,
            allowed,
        });
    }
    if id.len() > max {
        return Err(InvalidAuditId::TooLong { len: id.len(), max });
    }
    Ok(())
}

/// An audit task id: 1 to 40 characters of `[a-zA-Z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditTaskId(String);

impl AuditTaskId {
    pub fn parse(id: &str) -> Result<Self, InvalidAuditId> {
        check(id, 40, "letters, digits and '-'", |c| {
            c.is_ascii_alphanumeric() || c == '-'
        })?;
        Ok(AuditTaskId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An audit finding id: 1 to 128 characters of `[a-zA-Z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditFindingId(String);

impl AuditFindingId {
    pub fn parse(id: &str) -> Result<Self, InvalidAuditId> {
        check(id, 128, "letters, digits, '_' and '-'", |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })?;
        Ok(AuditFindingId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuditTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AuditFindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_follow_the_api_pattern() {
        assert!(AuditTaskId::parse("f7b0f8e1e1b0c3d8a1e3f5b6c7d8e9f0").is_ok());
        assert_eq!(AuditTaskId::parse(""), Err(InvalidAuditId::Empty));
        assert_eq!(
            AuditTaskId::parse(&"a".repeat(41)),
            Err(InvalidAuditId::TooLong { len: 41, max: 40 })
        );
        assert!(AuditTaskId::parse("a_b").is_err());
    }

    #[test]
    fn finding_ids_cannot_escape_the_url_path() {
        assert!(AuditFindingId::parse("ffe4fb9c-5d7c-4b3a-9a61-1c1d1e1f2a3b").is_ok());
        assert!(AuditFindingId::parse("a_b-C").is_ok());
        assert_eq!(
            AuditFindingId::parse("../tasks"),
            Err(InvalidAuditId::BadCharacter {
                found: '.',
                position: 1,
                allowed: "letters, digits, '_' and '-'"
            })
        );
        assert!(AuditFindingId::parse("a?b").is_err());
    }
}
