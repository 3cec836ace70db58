//! What the custom resource acts on: the quarantine policy and group of the function's own
//! environment (set by the template), never the event's. The event's properties must agree.

use mitigation::ThingGroupArn;

use crate::request::Properties;

/// The policy attached to the group, as the template configured the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub policy_name: String,
    pub group: ThingGroupArn,
}

impl Target {
    /// `<PolicyName>|<ThingGroupName>`: the resource's `PhysicalResourceId`.
    pub fn physical_resource_id(&self) -> String {
        format!("{}|{}", self.policy_name, self.group.name)
    }

    /// Why `properties` cannot be acted on: they name another policy or group than the
    /// environment. A request that disagrees is refused rather than half-trusted: it is either
    /// forged or from a template whose properties and environment were edited apart.
    pub fn disagreement(&self, properties: &Properties) -> Option<String> {
        let pairs = [
            (
                "PolicyName",
                &properties.policy_name,
                &self.policy_name,
                "QUARANTINE_POLICY",
            ),
            (
                "ThingGroupArn",
                &properties.thing_group_arn,
                &self.group.arn,
                "QUARANTINE_GROUP_ARN",
            ),
            (
                "ThingGroupName",
                &properties.thing_group_name,
                &self.group.name,
                "QUARANTINE_GROUP_ARN",
            ),
        ];
        let differing: Vec<String> = pairs
            .iter()
            .filter(|(_, given, own, _)| given != own)
            .map(|(property, given, own, variable)| {
                format!(
                    "property {property} is {given:?} but this function's {variable} names {own:?}"
                )
            })
            .collect();
        (!differing.is_empty()).then(|| {
            format!(
                "refused: {}; stack-setup acts only on the policy and group of its own environment",
                differing.join("; ")
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ARN: &str = "arn:aws:iot:eu-west-1:123456789012:thinggroup/Quarantine";

    pub(crate) fn target() -> Target {
        Target {
            policy_name: "s-quarantine".into(),
            group: ThingGroupArn {
                arn: ARN.into(),
                name: "Quarantine".into(),
            },
        }
    }

    fn props(policy: &str, group: &str, arn: &str) -> Properties {
        Properties {
            policy_name: policy.into(),
            thing_group_name: group.into(),
            thing_group_arn: arn.into(),
            enable_fleet_indexing: false,
            enable_membership_events: false,
        }
    }

    #[test]
    fn agreeing_properties_are_accepted_and_the_id_comes_from_the_environment() {
        assert_eq!(
            target().disagreement(&props("s-quarantine", "Quarantine", ARN)),
            None
        );
        assert_eq!(target().physical_resource_id(), "s-quarantine|Quarantine");
    }

    #[test]
    fn each_disagreeing_property_is_named_with_its_variable() {
        let other = "arn:aws:iot:eu-west-1:123456789012:thinggroup/Other";
        let reason = target()
            .disagreement(&props("someone-else", "Other", other))
            .unwrap();
        assert!(
            reason.contains("PolicyName is \"someone-else\""),
            "{reason}"
        );
        assert!(reason.contains("QUARANTINE_POLICY"), "{reason}");
        assert!(reason.contains("ThingGroupArn"), "{reason}");
        assert!(reason.contains("ThingGroupName"), "{reason}");
        assert!(
            target()
                .disagreement(&props("s-quarantine", "Quarantine", other))
                .is_some()
        );
    }
}
