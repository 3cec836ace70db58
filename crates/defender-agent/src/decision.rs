//! What a shadow message makes the agent do. Fails closed: only an explicit
//! `desired.quarantine: false` releases, and a document older than the newest one taken into
//! account changes nothing.

use std::fmt;

/// What one shadow message says about `desired.quarantine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// `true` or `false`.
    Set(bool),
    /// `desired` is there without the flag (never set, or removed with `null`).
    Missing,
    /// The flag holds something other than a boolean (as JSON).
    NotBoolean(String),
    /// The document has no `desired` at all (cleared with `"desired": null`).
    NoDesired,
    /// The shadow was deleted (`delete/accepted`), or a read found none (`get/rejected` 404).
    NoShadow,
    /// A delta about other keys; the flag did not change.
    Unmentioned,
}

/// A shadow message: its version (absent only from `get/rejected`) and its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub version: Option<u64>,
    pub flag: Flag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The document asks for this state explicitly.
    Follow(bool),
    /// The document asks for nothing: the agent keeps what it follows.
    Keep(Why),
    /// Older than `newest`, the version the agent already took into account: ignored.
    Stale { version: u64, newest: u64 },
    /// Nothing to do with the flag.
    Silent,
}

/// Why a document leaves the quarantine as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Missing,
    NotBoolean(String),
    NoDesired,
    NoShadow,
    /// A release in a message without a version: it could be older than the quarantine.
    NoVersion,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Missing => f.write_str("desired.quarantine is missing"),
            Why::NotBoolean(v) => write!(f, "desired.quarantine is {v}, not true or false"),
            Why::NoDesired => f.write_str("the shadow has no desired state"),
            Why::NoShadow => f.write_str("the shadow was deleted or does not exist"),
            Why::NoVersion => f.write_str("a release without a shadow version"),
        }
    }
}

/// Decides one message. `newest` is the version of the newest document the agent took into
/// account; an equal version is the same shadow state (a delta, its `update/documents` and a read
/// right after all carry it), so acting on it again changes nothing and it is not stale.
pub fn decide(message: &Message, newest: Option<u64>) -> Verdict {
    if message.flag == Flag::Unmentioned {
        return Verdict::Silent;
    }
    if let (Some(version), Some(newest)) = (message.version, newest)
        && version < newest
    {
        return Verdict::Stale { version, newest };
    }
    match &message.flag {
        Flag::Set(true) => Verdict::Follow(true),
        Flag::Set(false) if message.version.is_none() => Verdict::Keep(Why::NoVersion),
        Flag::Set(false) => Verdict::Follow(false),
        Flag::Missing => Verdict::Keep(Why::Missing),
        Flag::NotBoolean(v) => Verdict::Keep(Why::NotBoolean(v.clone())),
        Flag::NoDesired => Verdict::Keep(Why::NoDesired),
        Flag::NoShadow => Verdict::Keep(Why::NoShadow),
        Flag::Unmentioned => Verdict::Silent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: u64, flag: Flag) -> Message {
        Message {
            version: Some(version),
            flag,
        }
    }

    #[test]
    fn only_an_explicit_false_releases() {
        assert_eq!(
            decide(&at(5, Flag::Set(false)), Some(4)),
            Verdict::Follow(false)
        );
        assert_eq!(
            decide(&at(5, Flag::Set(true)), Some(4)),
            Verdict::Follow(true)
        );
        let keeps = [
            (Flag::Missing, Why::Missing),
            (
                Flag::NotBoolean("\"false\"".into()),
                Why::NotBoolean("\"false\"".into()),
            ),
            (Flag::NotBoolean("0".into()), Why::NotBoolean("0".into())),
            (Flag::NoDesired, Why::NoDesired),
            (Flag::NoShadow, Why::NoShadow),
        ];
        for (flag, why) in keeps {
            assert_eq!(decide(&at(5, flag), Some(4)), Verdict::Keep(why));
        }
        assert_eq!(decide(&at(5, Flag::Unmentioned), Some(4)), Verdict::Silent);
    }

    #[test]
    fn an_older_document_is_stale_and_an_equal_one_is_not() {
        for flag in [
            Flag::Set(false),
            Flag::Set(true),
            Flag::Missing,
            Flag::NoShadow,
        ] {
            assert_eq!(
                decide(&at(3, flag.clone()), Some(4)),
                Verdict::Stale {
                    version: 3,
                    newest: 4
                },
                "{flag:?}"
            );
        }
        assert_eq!(
            decide(&at(4, Flag::Set(false)), Some(4)),
            Verdict::Follow(false)
        );
        // The first document after a first start has nothing to be compared with.
        assert_eq!(
            decide(&at(1, Flag::Set(false)), None),
            Verdict::Follow(false)
        );
    }

    #[test]
    fn a_message_without_a_version_may_quarantine_but_not_release() {
        let bare = |flag| Message {
            version: None,
            flag,
        };
        assert_eq!(
            decide(&bare(Flag::Set(true)), Some(9)),
            Verdict::Follow(true)
        );
        assert_eq!(
            decide(&bare(Flag::Set(false)), Some(9)),
            Verdict::Keep(Why::NoVersion)
        );
        assert_eq!(
            decide(&bare(Flag::NoShadow), Some(9)),
            Verdict::Keep(Why::NoShadow)
        );
    }
}
