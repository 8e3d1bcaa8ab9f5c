//! `GET /v1/audit/events`: audit events of the caller's tenant subtree, newest first, with
//! filters and cursor paging.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::audit::store::{events_page, EventFilter, PageOrder};
use crate::clock::parse_rfc3339;
use crate::http::{ApiError, AppState};
use crate::ids::TenantId;

/// Largest page a request may ask for.
const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 100;

/// Rows read from the store per page requested, at most. Rows outside the caller's subtree are
/// skipped, so a page may come back short; `nextCursor` then continues after the rows read.
const SCAN_FACTOR: i64 = 10;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit_events))
        .routes(routes!(audit_report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// The subtree to report on; default the caller's tenant.
    tenant_id: Option<String>,
    /// RFC 3339 start of the period (inclusive).
    since: String,
    /// RFC 3339 end of the period (exclusive); default now.
    until: Option<String>,
}

/// Compliance report of a tenant subtree for a period: counts by outcome, reason and action,
/// out-of-scope attempts, and credentials created, revoked and used.
#[utoipa::path(get, path = "/v1/audit/report", tag = "audit", params(ReportQuery),
    responses((status = 200, body = crate::audit::report::ComplianceReport), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn audit_report(
    State(app): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::audit::report::ComplianceReport>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let tenant = match query.tenant_id.as_deref() {
        Some(tenant) => caller.tenant_in_scope(&app, tenant)?,
        None => caller.tenant_id.clone(),
    };
    let since = parse_rfc3339(&query.since).ok_or_else(|| {
        ApiError::BadRequest(format!("since {:?} is not an RFC 3339 time", query.since))
    })?;
    let until = match query.until.as_deref() {
        Some(text) => parse_rfc3339(text).ok_or_else(|| {
            ApiError::BadRequest(format!("until {text:?} is not an RFC 3339 time"))
        })?,
        None => app.clock.now() + 1,
    };
    app.audit
        .flush()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let report = crate::audit::report::compliance_report(
        &app.store,
        &app.directory,
        Some(&tenant),
        since,
        until,
    )
    .await?;
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// Events of this tenant and its sub-tenants; default the caller's tenant.
    tenant_id: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// A reason code, such as `expired`.
    reason: Option<String>,
    /// `native` or an adapter name.
    source: Option<String>,
    adapter: Option<String>,
    /// A credential fingerprint, `sha256:` and 16 hex digits.
    fingerprint: Option<String>,
    /// RFC 3339; events at or after this time.
    since: Option<String>,
    /// RFC 3339; events before this time.
    until: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Events per page, 1 to 500. Default 100.
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventPage {
    /// Events as exported: `id`, `chainId`, `seq`, `time`, `action`, `outcome`, `reason`,
    /// `fingerprint`, `source`, `adapter`, `tenantId`, `machineId`, `clientAddress`,
    /// `requestId`, `detail`, `prevHash`, `hash`.
    events: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

fn parse_time(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|text| {
        parse_rfc3339(text)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} {text:?} is not an RFC 3339 time")))
    })
    .transpose()
}

/// Lists audit events in the caller's tenant subtree, newest first. Events that name no tenant
/// (such as an unrecognised credential) are listed only to admins of a root tenant.
#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn list_audit_events(
    State(app): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let scope = match query.tenant_id.as_deref() {
        Some(tenant) => caller.tenant_in_scope(&app, tenant)?,
        None => caller.tenant_id.clone(),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} must be between 1 and {MAX_LIMIT}"
        )));
    }
    let mut cursor = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("cursor {text:?} is not valid")))
        })
        .transpose()?;
    let filter = EventFilter {
        // The subtree check runs on each row below, because SQL cannot see the tenant tree.
        tenant_id: None,
        outcome: query.outcome,
        reason: query.reason,
        source: query.source,
        adapter: query.adapter,
        fingerprint: query.fingerprint,
        since: parse_time("since", query.since.as_deref())?,
        until: parse_time("until", query.until.as_deref())?,
    };
    let sees_untenanted =
        query.tenant_id.is_none() && app.directory.path_to_root(&scope).len() == 1;

    let mut events = Vec::new();
    let mut scanned = 0;
    let more = 'pages: loop {
        if scanned >= limit * SCAN_FACTOR {
            break true;
        }
        let page = events_page(&app.store, &filter, cursor, PageOrder::Descending, limit).await?;
        let last_page = page.len() < limit as usize;
        for event in &page {
            if events.len() == limit as usize {
                break 'pages true;
            }
            scanned += 1;
            cursor = Some(event.id);
            let visible = match event.tenant_id.as_deref().map(TenantId::parse) {
                Some(Ok(tenant)) => app.directory.is_within(&tenant, &scope),
                Some(Err(_)) => false,
                None => sees_untenanted,
            };
            if visible {
                events.push(event.to_json());
            }
        }
        if last_page {
            break false;
        }
    };
    Ok(Json(EventPage {
        events,
        next_cursor: if more {
            cursor.map(|c| c.to_string())
        } else {
            None
        },
    }))
}
