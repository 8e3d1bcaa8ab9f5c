//! `GET /dashboard`: the migration progress report as an HTML page for operators.
//!
//! The page takes an admin credential in `Authorization`/`X-API-Key`, or once as `?key=`. A key
//! in the query is exchanged for a session cookie (a random id that this daemon instance maps in
//! memory to the admin's tenant for 8 hours) and the browser is redirected to `/dashboard`, so
//! the key leaves the address bar. The cookie never contains the key.
//!
//! NOTE: sessions live in the memory of one instance; behind a load balancer without sticky
//! sessions, the browser must log in to each instance.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use parking_lot::Mutex;
use rand::RngCore;
use serde::Deserialize;

use super::rate_limit::verify_limited;
use super::{presented_credential, ApiError, AppState, RequestInfo};
use crate::audit::{Action, AuditEvent};
use crate::ids::TenantId;
use crate::progress::{self, html, Scope};
use crate::verify::Requirements;

/// Name of the session cookie.
const COOKIE: &str = "authbridge_dashboard";
/// Lifetime of a dashboard session, in seconds (8 hours).
const SESSION_SECONDS: i64 = 8 * 3600;
/// Maximum number of live sessions per instance. A login beyond it ends the oldest session, so
/// a holder of an admin key who logs in without end cannot grow memory.
const MAX_SESSIONS: usize = 10_000;

/// Dashboard sessions of this instance: session id to the admin's tenant and expiry time.
#[derive(Debug, Default)]
struct Sessions {
    by_id: Mutex<HashMap<String, (TenantId, i64)>>,
}

impl Sessions {
    fn create(&self, tenant: TenantId, now: i64) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let mut sessions = self.by_id.lock();
        sessions.retain(|_, (_, expires_at)| *expires_at > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, (_, expires_at))| *expires_at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), (tenant, now + SESSION_SECONDS));
        id
    }

    fn tenant(&self, id: &str, now: i64) -> Option<TenantId> {
        let sessions = self.by_id.lock();
        sessions
            .get(id)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(tenant, _)| tenant.clone())
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .layer(Extension(Arc::new(Sessions::default())))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DashboardQuery {
    /// An admin API key, accepted once and exchanged for a session cookie.
    key: Option<String>,
    adapter: Option<String>,
    tenant_id: Option<String>,
}

/// Verifies an admin credential as the admin API does and returns the admin's tenant. Failures
/// are recorded as `admin:authenticate` audit events and count toward the client address's
/// failure limit.
async fn authenticate(
    app: &AppState,
    credential: &str,
    request: &RequestInfo,
    headers: &HeaderMap,
) -> Result<TenantId, ApiError> {
    let decision =
        verify_limited(app, request, headers, credential, &Requirements::default()).await?;
    let identity = decision.identity.as_ref().filter(|_| decision.is_valid());
    match identity {
        Some(identity) if identity.roles.contains("admin") => Ok(identity.tenant_id.clone()),
        _ => {
            let mut event = AuditEvent::from_decision(Action::Admin("authenticate"), &decision);
            if decision.is_valid() {
                event.outcome = crate::audit::Outcome::Failure;
                event.reason = "out_of_scope".to_owned();
            }
            app.audit.record(request.tag(event)).await?;
            if decision.reason.is_unavailable() {
                return Err(ApiError::Unavailable(format!(
                    "admin credential could not be checked ({})",
                    decision.reason
                )));
            }
            Err(ApiError::Unauthorized(format!(
                "the dashboard needs a valid admin credential ({})",
                decision.reason
            )))
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Serves the dashboard, after exchanging a `?key=` for a session cookie.
async fn dashboard(
    State(app): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    request: RequestInfo,
    headers: HeaderMap,
    query: Result<Query<DashboardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = app.clock.now();

    if let Some(key) = query.key.as_deref() {
        let tenant = authenticate(&app, key, &request, &headers).await?;
        let session = sessions.create(tenant.clone(), now);
        tracing::info!(tenant.id = %tenant, "dashboard session started");
        let secure = if app.issuer.issuer().starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE}={session}; Path=/dashboard; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}"
        );
        let mut response = StatusCode::SEE_OTHER.into_response();
        let response_headers = response.headers_mut();
        response_headers.insert(header::LOCATION, HeaderValue::from_static("/dashboard"));
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response_headers.insert(header::SET_COOKIE, value);
        }
        response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }

    let admin_tenant = match presented_credential(&headers)? {
        Some(credential) => authenticate(&app, credential.expose(), &request, &headers).await?,
        None => session_cookie(&headers)
            .and_then(|id| sessions.tenant(id, now))
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "open /dashboard?key=<admin API key> once, or send the key in Authorization or X-API-Key"
                        .to_owned(),
                )
            })?,
    };

    let not_found = |text: &str| ApiError::NotFound(format!("tenant {text} not found"));
    let tenant = match query.tenant_id.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => {
            let id = TenantId::parse(text).map_err(|_| not_found(text))?;
            if !app.directory.is_within(&id, &admin_tenant) {
                return Err(not_found(text));
            }
            id
        }
        None => admin_tenant.clone(),
    };
    let is_root = app.directory.path_to_root(&admin_tenant).len() == 1;
    let scope = Scope {
        adapter: query.adapter.filter(|name| !name.is_empty()),
        include_untenanted: is_root && tenant == admin_tenant,
        tenant: Some(tenant),
    };
    let report = progress::report(&app, now, &scope).await?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html::render(&report),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_stay_below_maximum() {
        let sessions = Sessions::default();
        let tenant = TenantId::parse("root0000").unwrap();
        let first = sessions.create(tenant.clone(), 1_000);
        for _ in 0..MAX_SESSIONS {
            sessions.create(tenant.clone(), 2_000);
        }
        assert_eq!(sessions.by_id.lock().len(), MAX_SESSIONS);
        assert_eq!(
            sessions.tenant(&first, 2_000),
            None,
            "the oldest session made room"
        );
    }
}
