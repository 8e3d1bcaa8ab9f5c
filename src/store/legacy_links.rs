//! Links from a legacy credential (by the SHA-256 of its text) to the native API key that token
//! exchange minted to replace it.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLink {
    pub credential_hash: String,
    pub adapter: String,
    pub legacy_subject: Option<String>,
    pub tenant_id: String,
    pub api_key_id: String,
    pub created_at: i64,
}

impl Store {
    /// Records a link. Fails with a conflict when the credential already has a replacement.
    pub async fn insert_legacy_link(&self, link: &LegacyLink) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO legacy_links (credential_hash, adapter, legacy_subject, tenant_id, api_key_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&link.credential_hash)
        .bind(&link.adapter)
        .bind(link.legacy_subject.clone())
        .bind(&link.tenant_id)
        .bind(&link.api_key_id)
        .bind(link.created_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("replacement key for this legacy credential"),
            other => other,
        })?;
        Ok(())
    }

    pub async fn legacy_link(&self, credential_hash: &str) -> StoreResult<Option<LegacyLink>> {
        let row = sqlx::query(
            "SELECT credential_hash, adapter, legacy_subject, tenant_id, api_key_id, created_at \
             FROM legacy_links WHERE credential_hash = $1",
        )
        .bind(credential_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(LegacyLink {
                credential_hash: row.try_get("credential_hash")?,
                adapter: row.try_get("adapter")?,
                legacy_subject: row.try_get("legacy_subject")?,
                tenant_id: row.try_get("tenant_id")?,
                api_key_id: row.try_get("api_key_id")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }
}
