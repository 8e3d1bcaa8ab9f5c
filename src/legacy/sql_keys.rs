//! The `sql_keys` adapter kind: a legacy API key table in PostgreSQL, MySQL/MariaDB or SQLite.
//!
//! The adapter's `pattern` recognises the keys and names their parts: `lookup` (required) is
//! bound as the only parameter of a configured SELECT, and `hash_input` chooses which bytes the
//! legacy store hashed (the whole key or the `secret` part). Each returned row's hash is checked
//! with the configured [`HashScheme`]; only after a row matches are its revoked flag and expiry
//! read, so a wrong secret never reveals whether the lookup part exists.
//!
//! Results:
//! - no row, or no row whose hash matches: `unknown_credential`. A wrong secret means the key does
//!   not exist as presented, so it is not reported as `invalid_signature`.
//! - a matching row that is revoked: `revoked`; one whose expiry has passed: `expired`.
//! - a database that cannot be reached, a timeout, a failing query, a row that cannot be read, or
//!   a stored hash that does not parse under the configured scheme: `legacy_unavailable`, logged
//!   as an error with the adapter name and never reported as invalid.
//!
//! The legacy database is read through sqlx's `Any` driver, which decodes only boolean, integer,
//! floating-point, text and binary columns. Timestamps, MySQL `TINYINT`/`BOOL` and SQLite
//! `datetime`/`bool` declared columns must be cast in the query (see `docs/adapters.md`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use regex::{Captures, Regex};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};
use sqlx::any::{AnyPoolOptions, AnyRow, AnyTypeInfoKind};
use sqlx::{AnyPool, Row, ValueRef as _};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use zeroize::Zeroizing;

use super::config::{parse_settings, AdapterConfigError};
use super::hash::{self, DigestEncoding, HashInput, HashLimits, HashScheme};
use super::introspection::{
    compile_pattern, default_cache_capacity, default_negative_cache_seconds, ResultCache,
    SecretSetting,
};
use super::{CheckItem, LegacyClaims, LegacyVerifier};
use crate::verify::Reason;

/// Name of the capture group whose text is bound to the query.
pub(super) const LOOKUP_CAPTURE: &str = "lookup";
/// Name of the capture group that is never copied into claims.
const SECRET_CAPTURE: &str = "secret";
/// Longest time a valid result may be cached, in seconds. A key revoked or deleted in the
/// legacy store keeps verifying from the cache for at most this long.
pub(super) const MAX_KEY_CACHE_SECONDS: u64 = 300;
/// Rows examined per lookup. The lookup column should be unique; beyond this many rows the rest
/// are ignored and a warning is logged.
const MAX_ROWS: usize = 16;
/// Largest connection pool, connect timeout and query timeout an adapter may configure.
const MAX_CONNECTIONS: u32 = 64;
const MAX_TIMEOUT_SECONDS: u64 = 60;

/// Settings of a `sql_keys` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlKeysSettings {
    /// The legacy database: `postgres://`, `mysql://` (also MariaDB) or `sqlite://`. It may hold
    /// a password, so `Debug` redacts it.
    pub url: SecretSetting,
    /// A regex that the whole key must match for this adapter to receive it, with the named
    /// group `lookup` (bound to the query) and optionally `secret`.
    pub pattern: String,
    /// An example key that matches `pattern`, used at startup to detect overlapping patterns.
    pub sample: Option<String>,
    /// A SELECT with exactly one placeholder for the lookup value: `$1` on PostgreSQL and
    /// SQLite, `?` on MySQL. Either one string or a table with `postgres`, `mysql` and `sqlite`
    /// entries, of which the one for the URL's database is used.
    pub query: QuerySetting,
    /// Result columns to read; only `hash` is required.
    pub columns: ColumnNames,
    /// Hash scheme of the legacy store's keys.
    pub hash: HashScheme,
    /// The bytes the store hashed: `"whole_key"` (default) or `{ part = "secret" }`, the text of
    /// that capture group.
    #[serde(default)]
    pub hash_input: HashInput,
    /// Binds a digest of the `lookup` capture instead of its text, for stores that look keys up
    /// by their hash (Unkey, better-auth). Default: the text itself.
    pub lookup_hash: Option<LookupHash>,
    /// Maximum costs accepted from stored hashes.
    #[serde(default)]
    pub hash_limits: HashLimits,
    /// Maximum open connections to the legacy database. Default 4.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Time to get a connection, including connecting, in seconds. Default 3.
    #[serde(default = "default_timeout_seconds")]
    pub connect_timeout_seconds: u64,
    /// Time for the query to return its rows, in seconds. Default 3.
    #[serde(default = "default_timeout_seconds")]
    pub query_timeout_seconds: u64,
    /// How long a valid result is reused, in seconds, at most 300 and never past the key's
    /// expiry. A revocation in the legacy store takes effect within this time. 0 turns the cache
    /// off. Default 30.
    #[serde(default = "default_key_cache_seconds")]
    pub cache_seconds: u64,
    /// How long a rejection is reused, in seconds. Default 5.
    #[serde(default = "default_negative_cache_seconds")]
    pub negative_cache_seconds: u64,
    /// Maximum number of cached results. Default 10000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// The SELECT of `authbridge import`: one page of keys in keyset order, with a column
    /// `lookup` (the value `query` matches) and the configured `columns`. It has two
    /// placeholders: the last lookup value already read (`$1`, or the first `?`) and the page size
    /// (`$2`, or the second `?`). Either one string or a table per database, like `query`.
    pub import_query: Option<QuerySetting>,
    /// A SELECT without placeholders whose first column counts the rows `import_query` pages
    /// through, used for the progress bar's ETA.
    pub count_query: Option<QuerySetting>,
}

