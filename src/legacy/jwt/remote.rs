//! Key sets fetched over HTTP: a JWKS URL, an OIDC discovery document that names one, or a map of
//! `kid` to X.509 certificates (Firebase style), with a per-adapter cache.
//!
//! The cache keeps the last good key set. It is fresh for the response's `Cache-Control: max-age`
//! clamped to `[min_ttl_seconds, max_ttl_seconds]`, and keeps serving for `stale_seconds` past
//! that while the source fails. A failed or unusable response never replaces a good set. An
//! unknown `kid` causes at most one refetch per `refetch_cooldown_seconds`, and concurrent
//! requests share that one fetch. All TTL decisions use the `now` the caller passes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::header::{HeaderMap, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH};
use serde_json::Value;
use x509_cert::der::DecodePem;
use x509_cert::Certificate;

use super::keys::{select_key, CacheSettings, KeySource};
use super::JwtSettings;
use crate::jose::jwk::{key_from_spki, parse_key_set};
use crate::jose::keys::VerifyingKey;
use crate::jose::Algorithm;
use crate::legacy::CheckItem;
use crate::verify::Reason;

/// Unknown `kid`s remembered between two fetches; past this the memory is cleared, which costs
/// at most one extra refetch per cooldown.
const MAX_UNKNOWN_KIDS: usize = 10_000;

/// The URL of a remote key set and the format of the document found there.
#[derive(Clone, Debug)]
pub enum KeyLocation {
    /// A JWKS document.
    Jwks(String),
    /// An OIDC discovery document whose `jwks_uri` names the JWKS.
    Discovery(String),
    /// A JSON object of `kid` to PEM X.509 certificate.
    X509(String),
}

impl KeyLocation {
    fn url(&self) -> &str {
        match self {
            KeyLocation::Jwks(url) | KeyLocation::Discovery(url) | KeyLocation::X509(url) => url,
        }
    }
}

/// A key set fetched from the source.
struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    /// The set is fresh before this time and stale (usable only while fetches fail) after it.
    fresh_until: i64,
}

#[derive(Default)]
struct CacheState {
    keys: Option<KeySet>,
    /// Time of the last fetch attempt, successful or not.
    last_attempt: Option<i64>,
    /// The error of the last fetch attempt, when it failed.
    last_error: Option<String>,
    /// Count of finished fetch attempts. A request that waited for the fetch lock and finds the
    /// count changed can tell that another request fetched in the meantime.
    attempts: u64,
    /// `kid`s still unknown after the last successful fetch.
    unknown_kids: HashSet<String>,
    /// Time of the last successful fetch.
    fetched_at: Option<i64>,
    /// Count of failed fetch attempts since start.
    failures: u64,
}

/// The outcome of looking up a key in the cache.
enum Decision {
    Found(Arc<VerifyingKey>),
    Fetch,
    UnknownKey,
    Unavailable,
}

/// A key set fetched from a URL, cached per adapter.
pub struct RemoteKeys {
    adapter: String,
    location: KeyLocation,
    issuers: Vec<String>,
    allow_http: bool,
    cache: CacheSettings,
    http: reqwest::Client,
    state: Mutex<CacheState>,
    /// Held for the duration of one fetch, so concurrent requests wait for it instead of
    /// fetching again.
    fetch_lock: tokio::sync::Mutex<()>,
}

/// A fetch that failed or returned no usable key set.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request to {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error("{url} answered HTTP {status}; redirects are not followed")]
    Redirect { url: String, status: u16 },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent a body larger than {max_bytes} bytes")]
    TooLarge { url: String, max_bytes: usize },
    #[error("{url} sent a body that is not JSON")]
    NotJson { url: String },
    #[error("{url}: {detail}")]
    Document { url: String, detail: String },
}

/// Checks that a key URL is absolute and uses HTTPS, or HTTP when `allow_http` is set.
pub(super) fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("key URL {url:?} is invalid: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => Err(format!(
            "key URL {url:?} uses http: use https, or set allow_http = true for a loopback or test source"
        )),
        other => Err(format!("key URL {url:?} has the scheme {other:?}: use https")),
    }
}

