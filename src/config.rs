//! Configuration: built-in defaults, then a TOML file, then `AUTHBRIDGE_<SECTION>__<KEY>`
//! environment variables, merged with figment. Unknown keys are errors that name the key.
//!
//! Every field documents its default; `docs/configuration.md` lists them all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::jose::Algorithm;

/// The default configuration file, read when it exists and `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/authbridge.toml";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub security: SecurityConfig,
    pub signing: SigningConfig,
    pub tokens: TokenConfig,
    pub api_keys: ApiKeyConfig,
    pub logging: LoggingConfig,
    pub audit: AuditConfig,
    pub progress: ProgressConfig,
    pub rate_limit: RateLimitConfig,
    /// Legacy sources, one `[[adapters]]` table each; see `docs/adapters.md`. Default: none.
    pub adapters: AdapterEntries,
}

/// The raw `[[adapters]]` tables. They are checked by [`crate::legacy::Adapters::build`], where
/// each kind has its own keys. `Debug` shows only the names, because entries can hold secrets.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdapterEntries(pub Vec<serde_json::Value>);

impl std::fmt::Debug for AdapterEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .0
            .iter()
            .map(|entry| {
                entry
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
            })
            .collect();
        f.debug_tuple("AdapterEntries").field(&names).finish()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The `iss` of issued tokens and the base of the metadata URLs. Default `http://` followed by
    /// the listen address.
    pub issuer: Option<String>,
    /// Maximum request body size in bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Seconds that in-flight requests get to finish after SIGTERM or Ctrl-C. Default 30.
    pub shutdown_grace_seconds: u64,
    /// Maximum total size of a request's header fields in bytes, each counted as `name: value`
    /// and CRLF. Larger requests get 431. Default 16384.
    pub max_header_bytes: usize,
    /// Maximum number of header fields in a request. More get 431. Default 100.
    pub max_headers: usize,
    /// Seconds a client has to send a complete request head (request line and headers),
    /// including the wait for the next request on an idle keep-alive connection. Default 30.
    pub header_read_timeout_seconds: u64,
    /// Maximum number of open client connections. Further connections wait in the listen
    /// backlog until one closes. Default 10000.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            max_body_bytes: 64 * 1024,
            shutdown_grace_seconds: 30,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout_seconds: 30,
            max_connections: 10_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH` or `postgres://...`. Default: `authbridge.db` in `data_dir`.
    pub url: Option<String>,
    /// Directory for the SQLite database and the development master key. Default `data`.
    pub data_dir: PathBuf,
    /// Maximum connections in the pool. Default 10.
    pub max_connections: u32,
    /// Seconds to wait for a connection before failing. Default 5.
    pub connect_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("data"),
            max_connections: 10,
            connect_timeout_seconds: 5,
        }
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The master key that encrypts private signing keys and the pepper at rest: 32 bytes in
    /// base64. Usually set through `AUTHBRIDGE_SECURITY__MASTER_KEY`. Default: none.
    pub master_key: Option<String>,
    /// A file holding the master key in base64. Default: none. Without `master_key` and
    /// `master_key_file`, a development key is generated in `data_dir/master.key` with a warning.
    pub master_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("master_key_file", &self.master_key_file)
            .finish()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// Algorithm of newly generated signing keys: `RS256`, `PS256`, `ES256` or `EdDSA`.
    /// Default `RS256`. Changing it takes effect at the next rotation.
    pub algorithm: Algorithm,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RS256,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of issued access tokens in seconds. Default 3600.
    pub lifetime_seconds: i64,
    /// `aud` of tokens requested without `audience` or `resource`. Default: the issuer.
    pub default_audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds, at most 60. Default 60.
    pub leeway_seconds: i64,
    /// Maximum lifetime of a `private_key_jwt` client assertion in seconds. Default 300.
    pub max_assertion_lifetime_seconds: i64,
    /// Maximum size of a presented credential in bytes. Default 8192.
    pub max_credential_bytes: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            lifetime_seconds: 3600,
            default_audience: None,
            leeway_seconds: 60,
            max_assertion_lifetime_seconds: 300,
            max_credential_bytes: 8192,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyConfig {
    /// Prefix of native API keys: 2 to 16 lowercase letters and digits. Default `ab`.
    pub prefix: String,
    /// Seconds a verified API key stays in the in-memory cache; a revocation made on another
    /// instance takes effect within this time. Default 10.
    pub cache_ttl_seconds: u64,
    /// Maximum number of API keys in the cache. Default 100000.
    pub cache_capacity: u64,
}

