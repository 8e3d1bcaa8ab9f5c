//! The `remote_verify` adapter kind: a legacy verify endpoint called over HTTP, such as a
//! Userfront-style verify-API-key endpoint or a custom webhook.
//!
//! The adapter's `pattern` recognises the credentials. The request carries the credential in a
//! header or a JSON body field, next to static headers (an API secret, for example). The
//! response decides: a 2xx status whose validity flag holds an accepted value is valid; a 2xx status with
//! another flag value, and 401, 403 and 404, give the configured rejection reason; any other
//! status, a network error, a timeout or a body that cannot be read is `legacy_unavailable`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{parse_settings, AdapterConfigError};
use super::introspection::{
    add_captures, check_timeout, check_url, compile_pattern, default_cache_capacity,
    default_cache_seconds, default_negative_cache_seconds, default_timeout, numeric_time, send,
    string_list, ResultCache, SecretSetting,
};
use super::{CheckItem, LegacyClaims, LegacyVerifier};
use crate::verify::Reason;

/// HTTP method of the verify request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
}

/// Location of the credential in the verify request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialLocation {
    /// In the header `credential_header`, after `credential_prefix`.
    Header,
    /// In the JSON body field `credential_field`.
    Json,
}

/// Settings of a `remote_verify` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteVerifySettings {
    /// The verify endpoint. Must be `https://` unless `allow_http` is set.
    pub url: String,
    /// Allows an `http://` URL, for loopback and tests. Default false.
    #[serde(default)]
    pub allow_http: bool,
    /// `GET`, `POST` or `PUT`. Default `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// A regex that the whole credential must match for this adapter to receive it. Named
    /// capture groups become claims.
    pub pattern: String,
    /// An example credential that matches `pattern`, used at startup to detect overlapping
    /// patterns.
    pub sample: Option<String>,

    pub credential_in: CredentialLocation,
    /// Header name for `credential_in = "header"`, such as `X-API-Key`.
    pub credential_header: Option<String>,
    /// Text put before the credential in the header, such as `Bearer `. Default empty.
    #[serde(default)]
    pub credential_prefix: String,
    /// Top-level JSON field for `credential_in = "json"`, such as `apiKey`.
    pub credential_field: Option<String>,
    /// Static JSON fields sent with the credential in a JSON body. Default none.
    #[serde(default)]
    pub body: Map<String, Value>,
    /// Static request headers, such as `Authorization = "Bearer <api secret>"`. Their values
    /// are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretSetting>,

    /// Path of the validity flag in a 2xx response: a JSON pointer (`/data/valid`) or a
    /// dot-separated path (`data.valid`). Default: none, so any 2xx response means valid.
    pub valid_field: Option<String>,
    /// Values of `valid_field` that mean valid. Default `[true]`.
    #[serde(default = "default_valid_values")]
    pub valid_values: Vec<Value>,
    /// Paths of the subject, the tenant hint, the roles (an array or a space-separated string)
    /// and the expiry (Unix seconds or RFC 3339) in the response.
    pub subject_field: Option<String>,
    pub tenant_field: Option<String>,
    pub roles_field: Option<String>,
    pub expires_field: Option<String>,
    /// Reason given for 401, 403 and 404 responses and for a 2xx response whose flag is not valid:
    /// `unknown_credential`, `revoked` or `expired`. Default `unknown_credential`.
    #[serde(default = "default_reject_reason")]
    pub reject_reason: Reason,

    /// Timeout of one request, in seconds, 1 to 60. Default 5.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How long a valid result is reused, in seconds, at most 3600, and never past the expiry.
    /// 0 turns the cache off. Default 60.
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
    /// How long a rejection is reused, in seconds, at most 3600. Default 5.
    #[serde(default = "default_negative_cache_seconds")]
    pub negative_cache_seconds: u64,
    /// Maximum number of cached results. Default 10000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
}

fn default_valid_values() -> Vec<Value> {
    vec![Value::Bool(true)]
}

fn default_reject_reason() -> Reason {
    Reason::UnknownCredential
}

/// Placement of the credential in the request, checked at build time.
#[derive(Clone, Debug)]
enum Placement {
    Header {
        name: HeaderName,
        prefix: String,
    },
    Json {
        field: String,
        body: Map<String, Value>,
    },
}