/// Returns the cache lifetime from `Cache-Control`: `max-age` clamped to the configured bounds,
/// the minimum for `no-store`, `no-cache` or no `max-age`.
fn cache_lifetime(headers: &HeaderMap, cache: &CacheSettings) -> i64 {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return cache.min_ttl_seconds as i64;
            }
            if let Some(seconds) = lower.strip_prefix("max-age=") {
                max_age = seconds.trim_matches('"').parse::<u64>().ok();
            }
        }
    }
    let seconds = max_age
        .unwrap_or(cache.min_ttl_seconds)
        .clamp(cache.min_ttl_seconds, cache.max_ttl_seconds);
    i64::try_from(seconds).unwrap_or(i64::MAX / 4)
}

impl RemoteKeys {
    pub fn new(
        adapter: &str,
        location: KeyLocation,
        settings: &JwtSettings,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        check_url(location.url(), settings.allow_http)?;
        Ok(Self {
            adapter: adapter.to_owned(),
            location,
            issuers: settings.issuers.clone(),
            allow_http: settings.allow_http,
            cache: settings.cache.clone(),
            http,
            state: Mutex::new(CacheState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn cooldown(&self) -> i64 {
        i64::try_from(self.cache.refetch_cooldown_seconds).unwrap_or(i64::MAX / 4)
    }

    fn stale(&self) -> i64 {
        i64::try_from(self.cache.stale_seconds).unwrap_or(i64::MAX / 4)
    }

    /// Decides from the cache alone. With `may_fetch` false (after a fetch) the result is final.
    fn decide(
        &self,
        state: &CacheState,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: i64,
        may_fetch: bool,
    ) -> Decision {
        let cooldown_over = state
            .last_attempt
            .is_none_or(|at| now >= at.saturating_add(self.cooldown()));
        let usable = state
            .keys
            .as_ref()
            .filter(|set| now < set.fresh_until.saturating_add(self.stale()));
        let Some(set) = usable else {
            return if may_fetch && cooldown_over {
                Decision::Fetch
            } else {
                Decision::Unavailable
            };
        };
        let expired = now >= set.fresh_until;
        // An expired set is refetched at once when the last fetch succeeded. After a failure,
        // retries wait for the cooldown, and the stale set serves meanwhile.
        if expired && may_fetch && (state.last_error.is_none() || cooldown_over) {
            return Decision::Fetch;
        }
        if let Some(key) = select_key(&set.keys, kid, algorithm) {
            return Decision::Found(key);
        }
        let known_unknown = kid.is_some_and(|kid| state.unknown_kids.contains(kid));
        if !known_unknown && may_fetch && cooldown_over {
            return Decision::Fetch;
        }
        if state.last_error.is_some() {
            // The key may have been published while the source is down, so this is no
            // rejection.
            return Decision::Unavailable;
        }
        Decision::UnknownKey
    }

    /// Fetches the key set and stores the outcome. A failure keeps the previous set.
    async fn refresh(&self, now: i64) {
        let result = self.fetch().await;
        let mut state = self.state.lock();
        state.attempts += 1;
        state.last_attempt = Some(now);
        match result {
            Ok((keys, lifetime)) => {
                tracing::info!(adapter.name = %self.adapter, keys = keys.len(), lifetime_seconds = lifetime, "fetched the legacy key set");
                state.keys = Some(KeySet {
                    keys,
                    fresh_until: now.saturating_add(lifetime),
                });
                state.last_error = None;
                state.unknown_kids.clear();
                state.fetched_at = Some(now);
            }
            Err(error) => {
                tracing::warn!(adapter.name = %self.adapter, %error, "fetching the legacy key set failed; keeping the previous set");
                state.last_error = Some(error.to_string());
                state.failures += 1;
            }
        }
    }

    /// Fetches and parses the key set; returns the keys and the cache lifetime in seconds.
    async fn fetch(&self) -> Result<(Vec<Arc<VerifyingKey>>, i64), FetchError> {
        let (document, headers, url) = match &self.location {
            KeyLocation::Jwks(url) | KeyLocation::X509(url) => {
                let (document, headers) = self.get_json(url).await?;
                (document, headers, url.clone())
            }
            KeyLocation::Discovery(url) => {
                let jwks_uri = self.discover(url).await?;
                let (document, headers) = self.get_json(&jwks_uri).await?;
                (document, headers, jwks_uri)
            }
        };
        let keys = match &self.location {
            KeyLocation::X509(_) => self.parse_certificates(&url, &document)?,
            _ => self.parse_jwks(&url, &document)?,
        };
        if keys.is_empty() {
            return Err(FetchError::Document {
                url,
                detail: "the key set holds no usable key".to_owned(),
            });
        }
        Ok((keys, cache_lifetime(&headers, &self.cache)))
    }

    /// Reads the discovery document and returns its `jwks_uri` after checking its `issuer`.
    async fn discover(&self, url: &str) -> Result<String, FetchError> {
        let document_error = |detail: String| FetchError::Document {
            url: url.to_owned(),
            detail,
        };
        let (document, _) = self.get_json(url).await?;
        let issuer = document
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                document_error("the discovery document has no string `issuer`".to_owned())
            })?;
        if !self.issuers.iter().any(|configured| configured == issuer) {
            return Err(document_error(format!(
                "the discovery document names the issuer {issuer:?}, which is not in `issuers`"
            )));
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                document_error("the discovery document has no string `jwks_uri`".to_owned())
            })?;
        check_url(jwks_uri, self.allow_http).map_err(document_error)?;
        Ok(jwks_uri.to_owned())
    }

    fn parse_jwks(
        &self,
        url: &str,
        document: &Value,
    ) -> Result<Vec<Arc<VerifyingKey>>, FetchError> {
        let (keys, refused) = parse_key_set(document).map_err(|e| FetchError::Document {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
        for problem in &refused {
            tracing::warn!(adapter.name = %self.adapter, error = %problem, "skipping a key of the fetched JWKS");
        }
        Ok(keys.into_iter().map(Arc::new).collect())
    }

    fn parse_certificates(
        &self,
        url: &str,
        document: &Value,
    ) -> Result<Vec<Arc<VerifyingKey>>, FetchError> {
        let map = document.as_object().ok_or_else(|| FetchError::Document {
            url: url.to_owned(),
            detail: "the certificate map is not a JSON object of kid to PEM certificate".to_owned(),
        })?;
        let mut keys = Vec::new();
        for (kid, pem) in map {
            let parsed = pem
                .as_str()
                .ok_or_else(|| "the value is not a string".to_owned())
                .and_then(|pem| {
                    Certificate::from_pem(pem.trim().as_bytes()).map_err(|e| e.to_string())
                })
                .and_then(|certificate| {
                    key_from_spki(
                        &certificate.tbs_certificate.subject_public_key_info,
                        Some(kid.clone()),
                        Some(Algorithm::RS256),
                    )
                    .map_err(|e| e.to_string())
                })
                .and_then(|key| {
                    if key.accepts(Algorithm::RS256) {
                        Ok(key)
                    } else {
                        Err("the certificate key is not RSA".to_owned())
                    }
                });
            match parsed {
                Ok(key) => keys.push(Arc::new(key)),
                Err(error) => {
                    tracing::warn!(adapter.name = %self.adapter, %kid, %error, "skipping a certificate of the fetched key map");
                }
            }
        }
        Ok(keys)
    }

    /// GETs `url` and parses the body as JSON. Anything but HTTP 200-299 fails, a body past
    /// `max_bytes` is cut off and fails, and the whole exchange has `timeout_seconds`.
    async fn get_json(&self, url: &str) -> Result<(Value, HeaderMap), FetchError> {
        let request_error = |error: reqwest::Error| FetchError::Request {
            url: url.to_owned(),
            detail: if error.is_timeout() {
                format!("timed out after {} s", self.cache.timeout_seconds)
            } else {
                error.to_string()
            },
        };
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(Duration::from_secs(self.cache.timeout_seconds))
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            max_bytes: self.cache.max_bytes,
        };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.cache.max_bytes as u64) {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > self.cache.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let document = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson {
            url: url.to_owned(),
        })?;
        Ok((document, headers))
    }
}

#[async_trait::async_trait]
impl KeySource for RemoteKeys {
    async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: i64,
    ) -> Result<Arc<VerifyingKey>, Reason> {
        let observed = {
            let state = self.state.lock();
            match self.decide(&state, kid, algorithm, now, true) {
                Decision::Found(key) => return Ok(key),
                Decision::UnknownKey => return Err(Reason::UnknownKey),
                Decision::Unavailable => return Err(Reason::LegacyUnavailable),
                Decision::Fetch => state.attempts,
            }
        };

        let _fetching = self.fetch_lock.lock().await;
        let fetched_meanwhile = self.state.lock().attempts != observed;
        if !fetched_meanwhile {
            self.refresh(now).await;
        }
        let mut state = self.state.lock();
        match self.decide(&state, kid, algorithm, now, false) {
            Decision::Found(key) => Ok(key),
            Decision::UnknownKey => {
                if let Some(kid) = kid {
                    if state.unknown_kids.len() >= MAX_UNKNOWN_KIDS {
                        state.unknown_kids.clear();
                    }
                    state.unknown_kids.insert(kid.to_owned());
                }
                Err(Reason::UnknownKey)
            }
            Decision::Unavailable | Decision::Fetch => Err(Reason::LegacyUnavailable),
        }
    }

