//! Registering machines: a client secret (returned once) or a public JWKS for
//! `private_key_jwt`, and roles per tenant within the machine's tenant subtree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenants::parse_tenant_id;
use super::{check_name, AdminError, AdminResult};
use crate::app::App;
use crate::clock::to_rfc3339;
use crate::credentials::client_secret::{generate_client_id, generate_client_secret};
use crate::credentials::{is_valid_role, Mode};
use crate::ids::{MachineId, TenantId};
use crate::jose::jwk::parse_key_set;
use crate::secret::SecretString;
use crate::store::{MachineRecord, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMachine {
    pub name: String,
    /// Roles per tenant id; each tenant must be the machine's tenant or below it.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// A public JWK or JWKS for `private_key_jwt`; without it the machine gets a client secret.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Scopes the machine may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Audiences the machine may request; empty allows any.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Extra claims for its access tokens; registered and tenant claims cannot be replaced.
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// `live` (default) or `test`.
    pub mode: Option<Mode>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineView {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub client_id: String,
    /// `client_secret_basic` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    pub roles: BTreeMap<String, Vec<String>>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub mode: Mode,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedMachine {
    #[serde(flatten)]
    pub machine: MachineView,
    /// Shown once; only its HMAC is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl From<&MachineRecord> for MachineView {
    fn from(machine: &MachineRecord) -> Self {
        Self {
            id: machine.id.to_string(),
            tenant_id: machine.tenant_id.to_string(),
            name: machine.name.clone(),
            client_id: machine.client_id.clone(),
            token_endpoint_auth_method: if machine.jwks.is_some() {
                "private_key_jwt"
            } else {
                "client_secret_basic"
            }
            .to_owned(),
            roles: machine
                .roles
                .iter()
                .map(|(t, r)| (t.to_string(), r.clone()))
                .collect(),
            scopes: machine.scopes.clone(),
            audiences: machine.audiences.clone(),
            mode: machine.mode,
            created_at: to_rfc3339(machine.created_at),
        }
    }
}

fn check_scope_token(scope: &str) -> bool {
    // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    !scope.is_empty()
        && scope.len() <= 128
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl App {
    /// Registers a machine in `tenant`. Returns the machine and, for secret-based machines, the
    /// client secret in clear, which is not stored.
    pub async fn create_machine(
        &self,
        tenant: &TenantId,
        request: &CreateMachine,
    ) -> AdminResult<(MachineRecord, Option<SecretString>)> {
        let name = check_name(&request.name, "machine")?;
        if !self.directory.contains(tenant) {
            return Err(AdminError::NotFound("tenant"));
        }
        let mut roles = BTreeMap::new();
        for (grant_tenant, grant_roles) in &request.roles {
            let grant_tenant = parse_tenant_id(grant_tenant)?;
            if !self.directory.is_within(&grant_tenant, tenant) {
                return Err(AdminError::Invalid(format!(
                    "roles can be granted only in tenant {tenant} or below it, not in {grant_tenant}"
                )));
            }
            if let Some(bad) = grant_roles.iter().find(|r| !is_valid_role(r)) {
                return Err(AdminError::Invalid(format!(
                    "role {bad:?} is invalid: use a lowercase letter, then up to 31 lowercase letters, digits or '-'"
                )));
            }
            roles.insert(grant_tenant, grant_roles.clone());
        }
        if let Some(bad) = request.scopes.iter().find(|s| !check_scope_token(s)) {
            return Err(AdminError::Invalid(format!(
                "scope {bad:?} is not a valid scope token"
            )));
        }
        if let Some(bad) = request
            .audiences
            .iter()
            .find(|a| a.is_empty() || a.len() > 512)
        {
            return Err(AdminError::Invalid(format!(
                "audience {bad:?} must be 1 to 512 characters"
            )));
        }
        if let Some(reserved) = request
            .claims
            .iter()
            .flat_map(|claims| claims.keys())
            .find(|name| crate::issue::RESERVED_CLAIMS.contains(&name.as_str()))
        {
            return Err(AdminError::Invalid(format!(
                "claim {reserved:?} is set by the daemon and cannot be a custom claim"
            )));
        }
        if let Some(jwks) = &request.jwks {
            let (keys, refused) =
                parse_key_set(jwks).map_err(|e| AdminError::Invalid(format!("jwks: {e}")))?;
            if let Some(first) = refused.first() {
                return Err(AdminError::Invalid(format!("jwks: {first}")));
            }
            if keys.is_empty() {
                return Err(AdminError::Invalid("jwks holds no key".to_owned()));
            }
        }

        let secret = request.jwks.is_none().then(generate_client_secret);
        let now = self.clock.now();
        for _ in 0..5 {
            let machine = MachineRecord {
                id: MachineId::generate(),
                tenant_id: tenant.clone(),
                name: name.clone(),
                client_id: generate_client_id(),
                secret_hash: secret
                    .as_ref()
                    .map(|s| self.pepper.digest_hex(s.expose().as_bytes())),
                jwks: request.jwks.clone(),
                roles: roles.clone(),
                scopes: request.scopes.clone(),
                audiences: request.audiences.clone(),
                claims: request.claims.clone().unwrap_or_default(),
                mode: request.mode.unwrap_or(Mode::Live),
                created_at: now,
            };
            match self.store.insert_machine(&machine).await {
                Ok(()) => return Ok((machine, secret)),
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(AdminError::Conflict(
            "could not allocate a machine id".to_owned(),
        ))
    }

    /// Deletes a machine and revokes the access tokens it holds: they carry its `machineId`,
    /// which stays on the revocation list until the longest token lifetime has passed.
    pub async fn delete_machine(&self, tenant: &TenantId, id: &MachineId) -> AdminResult<()> {
        self.store.delete_machine(tenant, id).await?;
        let now = self.clock.now();
        let marker = crate::verify::machine_revocation_marker(id.as_str());
        let expires_at =
            now + self.config.tokens.lifetime_seconds + self.config.tokens.leeway_seconds;
        self.store
            .insert_revoked_token(&marker, expires_at, now)
            .await?;
        self.revocations.insert(marker.clone(), expires_at);
        self.announce(crate::cluster::Change::TokenRevoked {
            jti: marker,
            expires_at,
        })
        .await;
        Ok(())
    }
}
