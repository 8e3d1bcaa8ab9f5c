//! The verification pipeline every entry point uses (verify API, introspection, admin
//! authentication): classify the credential without trusting it, verify it with exactly one
//! verifier, then check the caller's requirements.
//!
//! Classification picks one route from the credential's shape: a native API key by its prefix,
//! a JWT by its unverified `iss` matched exactly against the configured issuers, any other
//! credential by the one legacy adapter whose recognition pattern matches it. There is no
//! fall-through to a second verifier and no default verifier.

mod legacy;
mod native_api_key;
mod native_jwt;
mod reason;
mod revocation;

pub use reason::Reason;
pub use revocation::RevocationList;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::credentials::{api_key, Mode};
use crate::crypto::Pepper;
use crate::ids::TenantId;
use crate::legacy::phases::{PhaseBook, PhaseInForce};
use crate::legacy::{Adapter, Adapters};
use crate::signing::Keyring;
use crate::store::Store;
use crate::tenancy::TenantDirectory;

pub use native_api_key::ApiKeyCache;
pub use native_jwt::audience as token_audience;

/// Caller requirements that a valid credential must also meet.
#[derive(Clone, Debug, Default)]
pub struct Requirements {
    /// The credential must reach this tenant: be issued for it or hold roles that apply to it.
    pub tenant_id: Option<TenantId>,
    /// Roles the credential must hold at the required tenant (or its own tenant).
    pub roles: Vec<String>,
    /// An access token's `aud` must contain this value.
    pub audience: Option<String>,
    pub mode: Option<Mode>,
}

/// Origin of a credential: the daemon itself or a legacy adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Native,
    /// A legacy adapter, by name.
    Legacy(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    AccessToken,
    ApiKey,
}

/// The verified identity behind a credential.
#[derive(Clone, Debug)]
pub struct Identity {
    pub source: Source,
    pub kind: CredentialKind,
    pub tenant_id: TenantId,
    /// The machine: a native machine id, or the mapped legacy machine identifier.
    pub machine_id: Option<String>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub mode: Mode,
    /// Roles granted per tenant.
    pub grants: BTreeMap<TenantId, Vec<String>>,
    /// Roles in effect at the required tenant, or at the credential's own tenant.
    pub roles: BTreeSet<String>,
    pub scope: Option<String>,
    pub audience: Vec<String>,
    pub issuer: Option<String>,
    pub jti: Option<String>,
    pub issued_at: Option<i64>,
    pub not_before: Option<i64>,
    pub expires_at: Option<i64>,
    /// The API key's id, for API keys.
    pub key_id: Option<String>,
    /// For legacy credentials: the migration phase in force for this adapter and tenant.
    pub phase: Option<PhaseInForce>,
    /// For a native token minted by token exchange: the adapter of the legacy credential it
    /// replaced, from the token's `origin.adapter` claim.
    pub translated_from: Option<String>,
}

/// Check that rejected the credential: the credential itself (401) or the caller's
/// requirements (403). An unavailable source gives 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Credential,
    Requirements,
}

/// Result of the pipeline for one credential.
#[derive(Clone, Debug)]
pub struct Decision {
    pub reason: Reason,
    pub stage: Stage,
    pub identity: Option<Identity>,
    /// A short, non-secret name of the credential: the first 16 hex digits of its SHA-256.
    pub fingerprint: String,
}

impl Decision {
    pub fn is_valid(&self) -> bool {
        self.reason == Reason::Valid
    }

    /// Returns the HTTP status of the verify API for this decision.
    pub fn http_status(&self) -> u16 {
        match (self.reason, self.stage) {
            (Reason::Valid, _) => 200,
            (reason, _) if reason.is_unavailable() => 503,
            (Reason::UnmappedIdentity, _) => 403,
            (_, Stage::Requirements) => 403,
            (_, Stage::Credential) => 401,
        }
    }
}

/// The route classification chose for a credential.
enum Route {
    NativeApiKey,
    NativeJwt,
    /// A JWT whose `iss` is one of this adapter's issuers.
    LegacyJwt(Arc<Adapter>),
    /// A non-JWT credential that this adapter's recognition pattern matches.
    LegacyOpaque(Arc<Adapter>),
    /// A JWT whose `iss` matches no configured issuer.
    UnknownIssuer,
    Malformed,
    Unknown,
}

/// Fixed settings of the verifier.
#[derive(Clone, Debug)]
pub struct VerifierSettings {
    pub issuer: String,
    pub api_key_prefix: String,
    pub leeway_seconds: i64,
    pub max_credential_bytes: usize,
}

/// Verifies credentials; shared by every entry point.
pub struct Verifier {
    settings: VerifierSettings,
    keyring: Arc<Keyring>,
    store: Store,
    pepper: Pepper,
    directory: Arc<TenantDirectory>,
    revocations: Arc<RevocationList>,
    api_keys: ApiKeyCache,
    adapters: Arc<Adapters>,
    phases: Arc<PhaseBook>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Receives shadow-phase disagreements, which no single answer carries.
    audit: Arc<crate::audit::Audit>,
    clock: SharedClock,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Returns the revocation-list entry that revokes every token of a deleted machine. It cannot
/// collide with a `jti` the daemon issued, because those are 32 hex digits (a simple UUID).
pub fn machine_revocation_marker(machine_id: &str) -> String {
    format!("machine:{machine_id}")
}

/// Returns the fingerprint of a credential: `sha256:` and 16 hex digits, safe to log.
pub fn fingerprint(credential: &str) -> String {
    let digest = Sha256::digest(credential.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..8]))
}

