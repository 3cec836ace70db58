//! Following the shadow's quarantine flag: each message is decided by `crate::decision`, the
//! device is brought in line with the last explicit instruction, and `reported.quarantine` says
//! what is applied.

use rumqttc::QoS;
use serde_json::Value;

use super::Daemon;
use crate::agent::AgentError;
use crate::custom::run_shell;
use crate::decision::{self, Flag, Message, Verdict};
use crate::shadow;

/// What the agent knows about the quarantine flag.
#[derive(Default)]
pub(super) struct Follower {
    /// The last explicit `desired.quarantine`, or the state applied once a document without one
    /// was kept.
    target: Option<bool>,
    /// The last reported value the shadow showed.
    reported: Option<bool>,
    /// The last message said the shadow is gone: reporting to it would create it again.
    gone: bool,
    /// The shadow read in flight.
    read: Option<Read>,
}

struct Read {
    token: String,
    /// The newest version taken into account since the read was sent: its answer must reach it.
    floor: Option<u64>,
}

/// What a message shows besides the flag.
enum Shows {
    /// The whole shadow (or its absence), with `reported.quarantine` if there is one.
    Whole { reported: Option<bool> },
    /// A delta: desired keys only.
    Delta,
}

impl Daemon {
    /// Reads the whole shadow. The clientToken is unique across restarts (a report id), so an
    /// answer to an earlier run's read, still queued in the persistent session, is not taken
    /// for the answer to this one.
    pub(super) async fn read_shadow(&mut self) -> Result<(), AgentError> {
        let token = format!("defender-agent-{}", self.reporter.state.take_rid()?);
        self.client
            .publish(
                &self.reporter.topics.shadow_get,
                QoS::AtLeastOnce,
                false,
                shadow::get_request(&token),
            )
            .await
            .map_err(|e| AgentError::Client(e.to_string()))?;
        self.follower.read = Some(Read { token, floor: None });
        Ok(())
    }

    /// A read still unanswered after a report interval is taken as lost, so that an older
    /// document can ask for another.
    pub(super) fn forget_lost_read(&mut self) {
        self.follower.read = None;
    }

    pub(super) async fn on_shadow(&mut self, topic: &str, doc: &Value) {
        let topics = &self.reporter.topics;
        let (message, shows) = if topic == topics.shadow_get_accepted {
            let reading = shadow::from_get_accepted(doc);
            tracing::info!(shadow_version = ?reading.message.version, desired_quarantine = ?reading.message.flag, reported_quarantine = ?reading.reported, "shadow read");
            let shows = Shows::Whole {
                reported: reading.reported,
            };
            (reading.message, shows)
        } else if topic == topics.shadow_update_documents {
            let reading = shadow::from_documents(doc);
            let shows = Shows::Whole {
                reported: reading.reported,
            };
            (reading.message, shows)
        } else if topic == topics.shadow_update_delta {
            (shadow::from_delta(doc), Shows::Delta)
        } else if topic == topics.shadow_delete_accepted {
            let message = shadow::from_delete_accepted(doc);
            tracing::warn!(shadow_version = ?message.version, "the shadow was deleted");
            (message, Shows::Whole { reported: None })
        } else if topic == topics.shadow_get_rejected {
            if !shadow::is_no_shadow(doc) {
                tracing::warn!(answer = %doc, "could not read the shadow");
                if self.answers_read(doc) {
                    self.follower.read = None;
                }
                return;
            }
            tracing::info!("shadow read: the thing has no shadow");
            let message = Message {
                version: None,
                flag: Flag::NoShadow,
            };
            (message, Shows::Whole { reported: None })
        } else {
            if topic == topics.shadow_update_rejected {
                // Also seen when another client's update of the same shadow is rejected.
                tracing::warn!(answer = %doc, "a shadow update was rejected");
            }
            return;
        };
        let answers_read = (topic == topics.shadow_get_accepted
            || topic == topics.shadow_get_rejected)
            && self.answers_read(doc);
        self.follow(message, shows, answers_read).await;
    }

    fn answers_read(&self, doc: &Value) -> bool {
        let token = shadow::client_token(doc);
        self.follower
            .read
            .as_ref()
            .is_some_and(|read| token == Some(read.token.as_str()))
    }

