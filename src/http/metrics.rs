//! `GET /metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Serves the metrics for Prometheus.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let now = app.clock.now();
    let key_health: Vec<crate::metrics::AdapterKeyHealth> = app
        .verifier
        .adapters()
        .all()
        .iter()
        .filter_map(|adapter| {
            adapter
                .verifier
                .key_health(now)
                .map(|health| crate::metrics::AdapterKeyHealth {
                    adapter: adapter.name.clone(),
                    age_seconds: health.age_seconds,
                    fetch_failures: health.fetch_failures,
                })
        })
        .collect();
    let text = app
        .verifier
        .metrics()
        .render(app.audit.queue_depth(), &key_health);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
