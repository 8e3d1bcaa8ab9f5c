//! The OAuth endpoints: token (RFC 6749 `client_credentials`), introspection (RFC 7662) and
//! revocation (RFC 7009). Errors use RFC 6749 error codes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{presented_credential, AppState, OAuthError, RequestInfo};
use crate::app::App;
use crate::audit::{Action, AuditEvent, Outcome};
use crate::credentials::api_key;
use crate::ids::TenantId;
use crate::issue::client_auth::{authenticate, ClientAuthError, PresentedClient};
use crate::issue::{IssueError, TokenRequest};
use crate::secret::SecretString;
use crate::store::MachineRecord;
use crate::verify::{fingerprint, CredentialKind, Identity, Requirements};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(introspect))
        .routes(routes!(revoke))
}

/// Parameters that may appear more than once (RFC 8707 `resource`, RFC 8693 `audience`).
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// A parsed `application/x-www-form-urlencoded` body.
pub(super) struct Form(BTreeMap<String, Vec<String>>);

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthError::invalid_request("the form body is not valid urlencoded text")
        })?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            let values = map.entry(name.clone()).or_default();
            if !values.is_empty() && !REPEATABLE.contains(&name.as_str()) {
                // RFC 6749 section 3.2: request parameters must not be included more than once.
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} appears more than once"
                )));
            }
            values.push(value);
        }
        Ok(Self(map))
    }

    pub(super) fn one(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub(super) fn presented_client(&self, headers: &HeaderMap) -> PresentedClient {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
            .map(str::to_owned);
        PresentedClient {
            basic,
            client_id: self.one("client_id").map(str::to_owned),
            client_secret: self.one("client_secret").map(SecretString::new),
            client_assertion_type: self.one("client_assertion_type").map(str::to_owned),
            client_assertion: self.one("client_assertion").map(SecretString::new),
        }
    }
}

fn client_auth_error(error: ClientAuthError, presented: &PresentedClient) -> OAuthError {
    let basic = ClientAuthError::used_basic(presented);
    match error {
        ClientAuthError::Unavailable => OAuthError::unavailable(),
        ClientAuthError::MultipleMethods | ClientAuthError::AssertionType => {
            OAuthError::invalid_request(error.to_string())
        }
        other => OAuthError::invalid_client(other.to_string(), basic),
    }
}

/// Returns the audit reason code of a client authentication failure.
fn client_auth_reason(error: &ClientAuthError) -> &'static str {
    match error {
        ClientAuthError::Missing => "missing_credential",
        ClientAuthError::MultipleMethods => "multiple_auth_methods",
        ClientAuthError::MalformedBasic => "malformed",
        ClientAuthError::Failed => "invalid_client",
        ClientAuthError::InvalidAssertion(_) => "invalid_client_assertion",
        ClientAuthError::AssertionType => "invalid_client_assertion_type",
        ClientAuthError::Unavailable => "unavailable",
    }
}

/// True for a client authentication failure that counts toward the client address's failure
/// limit: a credential was presented and did not verify. A missing or ambiguous one does not.
fn counts_as_failure(error: &ClientAuthError) -> bool {
    matches!(
        error,
        ClientAuthError::Failed
            | ClientAuthError::MalformedBasic
            | ClientAuthError::InvalidAssertion(_)
    )
}

/// Records a failed client authentication, in the audit trail and in the failure limit of
/// `address`, and returns the error to respond with: the audit failure when the event cannot be
/// recorded, else the authentication error.
pub(super) async fn client_auth_failed(
    app: &App,
    info: &RequestInfo,
    address: Option<IpAddr>,
    action: Action,
    error: ClientAuthError,
    presented: &PresentedClient,
) -> OAuthError {
    if counts_as_failure(&error) {
        app.failure_limiter.record_failure(address);
    }
    let mut event = AuditEvent::new(action, Outcome::Failure, client_auth_reason(&error));
    let credential = presented
        .basic
        .as_deref()
        .or(presented.client_secret.as_ref().map(SecretString::expose))
        .or(presented
            .client_assertion
            .as_ref()
            .map(SecretString::expose));
    event.fingerprint = credential.map(fingerprint);
    if let Some(client_id) = &presented.client_id {
        event = event.with_detail(json!({ "clientId": client_id }));
    }
    match app.audit.record(info.tag(event)).await {
        Ok(()) => client_auth_error(error, presented),
        Err(audit_error) => audit_error.into(),
    }
}

