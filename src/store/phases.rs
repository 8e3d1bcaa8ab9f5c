//! Phase changes and phase exceptions of legacy adapters.

use sqlx::Row;

use super::{Store, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseChangeRecord {
    pub id: i64,
    pub adapter: String,
    /// `None` for the adapter as a whole.
    pub tenant_id: Option<String>,
    pub phase: String,
    pub effective_at: i64,
    pub sunset_at: Option<i64>,
    pub created_at: i64,
    pub actor: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseExceptionRecord {
    pub id: i64,
    pub adapter: String,
    pub tenant_id: Option<String>,
    pub credential_fingerprint: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub actor: String,
}

impl Store {
    pub async fn insert_phase_change(&self, change: &PhaseChangeRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO phase_changes (adapter, tenant_id, phase, effective_at, sunset_at, created_at, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&change.adapter)
        .bind(change.tenant_id.clone())
        .bind(&change.phase)
        .bind(change.effective_at)
        .bind(change.sunset_at)
        .bind(change.created_at)
        .bind(&change.actor)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every phase change, oldest first.
    pub async fn phase_changes(&self) -> StoreResult<Vec<PhaseChangeRecord>> {
        let rows = sqlx::query(
            "SELECT id, adapter, tenant_id, phase, effective_at, sunset_at, created_at, actor \
             FROM phase_changes ORDER BY effective_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PhaseChangeRecord {
                    id: row.try_get("id")?,
                    adapter: row.try_get("adapter")?,
                    tenant_id: row.try_get("tenant_id")?,
                    phase: row.try_get("phase")?,
                    effective_at: row.try_get("effective_at")?,
                    sunset_at: row.try_get("sunset_at")?,
                    created_at: row.try_get("created_at")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect()
    }

    pub async fn insert_phase_exception(
        &self,
        exception: &PhaseExceptionRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO phase_exceptions (adapter, tenant_id, credential_fingerprint, expires_at, created_at, actor) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&exception.adapter)
        .bind(exception.tenant_id.clone())
        .bind(exception.credential_fingerprint.clone())
        .bind(exception.expires_at)
        .bind(exception.created_at)
        .bind(&exception.actor)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Exceptions that have not expired at `now`.
    pub async fn live_phase_exceptions(&self, now: i64) -> StoreResult<Vec<PhaseExceptionRecord>> {
        let rows = sqlx::query(
            "SELECT id, adapter, tenant_id, credential_fingerprint, expires_at, created_at, actor \
             FROM phase_exceptions WHERE expires_at > $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PhaseExceptionRecord {
                    id: row.try_get("id")?,
                    adapter: row.try_get("adapter")?,
                    tenant_id: row.try_get("tenant_id")?,
                    credential_fingerprint: row.try_get("credential_fingerprint")?,
                    expires_at: row.try_get("expires_at")?,
                    created_at: row.try_get("created_at")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect()
    }
}
