//! `/v1/tenants`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::admin::{CreateTenant, TenantView, UpdateTenant};
use crate::http::{ApiError, ApiJson, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
}

/// Creates a sub-tenant; `parentId` defaults to the caller's tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn create_tenant(
    State(app): State<AppState>,
    caller: AdminCaller,
    ApiJson(mut request): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let parent = match request.parent_id.as_deref() {
        Some(parent) => caller.tenant_in_scope(&app, parent)?,
        None => caller.tenant_id.clone(),
    };
    request.parent_id = Some(parent.to_string());
    let tenant = app.create_tenant(&request).await?;
    tracing::info!(tenant.id = %tenant.id, tenant.parent = %parent, "created tenant");
    let detail = json!({"tenantId": tenant.id, "parentId": parent, "name": tenant.name});
    caller
        .audit(&app, "tenant.create", &tenant.id, detail)
        .await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(&tenant))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    /// List the children of this tenant; default the caller's tenant.
    parent_id: Option<String>,
}

/// Lists the direct sub-tenants of `parentId`.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery),
    responses((status = 200, body = Vec<TenantView>)), security(("bearer" = [])))]
async fn list_tenants(
    State(app): State<AppState>,
    caller: AdminCaller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let parent = match query.parent_id.as_deref() {
        Some(parent) => caller.tenant_in_scope(&app, parent)?,
        None => caller.tenant_id.clone(),
    };
    let children = app.store.child_tenants(&parent).await?;
    Ok(Json(children.iter().map(TenantView::from).collect()))
}

#[utoipa::path(get, path = "/v1/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404)), security(("bearer" = [])))]
async fn get_tenant(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let id = caller.tenant_in_scope(&app, &tenant_id)?;
    Ok(Json(TenantView::from(&app.tenant(&id).await?)))
}

#[utoipa::path(patch, path = "/v1/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)), request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn update_tenant(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<UpdateTenant>,
) -> Result<Json<TenantView>, ApiError> {
    let id = caller.tenant_in_scope(&app, &tenant_id)?;
    let tenant = app.update_tenant(&id, &request).await?;
    let detail =
        json!({"tenantId": id, "name": request.name, "inheritRoles": request.inherit_roles});
    caller.audit(&app, "tenant.update", &id, detail).await?;
    Ok(Json(TenantView::from(&tenant)))
}

/// Deletes a tenant without sub-tenants, with its machines and API keys.
#[utoipa::path(delete, path = "/v1/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
async fn delete_tenant(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = caller.tenant_in_scope(&app, &tenant_id)?;
    if id == caller.tenant_id {
        return Err(ApiError::Conflict(
            "a credential cannot delete its own tenant".to_owned(),
        ));
    }
    app.delete_tenant(&id).await?;
    tracing::info!(tenant.id = %id, "deleted tenant");
    caller
        .audit(&app, "tenant.delete", &id, json!({"tenantId": id}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
