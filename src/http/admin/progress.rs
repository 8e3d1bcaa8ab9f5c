//! `GET /v1/migration/progress` and `GET /v1/migration/credentials`: the migration progress
//! report and the legacy credential inventory of the caller's tenant subtree.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::clock::parse_rfc3339;
use crate::http::{ApiError, AppState};
use crate::progress::{self, LegacyCredential, ProgressReport, Scope};

/// Largest page a request may ask for.
const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(migration_progress))
        .routes(routes!(legacy_credentials))
}

/// Builds the report scope of an admin call: the requested tenant (which must lie in the
/// caller's subtree, else 404) or the caller's own tenant, and an optional adapter.
pub fn admin_scope(
    app: &AppState,
    caller: &AdminCaller,
    tenant_id: Option<&str>,
    adapter: Option<String>,
) -> Result<Scope, ApiError> {
    let tenant = match tenant_id {
        Some(text) => caller.tenant_in_scope(app, text)?,
        None => caller.tenant_id.clone(),
    };
    let is_root = app.directory.path_to_root(&caller.tenant_id).len() == 1;
    Ok(Scope {
        adapter: adapter.filter(|name| !name.is_empty()),
        tenant: Some(tenant),
        include_untenanted: is_root && tenant_id.is_none(),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ProgressQuery {
    /// Only this legacy adapter; native traffic is still counted in the shares.
    adapter: Option<String>,
    /// This tenant and its sub-tenants; default the caller's tenant.
    tenant_id: Option<String>,
}

/// Returns the migration progress report of the caller's subtree, computed now from the audit
/// events: traffic share by source class, the legacy credential inventory, failures, readiness
/// per tenant and the burndown with a projected finish date.
#[utoipa::path(get, path = "/v1/migration/progress", tag = "migration", params(ProgressQuery),
    responses((status = 200, body = ProgressReport), (status = 400), (status = 404)),
    security(("bearer" = [])))]
async fn migration_progress(
    State(app): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<ProgressQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProgressReport>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let scope = admin_scope(&app, &caller, query.tenant_id.as_deref(), query.adapter)?;
    let report = progress::report(&app, app.clock.now(), &scope).await?;
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CredentialQuery {
    adapter: Option<String>,
    /// This tenant and its sub-tenants; default the caller's tenant.
    tenant_id: Option<String>,
    /// RFC 3339; only credentials last seen at or after this time.
    seen_since: Option<String>,
    /// `true` for migrated credentials only, `false` for the ones still to migrate.
    migrated: Option<bool>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Credentials per page, 1 to 500. Default 100.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CredentialPage {
    credentials: Vec<LegacyCredential>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Lists the legacy credentials of the caller's subtree, most recently seen first, with owner,
/// tenant, last use and migration state. Credentials are named by fingerprint only.
#[utoipa::path(get, path = "/v1/migration/credentials", tag = "migration", params(CredentialQuery),
    responses((status = 200, body = CredentialPage), (status = 400), (status = 404)),
    security(("bearer" = [])))]
async fn legacy_credentials(
    State(app): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<CredentialQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CredentialPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} must be between 1 and {MAX_LIMIT}"
        )));
    }
    // The cursor is the position in the list, which is ordered by last use and so may shift
    // between pages while traffic continues.
    let offset = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<usize>()
                .map_err(|_| ApiError::BadRequest(format!("cursor {text:?} is not valid")))
        })
        .transpose()?
        .unwrap_or(0);
    let seen_since = query
        .seen_since
        .as_deref()
        .map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                ApiError::BadRequest(format!("seenSince {text:?} is not an RFC 3339 time"))
            })
        })
        .transpose()?;
    let scope = admin_scope(&app, &caller, query.tenant_id.as_deref(), query.adapter)?;
    let all = progress::credentials(&app, app.clock.now(), &scope).await?;
    let matching: Vec<LegacyCredential> = all
        .into_iter()
        .filter(|c| query.migrated.is_none_or(|wanted| c.migrated == wanted))
        .filter(|c| {
            seen_since.is_none_or(|since| c.last_seen_unix.is_some_and(|last| last >= since))
        })
        .collect();
    let end = offset.saturating_add(limit).min(matching.len());
    let page = matching
        .get(offset..end)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    Ok(Json(CredentialPage {
        credentials: page,
        next_cursor: (end < matching.len()).then(|| end.to_string()),
    }))
}
