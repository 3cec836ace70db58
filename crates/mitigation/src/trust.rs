//! Who may release, and what is never quarantined automatically: rules the functions apply
//! on top of the core's decisions, whatever the delivery (topic, queue, direct invocation).
//!
//! - A mitigation request that asks for a release is refused (`Permanent.ReleaseNotAllowed`)
//!   unless its `source` is listed in `RELEASE_SOURCES`: anyone who may publish to the topic
//!   could otherwise free any device, and name anyone as the sender.
//! - A thing named in `PROTECTED_THINGS` (a trailing `*` makes a prefix, as in `gw-*`) is
//!   never quarantined by an alert: its records report `kept` with the pattern that protects
//!   it.

use violation_core::{Action, AlertSource, Decision, RejectReason, ThingName, Verdict};

/// `RELEASE_SOURCES`: the mitigation request `source`s trusted to release. Empty by default:
/// no request releases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseSources(Vec<String>);

impl ReleaseSources {
    /// A comma-separated list; blanks are dropped.
    pub fn from_comma_list(list: &str) -> Self {
        ReleaseSources(comma_list(list))
    }

    pub fn allows(&self, source: &str) -> bool {
        self.0.iter().any(|s| s == source.trim())
    }

    /// The verdict, with a release request from an untrusted source turned into a
    /// rejection: the reason then names the source, and the record is never retried.
    pub fn screen(&self, mut verdict: Verdict) -> Verdict {
        let is_release = matches!(
            verdict.decision,
            Decision::Act {
                action: Action::Release,
                ..
            }
        );
        if verdict.source != Some(AlertSource::MitigationRequest) || !is_release {
            return verdict;
        }
        let source = verdict.facts.request_source.clone().unwrap_or_default();
        if !self.allows(&source) {
            verdict.decision = Decision::Reject(RejectReason::ReleaseNotAllowed { sender: source });
        }
        verdict
    }
}

/// `PROTECTED_THINGS`: names, or prefixes ending in `*`, never quarantined automatically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedThings(Vec<String>);

impl ProtectedThings {
    /// A comma-separated list of names and `prefix*` patterns.
    pub fn from_comma_list(list: &str) -> Self {
        ProtectedThings(comma_list(list))
    }

    /// The pattern that protects `thing`, if one does.
    pub fn protecting(&self, thing: &ThingName) -> Option<&str> {
        let name = thing.as_str();
        self.0
            .iter()
            .find(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern.as_str(),
            })
            .map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use violation_core::{DecisionPolicy, Envelope, InboundRecord, decide};

    fn request(body: serde_json::Value) -> Verdict {
        let record = InboundRecord {
            index: 0,
            id: "m-1".into(),
            envelope: Envelope::Sns,
            message: Ok(body),
            notes: Vec::new(),
        };
        decide(&record, &DecisionPolicy::default())
    }

    fn thing(name: &str) -> ThingName {
        ThingName::parse(name).expect("valid thing name")
    }

    #[test]
    fn a_release_request_is_refused_unless_its_source_is_trusted() {
        let release = serde_json::json!({"thingName": "dev-1", "action": "release",
            "reason": "fixed", "source": "quarantinectl:alice"});
        let untrusted = ReleaseSources::default().screen(request(release.clone()));
        assert_eq!(
            untrusted.decision,
            Decision::Reject(RejectReason::ReleaseNotAllowed {
                sender: "quarantinectl:alice".into()
            })
        );
        assert!(untrusted.reason().contains("RELEASE_SOURCES"));
        let trusted = ReleaseSources::from_comma_list(" soc-runbook , quarantinectl:alice")
            .screen(request(release));
        assert_eq!(trusted.decision.kind(), "release");
        let anonymous = ReleaseSources::from_comma_list("soc-runbook").screen(request(
            serde_json::json!({"thingName": "dev-1", "action": "release"}),
        ));
        assert_eq!(
            anonymous.decision,
            Decision::Reject(RejectReason::ReleaseNotAllowed { sender: "".into() })
        );
    }

    #[test]
    fn quarantine_requests_and_other_alerts_are_untouched() {
        let quarantine = request(serde_json::json!({"thingName": "dev-1", "action": "quarantine"}));
        assert_eq!(
            ReleaseSources::default().screen(quarantine.clone()),
            quarantine
        );
        let cleared = request(violation_core::fixtures::violation_on_metric(
            "dev-1",
            "alarm-cleared",
            "v-1",
            "num_child_procs_myapp",
        ));
        assert_eq!(ReleaseSources::default().screen(cleared.clone()), cleared);
    }

    #[test]
    fn protected_names_and_prefixes() {
        let protected = ProtectedThings::from_comma_list("gw-*, core-1,,");
        assert_eq!(protected.protecting(&thing("gw-7")), Some("gw-*"));
        assert_eq!(protected.protecting(&thing("core-1")), Some("core-1"));
        assert_eq!(protected.protecting(&thing("core-10")), None);
        assert_eq!(protected.protecting(&thing("dev-gw-1")), None);
        assert!(ProtectedThings::default().is_empty());
        assert_eq!(
            ProtectedThings::from_comma_list("*").protecting(&thing("any")),
            Some("*")
        );
    }
}
