//! Names that end up in MQTT topics or in the report, checked once when the configuration is read.
//!
//! The agent keeps its own small copy of the registry rule rather than depending on
//! violation-core, which pulls in the Lambda event crates a device does not need.

use std::fmt;

fn check(name: &str, what: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {what} must not be empty"));
    }
    if let Some((i, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')))
    {
        return Err(format!(
            "a {what} may contain only letters, digits, ':', '_' and '-' ({c:?} at character {})",
            i + 1
        ));
    }
    if name.len() > max {
        return Err(format!(
            "a {what} is at most {max} characters ({} given)",
            name.len()
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            pub fn parse(name: &str) -> Result<Self, String> {
                check(name, $what, $max)?;
                Ok(Self(name.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A thing name: 1 to 128 characters of `[a-zA-Z0-9:_-]` (so never an MQTT wildcard or `/`).
    ThingName,
    "thing name",
    128
);
name_type!(
    /// A named shadow: 1 to 64 characters of `[a-zA-Z0-9:_-]`.
    ShadowName,
    "shadow name",
    64
);

/// A custom metric name: 1 to 128 characters of `[a-zA-Z0-9:_-]`, not starting with `aws:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricName(String);

impl MetricName {
    pub fn parse(name: &str) -> Result<Self, String> {
        check(name, "custom metric name", 128)?;
        if name.starts_with("aws:") {
            return Err("the aws: prefix is reserved for AWS's own metrics".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An endpoint is a host name or an IP address: no scheme, port or path.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.contains("://") || endpoint.contains('/') {
        return Err("a host name only, without scheme or path (e.g. abc123-ats.iot.eu-west-1.amazonaws.com)".into());
    }
    if endpoint.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if endpoint.is_empty() || endpoint.len() > 253 || !endpoint.split('.').all(valid_label) {
        return Err(
            "a DNS host name (letters, digits, '-' and '.'; the port goes in --port)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(ThingName::parse("mything1").is_ok());
        assert!(ThingName::parse(&"x".repeat(128)).is_ok());
        assert!(ThingName::parse(&"x".repeat(129)).is_err());
        for bad in ["", "a/b", "a+", "#", "a b"] {
            assert!(ThingName::parse(bad).is_err(), "{bad}");
        }
        assert!(ShadowName::parse(&"s".repeat(65)).is_err());
        assert!(MetricName::parse("num_child_procs_myapp").is_ok());
        assert!(MetricName::parse("aws:all-bytes-out").is_err());
    }

    #[test]
    fn endpoints() {
        for ok in [
            "abc-ats.iot.eu-west-1.amazonaws.com",
            "localhost",
            "127.0.0.1",
            "::1",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://abc.iot.amazonaws.com",
            "abc.iot.amazonaws.com:8883",
            "abc..com",
            "",
            "a b",
            "host/path",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
