//! Named values the deployment shares across instances, such as the sealed pepper.

use sqlx::Row;

use super::{Store, StoreResult};

impl Store {
    pub async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| row.try_get("value"))
            .transpose()
            .map_err(Into::into)
    }

    /// Stores `value` under `name` unless a value is already there, and returns the value that
    /// is stored afterwards. Two instances starting at once agree on one value this way.
    pub async fn setting_or_insert(&self, name: &str, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(self.pool())
            .await?;
        self.setting(name)
            .await?
            .ok_or(super::StoreError::NotFound("setting"))
    }
}