    /// Fetches the key set now, whatever the cache holds, and reports the outcome.
    fn health(&self, now: i64) -> super::keys::KeyHealth {
        let state = self.state.lock();
        super::keys::KeyHealth {
            age_seconds: state.fetched_at.map(|at| now - at),
            fetch_failures: state.failures,
        }
    }

    async fn check(&self, now: i64) -> Vec<CheckItem> {
        let _fetching = self.fetch_lock.lock().await;
        self.refresh(now).await;
        let state = self.state.lock();
        let url = self.location.url();
        match (&state.last_error, &state.keys) {
            (None, Some(set)) => vec![CheckItem::ok(format!(
                "fetched {} key(s) from {url}",
                set.keys.len()
            ))],
            (Some(error), previous) => {
                let mut items = vec![CheckItem::problem(format!("fetching keys failed: {error}"))];
                if let Some(set) = previous {
                    items.push(CheckItem::ok(format!(
                        "{} key(s) from an earlier fetch keep serving until {}",
                        set.keys.len(),
                        set.fresh_until.saturating_add(self.stale())
                    )));
                }
                items
            }
            (None, None) => vec![CheckItem::problem(format!("no key set fetched from {url}"))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(cache_control: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_str(cache_control).unwrap());
        headers
    }

    #[test]
    fn cache_lifetime_is_clamped() {
        let cache = CacheSettings::default();
        assert_eq!(
            cache_lifetime(&headers("public, max-age=21600"), &cache),
            21_600
        );
        assert_eq!(cache_lifetime(&headers("max-age=10"), &cache), 300);
        assert_eq!(cache_lifetime(&headers("max-age=999999"), &cache), 86_400);
        assert_eq!(cache_lifetime(&headers("no-store"), &cache), 300);
        assert_eq!(
            cache_lifetime(&headers("max-age=3600, no-cache"), &cache),
            300
        );
        assert_eq!(cache_lifetime(&HeaderMap::new(), &cache), 300);
    }

    #[test]
    fn key_urls_need_https() {
        assert!(check_url("https://idp.example/keys", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/keys", true).is_ok());
        let error = check_url("http://idp.example/keys", false).unwrap_err();
        assert!(error.contains("allow_http"), "{error}");
        assert!(check_url("file:///etc/passwd", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }
}
