//! `/v1/tenants/{tenantId}/api-keys`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::admin::{ApiKeyView, CreateApiKey, CreatedApiKey};
use crate::http::{ApiError, ApiJson, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, revoke_api_key))
        .routes(routes!(rotate_api_key))
}

/// Creates an API key; the response carries the key once.
#[utoipa::path(post, path = "/v1/tenants/{tenantId}/api-keys", tag = "api-keys", params(("tenantId" = String, Path)), request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn create_api_key(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    caller.check_mode(request.mode)?;
    let (record, key) = app.create_api_key(&tenant, &request).await?;
    tracing::info!(key.id = %record.id, tenant.id = %tenant, "created API key");
    let view = ApiKeyView::from(&record);
    caller
        .audit(&app, "api_key.create", &tenant, json!(view))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: view,
            key: key.expose().to_owned(),
        }),
    ))
}

/// Lists the tenant's API keys without their secrets.
#[utoipa::path(get, path = "/v1/tenants/{tenantId}/api-keys", tag = "api-keys", params(("tenantId" = String, Path)),
    responses((status = 200, body = Vec<ApiKeyView>), (status = 404)), security(("bearer" = [])))]
async fn list_api_keys(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    let keys = app.store.api_keys_of_tenant(&tenant).await?;
    Ok(Json(keys.iter().map(ApiKeyView::from).collect()))
}

#[utoipa::path(get, path = "/v1/tenants/{tenantId}/api-keys/{keyId}", tag = "api-keys", params(("tenantId" = String, Path), ("keyId" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404)), security(("bearer" = [])))]
async fn get_api_key(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    Ok(Json(ApiKeyView::from(&app.api_key(&tenant, &id).await?)))
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/v1/tenants/{tenantId}/api-keys/{keyId}", tag = "api-keys", params(("tenantId" = String, Path), ("keyId" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404)), security(("bearer" = [])))]
async fn revoke_api_key(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    let record = app.revoke_api_key(&tenant, &id).await?;
    tracing::info!(key.id = %id, tenant.id = %tenant, "revoked API key");
    caller
        .audit(&app, "api_key.revoke", &tenant, json!({"keyId": id}))
        .await?;
    Ok(Json(ApiKeyView::from(&record)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateRequest {
    /// Seconds the old key keeps working; 0 revokes it at once. At most 30 days.
    grace_period_seconds: i64,
}

/// Replaces an API key; the old one keeps working for the grace period.
#[utoipa::path(post, path = "/v1/tenants/{tenantId}/api-keys/{keyId}/rotate", tag = "api-keys", params(("tenantId" = String, Path), ("keyId" = String, Path)), request_body = RotateRequest,
    responses((status = 201, body = CreatedApiKey), (status = 404), (status = 409)), security(("bearer" = [])))]
async fn rotate_api_key(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path((tenant_id, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<RotateRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    let (record, key) = app
        .rotate_api_key(&tenant, &id, request.grace_period_seconds)
        .await?;
    tracing::info!(key.id = %id, key.replacement = %record.id, tenant.id = %tenant, "rotated API key");
    let detail = json!({
        "keyId": id,
        "replacementId": record.id,
        "gracePeriodSeconds": request.grace_period_seconds,
    });
    caller
        .audit(&app, "api_key.rotate", &tenant, detail)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: ApiKeyView::from(&record),
            key: key.expose().to_owned(),
        }),
    ))
}
