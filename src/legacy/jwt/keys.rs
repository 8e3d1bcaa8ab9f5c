//! Key sources of a `jwt` adapter. Keys only ever come from configuration: an inline
//! JWKS, a shared HMAC secret, or a URL named in the settings, never from the token.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use x509_cert::der::{pem, Decode};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::remote::{KeyLocation, RemoteKeys};
use super::JwtSettings;
use crate::jose::jwk::{certificate_public_key, key_from_spki, parse_key_set};
use crate::jose::keys::VerifyingKey;
use crate::jose::Algorithm;
use crate::legacy::config::AdapterConfigError;
use crate::legacy::CheckItem;
use crate::verify::Reason;

/// Cache bounds for fetched key sets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Shortest time a fetched key set is kept, whatever `Cache-Control` states. Default 300.
    pub min_ttl_seconds: u64,
    /// Longest time a fetched key set is kept. Default 86400.
    pub max_ttl_seconds: u64,
    /// How long the last good key set keeps serving while the source is down. Default 86400.
    pub stale_seconds: u64,
    /// Least time between two refetches caused by an unknown `kid`. Default 30.
    pub refetch_cooldown_seconds: u64,
    /// Timeout of one fetch. Default 5.
    pub timeout_seconds: u64,
    /// Largest accepted response body in bytes. Default 1048576.
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            min_ttl_seconds: 300,
            max_ttl_seconds: 86_400,
            stale_seconds: 86_400,
            refetch_cooldown_seconds: 30,
            timeout_seconds: 5,
            max_bytes: 1024 * 1024,
        }
    }
}

/// Freshness of a fetched key set, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyHealth {
    /// Seconds since the last successful fetch; `None` before the first one.
    pub age_seconds: Option<i64>,
    /// Failed fetch attempts since start.
    pub fetch_failures: u64,
}

/// The keys of one issuer.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// Reports the age of fetched keys; `None` for keys fixed in the configuration.
    fn health(&self, _now: i64) -> KeyHealth {
        KeyHealth::default()
    }

    /// Returns the key for a token with this `kid` and algorithm: `unknown_key` when the issuer
    /// has no such key, `legacy_unavailable` when the keys cannot be fetched.
    async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: i64,
    ) -> Result<Arc<VerifyingKey>, Reason>;

    async fn check(&self, now: i64) -> Vec<CheckItem>;
}

/// Picks the key for a token: by `kid` when the token names one; without a `kid`, only when
/// exactly one key fits the algorithm. Keys without a `kid` (inline PEM) also serve tokens that
/// name one, but only when no key of the set has a `kid` and exactly one fits.
pub(super) fn select_key(
    keys: &[Arc<VerifyingKey>],
    kid: Option<&str>,
    algorithm: Algorithm,
) -> Option<Arc<VerifyingKey>> {
    if let Some(kid) = kid {
        if let Some(key) = keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid) && k.accepts(algorithm))
        {
            return Some(key.clone());
        }
        if keys.iter().any(|k| k.kid.is_some()) {
            return None;
        }
    }
    let mut fitting = keys.iter().filter(|k| k.accepts(algorithm));
    let first = fitting.next()?;
    if fitting.next().is_some() {
        return None;
    }
    Some(first.clone())
}

/// Keys fixed in the configuration.
pub struct StaticKeys {
    keys: Vec<Arc<VerifyingKey>>,
}

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        _now: i64,
    ) -> Result<Arc<VerifyingKey>, Reason> {
        select_key(&self.keys, kid, algorithm).ok_or(Reason::UnknownKey)
    }

    async fn check(&self, _now: i64) -> Vec<CheckItem> {
        vec![CheckItem::ok(format!(
            "{} static key(s) loaded",
            self.keys.len()
        ))]
    }
}

/// The `pem` setting: one PEM block, or a table of `kid` to PEM block. A block is a
/// SubjectPublicKeyInfo (`PUBLIC KEY`) or an X.509 certificate (`CERTIFICATE`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PemKeys {
    One(String),
    ByKid(BTreeMap<String, String>),
}

/// Parses one PEM public key or certificate into a verifying key.
pub(super) fn key_from_pem(
    pem: &str,
    kid: Option<String>,
    algorithm: Option<Algorithm>,
) -> Result<VerifyingKey, String> {
    let (label, der) =
        pem::decode_vec(pem.trim().as_bytes()).map_err(|e| format!("not a PEM block: {e}"))?;
    let spki = match label {
        "PUBLIC KEY" => SubjectPublicKeyInfoOwned::from_der(&der)
            .map_err(|e| format!("invalid public key: {e}"))?,
        "CERTIFICATE" => certificate_public_key(&der).map_err(|e| e.to_string())?,
        other => {
            return Err(format!(
                "PEM label {other:?} is not supported: use PUBLIC KEY or CERTIFICATE"
            ))
        }
    };
    key_from_spki(&spki, kid, algorithm).map_err(|e| e.to_string())
}

