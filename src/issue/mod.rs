//! Issuing access tokens (RFC 9068) to authenticated machines, with the tenant claims
//! `tenantId`, `mode`, `machineId` and `authorization`.

pub mod client_auth;
pub mod exchange;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::clock::SharedClock;
use crate::ids::TenantId;
use crate::jose::b64url;
use crate::secret::SecretString;
use crate::signing::Keyring;
use crate::store::MachineRecord;
use crate::tenancy::TenantDirectory;

/// Claims a machine's custom claims may not replace.
pub const RESERVED_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "tenantId",
    "mode",
    "machineId",
    "authorization",
    "act",
    "origin",
];

/// Token request error, in RFC 6749 section 5.2 terms.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IssueError {
    #[error("scope {0:?} is not allowed for this client")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("signing failed")]
    Signing,
}

/// Parameters of a token request.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// Narrow the token to this tenant; the machine must hold roles that apply there.
    pub tenant_id: Option<TenantId>,
}

/// A signed access token.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub scope: Option<String>,
    pub jti: String,
}

pub struct TokenIssuer {
    issuer: String,
    lifetime_seconds: i64,
    default_audience: String,
    keyring: Arc<Keyring>,
    directory: Arc<TenantDirectory>,
    clock: SharedClock,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(
        issuer: String,
        lifetime_seconds: i64,
        default_audience: Option<String>,
        keyring: Arc<Keyring>,
        directory: Arc<TenantDirectory>,
        clock: SharedClock,
    ) -> Self {
        let default_audience = default_audience.unwrap_or_else(|| issuer.clone());
        Self {
            issuer,
            lifetime_seconds,
            default_audience,
            keyring,
            directory,
            clock,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Issues a `client_credentials` access token to `machine`.
    pub fn issue(
        &self,
        machine: &MachineRecord,
        request: &TokenRequest,
    ) -> Result<IssuedToken, IssueError> {
        for scope in &request.scopes {
            if !machine.scopes.contains(scope) {
                return Err(IssueError::InvalidScope(scope.clone()));
            }
        }
        let audiences = if request.audiences.is_empty() {
            vec![self.default_audience.clone()]
        } else {
            request.audiences.clone()
        };
        if !machine.audiences.is_empty() {
            if let Some(refused) = audiences.iter().find(|a| !machine.audiences.contains(a)) {
                return Err(IssueError::InvalidTarget(format!(
                    "audience {refused:?} is not allowed for this client"
                )));
            }
        }

        let (tenant_id, authorization) = match &request.tenant_id {
            None => (machine.tenant_id.clone(), self.live_grants(&machine.roles)),
            Some(target) => {
                let roles = self.directory.effective_roles(&machine.roles, target);
                if roles.is_empty() && *target != machine.tenant_id {
                    return Err(IssueError::InvalidTarget(format!(
                        "the client holds no roles in tenant {target}"
                    )));
                }
                let mut grants = BTreeMap::new();
                if !roles.is_empty() {
                    grants.insert(target.clone(), roles.into_iter().collect::<Vec<_>>());
                }
                (target.clone(), grants)
            }
        };

        let now = self.clock.now();
        let expires_at = now + self.lifetime_seconds;
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let scope = (!request.scopes.is_empty()).then(|| request.scopes.join(" "));

        let mut claims = Map::new();
        for (name, value) in &machine.claims {
            if !RESERVED_CLAIMS.contains(&name.as_str()) {
                claims.insert(name.clone(), value.clone());
            }
        }
        let authorization: Map<String, Value> = authorization
            .into_iter()
            .map(|(tenant, roles)| (tenant.to_string(), json!({ "roles": roles })))
            .collect();
        let audience_claim = match audiences.as_slice() {
            [single] => Value::String(single.clone()),
            many => json!(many),
        };
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(machine.client_id));
        claims.insert("aud".into(), audience_claim);
        claims.insert("exp".into(), json!(expires_at));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("jti".into(), json!(jti));
        claims.insert("client_id".into(), json!(machine.client_id));
        if let Some(scope) = &scope {
            claims.insert("scope".into(), json!(scope));
        }
        claims.insert("tenantId".into(), json!(tenant_id.as_str()));
        claims.insert("mode".into(), json!(machine.mode.as_str()));
        claims.insert("machineId".into(), json!(machine.id.as_str()));
        claims.insert("authorization".into(), Value::Object(authorization));

        let token = self.sign(&Value::Object(claims))?;
        Ok(IssuedToken {
            access_token: token,
            expires_in: self.lifetime_seconds,
            scope,
            jti,
        })
    }

    /// Signs `claims` as a compact JWS with `typ: at+jwt` under the current key.
    pub fn sign(&self, claims: &Value) -> Result<SecretString, IssueError> {
        let key = self.keyring.current();
        let header = json!({"alg": key.algorithm.jose_name(), "typ": "at+jwt", "kid": key.kid});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = key
            .sign(signing_input.as_bytes())
            .map_err(|_| IssueError::Signing)?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            b64url(&signature)
        )))
    }

    /// Grants to tenants that still exist.
    fn live_grants(
        &self,
        grants: &BTreeMap<TenantId, Vec<String>>,
    ) -> BTreeMap<TenantId, Vec<String>> {
        grants
            .iter()
            .filter(|(tenant, _)| self.directory.contains(tenant))
            .map(|(tenant, roles)| (tenant.clone(), roles.clone()))
            .collect()
    }
}
