//! Revoked access tokens (RFC 7009): kept by `jti` until the token would have expired anyway.

use sqlx::Row;

use super::{Store, StoreResult};

impl Store {
    pub async fn insert_revoked_token(
        &self,
        jti: &str,
        expires_at: i64,
        revoked_at: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .bind(revoked_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Revoked tokens that have not expired at `now`, as `(jti, expires_at)`.
    pub async fn unexpired_revoked_tokens(&self, now: i64) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at >= $1")
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("jti")?, row.try_get("expires_at")?)))
            .collect()
    }

    /// Deletes entries whose tokens have expired; they could not verify anyway.
    pub async fn prune_revoked_tokens(&self, now: i64) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }
}
