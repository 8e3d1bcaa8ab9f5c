//! Where a `jwt` adapter's keys come from. Keys only ever come from configuration: an inline
//! JWKS, a shared HMAC secret, or a URL named in the settings, never from the token.

use std::sync::Arc;

use serde::Deserialize;

use super::JwtSettings;
use crate::jose::jwk::parse_key_set;
use crate::jose::keys::VerifyingKey;
use crate::jose::Algorithm;
use crate::legacy::config::AdapterConfigError;
use crate::legacy::CheckItem;
use crate::verify::Reason;

/// Cache bounds for fetched key sets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Shortest time a fetched key set is kept, whatever `Cache-Control` says. Default 300.
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

/// The keys of one issuer.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// Returns the key for a token with this `kid` and algorithm: `unknown_key` when the issuer
    /// has no such key, `legacy_unavailable` when the keys cannot be fetched.
    async fn key(&self, kid: Option<&str>, algorithm: Algorithm, now: i64) -> Result<Arc<VerifyingKey>, Reason>;

    async fn check(&self, now: i64) -> Vec<CheckItem>;
}

/// Keys fixed in the configuration.
pub struct StaticKeys {
    keys: Vec<Arc<VerifyingKey>>,
}

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn key(&self, kid: Option<&str>, algorithm: Algorithm, _now: i64) -> Result<Arc<VerifyingKey>, Reason> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.accepts(algorithm))
                .cloned()
                .ok_or(Reason::UnknownKey),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.accepts(algorithm));
                let first = fitting.next().ok_or(Reason::UnknownKey)?;
                if fitting.next().is_some() {
                    return Err(Reason::UnknownKey);
                }
                Ok(first.clone())
            }
        }
    }

    async fn check(&self, _now: i64) -> Vec<CheckItem> {
        vec![CheckItem::ok(format!("{} static key(s) loaded", self.keys.len()))]
    }
}

/// Builds the key source the settings name: exactly one of `jwks`, `hmac_secret`,
/// `discovery_url`, `jwks_url` or `x509_url`.
pub fn build_source(name: &str, settings: &JwtSettings, _http: &reqwest::Client) -> Result<Arc<dyn KeySource>, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let sources = [
        settings.jwks.is_some(),
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
            "set exactly one key source: jwks, hmac_secret, discovery_url, jwks_url or x509_url".to_owned(),
        ));
    }
    let hmac_algorithms: Vec<Algorithm> = settings.algorithms.iter().copied().filter(|a| !a.is_asymmetric()).collect();
    if let Some(secret) = &settings.hmac_secret {
        // An issuer with a shared secret verifies HMAC only, so a public key can never be
        // mistaken for the secret; and an asymmetric issuer never accepts HS algorithms.
        if hmac_algorithms.len() != settings.algorithms.len() {
            return Err(error("with hmac_secret, `algorithms` may list only HS256, HS384 or HS512".to_owned()));
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
            let key = VerifyingKey::hmac(secret.as_bytes(), *algorithm, None).map_err(|e| error(e.to_string()))?;
            keys.push(Arc::new(key));
        }
        return Ok(Arc::new(StaticKeys { keys }));
    }
    if !hmac_algorithms.is_empty() {
        return Err(error("HS algorithms need hmac_secret; an issuer with public keys cannot use them".to_owned()));
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
    // TODO: remote key sources (discovery, JWKS URL, X.509 map) are not built yet.
    Err(error("remote key sources (discovery_url, jwks_url, x509_url) are not supported yet".to_owned()))
}
