//! Signing key rows. Private keys are stored sealed under the master key.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::jose::Algorithm;

/// Place of a key in the rotation: the JWKS publishes `next`, `current` and `previous`; only
/// `current` signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKeyStatus {
    Next,
    Current,
    Previous,
    Retired,
}

impl SigningKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "next" => Self::Next,
            "current" => Self::Current,
            "previous" => Self::Previous,
            "retired" => Self::Retired,
            _ => return None,
        })
    }
}

#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: Algorithm,
    pub status: SigningKeyStatus,
    /// The PKCS#8 private key sealed under the master key.
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: serde_json::Value,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn signing_key_from_row(row: &sqlx::any::AnyRow) -> StoreResult<SigningKeyRecord> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "signing key",
        detail,
    };
    let algorithm: String = row.try_get("algorithm")?;
    let status: String = row.try_get("status")?;
    let jwk: String = row.try_get("public_jwk")?;
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        algorithm: Algorithm::from_jose_name(&algorithm)
            .ok_or_else(|| corrupt(format!("algorithm {algorithm:?}")))?,
        status: SigningKeyStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("status {status:?}")))?,
        sealed_private_key: row.try_get("private_key")?,
        public_jwk: serde_json::from_str(&jwk).map_err(|e| corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

impl Store {
    /// Keys that are not retired, newest first.
    pub async fn active_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, status, private_key, public_jwk, created_at, activated_at, retired_at \
             FROM signing_keys WHERE status <> 'retired' ORDER BY created_at DESC, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    /// Moves the keys one step along the rotation and inserts `new_next`, in one transaction:
    /// `previous` retires, `current` becomes `previous`, `next` becomes `current`.
    ///
    /// `expected_current` guards against two instances rotating at once: the rotation applies
    /// only when the current key is still the one the caller saw.
    pub async fn rotate_signing_keys(
        &self,
        expected_current: Option<&str>,
        new_next: &SigningKeyRecord,
        now: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        // The first statement writes, so SQLite takes the write lock now (waiting through its
        // busy timeout) instead of failing when a read transaction is upgraded after another
        // writer committed.
        let current_rows =
            sqlx::query("UPDATE signing_keys SET status = status WHERE status = 'current'")
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        let still_current =
            match expected_current {
                None => current_rows == 0,
                Some(kid) => sqlx::query(
                    "UPDATE signing_keys SET status = status WHERE status = 'current' AND kid = $1",
                )
                .bind(kid)
                .execute(&mut *transaction)
                .await?
                .rows_affected()
                    == 1,
            };
        if !still_current {
            return Err(StoreError::Conflict("signing key rotation"));
        }
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'previous'",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE signing_keys SET status = 'previous' WHERE status = 'current'")
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'current', activated_at = $1 WHERE status = 'next'",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, status, private_key, public_jwk, created_at, activated_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&new_next.kid)
        .bind(new_next.algorithm.jose_name())
        .bind(new_next.status.as_str())
        .bind(new_next.sealed_private_key.clone())
        .bind(new_next.public_jwk.to_string())
        .bind(new_next.created_at)
        .bind(new_next.activated_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}
