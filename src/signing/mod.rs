//! The daemon's signing keys: generated at first start, sealed at rest under the master key,
//! rotated with overlap. The JWKS publishes the next, current and previous keys, so a verifier
//! that caches it accepts tokens across one rotation in either direction.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::crypto::Sealer;
use crate::jose::keys::{KeyError, SigningKey};
use crate::jose::Algorithm;
use crate::store::{SigningKeyRecord, SigningKeyStatus, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing key {kid} does not decrypt: was security.master_key changed? ({detail})")]
    Unseal { kid: String, detail: String },
    #[error("no current signing key in the store")]
    NoCurrentKey,
}

struct KeyringState {
    current: Arc<SigningKey>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    statuses: Vec<(String, SigningKeyStatus, Algorithm, i64)>,
    jwks: Arc<Value>,
}

/// The published signing keys, reloadable from the store.
pub struct Keyring {
    store: Store,
    sealer: Sealer,
    algorithm: Algorithm,
    state: RwLock<Arc<KeyringState>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A summary of one key for the admin API; no key material.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeySummary {
    pub kid: String,
    pub algorithm: String,
    pub status: String,
    pub created_at: String,
}

fn associated_data(kid: &str) -> Vec<u8> {
    format!("authbridge signing key {kid}").into_bytes()
}

impl Keyring {
    /// Loads the keys, generating a current and a next key on first start.
    pub async fn load_or_create(
        store: Store,
        sealer: Sealer,
        algorithm: Algorithm,
        now: i64,
    ) -> Result<Self, KeyringError> {
        let mut records = store.active_signing_keys().await?;
        // First start: two rotations give a current key and a next key. A concurrent first start
        // of another instance makes one of them fail with a conflict, which is harmless.
        for _ in 0..2 {
            let has_current = records
                .iter()
                .any(|r| r.status == SigningKeyStatus::Current);
            let has_next = records.iter().any(|r| r.status == SigningKeyStatus::Next);
            if has_current && has_next {
                break;
            }
            let current = records
                .iter()
                .find(|r| r.status == SigningKeyStatus::Current)
                .map(|r| r.kid.clone());
            let record = new_key_record(&sealer, algorithm, now)?;
            match store
                .rotate_signing_keys(current.as_deref(), &record, now)
                .await
            {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other.into()),
            }
            records = store.active_signing_keys().await?;
        }
        let state = build_state(&sealer, &records)?;
        Ok(Self {
            store,
            sealer,
            algorithm,
            state: RwLock::new(Arc::new(state)),
        })
    }

    /// Re-reads the keys from the store, picking up a rotation made by another instance.
    pub async fn reload(&self) -> Result<(), KeyringError> {
        let records = self.store.active_signing_keys().await?;
        let state = build_state(&self.sealer, &records)?;
        *self.state.write() = Arc::new(state);
        Ok(())
    }

    /// Rotates: the next key starts signing, the current one stays published as previous, and a
    /// new next key is generated with the configured algorithm.
    pub async fn rotate(&self, now: i64) -> Result<(), KeyringError> {
        let current = self.state.read().current.kid.clone();
        let record = new_key_record(&self.sealer, self.algorithm, now)?;
        self.store
            .rotate_signing_keys(Some(&current), &record, now)
            .await?;
        self.reload().await
    }

    /// Returns the key that signs new tokens.
    pub fn current(&self) -> Arc<SigningKey> {
        self.state.read().current.clone()
    }

    /// Looks up a published key by `kid`.
    pub fn key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.state.read().by_kid.get(kid).cloned()
    }

    /// Returns all published keys, for verifying a token without a `kid`.
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        self.state.read().by_kid.values().cloned().collect()
    }

    /// The JWKS document with the next, current and previous public keys.
    pub fn jwks(&self) -> Arc<Value> {
        self.state.read().jwks.clone()
    }

    pub fn summaries(&self) -> Vec<SigningKeySummary> {
        self.state
            .read()
            .statuses
            .iter()
            .map(|(kid, status, algorithm, created_at)| SigningKeySummary {
                kid: kid.clone(),
                algorithm: algorithm.jose_name().to_owned(),
                status: status.as_str().to_owned(),
                created_at: crate::clock::to_rfc3339(*created_at),
            })
            .collect()
    }
}

fn new_key_record(
    sealer: &Sealer,
    algorithm: Algorithm,
    now: i64,
) -> Result<SigningKeyRecord, KeyringError> {
    let (key, pkcs8) = SigningKey::generate(algorithm)?;
    Ok(SigningKeyRecord {
        sealed_private_key: sealer.seal(pkcs8.expose(), &associated_data(&key.kid)),
        kid: key.kid.clone(),
        algorithm,
        status: SigningKeyStatus::Next,
        public_jwk: key.public_jwk().clone(),
        created_at: now,
        activated_at: None,
        retired_at: None,
    })
}

fn build_state(
    sealer: &Sealer,
    records: &[SigningKeyRecord],
) -> Result<KeyringState, KeyringError> {
    let mut by_kid = HashMap::new();
    let mut current = None;
    let mut public_keys = Vec::new();
    let mut statuses = Vec::new();
    for record in records {
        let pkcs8 = sealer
            .open(&record.sealed_private_key, &associated_data(&record.kid))
            .map_err(|e| KeyringError::Unseal {
                kid: record.kid.clone(),
                detail: e.to_string(),
            })?;
        let key = Arc::new(SigningKey::from_pkcs8(record.algorithm, pkcs8.expose())?);
        if record.status == SigningKeyStatus::Current {
            current = Some(key.clone());
        }
        public_keys.push(key.public_jwk().clone());
        statuses.push((
            record.kid.clone(),
            record.status,
            record.algorithm,
            record.created_at,
        ));
        by_kid.insert(record.kid.clone(), key);
    }
    let current = current.ok_or(KeyringError::NoCurrentKey)?;
    Ok(KeyringState {
        current,
        by_kid,
        statuses,
        jwks: Arc::new(json!({ "keys": public_keys })),
    })
}
