//! Legacy credential sources ("adapters"): the systems a team is moving away from. Each adapter
//! is one configured source of a kind (`jwt`, `introspection`, `remote_verify`, `sql_keys`,
//! `file_keys`), optionally filled in from a preset, with a mapping from the legacy identity to
//! tenant, machine, roles and mode, and a migration phase.
//!
//! This module owns configuration, presets, mapping and routing. The verification pipeline in
//! [`crate::verify`] asks [`Adapters`] which adapter owns a credential and calls it.

pub mod config;
pub mod file_keys;
pub mod hash;
pub mod import;
pub(crate) mod imported;
pub mod introspection;
pub mod jwt;
pub mod mapping;
pub mod phases;
pub mod presets;
mod registry;
pub mod remote_verify;
pub mod sql_keys;

pub use config::{AdapterConfigError, Phase};
pub use registry::{Adapter, Adapters, AmbiguousCredential};

use serde_json::{Map, Value};

use crate::verify::Reason;

/// Claims of a legacy credential that its source verified.
#[derive(Clone, Debug, Default)]
pub struct LegacyClaims {
    /// The legacy subject (`sub`, a key id or an owner), for display and mapping.
    pub subject: Option<String>,
    /// Every claim or attribute the source returned; the mapping reads from here.
    pub claims: Map<String, Value>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub scope: Option<String>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// One finding of `authbridge adapters check`.
#[derive(Clone, Debug)]
pub struct CheckItem {
    pub ok: bool,
    pub message: String,
}

impl CheckItem {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
        }
    }

    pub fn problem(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}

/// A verifier for one legacy source. Implementations decide only whether the credential is
/// authentic and current; mapping and phases are applied by the caller.
#[async_trait::async_trait]
pub trait LegacyVerifier: Send + Sync {
    /// Verifies `credential`, which classification routed to this adapter. A source that cannot
    /// be reached must give [`Reason::LegacyUnavailable`], never a rejection.
    async fn verify(&self, credential: &str, now: i64) -> Result<LegacyClaims, Reason>;

    /// Reports the freshness of fetched keys, for the metrics; `None` for kinds without them.
    fn key_health(&self, _now: i64) -> Option<jwt::KeyHealth> {
        None
    }

    /// Checks configuration and connectivity for `authbridge adapters check`.
    async fn check(&self, now: i64) -> Vec<CheckItem>;

    /// Returns the exact `iss` values whose JWTs this adapter verifies; empty for non-JWT kinds.
    fn issuers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Returns the recognition pattern of a non-JWT kind, anchored with `^...$` so that a match
    /// covers the whole credential. Classification routes a matching credential here. `None` for
    /// kinds routed by issuer.
    fn pattern(&self) -> Option<&regex::Regex> {
        None
    }

    /// Returns an example credential that matches [`Self::pattern`], used at startup to detect
    /// two adapters whose patterns overlap.
    fn sample(&self) -> Option<&str> {
        None
    }

    /// Returns the adapter as a `sql_keys` adapter, whose keys can be imported and verified
    /// from the imported copy. `None` for other kinds.
    fn sql_keys(&self) -> Option<&sql_keys::SqlKeysAdapter> {
        None
    }
}
