//! The `introspection` adapter kind: opaque legacy access tokens checked at the legacy OAuth
//! server's token introspection endpoint (RFC 7662).
//!
//! The adapter's `pattern` recognises the tokens. Each token is sent as `token=...` in a form
//! POST, with client authentication. The response decides: `active: true` is valid (after the
//! `exp`, `nbf` and audience checks), `active: false` is a rejection, and anything else
//! (network error, timeout, a non-2xx status, a body that is not an introspection response)
//! is `legacy_unavailable`, never a rejection.
//!
//! This file also contains the parts that the `remote_verify` kind shares: the recognition
//! pattern, the endpoint URL check, the HTTP exchange with its failure logging, and the
//! result cache.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use regex::Regex;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::config::{parse_settings, AdapterConfigError};
use super::{CheckItem, LegacyClaims, LegacyVerifier};
use crate::verify::Reason;

/// Largest request timeout an adapter may configure, in seconds.
pub(super) const MAX_TIMEOUT_SECONDS: u64 = 60;
/// Longest time a valid result may be cached, in seconds. A longer cache would keep a token
/// valid that long after the legacy server revoked it.
pub(super) const MAX_CACHE_SECONDS: u64 = 3600;
/// Largest response body read from a legacy source, in bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Capture group name that is never copied into the claims, so that the secret part of a key
/// does not travel further than the verifier.
const SECRET_CAPTURE: &str = "secret";

/// A secret setting (a client secret, a bearer token, a header value) that `Debug` redacts.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(String);

impl SecretSetting {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// Client authentication method at the introspection endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `Authorization: Basic` with the form-encoded client id and secret (RFC 6749 section 2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form parameters next to `token`.
    ClientSecretPost,
}

/// Settings of an `introspection` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSettings {
    /// The RFC 7662 endpoint. Must be `https://` unless `allow_http` is set.
    pub endpoint: String,
    /// Allows an `http://` endpoint, for loopback and tests. Default false.
    #[serde(default)]
    pub allow_http: bool,
    /// Client credentials for the endpoint; give both, or `token` instead.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretSetting>,
    /// Method of sending `client_id` and `client_secret`. Default `client_secret_basic`.
    pub auth_method: Option<AuthMethod>,
    /// A bearer token for the endpoint, in place of client credentials.
    pub token: Option<SecretSetting>,
    /// A regex that the whole token must match for this adapter to receive it. Named capture
    /// groups become claims.
    pub pattern: String,
    /// An example token that matches `pattern`, used at startup to detect overlapping patterns.
    pub sample: Option<String>,
    /// Sent as `token_type_hint`, such as `access_token`. Default: not sent.
    pub token_type_hint: Option<String>,
    /// Accepted audiences: when set, the response's `aud` must contain one. Default: no check.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Timeout of one introspection request, in seconds, 1 to 60. Default 5.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How long an active result is reused, in seconds, at most 3600, and never past the token's
    /// `exp`. 0 turns the cache off. Default 60.
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
    /// How long an inactive result is reused, in seconds, at most 3600. Default 5.
    #[serde(default = "default_negative_cache_seconds")]
    pub negative_cache_seconds: u64,
    /// Maximum number of cached results. Default 10000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
}

pub(super) fn default_timeout() -> u64 {
    5
}

pub(super) fn default_cache_seconds() -> u64 {
    60
}

pub(super) fn default_negative_cache_seconds() -> u64 {
    5
}

pub(super) fn default_cache_capacity() -> usize {
    10_000
}

#[derive(Clone, Debug)]
enum ClientAuth {
    Basic {
        client_id: String,
        secret: SecretSetting,
    },
    Post {
        client_id: String,
        secret: SecretSetting,
    },
    Bearer(SecretSetting),
}

/// A legacy OAuth server's introspection endpoint.
#[derive(Debug)]
pub struct IntrospectionAdapter {
    name: String,
    endpoint: reqwest::Url,
    auth: ClientAuth,
    pattern: Regex,
    sample: Option<String>,
    token_type_hint: Option<String>,
    audiences: Vec<String>,
    timeout: Duration,
    cache: ResultCache,
    http: reqwest::Client,
}

