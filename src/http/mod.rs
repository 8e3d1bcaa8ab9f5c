//! The HTTP API: routes, shared extractors and the middleware stack. Handlers live in one file
//! per area; status codes are assigned only in [`error`].

pub mod admin;
mod dashboard;
pub mod error;
mod exchange;
pub mod forward_auth;
pub mod header_limits;
mod health;
mod metrics;
mod oauth;
pub mod openapi;
pub mod rate_limit;
mod request_info;
mod verify;
mod well_known;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{header, HeaderMap};
use axum::Router;
use serde::de::DeserializeOwned;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::secret::SecretString;
pub use error::{ApiError, OAuthError};
pub use request_info::RequestInfo;

pub type AppState = Arc<App>;

/// Builds the router with every route and the middleware stack.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.server.max_body_bytes;
    let header_limits = header_limits::HeaderLimits::from_config(&app.config.server);
    let (api, spec) = OpenApiRouter::with_openapi(openapi::base())
        .merge(oauth::routes())
        .merge(verify::routes())
        .merge(forward_auth::routes())
        .merge(well_known::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(admin::routes())
        .split_for_parts();
    let spec = Arc::new(spec);
    let request_id = header::HeaderName::from_static("x-request-id");

    api.merge(dashboard::routes()).route(
        "/openapi.json",
        axum::routing::get(move || {
            let spec = spec.clone();
            async move { axum::Json(spec.as_ref().clone()) }
        }),
    )
    .fallback(|| async { ApiError::NotFound("no such route".to_owned()) })
    .with_state(app)
    .layer(DefaultBodyLimit::max(max_body))
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    .layer(
        TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", http.method = %request.method(), http.path = %request.uri().path(), request.id = %id)
        }),
    )
    .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
    // Outermost, so that only the client's own header fields count.
    .layer(axum::middleware::from_fn_with_state(
        header_limits,
        header_limits::enforce,
    ))
}

/// Extracts the credential a request presents: `Authorization: Bearer ...` or `X-API-Key`.
pub fn presented_credential(headers: &HeaderMap) -> Result<Option<SecretString>, ApiError> {
    let bearer = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::BadRequest("Authorization header is not ASCII".to_owned())
            })?;
            // Auth scheme names are case-insensitive (RFC 9110 section 11.1).
            let token = text
                .get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .map(|_| &text[7..])
                .ok_or_else(|| {
                    ApiError::Unauthorized("Authorization must use the Bearer scheme".to_owned())
                })?;
            Some(token.trim())
        }
    };
    let api_key = match headers.get("x-api-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::BadRequest("X-API-Key header is not ASCII".to_owned()))?
                .trim(),
        ),
    };
    match (bearer, api_key) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "send the credential in Authorization or in X-API-Key, not both".to_owned(),
        )),
        (Some(token), None) | (None, Some(token)) => Ok(Some(SecretString::new(token))),
        (None, None) => Ok(None),
    }
}

/// A JSON body whose rejections are problem+json errors that name the fault.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".to_owned(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T`, reporting the position and the fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Adds `Deprecation` (RFC 9745) and, in the `sunset` phase, `Sunset` (RFC 8594) to an answer
/// for a legacy credential in the `dual` or `sunset` phase.
pub fn add_deprecation_headers(identity: &crate::verify::Identity, headers: &mut HeaderMap) {
    use crate::legacy::Phase;
    let Some(in_force) = identity.phase else {
        return;
    };
    if !matches!(in_force.phase, Phase::Dual | Phase::Sunset) {
        return;
    }
    if let Ok(value) = header::HeaderValue::from_str(&format!("@{}", in_force.since)) {
        headers.insert(header::HeaderName::from_static("deprecation"), value);
    }
    if in_force.phase == Phase::Sunset {
        if let Some(value) = in_force
            .sunset_at
            .and_then(http_date)
            .and_then(|date| header::HeaderValue::from_str(&date).ok())
        {
            headers.insert(header::HeaderName::from_static("sunset"), value);
        }
    }
}

/// Formats a Unix time as an HTTP-date (RFC 9110 section 5.6.7), such as
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix_seconds: i64) -> Option<String> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()?
        .format(&format)
        .ok()
}