    /// Decides one message. The answer to the agent's own read is the shadow as it is now, so it
    /// is compared only with what arrived since the read was sent: its version may be lower than
    /// the stored one when the shadow was deleted and created again (AWS starts again from 0
    /// for a shadow deleted more than 48 hours before).
    async fn follow(&mut self, message: Message, shows: Shows, answers_read: bool) {
        let floor = if answers_read {
            self.follower.read.take().and_then(|read| read.floor)
        } else {
            self.reporter.state.state().shadow_version
        };
        match decision::decide(&message, floor) {
            Verdict::Silent => return,
            Verdict::Stale { version, newest } => {
                tracing::warn!(
                    shadow_version = version,
                    "ignored shadow document version {version}: older than version {newest}, already taken into account; reading the shadow again"
                );
                if self.follower.read.is_none()
                    && let Err(e) = self.read_shadow().await
                {
                    tracing::error!("cannot read the shadow: {e}");
                }
                return;
            }
            Verdict::Follow(quarantine) => self.follower.target = Some(quarantine),
            Verdict::Keep(why) => self.keep(&why, message.version),
        }
        if let Some(version) = message.version {
            self.took_version(version);
        }
        if let Shows::Whole { reported } = shows {
            self.follower.reported = reported;
        }
        self.follower.gone = message.flag == Flag::NoShadow;
        self.reconcile().await;
    }

    /// A document without an instruction: the agent keeps what it follows, saying why.
    fn keep(&mut self, why: &decision::Why, version: Option<u64>) {
        let kept = self
            .follower
            .target
            .or(self.reporter.state.state().quarantined);
        let shown = version.map_or_else(|| "(none)".to_owned(), |v| v.to_string());
        match kept {
            Some(true) => tracing::warn!(
                shadow_version = ?version,
                "shadow version {shown}: {why}; keeping the quarantine"
            ),
            Some(false) => tracing::info!(
                shadow_version = ?version,
                "shadow version {shown}: {why}; keeping the device released"
            ),
            None => tracing::info!(
                shadow_version = ?version,
                "shadow version {shown}: {why}; the device was never quarantined"
            ),
        }
        self.follower.target = kept;
    }

    fn took_version(&mut self, version: u64) {
        if let Some(previous) = self.reporter.state.state().shadow_version
            && version < previous
        {
            tracing::warn!(
                shadow_version = version,
                "the shadow's version went back from {previous} to {version}: it was deleted and created again"
            );
        }
        if let Err(e) = self.reporter.state.set_shadow_version(version) {
            tracing::error!("{e}");
        }
        if let Some(read) = &mut self.follower.read {
            read.floor = read.floor.max(Some(version));
        }
    }

    /// Brings the device in line with the target: runs the command if the applied state
    /// differs, then makes `reported.quarantine` say what is applied.
    pub(super) async fn reconcile(&mut self) {
        let Some(target) = self.follower.target else {
            return;
        };
        let applied = self.reporter.state.state().quarantined;
        // First start and no quarantine asked for: there is nothing to release.
        let in_line = applied == Some(target) || (applied.is_none() && !target);
        if !in_line && !self.apply(target).await {
            return;
        }
        if applied != Some(target)
            && let Err(e) = self.reporter.state.set_quarantined(target)
        {
            tracing::error!("{e}");
        }
        let report_needed = self.conn.report_quarantine
            && !self.follower.gone
            && self.follower.reported != Some(target)
            && (target || self.follower.reported.is_some() || !in_line);
        if report_needed {
            self.report_flag(target).await;
        }
    }

    /// Runs the quarantine or release command; false if it failed.
    async fn apply(&mut self, quarantine: bool) -> bool {
        let (command, what) = if quarantine {
            (self.conn.quarantine_command.as_deref(), "quarantine")
        } else {
            (self.conn.release_command.as_deref(), "release")
        };
        tracing::warn!(desired_quarantine = quarantine, "shadow asks for {what}");
        let Some(command) = command else {
            return true;
        };
        let env = [
            ("THING_NAME", self.conn.thing_name.as_str()),
            ("QUARANTINE", if quarantine { "true" } else { "false" }),
        ];
        match run_shell(command, &env, self.command_timeout).await {
            Ok(out) => {
                tracing::info!(command, output = out.trim(), "{what} command succeeded");
                true
            }
            Err(e) => {
                tracing::error!(
                    command,
                    "{what} command failed: {e}; trying again at the next report"
                );
                false
            }
        }
    }

    async fn report_flag(&mut self, quarantine: bool) {
        let topic = &self.reporter.topics.shadow_update;
        let document = shadow::reported_document(quarantine);
        match self
            .client
            .publish(topic, QoS::AtLeastOnce, false, document)
            .await
        {
            Ok(()) => {
                tracing::info!(topic, "reported quarantine: {quarantine}");
                self.follower.reported = Some(quarantine);
            }
            Err(e) => tracing::error!("cannot report quarantine {quarantine}: {e}"),
        }
    }
}