impl Default for ApiKeyConfig {
    fn default() -> Self {
        Self {
            prefix: "ab".to_owned(),
            cache_ttl_seconds: 10,
            cache_capacity: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Log filter in `tracing` syntax, overridden by `RUST_LOG`. Default `info`.
    pub level: String,
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Limits on repeated failed credential checks per client address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Failed credential checks one client address may make per window before its requests to
    /// the endpoints that check credentials get 429; 0 turns limiting off. Default 100.
    pub failures_per_window: u32,
    /// Length of the window in seconds. Default 60.
    pub window_seconds: u64,
    /// Proxies, as IP addresses or CIDR networks, whose `X-Forwarded-For` header names the
    /// client address that failures are counted under. Default: none, so the TCP peer counts.
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            failures_per_window: 100,
            window_seconds: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimitConfig {
    /// Parses `trusted_proxies`; a bare address is a network of one address.
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "rate_limit.trusted_proxies entry {text:?} is not an IP address or CIDR network such as 10.0.0.0/8"
                        ))
                    })
            })
            .collect()
    }
}

/// How the audit trail is written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `batched` (a writer task commits events in batches; a crash loses the events not yet
    /// committed) or `sync` (each request waits until its event is committed). Default `batched`.
    pub mode: AuditMode,
    /// Maximum events per transaction. Default 256.
    pub batch_size: usize,
    /// Milliseconds a batched event waits for more events before its batch is written.
    /// Default 50.
    pub flush_interval_ms: u64,
    /// Maximum events waiting to be written; a full queue makes requests wait. Default 10000.
    pub queue_capacity: usize,
    /// Milliseconds a request waits for room in a full queue before it fails with 503.
    /// Default 1000.
    pub enqueue_timeout_ms: u64,
    /// Days events are kept; older ones are pruned hourly. 0 keeps them forever. Default 0.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            mode: AuditMode::Batched,
            batch_size: 256,
            flush_interval_ms: 50,
            queue_capacity: 10_000,
            enqueue_timeout_ms: 1000,
            retention_days: 0,
        }
    }
}

/// Migration progress reports and the dashboard.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgressConfig {
    /// Days without any legacy credential use after which a tenant counts as ready for the
    /// `enforce` phase. Default 7.
    pub ready_after_days: u32,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        Self {
            ready_after_days: 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditMode {
    Batched,
    Sync,
}

/// A configuration that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found: pass an existing file with --config")]
    FileNotFound { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(messages.join("; "))
    }
}