fn default_max_connections() -> u32 {
    4
}

fn default_timeout_seconds() -> u64 {
    3
}

pub(super) fn default_key_cache_seconds() -> u64 {
    30
}

/// The query, either for the one database of the URL or per database.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum QuerySetting {
    One(String),
    PerBackend(BackendQueries),
}

/// One query per database, as presets write them, because placeholders and casts differ.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendQueries {
    pub postgres: Option<String>,
    pub mysql: Option<String>,
    pub sqlite: Option<String>,
}

/// Names of the result columns (or of the fields of a key file) that the adapter reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnNames {
    /// The stored hash (or, for `plaintext`, the key).
    pub hash: String,
    /// A flag that is true (or non-zero, or `t`/`true`/`yes`/`1`) for a revoked key.
    pub revoked: Option<String>,
    /// The expiry: Unix seconds, or a date-time text, read as UTC when it has no offset.
    pub expires: Option<String>,
    /// The key's owner (a user id, a consumer), copied to the claim `owner`.
    pub owner: Option<String>,
    /// Scopes or abilities: a JSON array, or a JSON array or space- or comma-separated list in
    /// text. Copied to the claim `scopes`.
    pub scopes: Option<String>,
    /// A tenant hint, copied to the claim `tenant`.
    pub tenant: Option<String>,
    /// The key's id in the legacy store, copied to the claim `key_id` and used as the subject.
    pub key_id: Option<String>,
}

/// A digest of the lookup text, bound in place of the text.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupHash {
    pub algorithm: LookupAlgorithm,
    /// `hex` (lowercase), `base64` (standard, padded) or `base64url` (unpadded). Default hex.
    #[serde(default)]
    pub encoding: DigestEncoding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupAlgorithm {
    Sha256,
    Sha512,
}

impl LookupHash {
    /// Computes the text that is bound to the query for `lookup`.
    pub fn digest(&self, lookup: &str) -> String {
        let bytes: Vec<u8> = match self.algorithm {
            LookupAlgorithm::Sha256 => Sha256::digest(lookup.as_bytes()).to_vec(),
            LookupAlgorithm::Sha512 => Sha512::digest(lookup.as_bytes()).to_vec(),
        };
        match self.encoding {
            DigestEncoding::Hex => hex::encode(bytes),
            DigestEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
            DigestEncoding::Base64url => {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            }
        }
    }
}

/// The database engine named by the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Postgres,
    Mysql,
    Sqlite,
}

impl Backend {
    fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::Mysql),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }
}

/// One key as read from a row or a key file, before its hash is checked.
#[derive(Clone, Debug, Default)]
pub(super) struct KeyRecord {
    pub stored_hash: String,
    pub revoked: bool,
    pub expires_at: Option<i64>,
    pub owner: Option<Value>,
    pub scopes: Option<Vec<String>>,
    pub tenant: Option<Value>,
    pub key_id: Option<Value>,
}

/// A legacy API key table.
pub struct SqlKeysAdapter {
    name: String,
    backend: Backend,
    pool: AnyPool,
    pattern: Regex,
    sample: Option<String>,
    query: String,
    columns: ColumnNames,
    hash: HashScheme,
    hash_input: HashInput,
    lookup_hash: Option<LookupHash>,
    hash_limits: HashLimits,
    connect_timeout: Duration,
    query_timeout: Duration,
    cache: ResultCache,
    imported_rows: super::imported::ImportedRowCache,
    import_query: Option<String>,
    count_query: Option<String>,
}

impl std::fmt::Debug for SqlKeysAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlKeysAdapter")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("pattern", &self.pattern.as_str())
            .field("query", &self.query)
            .field("columns", &self.columns)
            .field("hash", &self.hash.name())
            .finish_non_exhaustive()
    }
}

