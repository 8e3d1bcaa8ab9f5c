//! Changing the migration phase of an adapter, for the whole adapter or one tenant subtree, now
//! or at a set time, and adding exceptions that keep legacy access alive past enforcement.
//! Every change is a history row and an audit event, so any earlier phase can be restored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::app::App;
use crate::audit::{Action, AuditEvent, Outcome};
use crate::clock::{parse_rfc3339, to_rfc3339};
use crate::ids::TenantId;
use crate::legacy::Phase;
use crate::store::{PhaseChangeRecord, PhaseExceptionRecord};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPhase {
    #[schema(value_type = String)]
    pub phase: Phase,
    /// Limit the change to this tenant and its sub-tenants.
    pub tenant_id: Option<String>,
    /// RFC 3339 time the change takes effect; default now.
    pub at: Option<String>,
    /// RFC 3339 cutoff of a `sunset` phase, after which the adapter is enforced.
    pub sunset_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddException {
    /// Keep this tenant (and its sub-tenants) on legacy access.
    pub tenant_id: Option<String>,
    /// Keep one credential, named by its fingerprint (`sha256:...`), on legacy access.
    pub credential_fingerprint: Option<String>,
    /// RFC 3339 time the exception ends.
    pub until: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChangeView {
    pub adapter: String,
    pub tenant_id: Option<String>,
    pub phase: String,
    pub effective_at: String,
    pub sunset_at: Option<String>,
    pub actor: String,
}

impl From<&PhaseChangeRecord> for PhaseChangeView {
    fn from(change: &PhaseChangeRecord) -> Self {
        Self {
            adapter: change.adapter.clone(),
            tenant_id: change.tenant_id.clone(),
            phase: change.phase.clone(),
            effective_at: to_rfc3339(change.effective_at),
            sunset_at: change.sunset_at.map(to_rfc3339),
            actor: change.actor.clone(),
        }
    }
}

fn parse_time(text: &str, field: &str) -> AdminResult<i64> {
    parse_rfc3339(text)
        .ok_or_else(|| AdminError::Invalid(format!("{field} {text:?} is not an RFC 3339 time")))
}

impl App {
    /// Records a phase change and applies it at its time.
    pub async fn set_phase(
        &self,
        adapter: &str,
        request: &SetPhase,
        actor: &str,
    ) -> AdminResult<PhaseChangeRecord> {
        if self.verifier.adapters().get(adapter).is_none() {
            return Err(AdminError::NotFound("adapter"));
        }
        let tenant = request
            .tenant_id
            .as_deref()
            .map(|t| TenantId::parse(t).map_err(|e| AdminError::Invalid(e.to_string())))
            .transpose()?;
        if let Some(tenant) = &tenant {
            if !self.directory.contains(tenant) {
                return Err(AdminError::NotFound("tenant"));
            }
        }
        let now = self.clock.now();
        let effective_at = request
            .at
            .as_deref()
            .map(|t| parse_time(t, "at"))
            .transpose()?
            .unwrap_or(now);
        let sunset_at = request
            .sunset_at
            .as_deref()
            .map(|t| parse_time(t, "sunsetAt"))
            .transpose()?;
        match (request.phase, sunset_at) {
            (Phase::Sunset, None) => {
                return Err(AdminError::Invalid(
                    "phase sunset needs sunsetAt, the cutoff date".to_owned(),
                ))
            }
            (Phase::Sunset, Some(cutoff)) if cutoff <= effective_at => {
                return Err(AdminError::Invalid(
                    "sunsetAt must be later than the change itself".to_owned(),
                ))
            }
            (Phase::Sunset, _) => {}
            (_, Some(_)) => {
                return Err(AdminError::Invalid(
                    "sunsetAt applies only to phase sunset".to_owned(),
                ))
            }
            (_, None) => {}
        }

        let change = PhaseChangeRecord {
            id: 0,
            adapter: adapter.to_owned(),
            tenant_id: tenant.as_ref().map(ToString::to_string),
            phase: request.phase.as_str().to_owned(),
            effective_at,
            sunset_at,
            created_at: now,
            actor: actor.to_owned(),
        };
        self.store.insert_phase_change(&change).await?;
        self.phases.reload(&self.store, now).await?;
        self.announce(crate::cluster::Change::Phases).await;
        let mut event = AuditEvent::new(Action::PhaseChange, Outcome::Success, "valid")
            .with_detail(serde_json::json!({
                "adapter": adapter,
                "phase": change.phase,
                "effectiveAt": to_rfc3339(effective_at),
                "sunsetAt": sunset_at.map(to_rfc3339),
                "actor": actor,
            }));
        event.adapter = Some(adapter.to_owned());
        if let Some(tenant) = &tenant {
            event = event.with_tenant(tenant);
        }
        if let Err(error) = self.audit.record(event).await {
            tracing::error!(%error, adapter.name = %adapter, "phase change applied but its audit event failed");
        }
        tracing::info!(adapter.name = %adapter, phase = %change.phase, tenant.id = ?change.tenant_id, effective_at, "phase change recorded");
        Ok(change)
    }

    /// Records an exception to enforcement.
    pub async fn add_phase_exception(
        &self,
        adapter: &str,
        request: &AddException,
        actor: &str,
    ) -> AdminResult<PhaseExceptionRecord> {
        if self.verifier.adapters().get(adapter).is_none() {
            return Err(AdminError::NotFound("adapter"));
        }
        if request.tenant_id.is_some() == request.credential_fingerprint.is_some() {
            return Err(AdminError::Invalid(
                "name exactly one of tenantId or credentialFingerprint".to_owned(),
            ));
        }
        if let Some(tenant) = &request.tenant_id {
            let tenant = TenantId::parse(tenant).map_err(|e| AdminError::Invalid(e.to_string()))?;
            if !self.directory.contains(&tenant) {
                return Err(AdminError::NotFound("tenant"));
            }
        }
        let now = self.clock.now();
        let expires_at = parse_time(&request.until, "until")?;
        if expires_at <= now {
            return Err(AdminError::Invalid("until is in the past".to_owned()));
        }
        let exception = PhaseExceptionRecord {
            id: 0,
            adapter: adapter.to_owned(),
            tenant_id: request.tenant_id.clone(),
            credential_fingerprint: request.credential_fingerprint.clone(),
            expires_at,
            created_at: now,
            actor: actor.to_owned(),
        };
        self.store.insert_phase_exception(&exception).await?;
        self.phases.reload(&self.store, now).await?;
        self.announce(crate::cluster::Change::Phases).await;
        let mut event = AuditEvent::new(Action::PhaseChange, Outcome::Success, "valid")
            .with_detail(serde_json::json!({
                "adapter": adapter,
                "exceptionUntil": to_rfc3339(expires_at),
                "tenantId": request.tenant_id,
                "credentialFingerprint": request.credential_fingerprint,
                "actor": actor,
            }));
        event.adapter = Some(adapter.to_owned());
        if let Err(error) = self.audit.record(event).await {
            tracing::error!(%error, adapter.name = %adapter, "phase exception added but its audit event failed");
        }
        Ok(exception)
    }
}