/// Paths into a 2xx response.
#[derive(Clone, Debug)]
struct ResponseFields {
    valid: Option<String>,
    valid_values: Vec<Value>,
    subject: Option<String>,
    tenant: Option<String>,
    roles: Option<String>,
    expires: Option<String>,
}

impl ResponseFields {
    fn need_body(&self) -> bool {
        self.valid.is_some()
            || self.subject.is_some()
            || self.tenant.is_some()
            || self.roles.is_some()
            || self.expires.is_some()
    }
}

/// A legacy verify endpoint.
pub struct RemoteVerifyAdapter {
    name: String,
    url: reqwest::Url,
    method: reqwest::Method,
    pattern: Regex,
    sample: Option<String>,
    placement: Placement,
    headers: HeaderMap,
    fields: ResponseFields,
    reject_reason: Reason,
    timeout: Duration,
    cache: ResultCache,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteVerifyAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are secrets, so only their names are shown.
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("RemoteVerifyAdapter")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("pattern", &self.pattern.as_str())
            .field("placement", &self.placement)
            .field("headers", &header_names)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

/// Builds a `remote_verify` adapter from its settings.
pub fn build(
    name: &str,
    settings: &Value,
    http: &reqwest::Client,
) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let settings: RemoteVerifySettings = parse_settings(name, settings)?;
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let url = check_url(name, "url", &settings.url, settings.allow_http)?;
    let pattern = compile_pattern(name, &settings.pattern, settings.sample.as_deref())?;
    let placement = placement(name, &settings)?;
    let headers = static_headers(name, &settings.headers)?;
    if let Placement::Header { name: header, .. } = &placement {
        if headers.contains_key(header) {
            return Err(error(format!(
                "`headers` must not set {header}, which carries the credential"
            )));
        }
    }
    if !matches!(
        settings.reject_reason,
        Reason::UnknownCredential | Reason::Revoked | Reason::Expired
    ) {
        return Err(error(format!(
            "`reject_reason` {} is not allowed: use unknown_credential, revoked or expired",
            settings.reject_reason
        )));
    }
    if settings.valid_values.is_empty() {
        return Err(error(
            "`valid_values` must list at least one value".to_owned(),
        ));
    }
    check_timeout(name, settings.timeout_seconds)?;
    let cache = ResultCache::new(
        name,
        settings.cache_seconds,
        settings.negative_cache_seconds,
        settings.cache_capacity,
    )?;
    let method = match settings.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
    };
    Ok(Arc::new(RemoteVerifyAdapter {
        name: name.to_owned(),
        url,
        method,
        pattern,
        sample: settings.sample,
        placement,
        headers,
        fields: ResponseFields {
            valid: settings.valid_field,
            valid_values: settings.valid_values,
            subject: settings.subject_field,
            tenant: settings.tenant_field,
            roles: settings.roles_field,
            expires: settings.expires_field,
        },
        reject_reason: settings.reject_reason,
        timeout: Duration::from_secs(settings.timeout_seconds),
        cache,
        http: http.clone(),
    }))
}

fn placement(
    adapter: &str,
    settings: &RemoteVerifySettings,
) -> Result<Placement, AdapterConfigError> {
    let error = |message: &str| AdapterConfigError::adapter(adapter, message);
    match settings.credential_in {
        CredentialLocation::Header => {
            if settings.credential_field.is_some() || !settings.body.is_empty() {
                return Err(error(
                    "`credential_field` and `body` apply only to `credential_in = \"json\"`",
                ));
            }
            let header = settings.credential_header.as_deref().ok_or_else(|| {
                error(
                    "`credential_in = \"header\"` needs `credential_header`, such as \"X-API-Key\"",
                )
            })?;
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| error("`credential_header` is not a valid header name"))?;
            Ok(Placement::Header {
                name,
                prefix: settings.credential_prefix.clone(),
            })
        }
        CredentialLocation::Json => {
            if settings.credential_header.is_some() || !settings.credential_prefix.is_empty() {
                return Err(error("`credential_header` and `credential_prefix` apply only to `credential_in = \"header\"`"));
            }
            if settings.method == HttpMethod::Get {
                return Err(error("`credential_in = \"json\"` needs method POST or PUT"));
            }
            let field = settings
                .credential_field
                .clone()
                .filter(|field| !field.is_empty())
                .ok_or_else(|| {
                    error("`credential_in = \"json\"` needs `credential_field`, such as \"apiKey\"")
                })?;
            Ok(Placement::Json {
                field,
                body: settings.body.clone(),
            })
        }
    }
}

