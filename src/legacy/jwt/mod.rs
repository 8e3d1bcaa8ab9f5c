//! The `jwt` adapter kind: a legacy JWT issuer, verified as strictly as the daemon's own tokens.
//!
//! The token's `iss` routed it here; this module re-checks it against the configured strings,
//! then the algorithm allow-list (bound to the key type), the key from this issuer's keys only,
//! the signature, the token-type rule, the audience rule, required claims and the time window.

mod keys;
mod remote;

pub use keys::{CacheSettings, KeyHealth, KeySource, PemKeys, StaticKeys};

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{parse_settings, AdapterConfigError};
use super::{CheckItem, LegacyClaims, LegacyVerifier};
use crate::jose::{Algorithm, CompactJws, JwsError};
use crate::verify::Reason;

/// Largest leeway an adapter may configure, in seconds.
const MAX_LEEWAY_SECONDS: i64 = 120;

/// How the adapter tells access tokens from other JWTs of the same issuer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTypeRule {
    /// Accepted `typ` header values, compared case-insensitively, such as `at+jwt`.
    #[serde(default)]
    pub typ: Vec<String>,
    /// A claim that must hold one of `values`, such as Cognito's `token_use`.
    pub claim: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

/// Settings of a `jwt` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Exact `iss` values (aliases allowed), compared byte for byte.
    pub issuers: Vec<String>,
    /// Accepted audiences; the token's `aud` must contain one. Empty only together with
    /// `audience_claim`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// For issuers whose access tokens carry no `aud` (Cognito): a claim that must hold one of
    /// `audiences` instead, such as `client_id`.
    pub audience_claim: Option<String>,
    /// Allowed algorithms. Default `["RS256"]`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    #[serde(default)]
    pub token_type: TokenTypeRule,
    /// Claims that must be present.
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds, at most 120. Default 60.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: i64,

    /// An inline JWKS (or a single JWK).
    pub jwks: Option<Value>,
    /// Inline PEM keys: one `PUBLIC KEY` or `CERTIFICATE` block, or a table of `kid` to block.
    pub pem: Option<keys::PemKeys>,
    /// A shared HMAC secret for HS256/384/512 issuers.
    pub hmac_secret: Option<String>,
    /// Accepts an HMAC secret shorter than RFC 7518 section 3.2 requires, with a warning.
    #[serde(default)]
    pub allow_weak_secret: bool,

    /// Remote key sources, read by [`keys`]: OIDC discovery, a JWKS URL, or a map of `kid` to
    /// X.509 certificates.
    pub discovery_url: Option<String>,
    pub jwks_url: Option<String>,
    pub x509_url: Option<String>,
    /// Allows `http://` key URLs, for loopback and tests. Default false.
    #[serde(default)]
    pub allow_http: bool,
    /// Cache bounds for fetched keys, in seconds.
    #[serde(default)]
    pub cache: keys::CacheSettings,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256]
}

fn default_leeway() -> i64 {
    60
}

/// A legacy JWT issuer.
pub struct JwtAdapter {
    name: String,
    settings: JwtSettings,
    keys: Arc<dyn KeySource>,
}

/// Builds a `jwt` adapter from its settings.
pub fn build(
    name: &str,
    settings: &Value,
    http: &reqwest::Client,
) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let settings: JwtSettings = parse_settings(name, settings)?;
    let error = |message: String| AdapterConfigError::adapter(name, message);
    if settings.issuers.is_empty() || settings.issuers.iter().any(String::is_empty) {
        return Err(error(
            "`issuers` must list at least one non-empty issuer string".to_owned(),
        ));
    }
    if settings.audiences.is_empty() {
        return Err(error(
            "`audiences` must list the accepted audiences".to_owned(),
        ));
    }
    if settings.algorithms.is_empty() {
        return Err(error("`algorithms` must not be empty".to_owned()));
    }
    if !(0..=MAX_LEEWAY_SECONDS).contains(&settings.leeway_seconds) {
        return Err(error(format!(
            "`leeway_seconds` must be between 0 and {MAX_LEEWAY_SECONDS}"
        )));
    }
    let keys = keys::build_source(name, &settings, http)?;
    Ok(Arc::new(JwtAdapter {
        name: name.to_owned(),
        settings,
        keys,
    }))
}