/// Builds a `sql_keys` adapter from its settings. The pool connects lazily, so the daemon starts
/// while the legacy database is down and returns `legacy_unavailable` until it is back.
pub fn build(name: &str, settings: &Value) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let settings: SqlKeysSettings = parse_settings(name, settings)?;
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let url = settings.url.expose();
    let backend = Backend::from_url(url).ok_or_else(|| {
        error("`url` must start with postgres://, mysql:// or sqlite://".to_owned())
    })?;
    let query = choose_query(name, &settings.query, backend)?;
    let import_query = settings
        .import_query
        .as_ref()
        .map(|setting| choose_statement(name, "import_query", setting, backend, check_import_query))
        .transpose()?;
    let count_query = settings
        .count_query
        .as_ref()
        .map(|setting| choose_statement(name, "count_query", setting, backend, check_count_query))
        .transpose()?;
    let pattern = compile_key_pattern(
        name,
        &settings.pattern,
        settings.sample.as_deref(),
        &settings.hash_input,
    )?;
    if !(1..=MAX_CONNECTIONS).contains(&settings.max_connections) {
        return Err(error(format!(
            "`max_connections` must be between 1 and {MAX_CONNECTIONS}"
        )));
    }
    for (key, seconds) in [
        ("connect_timeout_seconds", settings.connect_timeout_seconds),
        ("query_timeout_seconds", settings.query_timeout_seconds),
    ] {
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
            return Err(error(format!(
                "`{key}` must be between 1 and {MAX_TIMEOUT_SECONDS}"
            )));
        }
    }
    let cache = key_cache(
        name,
        settings.cache_seconds,
        settings.negative_cache_seconds,
        settings.cache_capacity,
    )?;

    sqlx::any::install_default_drivers();
    let connect_timeout = Duration::from_secs(settings.connect_timeout_seconds);
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(connect_timeout)
        .connect_lazy(url)
        // The sqlx error can quote the URL, which may hold a password, so it is not shown.
        .map_err(|_| error("`url` is not a valid database URL".to_owned()))?;

    Ok(Arc::new(SqlKeysAdapter {
        name: name.to_owned(),
        backend,
        pool,
        pattern,
        sample: settings.sample,
        query,
        columns: settings.columns,
        hash: settings.hash,
        hash_input: settings.hash_input,
        lookup_hash: settings.lookup_hash,
        hash_limits: settings.hash_limits,
        connect_timeout,
        query_timeout: Duration::from_secs(settings.query_timeout_seconds),
        cache,
        imported_rows: super::imported::ImportedRowCache::new(
            settings.cache_seconds,
            settings.cache_capacity as u64,
        ),
        import_query,
        count_query,
    }))
}

/// Checks the cache times against [`MAX_KEY_CACHE_SECONDS`] and builds the cache.
pub(super) fn key_cache(
    name: &str,
    positive: u64,
    negative: u64,
    capacity: usize,
) -> Result<ResultCache, AdapterConfigError> {
    if positive > MAX_KEY_CACHE_SECONDS || negative > MAX_KEY_CACHE_SECONDS {
        return Err(AdapterConfigError::adapter(
            name,
            format!("`cache_seconds` and `negative_cache_seconds` must be at most {MAX_KEY_CACHE_SECONDS}"),
        ));
    }
    ResultCache::new(name, positive, negative, capacity)
}

/// Compiles the recognition pattern and checks that it has the groups the adapter reads.
pub(super) fn compile_key_pattern(
    name: &str,
    pattern: &str,
    sample: Option<&str>,
    hash_input: &HashInput,
) -> Result<Regex, AdapterConfigError> {
    let regex = compile_pattern(name, pattern, sample)?;
    let has_group = |group: &str| regex.capture_names().flatten().any(|n| n == group);
    if !has_group(LOOKUP_CAPTURE) {
        return Err(AdapterConfigError::adapter(
            name,
            "`pattern` needs a named group `lookup`, such as (?P<lookup>[A-Za-z0-9]{8})",
        ));
    }
    if let HashInput::Part(part) = hash_input {
        if !has_group(part) {
            return Err(AdapterConfigError::adapter(
                name,
                format!(
                    "`hash_input` names the part {part:?}, but `pattern` has no group of that name"
                ),
            ));
        }
    }
    Ok(regex)
}

fn choose_query(
    name: &str,
    setting: &QuerySetting,
    backend: Backend,
) -> Result<String, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let query = match setting {
        QuerySetting::One(query) => query.clone(),
        QuerySetting::PerBackend(queries) => match backend {
            Backend::Postgres => queries.postgres.clone(),
            Backend::Mysql => queries.mysql.clone(),
            Backend::Sqlite => queries.sqlite.clone(),
        }
        .ok_or_else(|| {
            error(format!(
                "`query` has no entry for {}, the database of `url`",
                backend.name()
            ))
        })?,
    };
    check_query(&query, backend).map_err(error)?;
    Ok(query)
}

/// Chooses the statement of the setting `key` for `backend` and checks it with `check`.
fn choose_statement(
    name: &str,
    key: &str,
    setting: &QuerySetting,
    backend: Backend,
    check: fn(&str, Backend) -> Result<(), String>,
) -> Result<String, AdapterConfigError> {
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let statement = match setting {
        QuerySetting::One(statement) => statement.clone(),
        QuerySetting::PerBackend(statements) => match backend {
            Backend::Postgres => statements.postgres.clone(),
            Backend::Mysql => statements.mysql.clone(),
            Backend::Sqlite => statements.sqlite.clone(),
        }
        .ok_or_else(|| {
            error(format!(
                "`{key}` has no entry for {}, the database of `url`",
                backend.name()
            ))
        })?,
    };
    check(&statement, backend).map_err(|problem| error(format!("`{key}`: {problem}")))?;
    Ok(statement)
}

/// Checks that an `import_query` is one SELECT with two placeholders in the style of
/// `backend`: the last lookup value read and the page size.
fn check_import_query(query: &str, backend: Backend) -> Result<(), String> {
    let code = check_single_select(query)?;
    let valid = match backend {
        Backend::Postgres | Backend::Sqlite => {
            code.contains("$1")
                && code.contains("$2")
                && !code.contains("$3")
                && !code.contains('?')
        }
        Backend::Mysql => code.matches('?').count() == 2 && !code.contains('$'),
    };
    if !valid {
        let placeholders = if backend == Backend::Mysql {
            "two ?"
        } else {
            "$1 and $2"
        };
        return Err(format!(
            "the statement for {} must have exactly the placeholders {placeholders}: the last lookup value read and the page size",
            backend.name()
        ));
    }
    Ok(())
}