/// Builds an `introspection` adapter from its settings.
pub fn build(
    name: &str,
    settings: &Value,
    http: &reqwest::Client,
) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let settings: IntrospectionSettings = parse_settings(name, settings)?;
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let endpoint = check_url(name, "endpoint", &settings.endpoint, settings.allow_http)?;
    let auth = match (settings.client_id, settings.client_secret, settings.token) {
        (Some(client_id), Some(secret), None) => match settings.auth_method.unwrap_or_default() {
            AuthMethod::ClientSecretBasic => ClientAuth::Basic { client_id, secret },
            AuthMethod::ClientSecretPost => ClientAuth::Post { client_id, secret },
        },
        (None, None, Some(token)) if settings.auth_method.is_none() => ClientAuth::Bearer(token),
        (None, None, Some(_)) => {
            return Err(error("`auth_method` applies to `client_id` and `client_secret`, not to `token`".to_owned()))
        }
        _ => {
            return Err(error(
                "set either `client_id` and `client_secret`, or `token`, to authenticate to the introspection endpoint".to_owned(),
            ))
        }
    };
    let pattern = compile_pattern(name, &settings.pattern, settings.sample.as_deref())?;
    check_timeout(name, settings.timeout_seconds)?;
    let cache = ResultCache::new(
        name,
        settings.cache_seconds,
        settings.negative_cache_seconds,
        settings.cache_capacity,
    )?;
    Ok(Arc::new(IntrospectionAdapter {
        name: name.to_owned(),
        endpoint,
        auth,
        pattern,
        sample: settings.sample,
        token_type_hint: settings.token_type_hint,
        audiences: settings.audiences,
        timeout: Duration::from_secs(settings.timeout_seconds),
        cache,
        http: http.clone(),
    }))
}

#[async_trait::async_trait]
impl LegacyVerifier for IntrospectionAdapter {
    async fn verify(&self, token: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let key = ResultCache::key(token);
        if let Some(cached) = self.cache.get(&key, now) {
            return cached;
        }
        let result = self.introspect(token, now).await.map(|mut claims| {
            add_captures(&self.pattern, token, &mut claims.claims);
            claims
        });
        self.cache.store(key, &result, now);
        result
    }

    async fn check(&self, now: i64) -> Vec<CheckItem> {
        // A random token cannot be active, so a working endpoint returns `active: false`.
        let probe = format!(
            "authbridge-check-{}",
            crate::ids::random_lowercase_alphanumeric(24)
        );
        match self.introspect(&probe, now).await {
            Err(Reason::LegacyUnavailable) => vec![CheckItem::problem(format!(
                "test request to introspection endpoint {} failed; the daemon log has the cause",
                self.endpoint
            ))],
            Ok(_) => vec![CheckItem::problem(format!(
                "introspection endpoint {} reported a random token as active",
                self.endpoint
            ))],
            Err(_) => vec![CheckItem::ok(format!(
                "introspection endpoint {} answers and reports a random token as inactive",
                self.endpoint
            ))],
        }
    }

    fn pattern(&self) -> Option<&Regex> {
        Some(&self.pattern)
    }

    fn sample(&self) -> Option<&str> {
        self.sample.as_deref()
    }
}

impl IntrospectionAdapter {
    /// Sends one introspection request and interprets the response. Does not use the cache.
    async fn introspect(&self, token: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let mut form: Vec<(&str, &str)> = vec![("token", token)];
        if let Some(hint) = &self.token_type_hint {
            form.push(("token_type_hint", hint));
        }
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.timeout)
            .header(ACCEPT, "application/json");
        match &self.auth {
            ClientAuth::Basic { client_id, secret } => {
                request = request.header(
                    AUTHORIZATION,
                    basic_authorization(client_id, secret.expose()),
                );
            }
            ClientAuth::Post { client_id, secret } => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose()));
            }
            ClientAuth::Bearer(bearer) => request = request.bearer_auth(bearer.expose()),
        }
        let (status, body) = send(&self.name, request.form(&form)).await?;
        if !status.is_success() {
            tracing::warn!(adapter.name = %self.name, http.status = status.as_u16(), "introspection endpoint responded with an error status");
            return Err(Reason::LegacyUnavailable);
        }
        let Some(response) = parse_object(&body) else {
            tracing::warn!(adapter.name = %self.name, "introspection response is not a JSON object");
            return Err(Reason::LegacyUnavailable);
        };
        let Some(active) = response.get("active").and_then(Value::as_bool) else {
            tracing::warn!(adapter.name = %self.name, "introspection response has no boolean `active` member");
            return Err(Reason::LegacyUnavailable);
        };
        if !active {
            return Err(inactive_reason(&response, now));
        }
        self.active_claims(response, now)
    }

    /// Checks the times and audience of an active response and turns it into claims.
    fn active_claims(
        &self,
        response: Map<String, Value>,
        now: i64,
    ) -> Result<LegacyClaims, Reason> {
        let time = |name: &str| {
            match response.get(name) {
            None => Ok(None),
            Some(value) => numeric_time(value).map(Some).ok_or_else(|| {
                tracing::warn!(adapter.name = %self.name, claim = name, "introspection response has a non-numeric time");
                Reason::LegacyUnavailable
            }),
        }
        };
        let expires_at = time("exp")?;
        let issued_at = time("iat")?;
        if expires_at.is_some_and(|exp| exp <= now) {
            return Err(Reason::Expired);
        }
        if time("nbf")?.is_some_and(|nbf| nbf > now) {
            return Err(Reason::NotYetValid);
        }
        let audience = string_list(response.get("aud"));
        if !self.audiences.is_empty() && !audience.iter().any(|a| self.audiences.contains(a)) {
            return Err(Reason::WrongAudience);
        }
        let text = |name: &str| {
            response
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(LegacyClaims {
            // Client-credentials tokens often carry no `sub`; the client is then the subject.
            subject: text("sub").or_else(|| text("client_id")),
            issuer: text("iss"),
            scope: text("scope"),
            audience,
            issued_at,
            expires_at,
            claims: response,
        })
    }
}