#[async_trait::async_trait]
impl LegacyVerifier for JwtAdapter {
    async fn verify(&self, token: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let jws = CompactJws::parse(token).map_err(|error| match error {
            JwsError::UnsupportedAlgorithm(_) | JwsError::EmptySignature => {
                Reason::InvalidSignature
            }
            _ => Reason::Malformed,
        })?;
        let issuer = jws.unverified_issuer().unwrap_or_default();
        if !self.settings.issuers.iter().any(|i| i == issuer) {
            return Err(Reason::UnknownIssuer);
        }
        if !self.settings.algorithms.contains(&jws.algorithm) {
            return Err(Reason::InvalidSignature);
        }

        let key = self
            .keys
            .key(jws.kid.as_deref(), jws.algorithm, now)
            .await?;
        if !key.verify(jws.algorithm, jws.signing_input(), jws.signature()) {
            return Err(Reason::InvalidSignature);
        }

        self.check_token_type(&jws)?;
        let claims = &jws.claims;
        let audience = self.check_audience(claims)?;
        for required in &self.settings.required_claims {
            if !claims.contains_key(required) {
                return Err(Reason::Malformed);
            }
        }
        let (issued_at, expires_at) = check_times(claims, now, self.settings.leeway_seconds)?;
        tracing::debug!(adapter.name = %self.name, "legacy JWT verified");
        Ok(LegacyClaims {
            subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            claims: claims.clone(),
            issuer: Some(issuer.to_owned()),
            audience,
            scope: claims
                .get("scope")
                .or_else(|| claims.get("scp"))
                .and_then(scope_text),
            issued_at,
            expires_at: Some(expires_at),
        })
    }

    async fn check(&self, now: i64) -> Vec<CheckItem> {
        self.keys.check(now).await
    }

    fn issuers(&self) -> Vec<String> {
        self.settings.issuers.clone()
    }

    fn key_health(&self, now: i64) -> Option<KeyHealth> {
        let remote = self.settings.jwks_url.is_some()
            || self.settings.discovery_url.is_some()
            || self.settings.x509_url.is_some();
        remote.then(|| self.keys.health(now))
    }
}

impl JwtAdapter {
    fn check_token_type(&self, jws: &CompactJws<'_>) -> Result<(), Reason> {
        let rule = &self.settings.token_type;
        if !rule.typ.is_empty() {
            let typ = jws.typ.as_deref().unwrap_or_default();
            if !rule
                .typ
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(typ))
            {
                return Err(Reason::WrongTokenType);
            }
        }
        if let Some(claim) = &rule.claim {
            let value = jws
                .claims
                .get(claim)
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !rule.values.iter().any(|accepted| accepted == value) {
                return Err(Reason::WrongTokenType);
            }
        }
        Ok(())
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<Vec<String>, Reason> {
        let accepted = &self.settings.audiences;
        if let Some(claim) = &self.settings.audience_claim {
            let value = claims
                .get(claim)
                .and_then(Value::as_str)
                .ok_or(Reason::WrongAudience)?;
            if !accepted.iter().any(|a| a == value) {
                return Err(Reason::WrongAudience);
            }
            return Ok(vec![value.to_owned()]);
        }
        let audience = crate::verify::token_audience(claims)?;
        if !audience.iter().any(|a| accepted.contains(a)) {
            return Err(Reason::WrongAudience);
        }
        Ok(audience)
    }
}

fn scope_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// Checks `exp` (required), `nbf` and `iat` with the leeway; returns `(iat, exp)`.
fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
) -> Result<(Option<i64>, i64), Reason> {
    let time = |name: &str| -> Result<Option<i64>, Reason> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .map(Some)
                .ok_or(Reason::Malformed),
            Some(_) => Err(Reason::Malformed),
        }
    };
    let expires_at = time("exp")?.ok_or(Reason::Malformed)?;
    if now >= expires_at + leeway {
        return Err(Reason::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| now < nbf - leeway) {
        return Err(Reason::NotYetValid);
    }
    let issued_at = time("iat")?;
    if issued_at.is_some_and(|iat| iat > now + leeway) {
        return Err(Reason::NotYetValid);
    }
    Ok((issued_at, expires_at))
}

#[cfg(test)]
mod tests;
