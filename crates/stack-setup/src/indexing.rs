//! Fleet indexing of Device Defender violations, added to what the account already has.

use aws_sdk_iot::types::{
    DeviceDefenderIndexingMode, ThingIndexingConfiguration, ThingIndexingMode,
};

/// What became of an account setting the stack may turn on: what the `FleetIndexing` and
/// `MembershipEvents` data keys say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    NotRequested,
    AlreadyEnabled,
    Enabled,
}

impl Switch {
    pub fn as_str(self) -> &'static str {
        match self {
            Switch::NotRequested => "not-requested",
            Switch::AlreadyEnabled => "already-enabled",
            Switch::Enabled => "enabled",
        }
    }
}

/// The change to make to the account's thing indexing configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexingChange {
    /// Violations are already indexed: no update call.
    None,
    /// Send this as `thingIndexingConfiguration` (and no thing group configuration, which
    /// then stays as it is).
    Update(Box<ThingIndexingConfiguration>),
}

/// The account's configuration (`None`: GetIndexingConfiguration returned none) with
/// `deviceDefenderIndexingMode = VIOLATIONS`, `thingIndexingMode = REGISTRY` if it was `OFF`,
/// the read-only `managedFields` dropped, and everything else kept: shadow and connectivity
/// indexing, named shadows, custom fields, the filter.
pub fn with_violations(
    current: Option<&ThingIndexingConfiguration>,
) -> Result<IndexingChange, aws_sdk_iot::error::BuildError> {
    let mut config = match current {
        Some(c) => c.clone(),
        None => ThingIndexingConfiguration::builder()
            .thing_indexing_mode(ThingIndexingMode::Off)
            .build()?,
    };
    if config.device_defender_indexing_mode == Some(DeviceDefenderIndexingMode::Violations) {
        return Ok(IndexingChange::None);
    }
    config.managed_fields = None;
    config.device_defender_indexing_mode = Some(DeviceDefenderIndexingMode::Violations);
    if config.thing_indexing_mode == ThingIndexingMode::Off {
        config.thing_indexing_mode = ThingIndexingMode::Registry;
    }
    Ok(IndexingChange::Update(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use aws_sdk_iot::types::{
        Field, FieldType, IndexingFilter, NamedShadowIndexingMode, ThingConnectivityIndexingMode,
    };

    use super::*;

    fn field(name: &str, t: FieldType) -> Field {
        Field::builder().name(name).r#type(t).build()
    }

    fn rich(
        mode: ThingIndexingMode,
        dd: Option<DeviceDefenderIndexingMode>,
    ) -> ThingIndexingConfiguration {
        ThingIndexingConfiguration::builder()
            .thing_indexing_mode(mode)
            .thing_connectivity_indexing_mode(ThingConnectivityIndexingMode::Status)
            .set_device_defender_indexing_mode(dd)
            .named_shadow_indexing_mode(NamedShadowIndexingMode::On)
            .managed_fields(field("registry.version", FieldType::Number))
            .managed_fields(field("connectivity.connected", FieldType::Boolean))
            .custom_fields(field("attributes.site", FieldType::String))
            .filter(
                IndexingFilter::builder()
                    .named_shadow_names("config")
                    .build(),
            )
            .build()
            .unwrap()
    }

    fn updated(change: IndexingChange) -> ThingIndexingConfiguration {
        match change {
            IndexingChange::Update(c) => *c,
            IndexingChange::None => panic!("expected an update"),
        }
    }

    #[test]
    fn adds_violations_and_keeps_everything_else_but_managed_fields() {
        let current = rich(
            ThingIndexingMode::RegistryAndShadow,
            Some(DeviceDefenderIndexingMode::Off),
        );
        let new = updated(with_violations(Some(&current)).unwrap());
        assert_eq!(
            new.device_defender_indexing_mode,
            Some(DeviceDefenderIndexingMode::Violations)
        );
        assert_eq!(
            new.thing_indexing_mode,
            ThingIndexingMode::RegistryAndShadow
        );
        assert_eq!(new.managed_fields, None);
        assert_eq!(
            new.thing_connectivity_indexing_mode,
            current.thing_connectivity_indexing_mode
        );
        assert_eq!(
            new.named_shadow_indexing_mode,
            current.named_shadow_indexing_mode
        );
        assert_eq!(new.custom_fields, current.custom_fields);
        assert_eq!(new.filter, current.filter);
    }

    #[test]
    fn registry_only_is_kept_and_off_becomes_registry() {
        let registry = rich(ThingIndexingMode::Registry, None);
        assert_eq!(
            updated(with_violations(Some(&registry)).unwrap()).thing_indexing_mode,
            ThingIndexingMode::Registry
        );
        let off = ThingIndexingConfiguration::builder()
            .thing_indexing_mode(ThingIndexingMode::Off)
            .build()
            .unwrap();
        let new = updated(with_violations(Some(&off)).unwrap());
        assert_eq!(new.thing_indexing_mode, ThingIndexingMode::Registry);
        assert_eq!(
            new.device_defender_indexing_mode,
            Some(DeviceDefenderIndexingMode::Violations)
        );
        assert_eq!(new.thing_connectivity_indexing_mode, None);
    }

    #[test]
    fn no_configuration_at_all_becomes_registry_with_violations() {
        let new = updated(with_violations(None).unwrap());
        assert_eq!(new.thing_indexing_mode, ThingIndexingMode::Registry);
        assert_eq!(
            new.device_defender_indexing_mode,
            Some(DeviceDefenderIndexingMode::Violations)
        );
    }

    #[test]
    fn violations_already_indexed_means_no_update() {
        let current = rich(
            ThingIndexingMode::Registry,
            Some(DeviceDefenderIndexingMode::Violations),
        );
        assert_eq!(
            with_violations(Some(&current)).unwrap(),
            IndexingChange::None
        );
    }

    #[test]
    fn data_values_are_the_documented_strings() {
        assert_eq!(Switch::NotRequested.as_str(), "not-requested");
        assert_eq!(Switch::AlreadyEnabled.as_str(), "already-enabled");
        assert_eq!(Switch::Enabled.as_str(), "enabled");
    }
}