/// Chooses the reason for an inactive token. RFC 7662 section 2.2 gives no cause for
/// `active: false`, so the reason is `revoked` only when the response states it (a `revoked: true`
/// or `status: "revoked"` member, which some servers add), `expired` when its `exp` is past, and
/// `unknown_credential` otherwise.
fn inactive_reason(response: &Map<String, Value>, now: i64) -> Reason {
    let revoked = response.get("revoked").and_then(Value::as_bool) == Some(true)
        || response.get("status").and_then(Value::as_str) == Some("revoked");
    if revoked {
        return Reason::Revoked;
    }
    if response
        .get("exp")
        .and_then(numeric_time)
        .is_some_and(|exp| exp <= now)
    {
        return Reason::Expired;
    }
    Reason::UnknownCredential
}

/// Returns the `Authorization: Basic` value for client credentials, each form-encoded first as
/// RFC 6749 section 2.3.1 requires.
fn basic_authorization(client_id: &str, secret: &str) -> String {
    let encode = |text: &str| form_urlencode(text);
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)))
    )
}

fn form_urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .map(|encoded| encoded.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

// Parts shared with the `remote_verify` kind.

/// Checks an endpoint URL: absolute, `https://` unless `allow_http`, no credentials in it.
pub(super) fn check_url(
    adapter: &str,
    key: &str,
    text: &str,
    allow_http: bool,
) -> Result<reqwest::Url, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(adapter, message);
    let url =
        reqwest::Url::parse(text).map_err(|e| error(format!("`{key}` is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(error(format!(
                "`{key}` must use https://; set `allow_http = true` only for loopback or tests"
            )))
        }
        other => {
            return Err(error(format!(
                "`{key}` has the unsupported scheme {other:?}: use https://"
            )))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error(format!(
            "`{key}` must not contain credentials: use the adapter's credential settings"
        )));
    }
    Ok(url)
}

pub(super) fn check_timeout(adapter: &str, seconds: u64) -> Result<(), AdapterConfigError> {
    if (1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
        Ok(())
    } else {
        Err(AdapterConfigError::adapter(
            adapter,
            format!("`timeout_seconds` must be between 1 and {MAX_TIMEOUT_SECONDS}"),
        ))
    }
}

/// Compiles a recognition pattern, anchored so that it must match the whole credential, and
/// checks that `sample` (when given) matches it.
pub(super) fn compile_pattern(
    adapter: &str,
    pattern: &str,
    sample: Option<&str>,
) -> Result<Regex, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(adapter, message);
    if pattern.is_empty() {
        return Err(error("`pattern` must not be empty".to_owned()));
    }
    let regex = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| error(format!("`pattern` is not a valid regex: {e}")))?;
    if let Some(sample) = sample {
        if !regex.is_match(sample) {
            return Err(error("`sample` does not match `pattern`".to_owned()));
        }
    }
    Ok(regex)
}

/// Adds the named captures of `pattern` in `credential` to `claims`: each under
/// `pattern.<name>`, and under `<name>` unless the source already returned a claim of that name.
/// A group named `secret` is left out.
pub(super) fn add_captures(pattern: &Regex, credential: &str, claims: &mut Map<String, Value>) {
    let Some(captures) = pattern.captures(credential) else {
        return;
    };
    let mut found = Map::new();
    for name in pattern.capture_names().flatten() {
        if name == SECRET_CAPTURE {
            continue;
        }
        if let Some(value) = captures.name(name) {
            found.insert(name.to_owned(), Value::String(value.as_str().to_owned()));
        }
    }
    for (name, value) in &found {
        claims.entry(name.clone()).or_insert_with(|| value.clone());
    }
    claims.insert("pattern".to_owned(), Value::Object(found));
}

