//! Native API key rows. The key itself is never stored: only its HMAC under the pepper.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::credentials::Mode;
use crate::ids::TenantId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    pub role: String,
    pub mode: Mode,
    /// HMAC-SHA256 of the whole key under the pepper, hex.
    pub key_hash: String,
    /// The first characters of the key, safe to show in listings.
    pub display_prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// When the key is or was revoked; a future time is the end of a rotation's grace period.
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<String>,
}

pub type NewApiKey = ApiKeyRecord;

const COLUMNS: &str =
    "id, tenant_id, name, role, mode, key_hash, display_prefix, created_at, expires_at, revoked_at, replaced_by";

fn api_key_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ApiKeyRecord> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "API key",
        detail,
    };
    let tenant: String = row.try_get("tenant_id")?;
    let mode: String = row.try_get("mode")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        tenant_id: TenantId::parse(&tenant).map_err(|e| corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt(format!("mode {mode:?}")))?,
        key_hash: row.try_get("key_hash")?,
        display_prefix: row.try_get("display_prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        replaced_by: row.try_get("replaced_by")?,
    })
}

async fn insert(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    key: &ApiKeyRecord,
) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&key.id)
    .bind(key.tenant_id.as_str())
    .bind(key.name.clone())
    .bind(&key.role)
    .bind(key.mode.as_str())
    .bind(&key.key_hash)
    .bind(&key.display_prefix)
    .bind(key.created_at)
    .bind(key.expires_at)
    .bind(key.revoked_at)
    .bind(key.replaced_by.clone())
    .execute(executor)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict("API key"),
        other => other,
    })?;
    Ok(())
}

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        insert(self.pool(), key).await
    }

    pub async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    pub async fn api_key(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    pub async fn api_keys_of_tenant(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Revokes a key at `at` unless it was already revoked earlier. Returns the updated row.
    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &str,
        at: i64,
    ) -> StoreResult<ApiKeyRecord> {
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND (revoked_at IS NULL OR revoked_at > $1)",
        )
        .bind(at)
        .bind(tenant.as_str())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.api_key(tenant, id)
            .await?
            .ok_or(StoreError::NotFound("API key"))
    }

    /// Inserts the replacement key and schedules the old key's revocation at `old_revoked_at`,
    /// in one transaction.
    pub async fn rotate_api_key(
        &self,
        old: &ApiKeyRecord,
        replacement: &ApiKeyRecord,
        old_revoked_at: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        insert(&mut *transaction, replacement).await?;
        let result = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1, replaced_by = $2 \
             WHERE tenant_id = $3 AND id = $4 AND replaced_by IS NULL",
        )
        .bind(old_revoked_at)
        .bind(&replacement.id)
        .bind(old.tenant_id.as_str())
        .bind(&old.id)
        .execute(&mut *transaction)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict("rotation of this API key"));
        }
        transaction.commit().await?;
        Ok(())
    }
}
