//! Verification of native API keys: checksum first (no lookup for a mistyped key), then one
//! HMAC under the pepper and a lookup by that hash, served from a bounded in-memory cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{CredentialKind, Identity, Reason, Source, Verifier};
use crate::credentials::api_key;
use crate::store::{ApiKeyRecord, StoreError};

/// Recently verified key rows by key hash. Entries hold no plaintext key, only the row. A
/// revocation on this instance removes the entry at once; one made on another instance takes
/// effect when the entry expires.
#[derive(Clone)]
pub struct ApiKeyCache {
    entries: moka::sync::Cache<String, Option<Arc<ApiKeyRecord>>>,
}

impl ApiKeyCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub fn invalidate(&self, key_hash: &str) {
        self.entries.invalidate(key_hash);
    }

    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

impl Verifier {
    pub(super) async fn verify_native_api_key(&self, key: &str) -> Result<Identity, Reason> {
        let parts =
            api_key::parse(&self.settings.api_key_prefix, key).map_err(|_| Reason::Malformed)?;
        let key_hash = self.pepper.digest_hex(key.as_bytes());

        let record = match self.api_keys.entries.get(&key_hash) {
            Some(cached) => cached,
            None => {
                let found = match self.store.api_key_by_hash(&key_hash).await {
                    Ok(found) => found.map(Arc::new),
                    Err(StoreError::Unavailable(detail)) => {
                        tracing::warn!(error = %detail, "store unavailable while verifying an API key");
                        return Err(Reason::Unavailable);
                    }
                    Err(error) => {
                        tracing::error!(%error, "store error while verifying an API key");
                        return Err(Reason::Unavailable);
                    }
                };
                self.api_keys
                    .entries
                    .insert(key_hash.clone(), found.clone());
                found
            }
        };
        let record = record.ok_or(Reason::UnknownCredential)?;

        // The hash matched, so the stored parts match the presented ones unless the row was
        // edited by hand. Such a row is rejected rather than trusted.
        if record.tenant_id != parts.tenant_id
            || record.role != parts.role
            || record.mode != parts.mode
        {
            tracing::error!(key.id = %record.id, "API key row does not match the key's own parts");
            return Err(Reason::Revoked);
        }
        let now = self.now();
        if record.revoked_at.is_some_and(|at| at <= now) {
            return Err(Reason::Revoked);
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(Reason::Expired);
        }

        Ok(Identity {
            source: Source::Native,
            kind: CredentialKind::ApiKey,
            tenant_id: record.tenant_id.clone(),
            machine_id: None,
            client_id: None,
            subject: Some(record.id.clone()),
            mode: record.mode,
            grants: BTreeMap::from([(record.tenant_id.clone(), vec![record.role.clone()])]),
            roles: Default::default(),
            scope: None,
            audience: Vec::new(),
            issuer: None,
            jti: None,
            issued_at: Some(record.created_at),
            not_before: None,
            expires_at: record.expires_at.or(record.revoked_at),
            key_id: Some(record.id.clone()),
            phase: None,
            translated_from: None,
        })
    }
}
