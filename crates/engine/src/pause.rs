//! Pausing automation by tenant, channel, store, workflow or action.

use countersign_core::model::{Pause, PauseScope};

use crate::{Engine, EngineError, PauseRecord};

impl Engine {
    /// Pause automation in a scope. Takes effect for every decision made after it.
    pub fn pause_set(&self, scope: PauseScope, value: &str, reason: &str) -> Result<Pause, EngineError> {
        let running = self.running();
        let value = value.trim();
        if value.trim().is_empty() || reason.trim().is_empty() {
            return Err(EngineError::BadInput { message: "a pause needs a value (what to pause) and a reason".into() });
        }
        if scope == PauseScope::Channel && countersign_core::model::Channel::parse(value).is_none() {
            return Err(EngineError::BadInput {
                message: format!("{value:?} is not a channel (chat, email, instagram_dm, tiktok_dm, …)"),
            });
        }
        if scope == PauseScope::Action && !running.policy.actions.contains_key(value) && value != "send_reply" {
            return Err(EngineError::BadInput {
                message: format!("{value:?} is not an action of policy {}", running.policy.id),
            });
        }
        let at = self.clock.now();
        let id = if self.pauses_for_team() {
            crate::team::team_pause_id(&self.operator.id, at)
        } else {
            format!("pause-{}", at.as_millisecond())
        };
        let pause = Pause {
            id,
            scope,
            value: value.to_string(),
            reason: reason.to_string(),
            set_by: self.operator.id.clone(),
            set_at: at,
            team: None,
        };
        if self.pauses_for_team() {
            return self.team_pause_set(pause);
        }
        self.store.writer().set_pause(pause.clone())?;
        Ok(pause)
    }

    /// Clear an active pause. A team's pause is cleared for the whole team, by a lead.
    pub fn pause_clear(&self, id: &str, reason: &str) -> Result<(), EngineError> {
        if reason.trim().is_empty() {
            return Err(EngineError::BadInput { message: "clearing a pause needs a reason".into() });
        }
        // A team pause held in force but not yet recorded is recorded first: it is cleared
        // as the record it then is.
        self.team_record_seen()?;
        let team_pause = self.active_pauses()?.into_iter().find(|p| p.id == id && p.team.is_some());
        if let Some(pause) = team_pause {
            return self.team_pause_clear(pause, reason);
        }
        self.check_pause_clear()?;
        self.store.writer().clear_pause(id, &self.operator.id, reason, self.clock.now())?;
        Ok(())
    }

    pub fn pauses(&self) -> Result<Vec<Pause>, EngineError> {
        self.active_pauses()
    }

    pub fn pause_history(&self) -> Result<Vec<PauseRecord>, EngineError> {
        Ok(self.store.pause_history()?)
    }
}