/// Checks that a `count_query` is one SELECT without placeholders.
fn check_count_query(query: &str, _backend: Backend) -> Result<(), String> {
    let code = check_single_select(query)?;
    if code.contains("$1") || code.contains('?') {
        return Err("the statement must have no placeholders".to_owned());
    }
    Ok(())
}

/// Checks that `query` is a single SELECT (or WITH) statement and returns it without the
/// contents of string literals.
fn check_single_select(query: &str) -> Result<String, String> {
    let trimmed = query.trim().trim_end_matches(';').trim_end();
    let first_word = trimmed
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if first_word != "SELECT" && first_word != "WITH" {
        return Err("the statement must be a SELECT".to_owned());
    }
    if trimmed.contains(';') {
        return Err("the setting must hold a single statement".to_owned());
    }
    Ok(strip_string_literals(trimmed))
}

/// Checks that `query` is one SELECT with exactly one placeholder in the style of `backend`.
/// The lookup value is always bound, never written into the SQL text.
fn check_query(query: &str, backend: Backend) -> Result<(), String> {
    let trimmed = query.trim().trim_end_matches(';').trim_end();
    let first_word = trimmed
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if first_word != "SELECT" && first_word != "WITH" {
        return Err("`query` must be a SELECT statement".to_owned());
    }
    if trimmed.contains(';') {
        return Err("`query` must be a single statement".to_owned());
    }
    let code = strip_string_literals(trimmed);
    match backend {
        Backend::Postgres | Backend::Sqlite => {
            if !code.contains("$1") || code.contains("$2") || code.contains('?') {
                return Err(format!(
                    "`query` for {} must have exactly one placeholder, $1, for the lookup value",
                    backend.name()
                ));
            }
        }
        Backend::Mysql => {
            if code.matches('?').count() != 1 || code.contains("$1") {
                return Err(
                    "`query` for mysql must have exactly one placeholder, ?, for the lookup value"
                        .to_owned(),
                );
            }
        }
    }
    Ok(())
}

/// Returns `sql` with the contents of '...' literals removed, so placeholders inside strings are
/// not counted.
fn strip_string_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    for c in sql.chars() {
        if c == '\'' {
            in_literal = !in_literal;
            out.push(c);
        } else if !in_literal {
            out.push(c);
        }
    }
    out
}

#[async_trait::async_trait]
impl LegacyVerifier for SqlKeysAdapter {
    async fn verify(&self, credential: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let Some(captures) = self.pattern.captures(credential) else {
            return Err(Reason::Malformed);
        };
        let cache_key = ResultCache::key(credential);
        if let Some(result) = self.cache.get(&cache_key, now) {
            return result;
        }
        let result = self.verify_uncached(credential, &captures, now).await;
        self.cache.store(cache_key, &result, now);
        result
    }

    async fn check(&self, _now: i64) -> Vec<CheckItem> {
        // A lookup value that no real key has, so the check reads no key row.
        match self.fetch_rows("authbridge-connectivity-check").await {
            Ok(_) => vec![CheckItem::ok(format!(
                "{} database reachable and the query runs",
                self.backend.name()
            ))],
            Err(_) => vec![CheckItem::problem(format!(
                "{} database cannot be reached or the query fails; see the log for the error",
                self.backend.name()
            ))],
        }
    }

    fn pattern(&self) -> Option<&Regex> {
        Some(&self.pattern)
    }

    fn sample(&self) -> Option<&str> {
        self.sample.as_deref()
    }

    fn sql_keys(&self) -> Option<&SqlKeysAdapter> {
        Some(self)
    }
}

impl SqlKeysAdapter {
    async fn verify_uncached(
        &self,
        credential: &str,
        captures: &Captures<'_>,
        now: i64,
    ) -> Result<LegacyClaims, Reason> {
        let record = self.find_record(credential, captures).await?;
        record_claims(&self.pattern, credential, record, now)
    }

    /// Returns the value bound to `query` for a key: the `lookup` capture, or its digest when
    /// `lookup_hash` is set.
    fn lookup_value_of(&self, captures: &Captures<'_>) -> String {
        let lookup = captures
            .name(LOOKUP_CAPTURE)
            .map(|m| m.as_str())
            .unwrap_or_default();
        match &self.lookup_hash {
            Some(lookup_hash) => lookup_hash.digest(lookup),
            None => lookup.to_owned(),
        }
    }

    /// Reads the rows of the key's lookup value and returns the one whose hash matches.
    async fn find_record(
        &self,
        credential: &str,
        captures: &Captures<'_>,
    ) -> Result<KeyRecord, Reason> {
        let lookup_value = self.lookup_value_of(captures);
        let rows = self.fetch_rows(&lookup_value).await?;
        if rows.len() > MAX_ROWS {
            tracing::warn!(
                adapter.name = %self.name,
                rows = rows.len(),
                max_rows = MAX_ROWS,
                "the key lookup returned more rows than are checked; make the lookup column unique"
            );
        }
        let mut records = Vec::with_capacity(rows.len().min(MAX_ROWS));
        for row in rows.iter().take(MAX_ROWS) {
            let record = read_row(row, &self.columns).map_err(|problem| {
                tracing::error!(adapter.name = %self.name, %problem, "legacy key row cannot be read; check `query` and `columns`");
                Reason::LegacyUnavailable
            })?;
            records.push(record);
        }
        let input = hash_input_bytes(&self.pattern, credential, captures, &self.hash_input).map_err(|problem| {
            tracing::error!(adapter.name = %self.name, %problem, "hash input cannot be selected");
            Reason::LegacyUnavailable
        })?;
        let matched =
            match_record(&self.name, &self.hash, &self.hash_limits, input, records).await?;
        matched.ok_or(Reason::UnknownCredential)
    }