/// Builds the key source the settings name: exactly one of `jwks`, `pem`, `hmac_secret`,
/// `discovery_url`, `jwks_url` or `x509_url`.
pub fn build_source(
    name: &str,
    settings: &JwtSettings,
    http: &reqwest::Client,
) -> Result<Arc<dyn KeySource>, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let sources = [
        settings.jwks.is_some(),
        settings.pem.is_some(),
        settings.hmac_secret.is_some(),
        settings.discovery_url.is_some(),
        settings.jwks_url.is_some(),
        settings.x509_url.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if sources != 1 {
        return Err(error(
            "set exactly one key source: jwks, pem, hmac_secret, discovery_url, jwks_url or x509_url".to_owned(),
        ));
    }
    let hmac_algorithms: Vec<Algorithm> = settings
        .algorithms
        .iter()
        .copied()
        .filter(|a| !a.is_asymmetric())
        .collect();
    if let Some(secret) = &settings.hmac_secret {
        // An issuer with a shared secret verifies HMAC only, so a public key can never be
        // mistaken for the secret; and an asymmetric issuer never accepts HS algorithms.
        if hmac_algorithms.len() != settings.algorithms.len() {
            return Err(error(
                "with hmac_secret, `algorithms` may list only HS256, HS384 or HS512".to_owned(),
            ));
        }
        if secret.is_empty() {
            return Err(error("hmac_secret is empty".to_owned()));
        }
        let mut keys = Vec::new();
        for algorithm in &hmac_algorithms {
            if secret.len() < algorithm.min_hmac_key_bytes() {
                if !settings.allow_weak_secret {
                    return Err(error(format!(
                        "hmac_secret is {} bytes, below the {} bytes RFC 7518 requires for {algorithm}: set allow_weak_secret = true to accept it anyway",
                        secret.len(),
                        algorithm.min_hmac_key_bytes()
                    )));
                }
                tracing::warn!(adapter.name = %name, %algorithm, "accepting a legacy HMAC secret shorter than RFC 7518 requires");
            }
            let key = VerifyingKey::hmac(secret.as_bytes(), *algorithm, None)
                .map_err(|e| error(e.to_string()))?;
            keys.push(Arc::new(key));
        }
        return Ok(Arc::new(StaticKeys { keys }));
    }
    if !hmac_algorithms.is_empty() {
        return Err(error(
            "HS algorithms need hmac_secret; an issuer with public keys cannot use them".to_owned(),
        ));
    }
    if let Some(jwks) = &settings.jwks {
        let (keys, refused) = parse_key_set(jwks).map_err(|e| error(format!("jwks: {e}")))?;
        for problem in &refused {
            tracing::warn!(adapter.name = %name, error = %problem, "skipping a key of the configured JWKS");
        }
        if keys.is_empty() {
            return Err(error("jwks holds no usable key".to_owned()));
        }
        return Ok(Arc::new(StaticKeys {
            keys: keys.into_iter().map(Arc::new).collect(),
        }));
    }
    if let Some(pem) = &settings.pem {
        let entries: Vec<(Option<String>, &String)> = match pem {
            PemKeys::One(text) => vec![(None, text)],
            PemKeys::ByKid(map) => map
                .iter()
                .map(|(kid, text)| (Some(kid.clone()), text))
                .collect(),
        };
        let mut keys = Vec::new();
        for (kid, text) in entries {
            let key = key_from_pem(text, kid.clone(), None).map_err(|e| match &kid {
                Some(kid) => error(format!("pem key {kid:?}: {e}")),
                None => error(format!("pem: {e}")),
            })?;
            keys.push(Arc::new(key));
        }
        if keys.is_empty() {
            return Err(error("pem holds no key".to_owned()));
        }
        return Ok(Arc::new(StaticKeys { keys }));
    }

    let location = match (
        &settings.discovery_url,
        &settings.jwks_url,
        &settings.x509_url,
    ) {
        (Some(url), _, _) => KeyLocation::Discovery(url.clone()),
        (_, Some(url), _) => KeyLocation::Jwks(url.clone()),
        (_, _, Some(url)) => {
            // Certificate maps (Firebase style) carry RSA keys for RS256 only.
            if settings.algorithms.iter().any(|a| *a != Algorithm::RS256) {
                return Err(error(
                    "with x509_url, `algorithms` must be [\"RS256\"]".to_owned(),
                ));
            }
            KeyLocation::X509(url.clone())
        }
        (None, None, None) => return Err(error("no key source is set".to_owned())),
    };
    let cache = &settings.cache;
    if cache.min_ttl_seconds > cache.max_ttl_seconds {
        return Err(error(
            "cache.min_ttl_seconds must not exceed cache.max_ttl_seconds".to_owned(),
        ));
    }
    if cache.timeout_seconds == 0 || cache.max_bytes == 0 {
        return Err(error(
            "cache.timeout_seconds and cache.max_bytes must be greater than 0".to_owned(),
        ));
    }
    let remote = RemoteKeys::new(name, location, settings, http.clone()).map_err(error)?;
    Ok(Arc::new(remote))
}
