//! Imported copies of legacy API keys and the cursor of `authbridge import`.
//!
//! A row is keyed by adapter and lookup value. Its legacy fields ([`LegacyKeyData`]) come from
//! the legacy store, by bulk import or by lazy import on a key's first live verification. The
//! daemon adds its own HMAC of the whole key once it has seen the key in clear.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{to_flag, Store, StoreResult};

/// The fields of an imported key that come from the legacy store. A re-import that reads the
/// same values leaves the row unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyKeyData {
    pub legacy_hash: String,
    /// The configuration name of the adapter's hash scheme at import time (`django`, `bcrypt`).
    pub hash_scheme: String,
    /// JSON values as the legacy row held them (a string or a number).
    pub owner: Option<String>,
    pub tenant_hint: Option<String>,
    pub key_id: Option<String>,
    /// A JSON array of strings.
    pub scopes: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub source_updated_at: Option<i64>,
}

/// One row of `legacy_keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyKeyRecord {
    pub adapter: String,
    pub lookup: String,
    pub data: LegacyKeyData,
    /// `import` or `lazy`: how the row was first written.
    pub origin: String,
    pub imported_at: i64,
    /// When the legacy fields last changed.
    pub changed_at: i64,
    /// The daemon's HMAC-SHA256 of the whole key under its pepper, as lowercase hex.
    pub own_hmac: Option<String>,
    pub first_seen_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

/// Resume point of an interrupted import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyImportCursor {
    pub adapter: String,
    /// The lookup value of the last row of the last committed batch.
    pub last_lookup: String,
    pub updated_at: i64,
    /// Set when a run read the legacy table to its end.
    pub finished_at: Option<i64>,
}

/// The writes of one import batch, committed together with the cursor.
#[derive(Debug, Default)]
pub struct LegacyImportBatch<'a> {
    pub inserts: Vec<(&'a str, &'a LegacyKeyData)>,
    pub updates: Vec<(&'a str, &'a LegacyKeyData)>,
    pub cursor: &'a str,
    /// True for the last batch of a run, which marks the cursor finished.
    pub finished: bool,
}

const DATA_COLUMNS: &str =
    "legacy_hash, hash_scheme, owner, tenant_hint, key_id, scopes, expires_at, revoked, source_updated_at";

/// Rows compared per query when an import batch looks up existing keys.
const LOOKUPS_PER_QUERY: usize = 500;

fn read_data(row: &AnyRow) -> StoreResult<LegacyKeyData> {
    Ok(LegacyKeyData {
        legacy_hash: row.try_get("legacy_hash")?,
        hash_scheme: row.try_get("hash_scheme")?,
        owner: row.try_get("owner")?,
        tenant_hint: row.try_get("tenant_hint")?,
        key_id: row.try_get("key_id")?,
        scopes: row.try_get("scopes")?,
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        source_updated_at: row.try_get("source_updated_at")?,
    })
}