    /// Runs the query for one lookup value. Every failure is logged and gives
    /// `legacy_unavailable`.
    async fn fetch_rows(&self, lookup_value: &str) -> Result<Vec<AnyRow>, Reason> {
        let mut connection = match tokio::time::timeout(self.connect_timeout, self.pool.acquire())
            .await
        {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                tracing::warn!(adapter.name = %self.name, %error, "connecting to the legacy key database failed");
                return Err(Reason::LegacyUnavailable);
            }
            Err(_) => {
                tracing::warn!(adapter.name = %self.name, timeout_seconds = self.connect_timeout.as_secs(), "connecting to the legacy key database timed out");
                return Err(Reason::LegacyUnavailable);
            }
        };
        let query = sqlx::query(&self.query).bind(lookup_value.to_owned());
        match tokio::time::timeout(self.query_timeout, query.fetch_all(&mut *connection)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => {
                tracing::warn!(adapter.name = %self.name, %error, "legacy key query failed");
                Err(Reason::LegacyUnavailable)
            }
            Err(_) => {
                tracing::warn!(adapter.name = %self.name, timeout_seconds = self.query_timeout.as_secs(), "legacy key query timed out");
                Err(Reason::LegacyUnavailable)
            }
        }
    }
}

/// One row of `import_query`: the lookup value and the key's fields, or why the row cannot be
/// read.
pub(super) struct ImportRow {
    pub lookup: String,
    pub record: Result<KeyRecord, String>,
    /// The row's `updated_at` column, when the query returns one.
    pub source_updated_at: Option<i64>,
}

/// Name of the `import_query` column that contains the lookup value.
pub(super) const IMPORT_LOOKUP_COLUMN: &str = "lookup";
/// Name of the optional `import_query` column with the row's last change in the legacy store.
const IMPORT_UPDATED_COLUMN: &str = "updated_at";

/// Import and verification from the imported copy (see `super::import` and `super::imported`).
impl SqlKeysAdapter {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the configuration name of the hash scheme, stored with every imported key.
    /// Imported rows of this adapter read recently; see [`super::imported::ImportedRowCache`].
    pub(super) fn imported_rows(&self) -> &super::imported::ImportedRowCache {
        &self.imported_rows
    }

    pub fn hash_scheme_name(&self) -> &'static str {
        self.hash.name()
    }

    pub fn has_import_query(&self) -> bool {
        self.import_query.is_some()
    }

    /// Returns the value `query` binds for `credential`, or `None` when the pattern does not
    /// match it.
    pub(super) fn lookup_value(&self, credential: &str) -> Option<String> {
        self.pattern
            .captures(credential)
            .map(|captures| self.lookup_value_of(&captures))
    }

    /// Reads one page of `import_query`: the rows after the lookup value `after`, at most
    /// `limit` of them. A row that cannot be read is returned with the problem, so the import
    /// can skip it and still move past it. A missing or NULL `lookup` column fails the page.
    pub(super) async fn fetch_import_page(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ImportRow>, String> {
        let Some(statement) = &self.import_query else {
            return Err(format!("adapter {:?} has no `import_query`", self.name));
        };
        // NOTE: no timeout, unlike `query`: the operator runs the import and can interrupt it.
        let rows = sqlx::query(statement)
            .bind(after.to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|error| format!("`import_query` failed: {error}"))?;
        rows.iter()
            .map(|row| {
                let lookup = match column_value(row, IMPORT_LOOKUP_COLUMN)? {
                    Value::String(text) => text,
                    Value::Number(number) => number.to_string(),
                    _ => return Err(format!("`import_query` returned a row whose column {IMPORT_LOOKUP_COLUMN:?} is NULL or not text")),
                };
                let source_updated_at = match row.try_get_raw(IMPORT_UPDATED_COLUMN) {
                    Ok(_) => column_value(row, IMPORT_UPDATED_COLUMN)?,
                    Err(_) => Value::Null,
                };
                let record = read_row(row, &self.columns);
                let source_updated_at = match &source_updated_at {
                    Value::Null => None,
                    value => Some(parse_time(value).map_err(|_| format!("column {IMPORT_UPDATED_COLUMN:?} is neither Unix seconds nor a date-time"))?),
                };
                Ok(ImportRow {
                    lookup,
                    record,
                    source_updated_at,
                })
            })
            .collect()
    }

    /// Runs `count_query`, or returns `None` when the adapter has none.
    pub(super) async fn count_import_rows(&self) -> Result<Option<u64>, String> {
        let Some(statement) = &self.count_query else {
            return Ok(None);
        };
        let row = sqlx::query(statement)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| format!("`count_query` failed: {error}"))?;
        let count: i64 = row
            .try_get(0)
            .map_err(|error| format!("`count_query` returned no integer count: {error}"))?;
        Ok(Some(u64::try_from(count).unwrap_or(0)))
    }

    /// Verifies `credential` against the live legacy store and also returns the matched row, for
    /// lazy import. A cached rejection is reused; a valid result is cached as `verify` does.
    pub(super) async fn verify_with_record(
        &self,
        credential: &str,
        now: i64,
    ) -> Result<(LegacyClaims, KeyRecord), Reason> {
        let Some(captures) = self.pattern.captures(credential) else {
            return Err(Reason::Malformed);
        };
        let cache_key = ResultCache::key(credential);
        if let Some(Err(reason)) = self.cache.get(&cache_key, now) {
            return Err(reason);
        }
        let result = match self.find_record(credential, &captures).await {
            Ok(record) => record_claims(&self.pattern, credential, record.clone(), now)
                .map(|claims| (claims, record)),
            Err(reason) => Err(reason),
        };
        let cached = result
            .as_ref()
            .map(|(claims, _)| claims.clone())
            .map_err(|reason| *reason);
        self.cache.store(cache_key, &cached, now);
        result
    }

    /// Checks `credential` against one imported record's legacy hash. `Ok(false)` is a wrong key.
    pub(super) async fn matches_record(
        &self,
        credential: &str,
        record: KeyRecord,
    ) -> Result<bool, Reason> {
        let Some(captures) = self.pattern.captures(credential) else {
            return Err(Reason::Malformed);
        };
        let input = hash_input_bytes(&self.pattern, credential, &captures, &self.hash_input).map_err(|problem| {
            tracing::error!(adapter.name = %self.name, %problem, "hash input cannot be selected");
            Reason::LegacyUnavailable
        })?;
        let matched = match_record(
            &self.name,
            &self.hash,
            &self.hash_limits,
            input,
            vec![record],
        )
        .await?;
        Ok(matched.is_some())
    }

    /// Decides a matched record as the live path does: revoked, expired, or valid with claims.
    pub(super) fn claims_of(
        &self,
        credential: &str,
        record: KeyRecord,
        now: i64,
    ) -> Result<LegacyClaims, Reason> {
        record_claims(&self.pattern, credential, record, now)
    }
}

