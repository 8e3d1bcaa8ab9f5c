//! `/v1/tenants/{tenantId}/machines`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::admin::{CreateMachine, CreatedMachine, MachineView};
use crate::http::{ApiError, ApiJson, AppState};
use crate::ids::MachineId;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_machine, list_machines))
        .routes(routes!(get_machine, delete_machine))
}

/// Registers a machine; the response carries `clientSecret` once for secret-based machines.
#[utoipa::path(post, path = "/v1/tenants/{tenantId}/machines", tag = "machines", params(("tenantId" = String, Path)), request_body = CreateMachine,
    responses((status = 201, body = CreatedMachine), (status = 400), (status = 404)), security(("bearer" = [])))]
async fn create_machine(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<CreateMachine>,
) -> Result<(StatusCode, Json<CreatedMachine>), ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    caller.check_mode(request.mode.unwrap_or(crate::credentials::Mode::Live))?;
    let (machine, secret) = app.create_machine(&tenant, &request).await?;
    tracing::info!(machine.id = %machine.id, tenant.id = %tenant, "created machine");
    let view = MachineView::from(&machine);
    caller
        .audit(&app, "machine.create", &tenant, json!(view))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedMachine {
            machine: view,
            client_secret: secret.map(|s| s.expose().to_owned()),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tenants/{tenantId}/machines", tag = "machines", params(("tenantId" = String, Path)),
    responses((status = 200, body = Vec<MachineView>), (status = 404)), security(("bearer" = [])))]
async fn list_machines(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Vec<MachineView>>, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    let machines = app.store.machines_of_tenant(&tenant).await?;
    Ok(Json(machines.iter().map(MachineView::from).collect()))
}

fn machine_id(text: &str) -> Result<MachineId, ApiError> {
    MachineId::parse(text).map_err(|_| ApiError::NotFound(format!("machine {text} not found")))
}

#[utoipa::path(get, path = "/v1/tenants/{tenantId}/machines/{machineId}", tag = "machines", params(("tenantId" = String, Path), ("machineId" = String, Path)),
    responses((status = 200, body = MachineView), (status = 404)), security(("bearer" = [])))]
async fn get_machine(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<MachineView>, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    let machine = app
        .store
        .machine(&tenant, &machine_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("machine {id} not found")))?;
    Ok(Json(MachineView::from(&machine)))
}

/// Deletes a machine; its client can no longer obtain tokens. Tokens already issued stay valid
/// until they expire unless revoked.
#[utoipa::path(delete, path = "/v1/tenants/{tenantId}/machines/{machineId}", tag = "machines", params(("tenantId" = String, Path), ("machineId" = String, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
async fn delete_machine(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant_in_scope(&app, &tenant_id)?;
    app.delete_machine(&tenant, &machine_id(&id)?).await?;
    tracing::info!(machine.id = %id, tenant.id = %tenant, "deleted machine");
    caller
        .audit(&app, "machine.delete", &tenant, json!({"machineId": id}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