fn static_headers(
    adapter: &str,
    headers: &BTreeMap<String, SecretSetting>,
) -> Result<HeaderMap, AdapterConfigError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            AdapterConfigError::adapter(
                adapter,
                format!("`headers` has the invalid header name {name:?}"),
            )
        })?;
        let mut header_value = HeaderValue::from_str(value.expose()).map_err(|_| {
            AdapterConfigError::adapter(
                adapter,
                format!("`headers.{name}` is not a valid header value"),
            )
        })?;
        header_value.set_sensitive(true);
        map.insert(header, header_value);
    }
    Ok(map)
}

#[async_trait::async_trait]
impl LegacyVerifier for RemoteVerifyAdapter {
    async fn verify(&self, credential: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let key = ResultCache::key(credential);
        if let Some(cached) = self.cache.get(&key, now) {
            return cached;
        }
        let result = self.call(credential, now).await.map(|mut claims| {
            add_captures(&self.pattern, credential, &mut claims.claims);
            claims
        });
        self.cache.store(key, &result, now);
        result
    }

    async fn check(&self, now: i64) -> Vec<CheckItem> {
        // A random credential cannot be valid, so a working endpoint rejects it.
        let probe = format!(
            "authbridge-check-{}",
            crate::ids::random_lowercase_alphanumeric(24)
        );
        match self.call(&probe, now).await {
            Err(Reason::LegacyUnavailable) => vec![CheckItem::problem(format!(
                "test request to verify endpoint {} failed; the daemon log has the cause",
                self.url
            ))],
            Ok(_) => vec![CheckItem::problem(format!(
                "verify endpoint {} accepted a random credential",
                self.url
            ))],
            Err(_) => vec![CheckItem::ok(format!(
                "verify endpoint {} answers and rejects a random credential",
                self.url
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

impl RemoteVerifyAdapter {
    /// Sends one verify request and interprets the response. Does not use the cache.
    async fn call(&self, credential: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let mut request = self
            .http
            .request(self.method.clone(), self.url.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .header(ACCEPT, "application/json");
        match &self.placement {
            Placement::Header { name, prefix } => {
                let mut value = HeaderValue::from_str(&format!("{prefix}{credential}"))
                    .map_err(|_| Reason::Malformed)?;
                value.set_sensitive(true);
                request = request.header(name.clone(), value);
            }
            Placement::Json { field, body } => {
                let mut body = body.clone();
                body.insert(field.clone(), Value::String(credential.to_owned()));
                request = request.json(&body);
            }
        }
        let (status, body) = send(&self.name, request).await?;
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ) {
            return Err(self.reject_reason);
        }
        if !status.is_success() {
            tracing::warn!(adapter.name = %self.name, http.status = status.as_u16(), "verify endpoint responded with an unexpected status");
            return Err(Reason::LegacyUnavailable);
        }
        let response = match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value,
            Err(_) if !self.fields.need_body() => Value::Object(Map::new()),
            Err(error) => {
                tracing::warn!(adapter.name = %self.name, %error, "verify endpoint response is not JSON");
                return Err(Reason::LegacyUnavailable);
            }
        };
        self.check_valid_flag(&response)?;
        self.claims(&response, now)
    }

    fn check_valid_flag(&self, response: &Value) -> Result<(), Reason> {
        let Some(path) = &self.fields.valid else {
            return Ok(());
        };
        match field_at(response, path) {
            Some(value) if self.fields.valid_values.contains(value) => Ok(()),
            Some(_) => Err(self.reject_reason),
            None => {
                tracing::warn!(adapter.name = %self.name, field = %path, "verify endpoint response has no validity flag; treating the credential as rejected");
                Err(self.reject_reason)
            }
        }
    }

    /// Builds the claims: the response's top-level members, then the mapped fields under `sub`,
    /// `tenant`, `roles` and `exp`, which replace members of those names.
    fn claims(&self, response: &Value, now: i64) -> Result<LegacyClaims, Reason> {
        let mut claims = response.as_object().cloned().unwrap_or_default();
        let text = |path: &Option<String>| {
            path.as_deref()
                .and_then(|p| field_at(response, p))
                .and_then(scalar_text)
        };

        let subject = text(&self.fields.subject);
        if let Some(subject) = &subject {
            claims.insert("sub".to_owned(), Value::String(subject.clone()));
        }
        if let Some(tenant) = text(&self.fields.tenant) {
            claims.insert("tenant".to_owned(), Value::String(tenant));
        }
        if let Some(path) = &self.fields.roles {
            let roles = string_list(field_at(response, path));
            claims.insert("roles".to_owned(), Value::from(roles));
        }
        let expires_at = match &self.fields.expires {
            None => None,
            Some(path) => match field_at(response, path) {
                None | Some(Value::Null) => None,
                Some(value) => Some(expiry(value).ok_or_else(|| {
                    tracing::warn!(adapter.name = %self.name, field = %path, "verify endpoint response has an unreadable expiry");
                    Reason::LegacyUnavailable
                })?),
            },
        };
        if let Some(exp) = expires_at {
            if exp <= now {
                return Err(Reason::Expired);
            }
            claims.insert("exp".to_owned(), Value::from(exp));
        }
        Ok(LegacyClaims {
            subject,
            claims,
            expires_at,
            ..Default::default()
        })
    }
}

/// Reads a JSON pointer (`/data/valid`) or a dot-separated path (`data.valid`, with array
/// indexes as numbers).
fn field_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') {
        return root.pointer(path);
    }
    path.split('.')
        .try_fold(root, |current, part| match current {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Reads an expiry: Unix seconds or an RFC 3339 timestamp.
fn expiry(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => crate::clock::parse_rfc3339(text),
        other => numeric_time(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: Value) -> Value {
        let mut base = json!({
            "url": "https://legacy.example/verify",
            "pattern": "key_[a-z0-9]+",
            "credential_in": "json",
            "credential_field": "apiKey",
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    }

    fn build_error(extra: Value) -> String {
        match build("legacy", &settings(extra), &reqwest::Client::new()) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("the settings were accepted"),
        }
    }

    #[test]
    fn field_paths_and_pointers() {
        let response = json!({"data": {"valid": true, "roles": ["a", "b"]}});
        assert_eq!(field_at(&response, "data.valid"), Some(&json!(true)));
        assert_eq!(field_at(&response, "/data/valid"), Some(&json!(true)));
        assert_eq!(field_at(&response, "data.roles.1"), Some(&json!("b")));
        assert_eq!(field_at(&response, "data.missing"), None);
    }

    #[test]
    fn expiry_accepts_seconds_and_rfc3339() {
        assert_eq!(expiry(&json!(1_704_067_200)), Some(1_704_067_200));
        assert_eq!(expiry(&json!("2024-01-01T00:00:00Z")), Some(1_704_067_200));
        assert_eq!(expiry(&json!("tomorrow")), None);
    }

    #[test]
    fn json_placement_rejects_get() {
        let error = build_error(json!({"method": "GET"}));
        assert!(error.contains("POST or PUT"), "{error}");
    }

    #[test]
    fn header_placement_needs_header_name() {
        let error = build_error(json!({"credential_in": "header", "credential_field": null}));
        assert!(error.contains("credential_header"), "{error}");
    }

    #[test]
    fn reject_reason_is_limited() {
        let error = build_error(json!({"reject_reason": "valid"}));
        assert!(error.contains("reject_reason"), "{error}");
    }

    #[test]
    fn unknown_setting_is_named() {
        let error = build_error(json!({"valid_flag": "valid"}));
        assert!(error.contains("valid_flag"), "{error}");
    }

    #[test]
    fn debug_hides_header_values() {
        let settings: RemoteVerifySettings = serde_json::from_value(settings(
            json!({"headers": {"Authorization": "Bearer top-secret"}}),
        ))
        .unwrap();
        let text = format!("{settings:?}");
        assert!(!text.contains("top-secret"), "{text}");
    }
}
