//! Creating, listing, revoking and rotating native API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_name, AdminError, AdminResult};
use crate::app::App;
use crate::clock::{parse_rfc3339, to_rfc3339};
use crate::credentials::api_key::{self, ApiKeyParts};
use crate::credentials::{is_valid_role, Mode};
use crate::ids::{random_lowercase_alphanumeric, TenantId};
use crate::secret::SecretString;
use crate::store::{ApiKeyRecord, StoreError};

/// Longest grace period of a rotation: 30 days.
const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// `admin`, `readonly` or a custom role.
    pub role: String,
    pub mode: Mode,
    pub name: Option<String>,
    /// RFC 3339 time after which the key no longer verifies.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub tenant_id: String,
    pub name: Option<String>,
    pub role: String,
    pub mode: Mode,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub replaced_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The key itself, shown once.
    pub key: String,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(record: &ApiKeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            tenant_id: record.tenant_id.to_string(),
            name: record.name.clone(),
            role: record.role.clone(),
            mode: record.mode,
            prefix: record.display_prefix.clone(),
            created_at: to_rfc3339(record.created_at),
            expires_at: record.expires_at.map(to_rfc3339),
            revoked_at: record.revoked_at.map(to_rfc3339),
            replaced_by: record.replaced_by.clone(),
        }
    }
}

impl App {
    /// Creates an API key in `tenant`; returns the row and the key, which is not stored.
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        request: &CreateApiKey,
    ) -> AdminResult<(ApiKeyRecord, SecretString)> {
        if !is_valid_role(&request.role) {
            return Err(AdminError::Invalid(format!(
                "role {:?} is invalid: use a lowercase letter, then up to 31 lowercase letters, digits or '-'",
                request.role
            )));
        }
        let name = request
            .name
            .as_deref()
            .map(|n| check_name(n, "API key"))
            .transpose()?;
        let now = self.clock.now();
        let expires_at = match &request.expires_at {
            None => None,
            Some(text) => {
                let at = parse_rfc3339(text).ok_or_else(|| {
                    AdminError::Invalid(format!("expiresAt {text:?} is not an RFC 3339 time"))
                })?;
                if at <= now {
                    return Err(AdminError::Invalid(format!(
                        "expiresAt {text:?} is in the past"
                    )));
                }
                Some(at)
            }
        };
        if !self.directory.contains(tenant) {
            return Err(AdminError::NotFound("tenant"));
        }
        let parts = ApiKeyParts {
            mode: request.mode,
            role: request.role.clone(),
            tenant_id: tenant.clone(),
        };
        self.insert_new_key(parts, name, expires_at, now).await
    }

    async fn insert_new_key(
        &self,
        parts: ApiKeyParts,
        name: Option<String>,
        expires_at: Option<i64>,
        now: i64,
    ) -> AdminResult<(ApiKeyRecord, SecretString)> {
        let key = api_key::generate(&self.config.api_keys.prefix, &parts);
        let record = ApiKeyRecord {
            id: format!("key_{}", random_lowercase_alphanumeric(16)),
            tenant_id: parts.tenant_id,
            name,
            role: parts.role,
            mode: parts.mode,
            key_hash: self.pepper.digest_hex(key.expose().as_bytes()),
            display_prefix: api_key::display_prefix(key.expose()),
            created_at: now,
            expires_at,
            revoked_at: None,
            replaced_by: None,
        };
        self.store.insert_api_key(&record).await?;
        Ok((record, key))
    }

    pub async fn api_key(&self, tenant: &TenantId, id: &str) -> AdminResult<ApiKeyRecord> {
        self.store
            .api_key(tenant, id)
            .await?
            .ok_or(AdminError::NotFound("API key"))
    }

    /// Revokes a key now. Revoking a revoked key is not an error.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> AdminResult<ApiKeyRecord> {
        let record = self
            .store
            .revoke_api_key(tenant, id, self.clock.now())
            .await?;
        self.verifier.api_key_cache().invalidate(&record.key_hash);
        self.announce(crate::cluster::Change::ApiKeyChanged {
            key_hash: record.key_hash.clone(),
        })
        .await;
        Ok(record)
    }

    /// Issues a replacement key with the same role, mode, name and expiry; the old key keeps
    /// working for `grace_seconds` and is revoked after that.
    pub async fn rotate_api_key(
        &self,
        tenant: &TenantId,
        id: &str,
        grace_seconds: i64,
    ) -> AdminResult<(ApiKeyRecord, SecretString)> {
        if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(AdminError::Invalid(format!(
                "gracePeriodSeconds {grace_seconds} must be between 0 and {MAX_GRACE_SECONDS}"
            )));
        }
        let old = self.api_key(tenant, id).await?;
        let now = self.clock.now();
        if old.revoked_at.is_some_and(|at| at <= now) || old.replaced_by.is_some() {
            return Err(AdminError::Conflict(format!(
                "API key {id} is revoked or already rotated"
            )));
        }
        let parts = ApiKeyParts {
            mode: old.mode,
            role: old.role.clone(),
            tenant_id: old.tenant_id.clone(),
        };
        let key = api_key::generate(&self.config.api_keys.prefix, &parts);
        let replacement = ApiKeyRecord {
            id: format!("key_{}", random_lowercase_alphanumeric(16)),
            tenant_id: parts.tenant_id,
            name: old.name.clone(),
            role: parts.role,
            mode: parts.mode,
            key_hash: self.pepper.digest_hex(key.expose().as_bytes()),
            display_prefix: api_key::display_prefix(key.expose()),
            created_at: now,
            expires_at: old.expires_at,
            revoked_at: None,
            replaced_by: None,
        };
        match self
            .store
            .rotate_api_key(&old, &replacement, now + grace_seconds)
            .await
        {
            Err(StoreError::Conflict(_)) => {
                return Err(AdminError::Conflict(format!(
                    "API key {id} was rotated concurrently"
                )))
            }
            other => other?,
        }
        self.verifier.api_key_cache().invalidate(&old.key_hash);
        self.announce(crate::cluster::Change::ApiKeyChanged {
            key_hash: old.key_hash.clone(),
        })
        .await;
        Ok((replacement, key))
    }
}
