//! Verification of legacy API keys from the daemon's imported copy (`legacy_keys`), used in the
//! phases `dual`, `sunset` and `enforce` (for keys that an exception keeps alive).
//!
//! Order of checks for a key of a `sql_keys` adapter:
//! 1. The imported row of the key's lookup value. With no row, the live legacy store verifies the
//!    key, and a valid key is recorded with the legacy row and the daemon's HMAC (lazy import).
//! 2. The daemon's own HMAC of the whole key, when stored: a match costs one HMAC.
//! 3. Otherwise the legacy hash with the adapter's scheme. A match stores the daemon's HMAC.
//! 4. The imported revoked flag and expiry, as the live path reads them.
//!
//! The live legacy store is not asked about an imported key, so a revocation there takes effect
//! at the next `authbridge import` run (and once the row has left [`ImportedRowCache`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::sql_keys::{KeyRecord, SqlKeysAdapter};
use super::LegacyClaims;
use crate::crypto::Pepper;
use crate::store::{LegacyKeyData, LegacyKeyRecord, Store};
use crate::verify::Reason;

/// Minimum time between two `last_seen_at` writes for one key, in seconds, so a busy key does not
/// cost a database write on every verification.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;

/// Maximum time an imported row is served from memory, in seconds. A row changed by
/// `authbridge import` or by another instance is read again after at most this long.
pub const IMPORTED_ROW_CACHE_MAX_SECONDS: u64 = 10;

/// Imported rows of one adapter read recently, by lookup value, so that a busy key costs no
/// store read per verification. Writes this daemon makes to a row (the daemon's HMAC, the
/// last use) update its entry. Keys without a row are not kept, so a lazy import made by another
/// instance is seen at once.
#[derive(Clone)]
pub struct ImportedRowCache {
    /// `None` when the adapter caches nothing (`cache_seconds = 0`).
    entries: Option<moka::sync::Cache<String, Arc<LegacyKeyRecord>>>,
}

impl ImportedRowCache {
    /// Keeps up to `capacity` rows for `seconds`, capped at [`IMPORTED_ROW_CACHE_MAX_SECONDS`].
    pub fn new(seconds: u64, capacity: u64) -> Self {
        let seconds = seconds.min(IMPORTED_ROW_CACHE_MAX_SECONDS);
        let entries = (seconds > 0 && capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(seconds))
                .build()
        });
        Self { entries }
    }

    fn get(&self, lookup: &str) -> Option<Arc<LegacyKeyRecord>> {
        self.entries.as_ref()?.get(lookup)
    }

    fn put(&self, record: LegacyKeyRecord) {
        if let Some(entries) = &self.entries {
            entries.insert(record.lookup.clone(), Arc::new(record));
        }
    }

    pub(super) fn forget(&self, lookup: &str) {
        if let Some(entries) = &self.entries {
            entries.invalidate(lookup);
        }
    }
}

/// Reads the imported row of `lookup`, from the cache when it contains the row.
async fn imported_row(
    store: &Store,
    adapter: &SqlKeysAdapter,
    lookup: &str,
) -> Result<Option<Arc<LegacyKeyRecord>>, crate::store::StoreError> {
    let cache = adapter.imported_rows();
    if let Some(row) = cache.get(lookup) {
        return Ok(Some(row));
    }
    let row = store.legacy_key(adapter.name(), lookup).await?;
    if let Some(row) = &row {
        cache.put(row.clone());
    }
    Ok(row.map(Arc::new))
}

/// Converts a legacy row to the stored form.
pub(super) fn key_data(
    record: &KeyRecord,
    hash_scheme: &str,
    source_updated_at: Option<i64>,
) -> LegacyKeyData {
    let json = |value: &Option<Value>| value.as_ref().map(Value::to_string);
    LegacyKeyData {
        legacy_hash: record.stored_hash.clone(),
        hash_scheme: hash_scheme.to_owned(),
        owner: json(&record.owner),
        tenant_hint: json(&record.tenant),
        key_id: json(&record.key_id),
        scopes: record.scopes.as_ref().map(|scopes| {
            Value::Array(scopes.iter().cloned().map(Value::String).collect()).to_string()
        }),
        expires_at: record.expires_at,
        revoked: record.revoked,
        source_updated_at,
    }
}

/// Converts a stored row back to the legacy row it was read from.
fn key_record(data: &LegacyKeyData) -> Result<KeyRecord, String> {
    let json = |what: &str, text: &Option<String>| -> Result<Option<Value>, String> {
        text.as_deref()
            .map(|text| {
                serde_json::from_str(text).map_err(|_| format!("the imported {what} is not JSON"))
            })
            .transpose()
    };
    let scopes = match json("scopes", &data.scopes)? {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => return Err("the imported scopes are not a JSON array".to_owned()),
    };
    Ok(KeyRecord {
        stored_hash: data.legacy_hash.clone(),
        revoked: data.revoked,
        expires_at: data.expires_at,
        owner: json("owner", &data.owner)?,
        scopes,
        tenant: json("tenant hint", &data.tenant_hint)?,
        key_id: json("key id", &data.key_id)?,
    })
}

/// Verifies `credential` from the imported copy, importing it lazily when it has no row yet.
pub async fn verify(
    store: &Store,
    pepper: &Pepper,
    adapter: &SqlKeysAdapter,
    credential: &str,
    now: i64,
) -> Result<LegacyClaims, Reason> {
    let name = adapter.name();
    let Some(lookup) = adapter.lookup_value(credential) else {
        return Err(Reason::Malformed);
    };
    let stored = imported_row(store, adapter, &lookup)
        .await
        .map_err(|error| {
            tracing::warn!(adapter.name = %name, %error, "reading the imported legacy key failed");
            Reason::Unavailable
        })?;
    let Some(stored) = stored else {
        return import_lazily(store, pepper, adapter, credential, &lookup, now).await;
    };

    check_stored(store, pepper, adapter, credential, &lookup, &stored, now).await
}

