//! RFC 8693 token exchange: a legacy credential in, a native tenant-scoped credential out.
//!
//! The subject goes through the same verification pipeline as everywhere else. The result is an
//! access token that lives no longer than the subject and records its origin in an `origin`
//! claim, or, on request, one native API key that replaces the legacy credential for good.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::IssueError;
use crate::app::App;
use crate::credentials::{api_key, is_valid_role};
use crate::ids::{random_lowercase_alphanumeric, TenantId};
use crate::legacy::Phase;
use crate::secret::SecretString;
use crate::store::{ApiKeyRecord, LegacyLink, StoreError};
use crate::verify::{Identity, Reason, Requirements, Source};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Our own token type for API keys, in a namespace this project owns (RFC 8693 section 3).
pub const TOKEN_TYPE_API_KEY: &str = "urn:authbridge:params:oauth:token-type:api-key";

/// A token exchange request after form parsing.
#[derive(Debug, Default)]
pub struct ExchangeRequest {
    pub subject_token: Option<SecretString>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<SecretString>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    pub tenant_id: Option<String>,
    /// Role of a requested replacement API key; needed when the identity has several roles.
    pub role: Option<String>,
    /// The authenticated client, when the request carried client authentication.
    pub client_id: Option<String>,
}

/// The exchanged credential.
#[derive(Debug)]
pub struct Exchanged {
    pub token: SecretString,
    pub issued_token_type: &'static str,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    pub adapter: String,
    pub tenant_id: TenantId,
}

/// An exchange refused, with its RFC 6749 / RFC 8693 error code.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    InvalidRequest(String),
    /// The subject or actor token does not verify. It is an `invalid_request` (RFC 8693
    /// section 2.2.2) that counts toward the client address's failure limit.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("the legacy source is unavailable; retry later")]
    Unavailable,
    #[error("{0}")]
    Internal(String),
}

impl ExchangeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::InvalidToken(_) => "invalid_request",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::Unavailable => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }
}

