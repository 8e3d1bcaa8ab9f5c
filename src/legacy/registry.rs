//! The configured adapters and the routing of credentials to them: a JWT by its exact `iss`.
//! Every `iss` belongs to at most one adapter, and never to the daemon's own issuer as well.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::config::{resolve, AdapterConfigError, Phase};
use super::mapping::Mapping;
use super::{jwt, LegacyVerifier};

/// One configured legacy source.
pub struct Adapter {
    pub name: String,
    pub kind: String,
    pub preset: Option<String>,
    pub phase: Phase,
    pub mapping: Mapping,
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
}

impl Adapters {
    /// Builds every adapter of the `[[adapters]]` entries. Fails on the first invalid entry,
    /// naming it, so the daemon never starts with part of its configuration ignored.
    pub fn build(entries: &[Value], native_issuer: &str, http: &reqwest::Client) -> Result<Self, AdapterConfigError> {
        let mut adapters = Self::default();
        for (index, entry) in entries.iter().enumerate() {
            let resolved = resolve(index, entry)?;
            let name = resolved.common.name.clone();
            if adapters.get(&name).is_some() {
                return Err(AdapterConfigError::adapter(&name, "another adapter has the same name"));
            }
            let mapping = Mapping::compile(&resolved.common.mapping).map_err(|e| AdapterConfigError::adapter(&name, e))?;
            let verifier = match resolved.kind.as_str() {
                "jwt" => jwt::build(&name, &resolved.settings, http)?,
                "introspection" | "remote_verify" | "sql_keys" | "file_keys" => {
                    // TODO: these kinds are part of the contract but not built yet.
                    return Err(AdapterConfigError::adapter(
                        &name,
                        format!("kind {:?} is not supported by this version yet", resolved.kind),
                    ));
                }
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
                        format!("issuer {issuer:?} is also configured for adapter {:?}", adapters.list[*other].name),
                    ));
                }
                adapters.by_issuer.insert(issuer, position);
            }
            adapters.list.push(Arc::new(Adapter {
                name,
                kind: resolved.kind,
                preset: resolved.preset,
                phase: resolved.common.phase,
                mapping,
                verifier,
            }));
        }
        Ok(adapters)
    }

    /// The adapter whose issuer list contains exactly `issuer`.
    pub fn for_issuer(&self, issuer: &str) -> Option<&Arc<Adapter>> {
        self.by_issuer.get(issuer).map(|index| &self.list[*index])
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Adapter>> {
        self.list.iter().find(|adapter| adapter.name == name)
    }

    pub fn all(&self) -> &[Arc<Adapter>] {
        &self.list
    }
}