impl Store {
    /// Returns the imported key of `adapter` with this lookup value.
    pub async fn legacy_key(
        &self,
        adapter: &str,
        lookup: &str,
    ) -> StoreResult<Option<LegacyKeyRecord>> {
        let sql = format!(
            "SELECT adapter, lookup, {DATA_COLUMNS}, origin, imported_at, changed_at, own_hmac, first_seen_at, last_seen_at \
             FROM legacy_keys WHERE adapter = $1 AND lookup = $2"
        );
        let row = sqlx::query(&sql)
            .bind(adapter)
            .bind(lookup)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(LegacyKeyRecord {
                adapter: row.try_get("adapter")?,
                lookup: row.try_get("lookup")?,
                data: read_data(&row)?,
                origin: row.try_get("origin")?,
                imported_at: row.try_get("imported_at")?,
                changed_at: row.try_get("changed_at")?,
                own_hmac: row.try_get("own_hmac")?,
                first_seen_at: row.try_get("first_seen_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Returns the legacy fields of the imported keys among `lookups`, by lookup value.
    pub async fn legacy_key_data(
        &self,
        adapter: &str,
        lookups: &[&str],
    ) -> StoreResult<HashMap<String, LegacyKeyData>> {
        let mut found = HashMap::with_capacity(lookups.len());
        for chunk in lookups.chunks(LOOKUPS_PER_QUERY) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT lookup, {DATA_COLUMNS} FROM legacy_keys WHERE adapter = $1 AND lookup IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(adapter);
            for lookup in chunk {
                query = query.bind(*lookup);
            }
            for row in query.fetch_all(self.pool()).await? {
                found.insert(row.try_get("lookup")?, read_data(&row)?);
            }
        }
        Ok(found)
    }

    /// Number of imported keys of `adapter`.
    pub async fn count_legacy_keys(&self, adapter: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM legacy_keys WHERE adapter = $1")
            .bind(adapter)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Writes one import batch and moves the cursor in one transaction, so an interrupted import
    /// resumes after the last committed batch. An update whose legacy hash changed (the key was
    /// replaced under the same lookup value) clears `own_hmac`, which belonged to the old key.
    pub async fn apply_legacy_import_batch(
        &self,
        adapter: &str,
        batch: &LegacyImportBatch<'_>,
        now: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        let insert = format!(
            "INSERT INTO legacy_keys (adapter, lookup, {DATA_COLUMNS}, origin, imported_at, changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'import', $12, $12)"
        );
        for (lookup, data) in &batch.inserts {
            sqlx::query(&insert)
                .bind(adapter)
                .bind(*lookup)
                .bind(data.legacy_hash.as_str())
                .bind(data.hash_scheme.as_str())
                .bind(data.owner.clone())
                .bind(data.tenant_hint.clone())
                .bind(data.key_id.clone())
                .bind(data.scopes.clone())
                .bind(data.expires_at)
                .bind(to_flag(data.revoked))
                .bind(data.source_updated_at)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        let update = "UPDATE legacy_keys SET \
             own_hmac = CASE WHEN legacy_hash = $3 THEN own_hmac ELSE NULL END, \
             legacy_hash = $3, hash_scheme = $4, owner = $5, tenant_hint = $6, key_id = $7, scopes = $8, \
             expires_at = $9, revoked = $10, source_updated_at = $11, changed_at = $12 \
             WHERE adapter = $1 AND lookup = $2";
        for (lookup, data) in &batch.updates {
            sqlx::query(update)
                .bind(adapter)
                .bind(*lookup)
                .bind(data.legacy_hash.as_str())
                .bind(data.hash_scheme.as_str())
                .bind(data.owner.clone())
                .bind(data.tenant_hint.clone())
                .bind(data.key_id.clone())
                .bind(data.scopes.clone())
                .bind(data.expires_at)
                .bind(to_flag(data.revoked))
                .bind(data.source_updated_at)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query(
            "INSERT INTO legacy_import_cursors (adapter, last_lookup, updated_at, finished_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (adapter) DO UPDATE SET last_lookup = excluded.last_lookup, updated_at = excluded.updated_at, \
             finished_at = excluded.finished_at",
        )
        .bind(adapter)
        .bind(batch.cursor)
        .bind(now)
        .bind(batch.finished.then_some(now))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn legacy_import_cursor(
        &self,
        adapter: &str,
    ) -> StoreResult<Option<LegacyImportCursor>> {
        let row = sqlx::query("SELECT adapter, last_lookup, updated_at, finished_at FROM legacy_import_cursors WHERE adapter = $1")
            .bind(adapter)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(LegacyImportCursor {
                adapter: row.try_get("adapter")?,
                last_lookup: row.try_get("last_lookup")?,
                updated_at: row.try_get("updated_at")?,
                finished_at: row.try_get("finished_at")?,
            })
        })
        .transpose()
    }

    /// Records a key on its first live verification (lazy import), with the daemon's HMAC of it.
    /// Returns false when the key was already there, for example written by a concurrent import,
    /// which is then left as it is.
    pub async fn insert_lazy_legacy_key(
        &self,
        adapter: &str,
        lookup: &str,
        data: &LegacyKeyData,
        own_hmac: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO legacy_keys (adapter, lookup, {DATA_COLUMNS}, origin, imported_at, changed_at, own_hmac, first_seen_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'lazy', $12, $12, $13, $12, $12) \
             ON CONFLICT (adapter, lookup) DO NOTHING"
        );
        let result = sqlx::query(&sql)
            .bind(adapter)
            .bind(lookup)
            .bind(data.legacy_hash.as_str())
            .bind(data.hash_scheme.as_str())
            .bind(data.owner.clone())
            .bind(data.tenant_hint.clone())
            .bind(data.key_id.clone())
            .bind(data.scopes.clone())
            .bind(data.expires_at)
            .bind(to_flag(data.revoked))
            .bind(data.source_updated_at)
            .bind(now)
            .bind(own_hmac)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores the daemon's HMAC of a key that verified in clear against its legacy hash, unless
    /// one is already stored, and records the sighting.
    pub async fn set_legacy_key_hmac(
        &self,
        adapter: &str,
        lookup: &str,
        own_hmac: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE legacy_keys SET own_hmac = COALESCE(own_hmac, $3), first_seen_at = COALESCE(first_seen_at, $4), \
             last_seen_at = $4 WHERE adapter = $1 AND lookup = $2",
        )
        .bind(adapter)
        .bind(lookup)
        .bind(own_hmac)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that an imported key was seen at `now`.
    pub async fn touch_legacy_key(&self, adapter: &str, lookup: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE legacy_keys SET first_seen_at = COALESCE(first_seen_at, $3), last_seen_at = $3 \
             WHERE adapter = $1 AND lookup = $2",
        )
        .bind(adapter)
        .bind(lookup)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
