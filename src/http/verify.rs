//! `POST /v1/verify`: the verify API for services that do not check credentials themselves.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rate_limit::verify_limited;
use super::{parse_json, presented_credential, ApiError, AppState, RequestInfo};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::clock::to_rfc3339;
use crate::credentials::Mode;
use crate::ids::TenantId;
use crate::verify::{Decision, Reason, Requirements, Source};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

/// Requirements a valid credential must also meet.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub audience: Option<String>,
    pub mode: Option<Mode>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub valid: bool,
    #[schema(value_type = String)]
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl VerifyResponse {
    fn from_decision(decision: &Decision) -> Self {
        let identity = decision.identity.as_ref().filter(|_| decision.is_valid());
        Self {
            valid: decision.is_valid(),
            reason: decision.reason,
            source: identity.map(|i| match i.source {
                Source::Native => "native",
                Source::Legacy(_) => "legacy",
            }),
            adapter: identity.and_then(|i| match &i.source {
                Source::Legacy(name) => Some(name.clone()),
                Source::Native => None,
            }),
            tenant_id: identity.map(|i| i.tenant_id.to_string()),
            machine_id: identity.and_then(|i| i.machine_id.clone()),
            mode: identity.map(|i| i.mode),
            roles: identity.map(|i| i.roles.iter().cloned().collect()),
            expires_at: identity.and_then(|i| i.expires_at).map(to_rfc3339),
        }
    }
}

/// Verifies the credential in `Authorization: Bearer` or `X-API-Key` against optional
/// requirements.
#[utoipa::path(
    post, path = "/v1/verify", tag = "verify",
    request_body(content = Option<VerifyRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "valid", body = VerifyResponse),
        (status = 401, description = "the credential does not verify", body = VerifyResponse),
        (status = 403, description = "valid, but lacks what was required", body = VerifyResponse),
        (status = 429, description = "too many failed credential checks from this client address; see Retry-After"),
        (status = 503, description = "the source that must check it is unavailable", body = VerifyResponse),
    ),
    security(("bearer" = []), ("apiKey" = []))
)]
async fn verify(
    State(app): State<AppState>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|_| ApiError::PayloadTooLarge)?;
    let request: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        parse_json(&body)?
    };
    let requirements = Requirements {
        tenant_id: request
            .tenant_id
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("tenantId: {e}")))?,
        roles: request.roles,
        audience: request.audience,
        mode: request.mode,
    };
    let Some(credential) = presented_credential(&headers)? else {
        let event = AuditEvent::new(Action::Verify, Outcome::Failure, "missing_credential");
        app.audit.record(info.tag(event)).await?;
        return Err(ApiError::Unauthorized(
            "send the credential in Authorization: Bearer or X-API-Key".to_owned(),
        ));
    };

    let decision =
        verify_limited(&app, &info, &headers, credential.expose(), &requirements).await?;
    let event = AuditEvent::from_decision(Action::Verify, &decision);
    app.audit.record(info.tag(event)).await?;
    tracing::info!(
        credential.fingerprint = %decision.fingerprint,
        reason = %decision.reason,
        tenant.id = decision.identity.as_ref().map(|i| i.tenant_id.to_string()).unwrap_or_default(),
        "verify"
    );
    let status = StatusCode::from_u16(decision.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = (status, Json(VerifyResponse::from_decision(&decision))).into_response();
    if let Some(identity) = &decision.identity {
        super::add_deprecation_headers(identity, response.headers_mut());
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            decision.reason
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    Ok(response)
}
