//! The configured adapters and the routing of credentials to them: a JWT by its exact `iss`,
//! any other credential by the adapter's recognition pattern. Every `iss` belongs to at most one
//! adapter, and never to the daemon's own issuer as well. No pattern may match a native API key.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::config::{resolve, AdapterConfigError, ExchangeConfig, Phase};
use super::mapping::Mapping;
use super::{file_keys, introspection, jwt, remote_verify, sql_keys, LegacyVerifier};
use crate::credentials::api_key::{self, ApiKeyParts};
use crate::credentials::Mode;
use crate::ids::TenantId;

/// One configured legacy source.
pub struct Adapter {
    pub name: String,
    pub kind: String,
    pub preset: Option<String>,
    pub phase: Phase,
    pub mapping: Mapping,
    pub exchange: ExchangeConfig,
    pub verifier: Arc<dyn LegacyVerifier>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// All configured adapters with their routing tables.
#[derive(Debug, Default)]
pub struct Adapters {
    list: Vec<Arc<Adapter>>,
    by_issuer: HashMap<String, usize>,
    /// Positions in `list` of the adapters that have a recognition pattern.
    by_pattern: Vec<usize>,
}

/// A credential that the recognition patterns of several adapters match.
#[derive(Debug, thiserror::Error)]
#[error("the credential matches the patterns of several adapters: {}", .adapters.join(", "))]
pub struct AmbiguousCredential {
    pub adapters: Vec<String>,
}

impl Adapters {
    /// Builds every adapter of the `[[adapters]]` entries. Fails on the first invalid entry,
    /// naming it, so the daemon never starts with part of its configuration ignored.
    /// `api_key_prefix` is the prefix of native API keys, which no recognition pattern may match.
    pub fn build(
        entries: &[Value],
        native_issuer: &str,
        api_key_prefix: &str,
        http: &reqwest::Client,
    ) -> Result<Self, AdapterConfigError> {
        let mut adapters = Self::default();
        for (index, entry) in entries.iter().enumerate() {
            let resolved = resolve(index, entry)?;
            let name = resolved.common.name.clone();
            if adapters.get(&name).is_some() {
                return Err(AdapterConfigError::adapter(
                    &name,
                    "another adapter has the same name",
                ));
            }
            let mapping = Mapping::compile(&resolved.common.mapping)
                .map_err(|e| AdapterConfigError::adapter(&name, e))?;
            let verifier = match resolved.kind.as_str() {
                "jwt" => jwt::build(&name, &resolved.settings, http)?,
                "introspection" => introspection::build(&name, &resolved.settings, http)?,
                "remote_verify" => remote_verify::build(&name, &resolved.settings, http)?,
                "sql_keys" => sql_keys::build(&name, &resolved.settings)?,
                "file_keys" => file_keys::build(&name, &resolved.settings)?,
                other => {
                    return Err(AdapterConfigError::adapter(
                        &name,
                        format!("unknown kind {other:?}: use jwt, introspection, remote_verify, sql_keys or file_keys"),
                    ))
                }
            };
            let position = adapters.list.len();
            for issuer in verifier.issuers() {
                if issuer == native_issuer {
                    return Err(AdapterConfigError::adapter(
                        &name,
                        format!("issuer {issuer:?} is the daemon's own issuer"),
                    ));
                }
                if let Some(other) = adapters.by_issuer.get(&issuer) {
                    return Err(AdapterConfigError::adapter(
                        &name,
                        format!(
                            "issuer {issuer:?} is also configured for adapter {:?}",
                            adapters.list[*other].name
                        ),
                    ));
                }
                adapters.by_issuer.insert(issuer, position);
            }
            if verifier.pattern().is_some() {
                adapters.check_pattern(&name, verifier.as_ref(), api_key_prefix)?;
                adapters.by_pattern.push(position);
            }
            adapters.list.push(Arc::new(Adapter {
                name,
                kind: resolved.kind,
                preset: resolved.preset,
                phase: resolved.common.phase,
                mapping,
                exchange: resolved.common.exchange.clone(),
                verifier,
            }));
        }
        Ok(adapters)
    }

    /// The adapter whose issuer list contains exactly `issuer`.
    pub fn for_issuer(&self, issuer: &str) -> Option<&Arc<Adapter>> {
        self.by_issuer.get(issuer).map(|index| &self.list[*index])
    }

    /// Returns the adapter whose recognition pattern matches the whole `credential`, if exactly
    /// one does. Several matches are an error, because classification never guesses between them.
    pub fn for_pattern(
        &self,
        credential: &str,
    ) -> Result<Option<&Arc<Adapter>>, AmbiguousCredential> {
        let matching: Vec<&Arc<Adapter>> = self
            .by_pattern
            .iter()
            .map(|index| &self.list[*index])
            .filter(|adapter| {
                adapter
                    .verifier
                    .pattern()
                    .is_some_and(|regex| regex.is_match(credential))
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [adapter] => Ok(Some(adapter)),
            several => Err(AmbiguousCredential {
                adapters: several.iter().map(|adapter| adapter.name.clone()).collect(),
            }),
        }
    }

    /// Rejects a recognition pattern that matches native API keys, or that overlaps the pattern
    /// of an adapter built earlier. Overlap is detected when the two patterns are the same or
    /// when one adapter's `sample` matches the other's pattern, so it needs samples to be found.
    fn check_pattern(
        &self,
        name: &str,
        verifier: &dyn LegacyVerifier,
        api_key_prefix: &str,
    ) -> Result<(), AdapterConfigError> {
        let Some(pattern) = verifier.pattern() else {
            return Ok(());
        };
        for mode in [Mode::Live, Mode::Test] {
            for role in ["admin", "readonly"] {
                let parts = ApiKeyParts {
                    mode,
                    role: role.to_owned(),
                    tenant_id: TenantId::generate(),
                };
                if pattern.is_match(api_key::generate(api_key_prefix, &parts).expose()) {
                    return Err(AdapterConfigError::adapter(
                        name,
                        format!("`pattern` also matches native API keys (prefix {api_key_prefix:?}); make it stricter"),
                    ));
                }
            }
        }
        for index in &self.by_pattern {
            let other = &self.list[*index];
            let Some(other_pattern) = other.verifier.pattern() else {
                continue;
            };
            let overlap = pattern.as_str() == other_pattern.as_str()
                || other
                    .verifier
                    .sample()
                    .is_some_and(|sample| pattern.is_match(sample))
                || verifier
                    .sample()
                    .is_some_and(|sample| other_pattern.is_match(sample));
            if overlap {
                return Err(AdapterConfigError::adapter(
                    name,
                    format!(
                        "`pattern` overlaps the pattern of adapter {:?}: a credential could match both adapters {name:?} and {:?}",
                        other.name, other.name
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Adapter>> {
        self.list.iter().find(|adapter| adapter.name == name)
    }

    pub fn all(&self) -> &[Arc<Adapter>] {
        &self.list
    }
}
