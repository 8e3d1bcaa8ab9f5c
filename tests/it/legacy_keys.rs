//! `sql_keys` and `file_keys` adapters verifying genuine legacy rows through `/v1/verify`.
//!
//! The rows in `tests/fixtures/keystores/drf.json` were made by djangorestframework-api-key and
//! DRF authtoken themselves (`tools/fixtures/keystores/make_drf_rows.py`), together with the
//! CREATE TABLE statements Django writes for each database. Each test creates those tables under
//! a random name, fills them, and drops them at the end. SQLite always runs; PostgreSQL and
//! MariaDB run when `AUTHBRIDGE_TEST_POSTGRES_URL` and `AUTHBRIDGE_TEST_MYSQL_URL` are set.

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use authbridge::config::AdapterEntries;
use authbridge::ids::TenantId;
use authbridge::store::TenantRecord;

use crate::common::{Backend, TestApp, START};

const POSTGRES_ENV: &str = "AUTHBRIDGE_TEST_POSTGRES_URL";
const MYSQL_ENV: &str = "AUTHBRIDGE_TEST_MYSQL_URL";
const API_KEY_TABLE: &str = "rest_framework_api_key_apikey";
const TOKEN_TABLE: &str = "authtoken_token";

/// A legacy database engine under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vendor {
    Sqlite,
    Postgres,
    Mysql,
}

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Vendor::Sqlite => "sqlite",
            Vendor::Postgres => "postgres",
            Vendor::Mysql => "mysql",
        }
    }
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keystores/drf.json"
    ))
    .expect("read tests/fixtures/keystores/drf.json");
    serde_json::from_str(&text).expect("drf.json is JSON")
}