/// Verifies `credential` from the imported copy only, for comparison in the `shadow` phase.
/// Returns `None` when the key has no imported row, because the copy then has no answer.
pub async fn verify_copy_only(
    store: &Store,
    pepper: &Pepper,
    adapter: &SqlKeysAdapter,
    credential: &str,
    now: i64,
) -> Option<Result<LegacyClaims, Reason>> {
    let name = adapter.name();
    let lookup = adapter.lookup_value(credential)?;
    match imported_row(store, adapter, &lookup).await {
        Ok(Some(stored)) => {
            Some(check_stored(store, pepper, adapter, credential, &lookup, &stored, now).await)
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(adapter.name = %name, %error, "reading the imported legacy key failed");
            Some(Err(Reason::Unavailable))
        }
    }
}

/// Checks `credential` against its imported row and records the use.
async fn check_stored(
    store: &Store,
    pepper: &Pepper,
    adapter: &SqlKeysAdapter,
    credential: &str,
    lookup: &str,
    stored: &LegacyKeyRecord,
    now: i64,
) -> Result<LegacyClaims, Reason> {
    let name = adapter.name();
    if stored.data.hash_scheme != adapter.hash_scheme_name() {
        tracing::error!(
            adapter.name = %name,
            imported_scheme = %stored.data.hash_scheme,
            configured_scheme = adapter.hash_scheme_name(),
            "the imported key was hashed under another scheme than the adapter's `hash`; run `authbridge import` again"
        );
        return Err(Reason::LegacyUnavailable);
    }
    let record = key_record(&stored.data).map_err(|problem| {
        tracing::error!(adapter.name = %name, %problem, "the imported legacy key cannot be read");
        Reason::LegacyUnavailable
    })?;
    let hmac_matches = stored
        .own_hmac
        .as_deref()
        .is_some_and(|own| pepper.matches(credential.as_bytes(), own));
    // A key that differs from the one seen in clear can still match the legacy hash (bcrypt reads
    // only 72 bytes), so a mismatch falls back to the legacy scheme, which decides as before.
    if !hmac_matches && !adapter.matches_record(credential, record.clone()).await? {
        return Err(Reason::UnknownCredential);
    }
    let claims = adapter.claims_of(credential, record, now)?;

    // The cached row gets the same change as the stored one, so the next verification neither
    // computes the legacy hash again nor writes again within LAST_SEEN_RESOLUTION_SECONDS.
    let seen = |row: &mut LegacyKeyRecord| {
        row.first_seen_at = row.first_seen_at.or(Some(now));
        row.last_seen_at = Some(now);
    };
    let result = if stored.own_hmac.is_none() {
        let own_hmac = pepper.digest_hex(credential.as_bytes());
        let result = store
            .set_legacy_key_hmac(name, lookup, &own_hmac, now)
            .await;
        result.map(|()| {
            let mut updated = stored.clone();
            updated.own_hmac = Some(own_hmac);
            seen(&mut updated);
            Some(updated)
        })
    } else if stored
        .last_seen_at
        .is_none_or(|seen| now - seen >= LAST_SEEN_RESOLUTION_SECONDS)
    {
        let result = store.touch_legacy_key(name, lookup, now).await;
        result.map(|()| {
            let mut updated = stored.clone();
            seen(&mut updated);
            Some(updated)
        })
    } else {
        Ok(None)
    };
    match result {
        Ok(Some(updated)) => adapter.imported_rows().put(updated),
        Ok(None) => {}
        Err(error) => {
            adapter.imported_rows().forget(lookup);
            tracing::warn!(adapter.name = %name, %error, "recording the use of an imported legacy key failed");
        }
    }
    Ok(claims)
}

/// Verifies a key that has no imported row against the live legacy store and records a valid
/// key. A failure to record is logged and does not change the result.
async fn import_lazily(
    store: &Store,
    pepper: &Pepper,
    adapter: &SqlKeysAdapter,
    credential: &str,
    lookup: &str,
    now: i64,
) -> Result<LegacyClaims, Reason> {
    let (claims, record) = adapter.verify_with_record(credential, now).await?;
    let data = key_data(&record, adapter.hash_scheme_name(), None);
    let own_hmac = pepper.digest_hex(credential.as_bytes());
    match store
        .insert_lazy_legacy_key(adapter.name(), lookup, &data, &own_hmac, now)
        .await
    {
        Ok(true) => {
            adapter.imported_rows().forget(lookup);
            tracing::debug!(adapter.name = %adapter.name(), "legacy key imported on first verification")
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(adapter.name = %adapter.name(), %error, "lazy import of a legacy key failed")
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_form_round_trips() {
        let record = KeyRecord {
            stored_hash: "sha512$$ab".to_owned(),
            revoked: true,
            expires_at: Some(1_700_000_000),
            owner: Some(json!("billing")),
            scopes: Some(vec!["read".to_owned(), "write".to_owned()]),
            tenant: Some(json!(42)),
            key_id: None,
        };
        let data = key_data(&record, "django", Some(5));
        assert_eq!(data.owner.as_deref(), Some("\"billing\""));
        assert_eq!(data.tenant_hint.as_deref(), Some("42"));
        let back = key_record(&data).unwrap();
        assert_eq!(back.stored_hash, record.stored_hash);
        assert_eq!(back.owner, record.owner);
        assert_eq!(back.tenant, record.tenant);
        assert_eq!(back.scopes, record.scopes);
        assert_eq!(back.expires_at, record.expires_at);
        assert!(back.revoked);
    }
}
