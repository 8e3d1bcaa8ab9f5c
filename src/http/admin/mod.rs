//! The admin API under `/v1/`: tenants, machines, API keys and signing keys. Every call is
//! authenticated by an admin API key or an access token with the `admin` role, and confined to
//! that credential's tenant subtree: anything outside it returns 404, as if it did not exist.
//! Credentials that do not verify count toward the client address's failure limit.

mod adapters;
mod api_keys;
mod audit;
mod machines;
pub mod progress;
mod signing_keys;
mod tenants;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;

use serde_json::Value;

use super::rate_limit::verify_limited;
use super::{presented_credential, ApiError, AppState, RequestInfo};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::ids::TenantId;
use crate::verify::Requirements;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(adapters::routes())
        .merge(tenants::routes())
        .merge(machines::routes())
        .merge(api_keys::routes())
        .merge(signing_keys::routes())
        .merge(audit::routes())
        .merge(progress::routes())
}

/// An authenticated admin and the root of the subtree it may manage.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub tenant_id: TenantId,
    /// Fingerprint of the admin credential, recorded as the actor of audit events.
    pub fingerprint: String,
    pub request: RequestInfo,
    /// Mode of the admin credential: a `test` admin creates only `test` credentials.
    pub mode: crate::credentials::Mode,
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request = RequestInfo::from_parts(parts);
        let authentication = Action::Admin("authenticate");
        let Some(credential) = presented_credential(&parts.headers)? else {
            let event = AuditEvent::new(authentication, Outcome::Failure, "missing_credential");
            app.audit.record(request.tag(event)).await?;
            return Err(ApiError::Unauthorized(
                "send an admin API key in Authorization: Bearer or X-API-Key".to_owned(),
            ));
        };
        let decision = verify_limited(
            app,
            &request,
            &parts.headers,
            credential.expose(),
            &Requirements::default(),
        )
        .await?;
        let lacks_admin_role = decision
            .identity
            .as_ref()
            .is_some_and(|identity| !identity.roles.contains("admin"));
        if !decision.is_valid() || lacks_admin_role {
            let mut event = AuditEvent::from_decision(authentication, &decision);
            if decision.is_valid() {
                event.outcome = Outcome::Failure;
                event.reason = "out_of_scope".to_owned();
            }
            app.audit.record(request.tag(event)).await?;
        }
        if decision.reason.is_unavailable() {
            return Err(ApiError::Unavailable(format!(
                "admin credential could not be checked ({})",
                decision.reason
            )));
        }
        let identity = match decision.identity {
            Some(identity) if decision.is_valid() => identity,
            _ => {
                return Err(ApiError::Unauthorized(format!(
                    "admin credential is not valid ({})",
                    decision.reason
                )))
            }
        };
        if !identity.roles.contains("admin") {
            tracing::info!(credential.fingerprint = %decision.fingerprint, tenant.id = %identity.tenant_id, "admin call rejected: credential lacks the admin role");
            return Err(ApiError::Forbidden(
                "the credential does not hold the admin role".to_owned(),
            ));
        }
        Ok(AdminCaller {
            tenant_id: identity.tenant_id,
            fingerprint: decision.fingerprint,
            request,
            mode: identity.mode,
        })
    }
}

impl AdminCaller {
    /// Rejects a `live` credential requested by a `test` admin.
    pub fn check_mode(&self, requested: crate::credentials::Mode) -> Result<(), ApiError> {
        if self.mode == crate::credentials::Mode::Test
            && requested == crate::credentials::Mode::Live
        {
            return Err(ApiError::Forbidden(
                "a test-mode admin credential can create only test credentials".to_owned(),
            ));
        }
        Ok(())
    }

    /// Records a successful admin action on `tenant`. `detail` carries ids, names and settings,
    /// never a secret.
    pub async fn audit(
        &self,
        app: &AppState,
        what: &'static str,
        tenant: &TenantId,
        detail: Value,
    ) -> Result<(), ApiError> {
        let event = AuditEvent::new(Action::Admin(what), Outcome::Success, "ok")
            .with_fingerprint(&self.fingerprint)
            .with_tenant(tenant)
            .with_detail(detail);
        app.audit.record(self.request.tag(event)).await?;
        Ok(())
    }

    /// Parses `text` as a tenant id inside the caller's subtree; anything else is 404.
    pub fn tenant_in_scope(&self, app: &AppState, text: &str) -> Result<TenantId, ApiError> {
        let not_found = || ApiError::NotFound(format!("tenant {text} not found"));
        let id = TenantId::parse(text).map_err(|_| not_found())?;
        if app.directory.is_within(&id, &self.tenant_id) {
            Ok(id)
        } else {
            Err(not_found())
        }
    }
}