fn preset(name: &str) -> toml::Value {
    let path = format!("{}/adapters/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    toml::from_str(&std::fs::read_to_string(path).expect("read preset")).expect("preset is TOML")
}

/// A legacy database with its tables named by a random suffix; `drop_tables` removes them.
struct LegacyDb {
    vendor: Vendor,
    url: String,
    suffix: String,
    _dir: Option<tempfile::TempDir>,
}

impl LegacyDb {
    /// Opens the database of `vendor`, or returns `None` (after printing a skip line) when its
    /// server variable is not set.
    fn open(vendor: Vendor, test: &str) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let suffix = authbridge::ids::random_lowercase_alphanumeric(8);
        let from_env = |name: &str| std::env::var(name).ok().filter(|url| !url.is_empty());
        let (url, dir) = match vendor {
            Vendor::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("legacy.db").display()
                );
                (url, Some(dir))
            }
            Vendor::Postgres => match from_env(POSTGRES_ENV) {
                Some(url) => (url, None),
                None => {
                    println!("{test}: {POSTGRES_ENV} not set, skipping the PostgreSQL case");
                    return None;
                }
            },
            Vendor::Mysql => match from_env(MYSQL_ENV) {
                Some(url) => (url, None),
                None => {
                    println!("{test}: {MYSQL_ENV} not set, skipping the MariaDB/MySQL case");
                    return None;
                }
            },
        };
        Some(Self {
            vendor,
            url,
            suffix,
            _dir: dir,
        })
    }

    fn table(&self, base: &str) -> String {
        format!("{base}_{}", self.suffix)
    }

    async fn connect(&self) -> AnyConnection {
        AnyConnection::connect(&self.url).await.unwrap_or_else(|e| {
            panic!("connect to the legacy {} database: {e}", self.vendor.name())
        })
    }

    /// Creates `base` as Django's schema editor writes it for this vendor, under the test's
    /// table name. Foreign keys to `auth_user` are left out because that table is not created.
    async fn create_table(&self, fixture: &Value, base: &str) {
        let mut connection = self.connect().await;
        let statements = fixture["ddl"][self.vendor.name()][base]
            .as_array()
            .expect("DDL in the fixture");
        for statement in statements {
            let statement = statement.as_str().expect("DDL text");
            if statement.contains("FOREIGN KEY") {
                continue;
            }
            let statement = strip_references(statement).replace(base, &self.table(base));
            sqlx::query(&statement)
                .execute(&mut connection)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }

    /// Inserts one row; text values go through a cast for timestamp columns.
    async fn insert(&self, table: &str, row: &[(&str, Value)], timestamps: &[&str]) {
        let mut connection = self.connect().await;
        let columns: Vec<String> = row.iter().map(|(name, _)| self.quote(name)).collect();
        let placeholders: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(index, (name, _))| {
                let placeholder = match self.vendor {
                    Vendor::Mysql => "?".to_owned(),
                    _ => format!("${}", index + 1),
                };
                if self.vendor == Vendor::Postgres && timestamps.contains(name) {
                    format!("CAST({placeholder} AS TIMESTAMPTZ)")
                } else {
                    placeholder
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.table(table),
            columns.join(", "),
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (name, value) in row {
            query = match value {
                Value::Null => query.bind(Option::<String>::None),
                Value::Bool(flag) => query.bind(*flag),
                Value::Number(number) => query.bind(number.as_i64().expect("integer")),
                Value::String(text)
                    if self.vendor == Vendor::Postgres && timestamps.contains(name) =>
                {
                    query.bind(format!("{text}+00"))
                }
                Value::String(text) => query.bind(text.clone()),
                other => panic!("unexpected value {other}"),
            };
        }
        query
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn quote(&self, name: &str) -> String {
        match self.vendor {
            Vendor::Mysql => format!("`{name}`"),
            _ => format!("\"{name}\""),
        }
    }

    async fn drop_table(&self, base: &str) {
        let mut connection = self.connect().await;
        let sql = format!("DROP TABLE IF EXISTS {}", self.table(base));
        sqlx::query(&sql)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Returns the URL the adapter uses: SQLite without `mode=rwc`, so a missing file is an error.
    fn adapter_url(&self) -> String {
        self.url.replace("?mode=rwc", "")
    }

    /// Returns the preset's query for this vendor, reading the test's table.
    fn preset_query(&self, preset_name: &str, base: &str) -> String {
        let preset = preset(preset_name);
        preset["adapter"]["query"][self.vendor.name()]
            .as_str()
            .expect("preset query for this vendor")
            .replace(base, &self.table(base))
    }
}

/// Removes `REFERENCES "x" ("y") DEFERRABLE INITIALLY DEFERRED` from SQLite DDL.
fn strip_references(statement: &str) -> String {
    match statement.find(" REFERENCES ") {
        Some(start) => {
            let tail = &statement[start..];
            let end = tail
                .find(" DEFERRED")
                .map_or(tail.len(), |i| i + " DEFERRED".len());
            format!("{}{}", &statement[..start], &tail[end..])
        }
        None => statement.to_owned(),
    }
}

/// Opens an app with `adapter` and a tenant whose id the adapter's mapping names.
async fn app_with_adapter(tenant: &TenantId, adapter: Value) -> TestApp {
    let app = TestApp::with_config(Backend::Sqlite, |config| {
        config.adapters = AdapterEntries(vec![adapter]);
    })
    .await;
    let record = TenantRecord {
        id: tenant.clone(),
        parent_id: None,
        name: "legacy-customers".to_owned(),
        inherit_roles: true,
        created_at: START,
        updated_at: START,
    };
    app.app
        .store
        .insert_tenant(&record)
        .await
        .expect("insert the tenant");
    app.app.directory.upsert(&record);
    app
}

/// Builds a `query` table that overrides the preset's query for `vendor` only.
fn query_for(vendor: Vendor, query: String) -> Value {
    let mut table = serde_json::Map::new();
    table.insert(vendor.name().to_owned(), Value::String(query));
    Value::Object(table)
}

fn api_key_row(case: &Value) -> Vec<(&'static str, Value)> {
    let row = &case["row"];
    [
        "id",
        "prefix",
        "hashed_key",
        "created",
        "name",
        "revoked",
        "expiry_date",
    ]
    .into_iter()
    .map(|column| (column, row[column].clone()))
    .collect()
}

fn case<'a>(fixture: &'a Value, name: &str) -> &'a Value {
    fixture["api_keys"]
        .as_array()
        .expect("api_keys")
        .iter()
        .find(|c| c["case"] == name)
        .unwrap_or_else(|| panic!("fixture case {name}"))
}

fn key_of(case: &Value) -> String {
    case["key"].as_str().expect("key").to_owned()
}

/// Replaces the last character of `key` with another one of the same class.
fn change_last_character(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let last = chars.last_mut().expect("non-empty key");
    *last = if *last == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

async fn assert_reason(app: &TestApp, key: &str, status: StatusCode, reason: &str, what: &str) {
    let response = app.verify(key, None).await;
    assert_eq!(response.status, status, "{what}: {}", response.body);
    assert_eq!(response.reason(), reason, "{what}: {}", response.body);
}

async fn drf_api_key_cases(vendor: Vendor, test: &str) {
    let Some(db) = LegacyDb::open(vendor, test) else {
        return;
    };
    let fixture = fixture();
    db.create_table(&fixture, API_KEY_TABLE).await;
    for case in fixture["api_keys"].as_array().expect("api_keys") {
        db.insert(
            API_KEY_TABLE,
            &api_key_row(case),
            &["created", "expiry_date"],
        )
        .await;
    }
    // A row whose hash is an MD5-crypt string, which the `django` scheme cannot check.
    let bad_key = "BadHash1.0123456789abcdefghijABCDEFGHIJ01";
    let bad_row = vec![
        ("id", json!("BadHash1.x")),
        ("prefix", json!("BadHash1")),
        ("hashed_key", json!("$1$saltsalt$0123456789abcdefghijkl")),
        ("created", json!("2023-01-01 00:00:00.000000")),
        ("name", json!("bad-hash")),
        ("revoked", json!(false)),
        ("expiry_date", Value::Null),
    ];
    db.insert(API_KEY_TABLE, &bad_row, &["created", "expiry_date"])
        .await;

    let tenant = TenantId::generate();
    let adapter = json!({
        "name": "django-keys",
        "preset": "drf-api-key",
        "url": db.adapter_url(),
        // These cases test the live legacy store and its cache, which decide only in `shadow`.
        "phase": "shadow",
        "query": query_for(vendor, db.preset_query("drf-api-key", API_KEY_TABLE)),
        "mapping": { "tenant": { "default": tenant.as_str() }, "roles": { "default": ["reader"] } },
    });
    let app = app_with_adapter(&tenant, adapter).await;

    for name in ["valid", "expires_later", "pbkdf2_legacy"] {
        let response = app.verify(&key_of(case(&fixture, name)), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{vendor:?} {name}: {}",
            response.body
        );
        assert_eq!(response.body["valid"], json!(true), "{vendor:?} {name}");
        assert_eq!(
            response.body["source"],
            json!("legacy"),
            "{vendor:?} {name}"
        );
        assert_eq!(
            response.body["adapter"],
            json!("django-keys"),
            "{vendor:?} {name}"
        );
        assert_eq!(
            response.body["tenantId"],
            json!(tenant.as_str()),
            "{vendor:?} {name}"
        );
    }

    let valid = key_of(case(&fixture, "valid"));
    let what = |case: &str| format!("{vendor:?} {case}");
    assert_reason(
        &app,
        &change_last_character(&valid),
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        &what("wrong secret"),
    )
    .await;
    let unknown_prefix = format!("Zz9Zz9Zz{}", &valid[8..]);
    assert_reason(
        &app,
        &unknown_prefix,
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        &what("unknown prefix"),
    )
    .await;
    assert_reason(
        &app,
        &key_of(case(&fixture, "revoked")),
        StatusCode::UNAUTHORIZED,
        "revoked",
        &what("revoked"),
    )
    .await;
    assert_reason(
        &app,
        &key_of(case(&fixture, "expired")),
        StatusCode::UNAUTHORIZED,
        "expired",
        &what("expired"),
    )
    .await;
    // A key the pattern does not match reaches no adapter.
    assert_reason(
        &app,
        &valid[..20],
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        &what("malformed"),
    )
    .await;
    assert_reason(
        &app,
        bad_key,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        &what("unexpected hash format"),
    )
    .await;

    // The valid key was verified above, so its result is cached for 30 seconds.
    db.drop_table(API_KEY_TABLE).await;
    assert_reason(
        &app,
        &valid,
        StatusCode::OK,
        "valid",
        &what("cached after the table is gone"),
    )
    .await;
    let uncached = key_of(case(&fixture, "expires_later"));
    app.clock.advance(31);
    assert_reason(
        &app,
        &valid,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        &what("cache ended"),
    )
    .await;
    assert_reason(
        &app,
        &uncached,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        &what("uncached"),
    )
    .await;
}

async fn drf_authtoken_cases(vendor: Vendor, test: &str) {
    let Some(db) = LegacyDb::open(vendor, test) else {
        return;
    };
    let fixture = fixture();
    db.create_table(&fixture, TOKEN_TABLE).await;
    for token in fixture["authtokens"].as_array().expect("authtokens") {
        let row = &token["row"];
        let values = vec![
            ("key", row["key"].clone()),
            ("user_id", row["user_id"].clone()),
            ("created", row["created"].clone()),
        ];
        db.insert(TOKEN_TABLE, &values, &["created"]).await;
    }
    let tenant = TenantId::generate();
    let adapter = json!({
        "name": "drf-tokens",
        "preset": "drf-authtoken",
        "url": db.adapter_url(),
        "query": query_for(vendor, db.preset_query("drf-authtoken", TOKEN_TABLE)),
        "mapping": { "tenant": { "default": tenant.as_str() }, "machine": { "claim": "owner" } },
    });
    let app = app_with_adapter(&tenant, adapter).await;

    let token = &fixture["authtokens"][0];
    let key = token["key"].as_str().expect("token key");
    let response = app.verify(key, None).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{vendor:?}: {}",
        response.body
    );
    assert_eq!(response.body["source"], json!("legacy"));
    assert_eq!(
        response.body["machineId"],
        json!(token["row"]["user_id"].to_string()),
        "{}",
        response.body
    );
    assert_reason(
        &app,
        &change_last_character(key),
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        "wrong token",
    )
    .await;
    db.drop_table(TOKEN_TABLE).await;
}

#[tokio::test]
async fn drf_api_key_on_sqlite() {
    drf_api_key_cases(Vendor::Sqlite, "drf_api_key_on_sqlite").await;
}

#[tokio::test]
async fn drf_api_key_on_postgres() {
    drf_api_key_cases(Vendor::Postgres, "drf_api_key_on_postgres").await;
}

#[tokio::test]
async fn drf_api_key_on_mysql() {
    drf_api_key_cases(Vendor::Mysql, "drf_api_key_on_mysql").await;
}

#[tokio::test]
async fn drf_authtoken_on_sqlite() {
    drf_authtoken_cases(Vendor::Sqlite, "drf_authtoken_on_sqlite").await;
}

#[tokio::test]
async fn drf_authtoken_on_postgres() {
    drf_authtoken_cases(Vendor::Postgres, "drf_authtoken_on_postgres").await;
}

#[tokio::test]
async fn drf_authtoken_on_mysql() {
    drf_authtoken_cases(Vendor::Mysql, "drf_authtoken_on_mysql").await;
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let tenant = TenantId::generate();
    let adapter = json!({
        "name": "django-keys",
        "preset": "drf-api-key",
        // Port 1 on loopback has no listener, so the connection is refused.
        "url": "postgres://postgres@127.0.0.1:1/test",
        "connect_timeout_seconds": 1,
        "mapping": { "tenant": { "default": tenant.as_str() } },
    });
    let app = app_with_adapter(&tenant, adapter).await;
    let fixture = fixture();
    let key = key_of(case(&fixture, "valid"));
    assert_reason(
        &app,
        &key,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        "database down",
    )
    .await;
}

#[tokio::test]
async fn kong_deck_file_keys() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("kong.yaml");
    let key = "Zx8Lm2Qp9Rt4Vw6Yb1Nc3Df5Gh7Jk0Ms";
    let deck = format!(
        "_format_version: \"3.0\"\nconsumers:\n- username: billing-service\n  keyauth_credentials:\n  - key: {key}\n    id: 5f0c7a3e-0000-4000-8000-000000000001\n"
    );
    std::fs::write(&path, deck).expect("write the decK file");
    let tenant = TenantId::generate();
    let adapter = json!({
        "name": "kong-export",
        "kind": "file_keys",
        "path": path.display().to_string(),
        "format": "deck",
        "pattern": "(?P<lookup>[A-Za-z0-9]{32})",
        "columns": { "hash": "key", "owner": "consumer.username", "key_id": "id" },
        "mapping": { "tenant": { "default": tenant.as_str() }, "machine": { "claim": "owner" } },
    });
    let app = app_with_adapter(&tenant, adapter).await;
    let response = app.verify(key, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["machineId"], json!("billing-service"));
    assert_reason(
        &app,
        &change_last_character(key),
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        "wrong key",
    )
    .await;
}