fn credential_hash(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// Performs a token exchange.
pub async fn exchange(app: &App, request: &ExchangeRequest) -> Result<Exchanged, ExchangeError> {
    let subject = request
        .subject_token
        .as_ref()
        .ok_or_else(|| ExchangeError::InvalidRequest("subject_token is missing".to_owned()))?;
    let subject_type = request
        .subject_token_type
        .as_deref()
        .ok_or_else(|| ExchangeError::InvalidRequest("subject_token_type is missing".to_owned()))?;
    if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_API_KEY].contains(&subject_type) {
        return Err(ExchangeError::InvalidRequest(format!(
            "subject_token_type {subject_type:?} is not supported: use {TOKEN_TYPE_JWT}, {TOKEN_TYPE_ACCESS_TOKEN} or {TOKEN_TYPE_API_KEY}"
        )));
    }
    if request.actor_token.is_some() != request.actor_token_type.is_some() {
        return Err(ExchangeError::InvalidRequest(
            "actor_token and actor_token_type must be sent together".to_owned(),
        ));
    }
    let requested = request
        .requested_token_type
        .as_deref()
        .unwrap_or(TOKEN_TYPE_ACCESS_TOKEN);
    if ![TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT, TOKEN_TYPE_API_KEY].contains(&requested) {
        return Err(ExchangeError::InvalidRequest(format!(
            "requested_token_type {requested:?} is not supported"
        )));
    }

    let identity = verify_subject(app, subject.expose()).await?;
    let Source::Legacy(adapter_name) = identity.source.clone() else {
        return Err(ExchangeError::InvalidRequest(
            "subject_token is already a native credential; exchange takes legacy credentials"
                .to_owned(),
        ));
    };
    let adapter = app
        .verifier
        .adapters()
        .get(&adapter_name)
        .cloned()
        .ok_or_else(|| ExchangeError::Internal(format!("adapter {adapter_name} vanished")))?;
    // The phase in force for the credential's tenant decides, not the configured one.
    let phase = identity
        .phase
        .map_or(adapter.phase, |in_force| in_force.phase);
    if adapter.exchange.disabled || phase == Phase::Shadow {
        return Err(ExchangeError::UnauthorizedClient(format!(
            "token exchange is not open for adapter {adapter_name} (phase {})",
            phase.as_str()
        )));
    }
    if !adapter.exchange.clients.is_empty() {
        let allowed = request
            .client_id
            .as_ref()
            .is_some_and(|id| adapter.exchange.clients.contains(id));
        if !allowed {
            return Err(ExchangeError::UnauthorizedClient(format!(
                "only the configured clients may exchange credentials of adapter {adapter_name}"
            )));
        }
    }

    let target = match &request.tenant_id {
        None => identity.tenant_id.clone(),
        Some(text) => {
            TenantId::parse(text).map_err(|e| ExchangeError::InvalidTarget(e.to_string()))?
        }
    };
    let roles: Vec<String> = app
        .directory
        .effective_roles(&identity.grants, &target)
        .into_iter()
        .collect();
    if target != identity.tenant_id && roles.is_empty() {
        return Err(ExchangeError::InvalidTarget(format!(
            "the legacy identity maps to tenant {}, which has no roles in tenant {target}",
            identity.tenant_id
        )));
    }
    let granted_scopes: Vec<&str> = identity
        .scope
        .as_deref()
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    if let Some(extra) = request
        .scopes
        .iter()
        .find(|s| !granted_scopes.contains(&s.as_str()))
    {
        return Err(ExchangeError::InvalidScope(format!(
            "scope {extra:?} exceeds the subject token's scope"
        )));
    }

    if requested == TOKEN_TYPE_API_KEY {
        return mint_replacement_key(
            app,
            request,
            &identity,
            &adapter_name,
            &target,
            &roles,
            subject.expose(),
        )
        .await;
    }

    let actor = match &request.actor_token {
        Some(actor) => Some(verify_actor(app, actor.expose()).await?),
        None => None,
    };
    let now = app.clock.now();
    let lifetime = app.config.tokens.lifetime_seconds;
    let expires_at = identity
        .expires_at
        .map_or(now + lifetime, |exp| exp.min(now + lifetime));
    if expires_at <= now {
        return Err(ExchangeError::InvalidRequest(
            "subject_token has expired".to_owned(),
        ));
    }
    let scope = if request.scopes.is_empty() {
        identity.scope.clone()
    } else {
        Some(request.scopes.join(" "))
    };
    let audiences = if request.audiences.is_empty() {
        vec![app
            .config
            .tokens
            .default_audience
            .clone()
            .unwrap_or_else(|| app.issuer.issuer().to_owned())]
    } else {
        request.audiences.clone()
    };

    let mut authorization = Map::new();
    if !roles.is_empty() {
        authorization.insert(target.to_string(), json!({ "roles": roles }));
    }
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(app.issuer.issuer()));
    claims.insert(
        "sub".into(),
        json!(identity
            .subject
            .clone()
            .unwrap_or_else(|| format!("legacy:{adapter_name}"))),
    );
    claims.insert(
        "aud".into(),
        if audiences.len() == 1 {
            json!(audiences[0])
        } else {
            json!(audiences)
        },
    );
    claims.insert("exp".into(), json!(expires_at));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert(
        "jti".into(),
        json!(uuid::Uuid::new_v4().simple().to_string()),
    );
    if let Some(client_id) = request.client_id.clone().or(identity.client_id.clone()) {
        claims.insert("client_id".into(), json!(client_id));
    }
    if let Some(scope) = &scope {
        claims.insert("scope".into(), json!(scope));
    }
    claims.insert("tenantId".into(), json!(target.as_str()));
    claims.insert("mode".into(), json!(identity.mode.as_str()));
    if let Some(machine) = &identity.machine_id {
        claims.insert("machineId".into(), json!(machine));
    }
    claims.insert("authorization".into(), Value::Object(authorization));
    claims.insert(
        "origin".into(),
        json!({
            "adapter": adapter_name,
            "issuer": identity.issuer,
            "subject": identity.subject,
            "fingerprint": crate::verify::fingerprint(subject.expose()),
        }),
    );
    if let Some(actor) = actor {
        claims.insert("act".into(), actor);
    }

    let token = app
        .issuer
        .sign(&Value::Object(claims))
        .map_err(|e: IssueError| ExchangeError::Internal(e.to_string()))?;
    Ok(Exchanged {
        token,
        issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
        expires_in: Some(expires_at - now),
        scope,
        adapter: adapter_name,
        tenant_id: target,
    })
}

async fn verify_subject(app: &App, subject: &str) -> Result<Identity, ExchangeError> {
    let decision = app.verifier.verify(subject, &Requirements::default()).await;
    if decision.reason.is_unavailable() {
        return Err(ExchangeError::Unavailable);
    }
    match decision.identity {
        Some(identity) if decision.reason == Reason::Valid => Ok(identity),
        _ if decision.reason == Reason::UnmappedIdentity => Err(ExchangeError::InvalidTarget(
            "the legacy identity maps to no tenant".to_owned(),
        )),
        _ => Err(ExchangeError::InvalidToken(format!(
            "subject_token is not valid ({})",
            decision.reason
        ))),
    }
}

