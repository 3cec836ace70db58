//! The thing-group mitigation: membership of the static quarantine thing group.

use std::ops::ControlFlow;

use futures::future::BoxFuture;
use mitigation::{ActionError, Applied, GroupMembership, MitigationAction, MitigationKind};
use violation_core::{Action, ThingName};

use crate::errors::classify;
use crate::paging::read_pages;

/// A thing is in at most 10 static groups (AWS's quota), and a page holds 25 by default; a
/// few pages bound a misbehaving paginator.
const MEMBERSHIP_PAGES: usize = 4;

/// Quarantine = AddThingToThingGroup, release = RemoveThingFromThingGroup, on a static group.
pub struct ThingGroupMembership {
    client: aws_sdk_iot::Client,
    group: String,
}

impl ThingGroupMembership {
    pub fn new(client: aws_sdk_iot::Client, group: impl Into<String>) -> Self {
        ThingGroupMembership {
            client,
            group: group.into(),
        }
    }
}

impl MitigationAction for ThingGroupMembership {
    fn name(&self) -> &'static str {
        MitigationKind::ThingGroup.name()
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        // The two calls take the same parameters; their builders are different types.
        macro_rules! membership {
            ($call:ident, $operation:literal) => {
                self.client
                    .$call()
                    .thing_group_name(&self.group)
                    .thing_name(thing.as_str())
                    .send()
                    .await
                    .map(|_| Applied::Done)
                    .map_err(|e| classify($operation, thing.as_str(), e))
            };
        }
        Box::pin(async move {
            let result = match action {
                Action::Quarantine => membership!(add_thing_to_thing_group, "AddThingToThingGroup"),
                Action::Release => {
                    membership!(remove_thing_from_thing_group, "RemoveThingFromThingGroup")
                }
            };
            result.map_err(|e| with_group_hint(e, &self.group))
        })
    }
}

impl GroupMembership for ThingGroupMembership {
    /// ListThingGroupsForThing: the quarantine group among the thing's groups.
    fn in_group<'a>(&'a self, thing: &'a ThingName) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let pages = self
                .client
                .list_thing_groups_for_thing()
                .thing_name(thing.as_str())
                .into_paginator()
                .send();
            let mut found = false;
            read_pages(
                pages,
                MEMBERSHIP_PAGES,
                "ListThingGroupsForThing",
                thing.as_str(),
                |page| {
                    found = page
                        .thing_groups()
                        .iter()
                        .any(|g| g.group_name() == Some(self.group.as_str()));
                    if found {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .await
            .map_err(|e| with_group_hint(e, &self.group))?;
            Ok(found)
        })
    }
}

fn with_group_hint(mut e: ActionError, group: &str) -> ActionError {
    if e.code == "ResourceNotFoundException" {
        e.hint = Some(format!(
            "check that the thing is registered (aws iot describe-thing --thing-name {}) and that the static thing group {group} exists (aws iot describe-thing-group --thing-group-name {group}); redrive the record once fixed",
            e.thing
        ));
    }
    e
}
