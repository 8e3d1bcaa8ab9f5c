//! `/v1/signing-keys`: listing and rotating the daemon's signing keys. Signing keys serve every
//! tenant, so only an admin of a root tenant may rotate them.

use axum::extract::State;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminCaller;
use crate::http::{ApiError, AppState};
use crate::signing::SigningKeySummary;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_signing_keys))
        .routes(routes!(rotate_signing_keys))
}

fn require_root(app: &AppState, caller: &AdminCaller) -> Result<(), ApiError> {
    if app.directory.path_to_root(&caller.tenant_id).len() == 1 {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin of a root tenant manages signing keys".to_owned(),
        ))
    }
}

#[utoipa::path(get, path = "/v1/signing-keys", tag = "signing-keys",
    responses((status = 200, body = Vec<SigningKeySummary>), (status = 403)), security(("bearer" = [])))]
async fn list_signing_keys(
    State(app): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<Vec<SigningKeySummary>>, ApiError> {
    require_root(&app, &caller)?;
    Ok(Json(app.keyring.summaries()))
}

/// Rotates: the next key starts signing, the current key stays published as previous.
#[utoipa::path(post, path = "/v1/signing-keys/rotate", tag = "signing-keys",
    responses((status = 200, body = Vec<SigningKeySummary>), (status = 403)), security(("bearer" = [])))]
async fn rotate_signing_keys(
    State(app): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<Vec<SigningKeySummary>>, ApiError> {
    require_root(&app, &caller)?;
    app.keyring
        .rotate(app.clock.now())
        .await
        .map_err(|e| match e {
            crate::signing::KeyringError::Store(store) => ApiError::from(store),
            other => ApiError::Internal(other.to_string()),
        })?;
    let kid = app.keyring.current().kid.clone();
    app.announce(crate::cluster::Change::SigningKeys).await;
    tracing::info!(%kid, "rotated signing keys");
    caller
        .audit(
            &app,
            "signing_key.rotate",
            &caller.tenant_id,
            json!({"kid": kid}),
        )
        .await?;
    Ok(Json(app.keyring.summaries()))
}