/// Verifies the actor token and returns the `act` claim naming it (RFC 8693 section 4.1).
async fn verify_actor(app: &App, actor: &str) -> Result<Value, ExchangeError> {
    let decision = app.verifier.verify(actor, &Requirements::default()).await;
    if decision.reason.is_unavailable() {
        return Err(ExchangeError::Unavailable);
    }
    let identity = decision
        .identity
        .filter(|_| decision.reason == Reason::Valid)
        .ok_or_else(|| {
            ExchangeError::InvalidToken(format!("actor_token is not valid ({})", decision.reason))
        })?;
    let subject = identity
        .client_id
        .or(identity.subject)
        .unwrap_or_else(|| decision.fingerprint.clone());
    let mut act = json!({ "sub": subject });
    if let Some(issuer) = identity.issuer {
        act["iss"] = json!(issuer);
    }
    Ok(act)
}

/// Mints the one native API key that replaces a legacy credential, and links them.
async fn mint_replacement_key(
    app: &App,
    request: &ExchangeRequest,
    identity: &Identity,
    adapter: &str,
    tenant: &TenantId,
    roles: &[String],
    subject: &str,
) -> Result<Exchanged, ExchangeError> {
    let role = match (&request.role, roles) {
        (Some(role), _) if roles.contains(role) => role.clone(),
        (Some(role), _) => {
            return Err(ExchangeError::InvalidScope(format!(
                "role {role:?} is not held by the legacy identity"
            )))
        }
        (None, [single]) => single.clone(),
        (None, []) => {
            return Err(ExchangeError::InvalidScope(
                "the legacy identity holds no role for an API key".to_owned(),
            ))
        }
        (None, _) => {
            return Err(ExchangeError::InvalidRequest(format!(
                "the legacy identity holds several roles ({}): choose one with the role parameter",
                roles.join(", ")
            )))
        }
    };
    if !is_valid_role(&role) {
        return Err(ExchangeError::InvalidScope(format!(
            "role {role:?} cannot be used in an API key"
        )));
    }
    let hash = credential_hash(subject);
    match app.store.legacy_link(&hash).await {
        Ok(Some(link)) => {
            return Err(ExchangeError::InvalidRequest(format!(
            "this legacy credential was already replaced by API key {}; the key is shown only once",
            link.api_key_id
        )))
        }
        Ok(None) => {}
        Err(error) => return Err(store_error(error)),
    }

    let now = app.clock.now();
    let parts = api_key::ApiKeyParts {
        mode: identity.mode,
        role: role.clone(),
        tenant_id: tenant.clone(),
    };
    let key = api_key::generate(&app.config.api_keys.prefix, &parts);
    let record = ApiKeyRecord {
        id: format!("key_{}", random_lowercase_alphanumeric(16)),
        tenant_id: tenant.clone(),
        name: Some(format!("replaces a {adapter} credential")),
        role,
        mode: identity.mode,
        key_hash: app.pepper.digest_hex(key.expose().as_bytes()),
        display_prefix: api_key::display_prefix(key.expose()),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
    };
    // The link goes in first: if two exchanges of the same credential race, one of them fails
    // here and no orphan key is created.
    let link = LegacyLink {
        credential_hash: hash,
        adapter: adapter.to_owned(),
        legacy_subject: identity.subject.clone(),
        tenant_id: tenant.to_string(),
        api_key_id: record.id.clone(),
        created_at: now,
    };
    app.store
        .insert_legacy_link(&link)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ExchangeError::InvalidRequest(
                "this legacy credential was already replaced".to_owned(),
            ),
            other => store_error(other),
        })?;
    app.store
        .insert_api_key(&record)
        .await
        .map_err(store_error)?;
    tracing::info!(adapter.name = %adapter, key.id = %record.id, tenant.id = %tenant, "minted a native API key for a legacy credential");
    Ok(Exchanged {
        token: key,
        issued_token_type: TOKEN_TYPE_API_KEY,
        expires_in: None,
        scope: None,
        adapter: adapter.to_owned(),
        tenant_id: tenant.clone(),
    })
}

fn store_error(error: StoreError) -> ExchangeError {
    match error {
        StoreError::Unavailable(_) => ExchangeError::Unavailable,
        other => ExchangeError::Internal(other.to_string()),
    }
}
