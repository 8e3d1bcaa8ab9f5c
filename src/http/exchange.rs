//! The token exchange grant (RFC 8693) at `POST /oauth/token`.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::oauth::{client_auth_failed, no_store, Form};
use super::{AppState, OAuthError, RequestInfo};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::issue::client_auth::authenticate;
use crate::issue::exchange::{exchange, ExchangeError, ExchangeRequest};
use crate::secret::SecretString;

/// Exchanges a legacy credential. Client authentication is optional, but when sent it must be
/// valid, and adapters that name their exchange clients require it. A failed client
/// authentication and a subject or actor token that does not verify count toward the failure
/// limit of `address`.
pub(super) async fn token_exchange(
    app: &AppState,
    info: &RequestInfo,
    address: Option<IpAddr>,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, OAuthError> {
    let presented = form.presented_client(headers);
    let sent_client_auth = presented.basic.is_some()
        || presented.client_secret.is_some()
        || presented.client_assertion.is_some();
    let client_id = if sent_client_auth {
        let authenticated = authenticate(
            &presented,
            &app.store,
            &app.pepper,
            &app.assertion_rules,
            app.clock.now(),
        )
        .await;
        match authenticated {
            Ok(machine) => Some(machine.client_id),
            Err(error) => {
                let error =
                    client_auth_failed(app, info, address, Action::Exchange, error, &presented)
                        .await;
                return Err(error);
            }
        }
    } else {
        None
    };

    let mut audiences = form.all("audience");
    audiences.extend(form.all("resource"));
    let request = ExchangeRequest {
        subject_token: form.one("subject_token").map(SecretString::new),
        subject_token_type: form.one("subject_token_type").map(str::to_owned),
        actor_token: form.one("actor_token").map(SecretString::new),
        actor_token_type: form.one("actor_token_type").map(str::to_owned),
        requested_token_type: form.one("requested_token_type").map(str::to_owned),
        audiences,
        scopes: form
            .one("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        tenant_id: form.one("tenant_id").map(str::to_owned),
        role: form.one("role").map(str::to_owned),
        client_id,
    };

    let subject_fingerprint = request
        .subject_token
        .as_ref()
        .map(|t| crate::verify::fingerprint(t.expose()));
    let result = exchange(app, &request).await;
    if matches!(result, Err(ExchangeError::InvalidToken(_))) {
        app.failure_limiter.record_failure(address);
    }
    app.verifier
        .metrics()
        .count_exchange(if result.is_ok() { "success" } else { "failure" });
    let event = match &result {
        Ok(exchanged) => AuditEvent::new(Action::Exchange, Outcome::Success, "valid")
            .with_tenant(&exchanged.tenant_id)
            .with_detail(json!({"adapter": exchanged.adapter, "issuedTokenType": exchanged.issued_token_type})),
        Err(error) => AuditEvent::new(Action::Exchange, Outcome::Failure, error.code()),
    };
    let mut event = match &subject_fingerprint {
        Some(fingerprint) => event.with_fingerprint(fingerprint),
        None => event,
    };
    if let Ok(exchanged) = &result {
        event.adapter = Some(exchanged.adapter.clone());
        event.source = exchanged.adapter.clone();
    }
    app.audit
        .record(info.tag(event))
        .await
        .map_err(|_| OAuthError::unavailable())?;
    let exchanged = result.map_err(|error| {
        let status = match error {
            ExchangeError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ExchangeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if let ExchangeError::Internal(detail) = &error {
            tracing::error!(error = %detail, "token exchange failed");
        }
        OAuthError::new(status, error.code(), error.to_string())
    })?;
    tracing::info!(adapter.name = %exchanged.adapter, tenant.id = %exchanged.tenant_id, issued_token_type = exchanged.issued_token_type, "token exchanged");

    let token_type = if exchanged.issued_token_type == crate::issue::exchange::TOKEN_TYPE_API_KEY {
        "N_A"
    } else {
        "Bearer"
    };
    let mut body = json!({
        "access_token": exchanged.token.expose(),
        "issued_token_type": exchanged.issued_token_type,
        "token_type": token_type,
    });
    if let Some(expires_in) = exchanged.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    if let Some(scope) = exchanged.scope {
        body["scope"] = json!(scope);
    }
    Ok(no_store(Json(body).into_response()))
}
