//! Revoked access tokens held in memory by `jti`, so checking a JWT needs no database read.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::store::{Store, StoreResult};

#[derive(Debug, Default)]
pub struct RevocationList {
    /// `jti` to the token's `exp`; entries go once the token has expired.
    revoked: RwLock<HashMap<String, i64>>,
}

impl RevocationList {
    /// Replaces the list with the store's unexpired revocations.
    pub async fn reload(&self, store: &Store, now: i64) -> StoreResult<()> {
        let entries = store.unexpired_revoked_tokens(now).await?;
        *self.revoked.write() = entries.into_iter().collect();
        Ok(())
    }

    pub fn insert(&self, jti: String, expires_at: i64) {
        self.revoked.write().insert(jti, expires_at);
    }

    pub fn contains(&self, jti: &str) -> bool {
        self.revoked.read().contains_key(jti)
    }

    /// Drops entries of tokens that expired before `now`.
    pub fn prune(&self, now: i64) {
        self.revoked
            .write()
            .retain(|_, expires_at| *expires_at >= now);
    }

    pub fn len(&self) -> usize {
        self.revoked.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