impl Verifier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: VerifierSettings,
        keyring: Arc<Keyring>,
        store: Store,
        pepper: Pepper,
        directory: Arc<TenantDirectory>,
        revocations: Arc<RevocationList>,
        api_keys: ApiKeyCache,
        adapters: Arc<Adapters>,
        phases: Arc<PhaseBook>,
        metrics: Arc<crate::metrics::Metrics>,
        audit: Arc<crate::audit::Audit>,
        clock: SharedClock,
    ) -> Self {
        Self {
            settings,
            keyring,
            store,
            pepper,
            directory,
            revocations,
            api_keys,
            adapters,
            phases,
            metrics,
            audit,
            clock,
        }
    }

    pub fn adapters(&self) -> &Adapters {
        &self.adapters
    }

    pub fn phases(&self) -> &PhaseBook {
        &self.phases
    }

    pub fn directory(&self) -> &TenantDirectory {
        &self.directory
    }

    pub fn api_key_cache(&self) -> &ApiKeyCache {
        &self.api_keys
    }

    /// Runs the whole pipeline on `credential` and counts the decision in the metrics.
    pub async fn verify(&self, credential: &str, requirements: &Requirements) -> Decision {
        let started = std::time::Instant::now();
        let decision = self.decide(credential, requirements).await;
        self.metrics
            .observe_verification(&decision, started.elapsed().as_secs_f64());
        decision
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    async fn decide(&self, credential: &str, requirements: &Requirements) -> Decision {
        let fingerprint = fingerprint(credential);
        let verified = match self.classify(credential) {
            Route::NativeApiKey => self.verify_native_api_key(credential).await,
            Route::NativeJwt => self.verify_native_jwt(credential),
            Route::LegacyJwt(adapter) | Route::LegacyOpaque(adapter) => {
                self.verify_legacy(&adapter, credential, &fingerprint).await
            }
            Route::UnknownIssuer => Err(Reason::UnknownIssuer),
            Route::Malformed => Err(Reason::Malformed),
            Route::Unknown => Err(Reason::UnknownCredential),
        };
        let verified = match verified {
            Ok(identity) => self.check_tenant_exists(identity).await,
            Err(reason) => Err(reason),
        };
        let mut identity = match verified {
            Ok(identity) => identity,
            Err(reason) => {
                return Decision {
                    reason,
                    stage: Stage::Credential,
                    identity: None,
                    fingerprint,
                }
            }
        };
        let outcome = self.check_requirements(&mut identity, requirements);
        Decision {
            reason: outcome.err().unwrap_or(Reason::Valid),
            stage: Stage::Requirements,
            identity: Some(identity),
            fingerprint,
        }
    }

    /// Rejects credentials of a deleted tenant as `revoked`. A tenant missing from the in-memory
    /// directory is looked up in the store once, because another process (the CLI or another
    /// instance) may have created it since the last resync.
    async fn check_tenant_exists(&self, identity: Identity) -> Result<Identity, Reason> {
        if self.directory.contains(&identity.tenant_id) {
            return Ok(identity);
        }
        match self.store.tenant(&identity.tenant_id).await {
            Ok(Some(tenant)) => {
                self.directory.upsert(&tenant);
                Ok(identity)
            }
            // A legacy identity mapped to a tenant that does not exist is unmapped, while a
            // native credential of a deleted tenant is revoked.
            Ok(None) if identity.source != Source::Native => Err(Reason::UnmappedIdentity),
            Ok(None) => Err(Reason::Revoked),
            Err(error) => {
                tracing::warn!(%error, tenant.id = %identity.tenant_id, "store unavailable while looking up a tenant");
                Err(Reason::Unavailable)
            }
        }
    }

    fn classify(&self, credential: &str) -> Route {
        if credential.is_empty() || credential.len() > self.settings.max_credential_bytes {
            return Route::Malformed;
        }
        if !credential.bytes().all(|b| b.is_ascii_graphic()) {
            return Route::Malformed;
        }
        if api_key::has_native_prefix(&self.settings.api_key_prefix, credential) {
            return Route::NativeApiKey;
        }
        let dots = credential.bytes().filter(|&b| b == b'.').count();
        if credential.starts_with("ey") && (dots == 2 || dots == 4) {
            if dots == 4 {
                // JWE is never accepted; refuse on the segment count alone (no decoding).
                return Route::Malformed;
            }
            return match crate::jose::peek_issuer(credential) {
                Some(issuer) if issuer == self.settings.issuer => Route::NativeJwt,
                Some(issuer) => match self.adapters.for_issuer(&issuer) {
                    Some(adapter) => Route::LegacyJwt(adapter.clone()),
                    None => Route::UnknownIssuer,
                },
                None => Route::Malformed,
            };
        }
        match self.adapters.for_pattern(credential) {
            Ok(Some(adapter)) => Route::LegacyOpaque(adapter.clone()),
            Ok(None) => Route::Unknown,
            Err(error) => {
                tracing::warn!(%error, "credential is ambiguous between legacy adapters");
                Route::Malformed
            }
        }
    }

    fn check_requirements(
        &self,
        identity: &mut Identity,
        requirements: &Requirements,
    ) -> Result<(), Reason> {
        let target = requirements
            .tenant_id
            .clone()
            .unwrap_or_else(|| identity.tenant_id.clone());
        identity.roles = self.directory.effective_roles(&identity.grants, &target);
        if let Some(mode) = requirements.mode {
            if identity.mode != mode {
                return Err(Reason::WrongMode);
            }
        }
        if target != identity.tenant_id && identity.roles.is_empty() {
            return Err(Reason::OutOfScope);
        }
        if !requirements
            .roles
            .iter()
            .all(|role| identity.roles.contains(role))
        {
            return Err(Reason::OutOfScope);
        }
        if let Some(audience) = &requirements.audience {
            if !identity.audience.iter().any(|a| a == audience) {
                return Err(Reason::WrongAudience);
            }
        }
        Ok(())
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }
}