/// Builds an event about an authenticated machine.
fn machine_event(
    action: Action,
    outcome: Outcome,
    reason: &str,
    machine: &MachineRecord,
) -> AuditEvent {
    AuditEvent::new(action, outcome, reason)
        .with_tenant(&machine.tenant_id)
        .with_machine(&machine.id)
}

fn body_too_large(_: BytesRejection) -> OAuthError {
    OAuthError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        "request body is too large",
    )
}

pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Issues an access token (`grant_type=client_credentials`).
#[utoipa::path(
    post, path = "/oauth/token", tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "token issued"), (status = 400, description = "RFC 6749 error"), (status = 401, description = "invalid_client"), (status = 429, description = "too many failed client authentications from this client address; see Retry-After"))
)]
async fn token(
    State(app): State<AppState>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(body_too_large)?;
    let address = app.failure_limiter.address_of(&info, &headers);
    if let Some(seconds) = app.failure_limiter.blocked_for(address) {
        return Err(OAuthError::too_many_requests(seconds));
    }
    let form = Form::parse(&headers, &body)?;
    let grant_type = form
        .one("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    if grant_type == crate::issue::exchange::GRANT_TYPE {
        return super::exchange::token_exchange(&app, &info, address, &headers, &form).await;
    }
    if grant_type != "client_credentials" {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type {grant_type:?} is not supported; use client_credentials or {}",
                crate::issue::exchange::GRANT_TYPE
            ),
        ));
    }
    let presented = form.presented_client(&headers);
    let now = app.clock.now();
    let authenticated = authenticate(
        &presented,
        &app.store,
        &app.pepper,
        &app.assertion_rules,
        now,
    )
    .await;
    let machine = match authenticated {
        Ok(machine) => machine,
        Err(error) => {
            let error =
                client_auth_failed(&app, &info, address, Action::TokenIssue, error, &presented)
                    .await;
            return Err(error);
        }
    };

    let mut audiences = form.all("audience");
    audiences.extend(form.all("resource"));
    let tenant_id = form
        .one("tenant_id")
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", e.to_string()))?;
    let request = TokenRequest {
        scopes: form
            .one("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        audiences,
        tenant_id,
    };
    let issued = match app.issuer.issue(&machine, &request) {
        Ok(issued) => issued,
        Err(error) => {
            let error = match error {
                IssueError::InvalidScope(_) => {
                    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", error.to_string())
                }
                IssueError::InvalidTarget(_) => {
                    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", error.to_string())
                }
                IssueError::Signing => OAuthError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "signing failed",
                ),
            };
            let event = machine_event(Action::TokenIssue, Outcome::Failure, error.code, &machine);
            app.audit.record(info.tag(event)).await?;
            return Err(error);
        }
    };
    app.verifier.metrics().count_token_issue("success");
    tracing::info!(client.id = %machine.client_id, tenant.id = %machine.tenant_id, token.jti = %issued.jti, "issued access token");
    let event = machine_event(Action::TokenIssue, Outcome::Success, "valid", &machine)
        .with_fingerprint(fingerprint(issued.access_token.expose()))
        .with_detail(json!({
            "clientId": machine.client_id,
            "jti": issued.jti,
            "scope": issued.scope,
        }));
    app.audit.record(info.tag(event)).await?;

    let mut body = json!({
        "access_token": issued.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if let Some(scope) = issued.scope {
        body["scope"] = json!(scope);
    }
    Ok(no_store(Json(body).into_response()))
}

/// Caller of introspection or revocation: the tenant whose subtree they may see, and the
/// client id when a machine called.
struct Caller {
    tenant_id: TenantId,
    client_id: Option<String>,
    /// Roles the caller has at its own tenant.
    roles: std::collections::BTreeSet<String>,
    /// Fingerprint of a bearer caller's credential, so a credential may revoke itself.
    fingerprint: Option<String>,
}

impl Caller {
    fn is_admin(&self) -> bool {
        self.roles.contains("admin")
    }

    /// Introspection shows credentials to admins and to callers with the `introspect` role.
    fn may_introspect(&self) -> bool {
        self.is_admin() || self.roles.contains("introspect")
    }
}

/// Authenticates the caller of introspection or revocation: as a machine (client
/// authentication) or with a bearer credential (API key or access token). Failures count toward
/// the client address's failure limit.
async fn authenticate_caller(
    app: &App,
    info: &RequestInfo,
    action: Action,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Caller, OAuthError> {
    let address = app.failure_limiter.address_of(info, headers);
    if let Some(seconds) = app.failure_limiter.blocked_for(address) {
        return Err(OAuthError::too_many_requests(seconds));
    }
    let presented = form.presented_client(headers);
    let has_client_auth = presented.basic.is_some()
        || presented.client_secret.is_some()
        || presented.client_assertion.is_some();
    if has_client_auth {
        let authenticated = authenticate(
            &presented,
            &app.store,
            &app.pepper,
            &app.assertion_rules,
            app.clock.now(),
        )
        .await;
        let machine = match authenticated {
            Ok(machine) => machine,
            Err(error) => {
                return Err(client_auth_failed(app, info, address, action, error, &presented).await)
            }
        };
        let roles = app
            .directory
            .effective_roles(&machine.roles, &machine.tenant_id);
        return Ok(Caller {
            tenant_id: machine.tenant_id,
            client_id: Some(machine.client_id),
            roles,
            fingerprint: None,
        });
    }
    let Ok(Some(credential)) = presented_credential(headers) else {
        let event = AuditEvent::new(action, Outcome::Failure, "missing_credential")
            .with_detail(json!({ "failed": "caller_authentication" }));
        app.audit.record(info.tag(event)).await?;
        return Err(OAuthError::invalid_client(
            "send client credentials or a bearer credential",
            false,
        ));
    };
    let decision = app
        .verifier
        .verify(credential.expose(), &Requirements::default())
        .await;
    if decision.http_status() == 401 {
        app.failure_limiter.record_failure(address);
    }
    if !decision.is_valid() {
        let event = AuditEvent::from_decision(action, &decision)
            .with_detail(json!({ "failed": "caller_authentication" }));
        app.audit.record(info.tag(event)).await?;
    }
    if decision.reason.is_unavailable() {
        return Err(OAuthError::unavailable());
    }
    match decision.identity {
        Some(identity) if decision.is_valid() => Ok(Caller {
            tenant_id: identity.tenant_id,
            client_id: identity.client_id,
            roles: identity.roles,
            fingerprint: Some(decision.fingerprint.clone()),
        }),
        _ => Err(OAuthError::invalid_client(
            format!("caller credential is not valid ({})", decision.reason),
            false,
        )),
    }
}

/// True when the caller may introspect the credential: it has the `admin` or `introspect`
/// role and the credential's tenant lies in its subtree.
fn within_caller(app: &App, caller: &Caller, identity: Option<&Identity>) -> bool {
    caller.may_introspect()
        && identity.is_some_and(|identity| {
            app.directory
                .is_within(&identity.tenant_id, &caller.tenant_id)
        })
}

/// Introspects a token or API key (RFC 7662). Credentials outside the caller's tenant subtree
/// are reported inactive.
#[utoipa::path(
    post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "introspection response"), (status = 401, description = "caller not authenticated"), (status = 429, description = "too many failed caller authentications from this client address; see Retry-After"))
)]
async fn introspect(
    State(app): State<AppState>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(body_too_large)?;
    let form = Form::parse(&headers, &body)?;
    let caller = authenticate_caller(&app, &info, Action::Introspect, &headers, &form).await?;
    let token = form
        .one("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;

    let decision = app.verifier.verify(token, &Requirements::default()).await;
    let mut event = AuditEvent::from_decision(Action::Introspect, &decision);
    let own_token = decision.identity.as_ref().is_some_and(|identity| {
        caller.client_id.is_some() && caller.client_id == identity.client_id
    });
    if decision.is_valid()
        && !own_token
        && !within_caller(&app, &caller, decision.identity.as_ref())
    {
        event.outcome = Outcome::Failure;
        event.reason = "out_of_scope".to_owned();
    }
    app.audit.record(info.tag(event)).await?;
    if decision.reason.is_unavailable() {
        return Err(OAuthError::unavailable());
    }
    // A client may introspect its own tokens and a credential itself. Admins and callers with
    // the `introspect` role may introspect their subtree.
    let own = decision.identity.as_ref().is_some_and(|identity| {
        caller.client_id.is_some() && caller.client_id == identity.client_id
    }) || caller.fingerprint.as_deref() == Some(decision.fingerprint.as_str());
    let allowed =
        decision.is_valid() && (own || within_caller(&app, &caller, decision.identity.as_ref()));
    let identity = match decision.identity {
        Some(identity) if allowed => identity,
        _ => return Ok(no_store(Json(json!({"active": false})).into_response())),
    };

    let mut response = Map::new();
    response.insert("active".into(), json!(true));
    let token_type = match identity.kind {
        CredentialKind::AccessToken => "Bearer",
        CredentialKind::ApiKey => "api_key",
    };
    response.insert("token_type".into(), json!(token_type));
    let optional: [(&str, Option<Value>); 12] = [
        ("scope", identity.scope.clone().map(Value::from)),
        ("client_id", identity.client_id.clone().map(Value::from)),
        ("sub", identity.subject.clone().map(Value::from)),
        ("iss", identity.issuer.clone().map(Value::from)),
        ("jti", identity.jti.clone().map(Value::from)),
        ("exp", identity.expires_at.map(Value::from)),
        ("iat", identity.issued_at.map(Value::from)),
        ("nbf", identity.not_before.map(Value::from)),
        (
            "aud",
            (!identity.audience.is_empty()).then(|| json!(identity.audience)),
        ),
        ("machineId", identity.machine_id.as_ref().map(|m| json!(m))),
        ("roles", Some(json!(identity.roles))),
        ("tenantId", Some(json!(identity.tenant_id.as_str()))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            response.insert(name.into(), value);
        }
    }
    response.insert("mode".into(), json!(identity.mode.as_str()));
    let grants: Map<String, Value> = identity
        .grants
        .iter()
        .map(|(tenant, roles)| (tenant.to_string(), json!({ "roles": roles })))
        .collect();
    response.insert("authorization".into(), Value::Object(grants));
    Ok(no_store(Json(Value::Object(response)).into_response()))
}

/// Revokes an access token or API key (RFC 7009). Unknown or invalid tokens get 200
/// as the RFC requires; credentials outside the caller's tenant subtree are left alone.
#[utoipa::path(
    post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or nothing to revoke"), (status = 401, description = "caller not authenticated"), (status = 429, description = "too many failed caller authentications from this client address; see Retry-After"))
)]
async fn revoke(
    State(app): State<AppState>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(body_too_large)?;
    let form = Form::parse(&headers, &body)?;
    let caller = authenticate_caller(&app, &info, Action::Revoke, &headers, &form).await?;
    let token = form
        .one("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;

    let decision = app.verifier.verify(token, &Requirements::default()).await;
    let mut event = AuditEvent::from_decision(Action::Revoke, &decision);
    if decision.reason.is_unavailable() {
        app.audit.record(info.tag(event)).await?;
        return Err(OAuthError::unavailable());
    }
    if let Err(reason) = revoke_verified(&app, &caller, token, decision).await? {
        event.outcome = Outcome::Failure;
        event.reason = reason.to_owned();
    }
    app.audit.record(info.tag(event)).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

/// Revokes a credential after verification, when the caller may. Returns `Ok(Err(reason))`
/// when nothing was revoked, with the audit reason code.
async fn revoke_verified(
    app: &App,
    caller: &Caller,
    token: &str,
    decision: crate::verify::Decision,
) -> Result<Result<(), &'static str>, OAuthError> {
    let valid = decision.is_valid();
    let Some(identity) = decision.identity.filter(|_| valid) else {
        return Ok(Err(decision.reason.as_str()));
    };
    // RFC 7009: a client revokes the tokens issued to it, and a credential may revoke itself.
    // Revoking any other credential of the subtree takes the admin role.
    let own_token = caller.client_id.is_some() && caller.client_id == identity.client_id;
    let itself = caller.fingerprint.as_deref() == Some(decision.fingerprint.as_str());
    let as_admin = caller.is_admin()
        && app
            .directory
            .is_within(&identity.tenant_id, &caller.tenant_id);
    if !own_token && !itself && !as_admin {
        return Ok(Err("out_of_scope"));
    }
    match identity.kind {
        CredentialKind::AccessToken => {
            let (Some(jti), Some(expires_at)) = (identity.jti.clone(), identity.expires_at) else {
                return Ok(Err("malformed"));
            };
            app.store
                .insert_revoked_token(&jti, expires_at, app.clock.now())
                .await
                .map_err(|_| OAuthError::unavailable())?;
            app.revocations.insert(jti.clone(), expires_at);
            app.announce(crate::cluster::Change::TokenRevoked {
                jti: jti.clone(),
                expires_at,
            })
            .await;
            tracing::info!(token.jti = %jti, tenant.id = %identity.tenant_id, "revoked access token");
        }
        CredentialKind::ApiKey => {
            let Some(key_id) = identity.key_id.clone() else {
                return Ok(Err("malformed"));
            };
            if !api_key::has_native_prefix(&app.config.api_keys.prefix, token) {
                return Ok(Err("not_revocable"));
            }
            app.revoke_api_key(&identity.tenant_id, &key_id)
                .await
                .map_err(|_| OAuthError::unavailable())?;
            tracing::info!(key.id = %key_id, tenant.id = %identity.tenant_id, "revoked API key");
        }
    }
    Ok(Ok(()))
}