/// Copies the bytes that the legacy store hashed: the whole key or one named capture.
pub(super) fn hash_input_bytes(
    pattern: &Regex,
    credential: &str,
    captures: &Captures<'_>,
    hash_input: &HashInput,
) -> Result<Zeroizing<Vec<u8>>, hash::HashError> {
    let parts: Vec<(&str, &[u8])> = pattern
        .capture_names()
        .flatten()
        .filter_map(|name| captures.name(name).map(|m| (name, m.as_str().as_bytes())))
        .collect();
    let selected = hash_input.select(credential.as_bytes(), &parts)?;
    Ok(Zeroizing::new(selected.to_vec()))
}

/// Returns the first record whose stored hash accepts `input`, checking on a blocking thread
/// because slow schemes (PBKDF2, bcrypt, Argon2, scrypt) take tens to hundreds of milliseconds.
/// A stored hash that cannot be checked is logged with the adapter name and its algorithm tag
/// only, and gives `legacy_unavailable`.
pub(super) async fn match_record(
    adapter: &str,
    scheme: &HashScheme,
    limits: &HashLimits,
    input: Zeroizing<Vec<u8>>,
    records: Vec<KeyRecord>,
) -> Result<Option<KeyRecord>, Reason> {
    if records.is_empty() {
        return Ok(None);
    }
    let scheme = scheme.clone();
    let limits = limits.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        for record in records {
            match hash::verify(&scheme, &input, &record.stored_hash, &limits) {
                Ok(true) => return Ok(Some(record)),
                Ok(false) => {}
                Err(error) => return Err((error, hash::stored_tag(&record.stored_hash))),
            }
        }
        Ok(None)
    })
    .await;
    match outcome {
        Ok(Ok(found)) => Ok(found),
        Ok(Err((error, tag))) => {
            tracing::error!(
                adapter.name = %adapter,
                hash.tag = %tag,
                %error,
                "configuration error: a stored legacy key hash cannot be checked with the configured `hash` scheme"
            );
            Err(Reason::LegacyUnavailable)
        }
        Err(error) => {
            tracing::error!(adapter.name = %adapter, %error, "legacy hash check task failed");
            Err(Reason::LegacyUnavailable)
        }
    }
}

