//! `/v1/forward-auth`: the decision endpoint for gateways (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz` over HTTP).
//!
//! The gateway forwards the original request's headers; the credential is read from
//! `Authorization: Bearer` or `X-API-Key`. A 200 carries identity headers for the upstream and,
//! with `translate=true`, a native access token translated from a legacy credential, so
//! services behind the gateway see only native tokens.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rate_limit::verify_limited;
use super::{presented_credential, ApiError, AppState, RequestInfo};
use crate::audit::{Action, AuditEvent};
use crate::credentials::Mode;
use crate::ids::TenantId;
use crate::issue::exchange::{
    exchange, ExchangeRequest, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_API_KEY, TOKEN_TYPE_JWT,
};
use crate::secret::SecretString;
use crate::verify::{CredentialKind, Requirements, Source};

/// Seconds before its expiry at which a cached translated token is replaced.
const RENEW_BEFORE_SECONDS: i64 = 30;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(forward_auth))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardAuthQuery {
    /// The credential must reach this tenant.
    tenant_id: Option<String>,
    /// Comma-separated roles the credential must hold.
    roles: Option<String>,
    audience: Option<String>,
    mode: Option<Mode>,
    /// Return a native access token for a legacy credential in `Authorization`. Default false.
    #[serde(default)]
    translate: bool,
}

/// Translated tokens by SHA-256 of the legacy credential, with their expiry.
pub type TranslationCache = moka::sync::Cache<String, (SecretString, i64)>;

/// Returns a cache for translated tokens.
pub fn translation_cache() -> TranslationCache {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(std::time::Duration::from_secs(3600))
        .build()
}

fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

/// Decides a gateway's subrequest.
#[utoipa::path(
    get, path = "/v1/forward-auth", tag = "verify", params(ForwardAuthQuery),
    responses(
        (status = 200, description = "allowed; identity in X-Auth-* headers"),
        (status = 401, description = "the credential does not verify"),
        (status = 403, description = "valid, but lacks what was required"),
        (status = 429, description = "too many failed credential checks from this client address; see Retry-After"),
        (status = 503, description = "the source that must check it is unavailable"),
    )
)]
async fn forward_auth(
    State(app): State<AppState>,
    info: RequestInfo,
    headers: HeaderMap,
    query: Result<Query<ForwardAuthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let requirements = Requirements {
        tenant_id: query
            .tenant_id
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("tenantId: {e}")))?,
        roles: query
            .roles
            .as_deref()
            .map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        audience: query.audience.clone(),
        mode: query.mode,
    };
    let Some(credential) = presented_credential(&headers)? else {
        return Err(ApiError::Unauthorized(
            "no credential in Authorization or X-API-Key".to_owned(),
        ));
    };

    let decision =
        verify_limited(&app, &info, &headers, credential.expose(), &requirements).await?;
    app.audit
        .record(info.tag(AuditEvent::from_decision(Action::Verify, &decision)))
        .await?;
    let status = StatusCode::from_u16(decision.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = status.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = header_value(decision.reason.as_str()) {
        response_headers.insert(HeaderName::from_static("x-auth-reason"), value);
    }
    if status == StatusCode::UNAUTHORIZED {
        response_headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"authbridge\""),
        );
    }
    let Some(identity) = decision.identity.as_ref().filter(|_| decision.is_valid()) else {
        return Ok(response);
    };

    super::add_deprecation_headers(identity, response_headers);
    let roles = identity.roles.iter().cloned().collect::<Vec<_>>().join(",");
    let (source, adapter) = match &identity.source {
        Source::Native => ("native", None),
        Source::Legacy(name) => ("legacy", Some(name.clone())),
    };
    let pairs = [
        ("x-auth-tenant-id", Some(identity.tenant_id.to_string())),
        ("x-auth-machine-id", identity.machine_id.clone()),
        ("x-auth-roles", Some(roles)),
        ("x-auth-mode", Some(identity.mode.as_str().to_owned())),
        ("x-auth-source", Some(source.to_owned())),
        ("x-auth-adapter", adapter),
    ];
    for (name, value) in pairs {
        if let Some(value) = value.as_deref().and_then(header_value) {
            response_headers.insert(HeaderName::from_static(name), value);
        }
    }

    if query.translate && matches!(identity.source, Source::Legacy(_)) {
        match translated_token(&app, credential.expose(), identity.kind).await {
            Ok(token) => {
                if let Some(value) = header_value(&format!("Bearer {}", token.expose())) {
                    response.headers_mut().insert(header::AUTHORIZATION, value);
                }
            }
            Err(error) => {
                tracing::warn!(credential.fingerprint = %decision.fingerprint, %error, "forward-auth could not translate a legacy credential; the upstream gets identity headers only");
            }
        }
    }
    Ok(response)
}

/// Returns a native token for a legacy credential, from the cache until shortly before it
/// expires.
async fn translated_token(
    app: &AppState,
    credential: &str,
    kind: CredentialKind,
) -> Result<SecretString, String> {
    let key = hex::encode(Sha256::digest(credential.as_bytes()));
    let now = app.clock.now();
    if let Some((token, expires_at)) = app.translations.get(&key) {
        if now < expires_at - RENEW_BEFORE_SECONDS {
            return Ok(token);
        }
    }
    let subject_type = match kind {
        CredentialKind::AccessToken if credential.matches('.').count() == 2 => TOKEN_TYPE_JWT,
        CredentialKind::AccessToken => TOKEN_TYPE_ACCESS_TOKEN,
        CredentialKind::ApiKey => TOKEN_TYPE_API_KEY,
    };
    let request = ExchangeRequest {
        subject_token: Some(SecretString::new(credential)),
        subject_token_type: Some(subject_type.to_owned()),
        ..Default::default()
    };
    let exchanged = exchange(app, &request).await.map_err(|e| e.to_string())?;
    let expires_at = now + exchanged.expires_in.unwrap_or(0);
    app.translations
        .insert(key, (exchanged.token.clone(), expires_at));
    Ok(exchanged.token)
}