impl Config {
    /// Loads defaults, then the file (`path`, or the default path when it exists), then the
    /// process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, Env::prefixed("AUTHBRIDGE_"))
    }

    fn load_with_env(path: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(path) if !path.exists() => {
                return Err(ConfigError::FileNotFound {
                    path: path.to_owned(),
                })
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => {
                let default = Path::new(DEFAULT_CONFIG_PATH);
                if default.exists() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        // Only `SECTION__KEY` variables are configuration; others with the prefix, such as the
        // test suite's database URLs, are left alone.
        let env = env.filter(|key| key.as_str().contains("__")).split("__");
        let config: Config = figment.merge(env).extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a configuration from TOML text alone, for tests.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.api_keys.prefix;
        let prefix_ok = (2..=16).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !prefix_ok {
            return Err(ConfigError::Invalid(format!(
                "api_keys.prefix {prefix:?} must be 2 to 16 lowercase letters and digits"
            )));
        }
        if !(0..=60).contains(&self.tokens.leeway_seconds) {
            return Err(ConfigError::Invalid(format!(
                "tokens.leeway_seconds {} must be between 0 and 60",
                self.tokens.leeway_seconds
            )));
        }
        if !(60..=86_400).contains(&self.tokens.lifetime_seconds) {
            return Err(ConfigError::Invalid(format!(
                "tokens.lifetime_seconds {} must be between 60 and 86400",
                self.tokens.lifetime_seconds
            )));
        }
        if self.tokens.max_assertion_lifetime_seconds < 1 {
            return Err(ConfigError::Invalid(
                "tokens.max_assertion_lifetime_seconds must be at least 1".to_owned(),
            ));
        }
        if let Some(issuer) = &self.server.issuer {
            if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                return Err(ConfigError::Invalid(format!(
                    "server.issuer {issuer:?} must be an http:// or https:// URL"
                )));
            }
        }
        if self.audit.batch_size == 0 || self.audit.queue_capacity == 0 {
            return Err(ConfigError::Invalid(
                "audit.batch_size and audit.queue_capacity must be at least 1".to_owned(),
            ));
        }
        self.validate_server_limits()?;
        self.rate_limit.trusted_proxy_networks()?;
        if !self.signing.algorithm.is_asymmetric() {
            return Err(ConfigError::Invalid(format!(
                "signing.algorithm {} is not allowed: use RS256, PS256, ES256 or EdDSA",
                self.signing.algorithm
            )));
        }
        Ok(())
    }

    fn validate_server_limits(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        // The Authorization header carries a credential of up to `max_credential_bytes`, which
        // must get the credential-level error rather than 431.
        let minimum_header_bytes = self.tokens.max_credential_bytes + 1024;
        if server.max_header_bytes < minimum_header_bytes {
            return Err(ConfigError::Invalid(format!(
                "server.max_header_bytes {} must be at least tokens.max_credential_bytes + 1024 ({minimum_header_bytes})",
                server.max_header_bytes
            )));
        }
        if !(8..=10_000).contains(&server.max_headers) {
            return Err(ConfigError::Invalid(format!(
                "server.max_headers {} must be between 8 and 10000",
                server.max_headers
            )));
        }
        if server.header_read_timeout_seconds == 0 {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout_seconds must be at least 1".to_owned(),
            ));
        }
        if server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// Returns the issuer identifier: the configured one, or `http://` and the listen address.
    pub fn issuer(&self) -> String {
        match &self.server.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen),
        }
    }

    /// Returns the database URL: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.database.data_dir.join("authbridge.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_in_error() {
        let error = Config::from_toml("[server]\nlistn = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
    }

    #[test]
    fn unknown_section_is_named_in_error() {
        let error = Config::from_toml("[srever]\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(error.to_string().contains("srever"), "{error}");
    }

    #[test]
    fn defaults_apply_without_file() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.server.listen.port(), 8080);
        assert_eq!(config.api_keys.prefix, "ab");
        assert_eq!(config.issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[server]\nlisten = \"127.0.0.1:1111\"\n")?;
            jail.set_env("AUTHBRIDGE_SERVER__LISTEN", "127.0.0.1:2222");
            jail.set_env("AUTHBRIDGE_TEST_POSTGRES_URL", "postgres://ignored");
            let config = Config::load(Some(Path::new("a.toml"))).unwrap();
            assert_eq!(config.server.listen.port(), 2222);
            Ok(())
        });
    }

    #[test]
    fn audit_defaults_and_mode() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.audit.mode, AuditMode::Batched);
        assert_eq!(config.audit.batch_size, 256);
        assert_eq!(config.audit.retention_days, 0);
        let config = Config::from_toml("[audit]\nmode = \"sync\"\n").unwrap();
        assert_eq!(config.audit.mode, AuditMode::Sync);
    }

    #[test]
    fn weak_signing_algorithm_is_rejected() {
        let error = Config::from_toml("[signing]\nalgorithm = \"HS256\"\n").unwrap_err();
        assert!(error.to_string().contains("HS256"), "{error}");
    }

    #[test]
    fn header_limit_below_credential_cap_is_rejected() {
        let error = Config::from_toml("[server]\nmax_header_bytes = 8192\n").unwrap_err();
        assert!(error.to_string().contains("max_header_bytes"), "{error}");
        let config = Config::from_toml("[server]\nmax_header_bytes = 9216\n").unwrap();
        assert_eq!(config.server.max_header_bytes, 9216);
    }

    #[test]
    fn invalid_trusted_proxy_is_named() {
        let error =
            Config::from_toml("[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(error.to_string().contains("10.0.0.0/33"), "{error}");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn trusted_proxies_from_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "AUTHBRIDGE_RATE_LIMIT__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"192.0.2.1\"]",
            );
            let config = Config::load(None).unwrap();
            let networks = config.rate_limit.trusted_proxy_networks().unwrap();
            assert_eq!(networks.len(), 2);
            assert_eq!(networks[1].to_string(), "192.0.2.1/32");
            Ok(())
        });
    }

    #[test]
    fn missing_config_file_is_reported() {
        let error = Config::load(Some(Path::new("/nonexistent/authbridge.toml"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/authbridge.toml"));
    }
}