/// Decides a matched record: revoked, expired, or valid with its claims.
pub(super) fn record_claims(
    pattern: &Regex,
    credential: &str,
    record: KeyRecord,
    now: i64,
) -> Result<LegacyClaims, Reason> {
    if record.revoked {
        return Err(Reason::Revoked);
    }
    if record
        .expires_at
        .is_some_and(|expires_at| expires_at <= now)
    {
        return Err(Reason::Expired);
    }

    let mut claims = Map::new();
    add_key_captures(pattern, credential, &mut claims);
    let subject = record
        .key_id
        .as_ref()
        .or(record.owner.as_ref())
        .and_then(scalar_text);
    if let Some(key_id) = record.key_id {
        claims.insert("key_id".to_owned(), key_id);
    }
    if let Some(owner) = record.owner {
        claims.insert("owner".to_owned(), owner);
    }
    if let Some(tenant) = record.tenant {
        claims.insert("tenant".to_owned(), tenant);
    }
    let scope = record.scopes.as_ref().map(|scopes| scopes.join(" "));
    if let Some(scopes) = record.scopes {
        claims.insert(
            "scopes".to_owned(),
            Value::Array(scopes.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(expires_at) = record.expires_at {
        claims.insert("exp".to_owned(), Value::from(expires_at));
    }

    Ok(LegacyClaims {
        subject,
        claims,
        issuer: None,
        audience: Vec::new(),
        scope,
        issued_at: None,
        expires_at: record.expires_at,
    })
}

/// Adds the pattern's named captures to `claims`, each as `<name>` and under `pattern.<name>`.
/// The group `secret` is left out, and so is `lookup` when it covers the whole key (a key looked
/// up by its full text or hash), so that no secret reaches the claims, the cache or the audit.
fn add_key_captures(pattern: &Regex, credential: &str, claims: &mut Map<String, Value>) {
    let Some(captures) = pattern.captures(credential) else {
        return;
    };
    let mut found = Map::new();
    for name in pattern.capture_names().flatten() {
        let Some(value) = captures.name(name) else {
            continue;
        };
        let is_whole_key = value.as_str().len() == credential.len();
        if name == SECRET_CAPTURE || is_whole_key {
            continue;
        }
        found.insert(name.to_owned(), Value::String(value.as_str().to_owned()));
    }
    for (name, value) in &found {
        claims.insert(name.clone(), value.clone());
    }
    claims.insert("pattern".to_owned(), Value::Object(found));
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Reads the configured columns of one row.
fn read_row(row: &AnyRow, columns: &ColumnNames) -> Result<KeyRecord, String> {
    let column = |name: &Option<String>| -> Result<Option<Value>, String> {
        match name {
            Some(name) => column_value(row, name).map(|value| Some(value).filter(|v| !v.is_null())),
            None => Ok(None),
        }
    };
    let fields = KeyFields {
        hash: column(&Some(columns.hash.clone()))?,
        revoked: column(&columns.revoked)?,
        expires: column(&columns.expires)?,
        owner: column(&columns.owner)?,
        scopes: column(&columns.scopes)?,
        tenant: column(&columns.tenant)?,
        key_id: column(&columns.key_id)?,
    };
    fields.into_record()
}

/// The configured fields of one key as JSON values, from a row or a key file.
pub(super) struct KeyFields {
    pub hash: Option<Value>,
    pub revoked: Option<Value>,
    pub expires: Option<Value>,
    pub owner: Option<Value>,
    pub scopes: Option<Value>,
    pub tenant: Option<Value>,
    pub key_id: Option<Value>,
}

impl KeyFields {
    /// Interprets the fields. Errors name the field and the problem, never the value.
    pub(super) fn into_record(self) -> Result<KeyRecord, String> {
        let stored_hash = match self.hash {
            Some(Value::String(text)) => text,
            Some(_) => return Err("the hash column is not text".to_owned()),
            None => return Err("the hash column is NULL or missing".to_owned()),
        };
        Ok(KeyRecord {
            stored_hash,
            revoked: self
                .revoked
                .as_ref()
                .map(parse_flag)
                .transpose()?
                .unwrap_or(false),
            expires_at: self.expires.as_ref().map(parse_time).transpose()?,
            owner: self.owner,
            scopes: self.scopes.as_ref().map(parse_scopes).transpose()?,
            tenant: self.tenant,
            key_id: self.key_id,
        })
    }
}

/// Reads one column as JSON: NULL, a boolean, a number, or text (binary columns must be UTF-8).
fn column_value(row: &AnyRow, name: &str) -> Result<Value, String> {
    let raw = row
        .try_get_raw(name)
        .map_err(|_| format!("the query returns no column named {name:?}"))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    let decode_error = |error: sqlx::Error| format!("column {name:?} cannot be read: {error}");
    let value = match kind {
        AnyTypeInfoKind::Null => Value::Null,
        AnyTypeInfoKind::Bool => Value::Bool(row.try_get::<bool, _>(name).map_err(decode_error)?),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::from(row.try_get::<i64, _>(name).map_err(decode_error)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
            Value::from(row.try_get::<f64, _>(name).map_err(decode_error)?)
        }
        AnyTypeInfoKind::Text => {
            Value::String(row.try_get::<String, _>(name).map_err(decode_error)?)
        }
        AnyTypeInfoKind::Blob => {
            let bytes = row.try_get::<Vec<u8>, _>(name).map_err(decode_error)?;
            Value::String(
                String::from_utf8(bytes)
                    .map_err(|_| format!("column {name:?} is binary and not UTF-8"))?,
            )
        }
    };
    Ok(value)
}

fn parse_flag(value: &Value) -> Result<bool, String> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(flag) => Ok(*flag),
        Value::Number(number) => Ok(number.as_f64().is_some_and(|n| n != 0.0)),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "1" => Ok(true),
            "f" | "false" | "n" | "no" | "0" | "" => Ok(false),
            _ => Err("the revoked column is not a boolean".to_owned()),
        },
        _ => Err("the revoked column is not a boolean".to_owned()),
    }
}

/// Reads an expiry: Unix seconds (a number or a string of digits), RFC 3339, or
/// `YYYY-MM-DD HH:MM:SS[.fraction][offset]`, read as UTC when it has no offset.
pub(super) fn parse_time(value: &Value) -> Result<i64, String> {
    let invalid = || "the expiry column is neither Unix seconds nor a date-time".to_owned();
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .ok_or_else(invalid),
        Value::String(text) => parse_time_text(text.trim()).ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

fn parse_time_text(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let with_t = text.replacen(' ', "T", 1);
    if let Ok(time) = OffsetDateTime::parse(&with_t, &Rfc3339) {
        return Some(time.unix_timestamp());
    }
    // PostgreSQL prints offsets as `+00` or `+05:30`; RFC 3339 needs `+00:00`.
    if let Some(position) = with_t.rfind(['+', '-']).filter(|&p| p > 10) {
        let offset = &with_t[position + 1..];
        if offset.len() == 2 && offset.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(time) = OffsetDateTime::parse(&format!("{with_t}:00"), &Rfc3339) {
                return Some(time.unix_timestamp());
            }
        }
    }
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|time| time.assume_utc().unix_timestamp())
}