/// Sends a request to a legacy source and reads the body. A network error, a timeout or an
/// oversized body is logged and gives `legacy_unavailable`.
pub(super) async fn send(
    adapter: &str,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Vec<u8>), Reason> {
    let mut response = request.send().await.map_err(|error| {
        tracing::warn!(adapter.name = %adapter, timed_out = error.is_timeout(), %error, "legacy source request failed");
        Reason::LegacyUnavailable
    })?;
    let status = response.status();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    tracing::warn!(adapter.name = %adapter, max_bytes = MAX_RESPONSE_BYTES, "legacy source response is too large");
                    return Err(Reason::LegacyUnavailable);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((status, body)),
            Err(error) => {
                tracing::warn!(adapter.name = %adapter, timed_out = error.is_timeout(), %error, "reading the legacy source response failed");
                return Err(Reason::LegacyUnavailable);
            }
        }
    }
}

/// Parses a body as a JSON object.
pub(super) fn parse_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Reads a time in Unix seconds; a fractional value is rounded down.
pub(super) fn numeric_time(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

/// A claim as a list of strings: an array of strings, or a space-separated string.
pub(super) fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A cache of a legacy source's results, keyed by the SHA-256 of the credential so that the
/// credential itself is never kept. Times come from the caller's clock. The bounded moka cache
/// evicts in constant time per insert. It admits a new key only when that key is used about as
/// often as the entry it would evict, so a flood of one-off invalid credentials does not push out
/// the results of credentials in regular use.
#[derive(Debug)]
pub(super) struct ResultCache {
    positive_seconds: i64,
    negative_seconds: i64,
    entries: moka::sync::Cache<[u8; 32], Arc<CachedResult>>,
}

#[derive(Debug)]
struct CachedResult {
    result: Result<LegacyClaims, Reason>,
    /// Unix time from which the entry is no longer used.
    until: i64,
}

impl ResultCache {
    pub(super) fn new(
        adapter: &str,
        positive_seconds: u64,
        negative_seconds: u64,
        capacity: usize,
    ) -> Result<Self, AdapterConfigError> {
        let error = |message: String| AdapterConfigError::adapter(adapter, message);
        if positive_seconds > MAX_CACHE_SECONDS || negative_seconds > MAX_CACHE_SECONDS {
            return Err(error(format!(
                "`cache_seconds` and `negative_cache_seconds` must be at most {MAX_CACHE_SECONDS}"
            )));
        }
        if capacity == 0 {
            return Err(error("`cache_capacity` must be at least 1".to_owned()));
        }
        // The entries' own `until` decides on the caller's clock; the time to live only lets
        // moka drop entries that can no longer be used.
        let longest = positive_seconds.max(negative_seconds).max(1);
        Ok(Self {
            positive_seconds: positive_seconds as i64,
            negative_seconds: negative_seconds as i64,
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(Duration::from_secs(longest))
                .build(),
        })
    }

    pub(super) fn key(credential: &str) -> [u8; 32] {
        Sha256::digest(credential.as_bytes()).into()
    }

    /// Returns the cached result for `key` if it is still current at `now`.
    pub(super) fn get(&self, key: &[u8; 32], now: i64) -> Option<Result<LegacyClaims, Reason>> {
        let entry = self.entries.get(key)?;
        if now < entry.until {
            return Some(entry.result.clone());
        }
        self.entries.invalidate(key);
        None
    }

    /// Stores a result: a valid one until its `exp` or for the positive time, whichever is
    /// sooner, and a rejection for the negative time. `legacy_unavailable` is never stored.
    pub(super) fn store(&self, key: [u8; 32], result: &Result<LegacyClaims, Reason>, now: i64) {
        let until = match result {
            Ok(claims) => {
                let limit = now + self.positive_seconds;
                claims.expires_at.map_or(limit, |exp| exp.min(limit))
            }
            Err(reason) if reason.is_unavailable() => return,
            Err(_) => now + self.negative_seconds,
        };
        if until <= now {
            return;
        }
        self.entries.insert(
            key,
            Arc::new(CachedResult {
                result: result.clone(),
                until,
            }),
        );
    }

    /// Returns the number of cached results, after pending evictions ran.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn inactive_reason_prefers_explicit_revocation() {
        let now = 1_000;
        assert_eq!(
            inactive_reason(
                &object(json!({"active": false, "revoked": true, "exp": 10})),
                now
            ),
            Reason::Revoked
        );
        assert_eq!(
            inactive_reason(&object(json!({"active": false, "status": "revoked"})), now),
            Reason::Revoked
        );
        assert_eq!(
            inactive_reason(&object(json!({"active": false, "exp": 999})), now),
            Reason::Expired
        );
        assert_eq!(
            inactive_reason(&object(json!({"active": false, "exp": 2_000})), now),
            Reason::UnknownCredential
        );
        assert_eq!(
            inactive_reason(&object(json!({"active": false})), now),
            Reason::UnknownCredential
        );
    }

    #[test]
    fn pattern_is_anchored() {
        let regex = compile_pattern("a", "tok_[a-z]+", None).unwrap();
        assert!(regex.is_match("tok_abc"));
        assert!(!regex.is_match("xtok_abc"));
        assert!(!regex.is_match("tok_abc!"));
    }

    #[test]
    fn sample_must_match_pattern() {
        let error = compile_pattern("a", "tok_[a-z]+", Some("tok_123")).unwrap_err();
        assert!(
            error.to_string().contains("`sample` does not match"),
            "{error}"
        );
    }

    #[test]
    fn captures_become_claims_except_secret() {
        let regex = compile_pattern(
            "a",
            "(?P<kind>tok)_(?P<tenant>[a-z]+)_(?P<secret>[0-9]+)",
            None,
        )
        .unwrap();
        let mut claims = object(json!({"kind": "from-source"}));
        add_captures(&regex, "tok_abc_123", &mut claims);
        assert_eq!(claims["kind"], json!("from-source"));
        assert_eq!(claims["tenant"], json!("abc"));
        assert_eq!(claims["pattern"], json!({"kind": "tok", "tenant": "abc"}));
        assert!(!claims.contains_key("secret"));
    }

    #[test]
    fn http_endpoint_needs_allow_http() {
        let error = check_url("a", "endpoint", "http://127.0.0.1/introspect", false).unwrap_err();
        assert!(error.to_string().contains("https://"), "{error}");
        assert!(check_url("a", "endpoint", "http://127.0.0.1/introspect", true).is_ok());
    }

    #[test]
    fn basic_authorization_form_encodes() {
        let value = basic_authorization("client:1", "s&cret");
        let decoded = STANDARD.decode(value.trim_start_matches("Basic ")).unwrap();
        assert_eq!(decoded, b"client%3A1:s%26cret");
    }

    #[test]
    fn cache_bounds_positive_entries_by_exp() {
        let cache = ResultCache::new("a", 60, 5, 10).unwrap();
        let key = ResultCache::key("tok");
        let claims = LegacyClaims {
            expires_at: Some(1_030),
            ..Default::default()
        };
        cache.store(key, &Ok(claims), 1_000);
        assert!(cache.get(&key, 1_029).is_some());
        assert!(cache.get(&key, 1_030).is_none());
    }

    #[test]
    fn cache_stays_within_capacity_under_flood() {
        let cache = ResultCache::new("a", 60, 5, 100).unwrap();
        for index in 0..10_000 {
            let key = ResultCache::key(&format!("guess-{index}"));
            cache.store(key, &Err(Reason::UnknownCredential), 1_000);
        }
        let cached = cache.len();
        assert!(cached <= 100, "{cached} results cached, capacity 100");
    }

    #[test]
    fn cache_skips_unavailable_answers() {
        let cache = ResultCache::new("a", 60, 5, 10).unwrap();
        let key = ResultCache::key("tok");
        cache.store(key, &Err(Reason::LegacyUnavailable), 1_000);
        assert!(cache.get(&key, 1_000).is_none());
        cache.store(key, &Err(Reason::UnknownCredential), 1_000);
        assert!(matches!(
            cache.get(&key, 1_004),
            Some(Err(Reason::UnknownCredential))
        ));
        assert!(cache.get(&key, 1_005).is_none());
    }

    #[test]
    fn debug_redacts_secrets() {
        let settings: IntrospectionSettings = serde_json::from_value(json!({
            "endpoint": "https://idp.example/introspect",
            "client_id": "bridge",
            "client_secret": "very-secret",
            "pattern": "tok_.+"
        }))
        .unwrap();
        let text = format!("{settings:?}");
        assert!(!text.contains("very-secret"), "{text}");
    }
}
