//! `/v1/adapters`: the legacy adapters with their phases, phase changes and exceptions. A root
//! admin changes an adapter as a whole; the admin of a tenant may change or except only its own
//! subtree.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::admin::{AddException, PhaseChangeView, SetPhase};
use crate::clock::to_rfc3339;
use crate::http::{ApiError, ApiJson, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_adapters))
        .routes(routes!(set_phase))
        .routes(routes!(add_exception))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AdapterView {
    name: String,
    kind: String,
    preset: Option<String>,
    /// The phase in force for all tenants now.
    phase: String,
    phase_since: String,
    sunset_at: Option<String>,
    configured_phase: String,
    history: Vec<PhaseChangeView>,
}

fn is_root(app: &AppState, caller: &AdminCaller) -> bool {
    app.directory.path_to_root(&caller.tenant_id).len() == 1
}

/// Lists the configured adapters with the phase in force and its history.
#[utoipa::path(get, path = "/v1/adapters", tag = "adapters",
    responses((status = 200, body = Vec<AdapterView>)), security(("bearer" = [])))]
async fn list_adapters(
    State(app): State<AppState>,
    _caller: AdminCaller,
) -> Json<Vec<AdapterView>> {
    let now = app.clock.now();
    let views = app
        .verifier
        .adapters()
        .all()
        .iter()
        .map(|adapter| {
            let in_force =
                app.phases
                    .in_force(&adapter.name, adapter.phase, None, &app.directory, now);
            AdapterView {
                name: adapter.name.clone(),
                kind: adapter.kind.clone(),
                preset: adapter.preset.clone(),
                phase: in_force.phase.as_str().to_owned(),
                phase_since: to_rfc3339(in_force.since),
                sunset_at: in_force.sunset_at.map(to_rfc3339),
                configured_phase: adapter.phase.as_str().to_owned(),
                history: app
                    .phases
                    .history(&adapter.name)
                    .iter()
                    .map(PhaseChangeView::from)
                    .collect(),
            }
        })
        .collect();
    Json(views)
}

/// Changes the phase of an adapter, for all tenants or one subtree, now or at `at`.
#[utoipa::path(post, path = "/v1/adapters/{name}/phase", tag = "adapters", params(("name" = String, Path)), request_body = SetPhase,
    responses((status = 201, body = PhaseChangeView), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
async fn set_phase(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SetPhase>,
) -> Result<(StatusCode, Json<PhaseChangeView>), ApiError> {
    match &request.tenant_id {
        Some(tenant) => {
            caller.tenant_in_scope(&app, tenant)?;
        }
        None if !is_root(&app, &caller) => {
            return Err(ApiError::Forbidden(
                "only a root admin changes an adapter for all tenants; set tenantId".to_owned(),
            ));
        }
        None => {}
    }
    let change = app
        .set_phase(&name, &request, &format!("admin:{}", caller.fingerprint))
        .await?;
    Ok((StatusCode::CREATED, Json(PhaseChangeView::from(&change))))
}

/// Keeps a tenant subtree or one credential on legacy access past enforcement, until a time.
#[utoipa::path(post, path = "/v1/adapters/{name}/exceptions", tag = "adapters", params(("name" = String, Path)), request_body = AddException,
    responses((status = 201), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
async fn add_exception(
    State(app): State<AppState>,
    caller: AdminCaller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AddException>,
) -> Result<StatusCode, ApiError> {
    match &request.tenant_id {
        Some(tenant) => {
            caller.tenant_in_scope(&app, tenant)?;
        }
        None if !is_root(&app, &caller) => {
            return Err(ApiError::Forbidden(
                "only a root admin adds a credential exception".to_owned(),
            ));
        }
        None => {}
    }
    app.add_phase_exception(&name, &request, &format!("admin:{}", caller.fingerprint))
        .await?;
    Ok(StatusCode::CREATED)
}