fn parse_scopes(value: &Value) -> Result<Vec<String>, String> {
    let from_array = |items: &Vec<Value>| -> Result<Vec<String>, String> {
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "the scopes array holds a non-string".to_owned())
            })
            .collect()
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => from_array(items),
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.starts_with('[') {
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(Value::Array(items)) => from_array(&items),
                    _ => Err(
                        "the scopes column starts with [ but is not a JSON array of strings"
                            .to_owned(),
                    ),
                }
            } else {
                Ok(trimmed
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect())
            }
        }
        _ => Err("the scopes column is neither text nor an array".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_placeholders_are_checked() {
        assert!(check_query("SELECT h FROM t WHERE p = $1", Backend::Postgres).is_ok());
        assert!(check_query("SELECT h FROM t WHERE p = ?", Backend::Mysql).is_ok());
        assert!(check_query("SELECT h FROM t WHERE p = '?' AND q = ?", Backend::Mysql).is_ok());
        assert!(check_query("SELECT h FROM t WHERE p = $1 AND q = $2", Backend::Sqlite).is_err());
        assert!(check_query("SELECT h FROM t WHERE p = ?", Backend::Postgres).is_err());
        assert!(check_query("SELECT h FROM t", Backend::Postgres).is_err());
        assert!(check_query("DELETE FROM t WHERE p = $1", Backend::Postgres).is_err());
        assert!(check_query("SELECT 1 WHERE $1 = ''; DROP TABLE t", Backend::Postgres).is_err());
    }

    #[test]
    fn times_parse_in_common_forms() {
        let expected = 1_577_836_800;
        for text in [
            "1577836800",
            "2020-01-01 00:00:00",
            "2020-01-01 00:00:00.000000",
            "2020-01-01T00:00:00Z",
            "2020-01-01 00:00:00+00",
            "2020-01-01 01:00:00+01:00",
        ] {
            assert_eq!(parse_time(&json!(text)), Ok(expected), "{text}");
        }
        assert_eq!(parse_time(&json!(expected)), Ok(expected));
        assert!(parse_time(&json!("next week")).is_err());
    }

    #[test]
    fn flags_parse_from_databases() {
        assert_eq!(parse_flag(&json!(true)), Ok(true));
        assert_eq!(parse_flag(&json!(0)), Ok(false));
        assert_eq!(parse_flag(&json!(1)), Ok(true));
        assert_eq!(parse_flag(&json!("t")), Ok(true));
        assert!(parse_flag(&json!("maybe")).is_err());
    }

    #[test]
    fn scopes_parse_from_json_and_lists() {
        assert_eq!(parse_scopes(&json!("[\"*\"]")), Ok(vec!["*".to_owned()]));
        assert_eq!(
            parse_scopes(&json!("read write")),
            Ok(vec!["read".to_owned(), "write".to_owned()])
        );
        assert_eq!(
            parse_scopes(&json!("read,write")),
            Ok(vec!["read".to_owned(), "write".to_owned()])
        );
    }

    #[test]
    fn lookup_hash_matches_unkey_encoding() {
        let lookup = LookupHash {
            algorithm: LookupAlgorithm::Sha256,
            encoding: DigestEncoding::Base64,
        };
        // SHA-256 of the empty string, standard base64 with padding.
        assert_eq!(
            lookup.digest(""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn captures_skip_secret_and_whole_key() {
        let pattern = Regex::new("^(?P<lookup>[a-z]{3})\\.(?P<secret>[0-9]+)$").unwrap();
        let mut claims = Map::new();
        add_key_captures(&pattern, "abc.123", &mut claims);
        assert_eq!(claims["lookup"], json!("abc"));
        assert!(!claims.contains_key("secret"));

        let whole = Regex::new("^(?P<lookup>[0-9a-f]{4})$").unwrap();
        let mut claims = Map::new();
        add_key_captures(&whole, "beef", &mut claims);
        assert!(!claims.contains_key("lookup"));
    }

    #[test]
    fn pattern_needs_lookup_group() {
        let error = compile_key_pattern("a", "[a-z]+", None, &HashInput::WholeKey).unwrap_err();
        assert!(error.to_string().contains("lookup"), "{error}");
        let error = compile_key_pattern(
            "a",
            "(?P<lookup>[a-z]+)",
            None,
            &HashInput::Part("secret".to_owned()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("secret"), "{error}");
    }
}
