//! `authbridge import` and verification from the imported copy, against a SQLite legacy table
//! in the schema djangorestframework-api-key writes (`tests/fixtures/keystores/drf.json`).

use std::time::Instant;

use axum::http::StatusCode;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use sqlx::{AnyConnection, Connection};

use authbridge::config::AdapterEntries;
use authbridge::ids::TenantId;
use authbridge::legacy::import::{self, ImportOptions, ImportSummary};
use authbridge::store::TenantRecord;

use crate::common::{Backend, TestApp, START};

pub(crate) const TABLE: &str = "rest_framework_api_key_apikey";
pub(crate) const ADAPTER: &str = "django-keys";
pub(crate) const COLUMNS: &str =
    "prefix AS lookup, hashed_key, CAST(revoked AS INTEGER) AS revoked, \
     CAST(strftime('%s', expiry_date) AS INTEGER) AS expiry_date, name, prefix";

pub(crate) fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keystores/drf.json"
    ))
    .expect("read tests/fixtures/keystores/drf.json");
    serde_json::from_str(&text).expect("drf.json is JSON")
}

fn fixture_key(fixture: &Value, name: &str) -> (String, Value) {
    let case = fixture["api_keys"]
        .as_array()
        .expect("api_keys")
        .iter()
        .find(|c| c["case"] == name)
        .unwrap_or_else(|| panic!("fixture case {name}"));
    (
        case["key"].as_str().expect("key").to_owned(),
        case["row"].clone(),
    )
}

/// A SQLite legacy database with the DRF API key table.
pub(crate) struct LegacyDb {
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl LegacyDb {
    pub(crate) async fn create(fixture: &Value) -> Self {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("legacy.db").display());
        let db = Self { url, _dir: dir };
        let mut connection = AnyConnection::connect(&format!("{}?mode=rwc", db.url))
            .await
            .expect("create the legacy database");
        for statement in fixture["ddl"]["sqlite"][TABLE].as_array().expect("DDL") {
            sqlx::query(statement.as_str().expect("DDL text"))
                .execute(&mut connection)
                .await
                .expect("create the legacy table");
        }
        db
    }

    async fn connect(&self) -> AnyConnection {
        AnyConnection::connect(&self.url)
            .await
            .expect("connect to the legacy database")
    }

    async fn execute(&self, sql: &str) {
        let mut connection = self.connect().await;
        sqlx::query(sql)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn insert_fixture_rows(&self, fixture: &Value) {
        let mut connection = self.connect().await;
        for case in fixture["api_keys"].as_array().expect("api_keys") {
            let row = &case["row"];
            sqlx::query(&format!(
                "INSERT INTO {TABLE} (id, prefix, hashed_key, created, name, revoked, expiry_date) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(row["id"].as_str().expect("id").to_owned())
            .bind(row["prefix"].as_str().expect("prefix").to_owned())
            .bind(row["hashed_key"].as_str().expect("hashed_key").to_owned())
            .bind(row["created"].as_str().expect("created").to_owned())
            .bind(row["name"].as_str().expect("name").to_owned())
            .bind(row["revoked"].as_bool().expect("revoked"))
            .bind(row["expiry_date"].as_str().map(str::to_owned))
            .execute(&mut connection)
            .await
            .expect("insert a fixture row");
        }
    }

    /// Inserts `count` keys in the `sha512$$<hex>` form of djangorestframework-api-key 3.x, 1000
    /// rows per INSERT, all in one transaction. Returns the keys in lookup order.
    pub(crate) async fn insert_generated_keys(&self, count: usize) -> Vec<String> {
        const ROWS_PER_INSERT: usize = 1000;
        let keys: Vec<String> = (0..count).map(generated_key).collect();
        let mut connection = self.connect().await;
        let mut transaction = connection.begin().await.expect("begin");
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(${}, ${}, ${}, '2024-01-01 00:00:00', 'generated', 0, NULL)",
                        3 * i + 1,
                        3 * i + 2,
                        3 * i + 3
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO {TABLE} (id, prefix, hashed_key, created, name, revoked, expiry_date) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                let hash = format!("sha512$${}", hex::encode(Sha512::digest(key.as_bytes())));
                let prefix = key[..8].to_owned();
                query = query
                    .bind(format!("{prefix}.{hash}"))
                    .bind(prefix)
                    .bind(hash);
            }
            query
                .execute(&mut *transaction)
                .await
                .expect("insert generated keys");
        }
        transaction.commit().await.expect("commit");
        keys
    }
}

/// Returns the key number `index`: an 8-digit prefix in lookup order and a 32-character secret.
fn generated_key(index: usize) -> String {
    let secret = hex::encode(Sha256::digest(index.to_le_bytes()));
    format!("{index:08}.{}", &secret[..32])
}

async fn app_with_adapter(db: &LegacyDb, tenant: &TenantId, phase: &str) -> TestApp {
    let adapter = json!({
        "name": ADAPTER,
        "preset": "drf-api-key",
        "url": db.url,
        "phase": phase,
        "import_query": format!("SELECT {COLUMNS} FROM {TABLE} WHERE prefix > $1 ORDER BY prefix LIMIT $2"),
        "count_query": format!("SELECT COUNT(*) FROM {TABLE}"),
        "mapping": { "tenant": { "default": tenant.as_str() }, "roles": { "default": ["reader"] } },
    });
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

async fn run_import(app: &TestApp, options: &ImportOptions) -> ImportSummary {
    let adapter = app.app.verifier.adapters().get(ADAPTER).expect("adapter");
    let clock = app.clock.clone();
    import::run(
        &app.app.store,
        adapter,
        options,
        &ProgressBar::hidden(),
        move || authbridge::clock::Clock::now(&*clock),
    )
    .await
    .expect("import")
}

async fn assert_reason(app: &TestApp, key: &str, status: StatusCode, reason: &str, what: &str) {
    let response = app.verify(key, None).await;
    assert_eq!(response.status, status, "{what}: {}", response.body);
    assert_eq!(response.reason(), reason, "{what}: {}", response.body);
}

#[tokio::test]
async fn import_resumes_and_is_idempotent() {
    const KEYS: usize = 100_000;
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    let keys = db.insert_generated_keys(KEYS).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    let store = &app.app.store;
    let adapter = app.app.verifier.adapters().get(ADAPTER).expect("adapter");
    assert_eq!(
        import::count_rows(adapter).await.expect("count"),
        Some(KEYS as u64)
    );

    // An import interrupted after 50 of 100 batches.
    let started = Instant::now();
    let interrupted = ImportOptions {
        max_batches: Some(50),
        ..ImportOptions::default()
    };
    let first = run_import(&app, &interrupted).await;
    assert_eq!(first.inserted, 50_000);
    assert!(!first.finished);
    assert_eq!(store.count_legacy_keys(ADAPTER).await.unwrap(), 50_000);
    let cursor = store
        .legacy_import_cursor(ADAPTER)
        .await
        .unwrap()
        .expect("cursor");
    assert_eq!(cursor.last_lookup, keys[49_999][..8]);
    assert_eq!(cursor.finished_at, None);

    let resumed = run_import(&app, &ImportOptions::default()).await;
    let seconds = started.elapsed().as_secs_f64();
    println!("imported {KEYS} keys in {seconds:.1} s (debug build, SQLite to SQLite)");
    assert_eq!(resumed.resumed_after.as_deref(), Some(&keys[49_999][..8]));
    assert_eq!(resumed.inserted, 50_000);
    assert_eq!(resumed.updated, 0);
    assert!(resumed.finished);
    assert_eq!(store.count_legacy_keys(ADAPTER).await.unwrap(), KEYS as i64);
    let cursor = store
        .legacy_import_cursor(ADAPTER)
        .await
        .unwrap()
        .expect("cursor");
    assert_eq!(cursor.last_lookup, keys[KEYS - 1][..8]);
    assert!(cursor.finished_at.is_some());

    // A finished import starts from the beginning and finds nothing to change.
    let again = run_import(&app, &ImportOptions::default()).await;
    assert_eq!(again.resumed_after, None);
    assert_eq!(again.inserted, 0);
    assert_eq!(again.updated, 0);
    assert_eq!(again.unchanged, KEYS as u64);
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);

    // Changes in the legacy store: a dry run counts them and writes nothing.
    db.execute(&format!(
        "UPDATE {TABLE} SET revoked = 1 WHERE prefix = '00000007'"
    ))
    .await;
    db.execute(&format!(
        "UPDATE {TABLE} SET expiry_date = '2030-01-01 00:00:00' WHERE prefix = '00099999'"
    ))
    .await;
    let dry_run = ImportOptions {
        dry_run: true,
        ..ImportOptions::default()
    };
    let planned = run_import(&app, &dry_run).await;
    assert_eq!(planned.updated, 2);
    assert_eq!(planned.inserted, 0);
    let stored = store
        .legacy_key(ADAPTER, "00000007")
        .await
        .unwrap()
        .expect("row");
    assert!(!stored.data.revoked, "a dry run must not write");

    let applied = run_import(&app, &ImportOptions::default()).await;
    assert_eq!(applied.updated, 2);
    assert_eq!(applied.unchanged, KEYS as u64 - 2);
    let stored = store
        .legacy_key(ADAPTER, "00000007")
        .await
        .unwrap()
        .expect("row");
    assert!(stored.data.revoked);
    let stored = store
        .legacy_key(ADAPTER, "00099999")
        .await
        .unwrap()
        .expect("row");
    assert_eq!(stored.data.expires_at, Some(1_893_456_000));

    // An imported key verifies from the copy.
    let response = app.verify(&keys[12_345], None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_reason(
        &app,
        &keys[7],
        StatusCode::UNAUTHORIZED,
        "revoked",
        "revoked after import",
    )
    .await;
}

#[tokio::test]
async fn import_skips_unreadable_rows() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    db.execute(&format!(
        "INSERT INTO {TABLE} (id, prefix, hashed_key, created, name, revoked, expiry_date) \
         VALUES ('bad.x', 'zzzzzzzz', X'FF', '2024-01-01 00:00:00', 'binary-hash', 0, NULL)"
    ))
    .await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    let options = ImportOptions {
        batch_size: 2,
        ..ImportOptions::default()
    };
    let summary = run_import(&app, &options).await;
    assert_eq!(summary.inserted, 5);
    assert_eq!(
        summary
            .skipped
            .get("unreadable row: column \"hashed_key\" is binary and not UTF-8"),
        Some(&1),
        "{:?}",
        summary.skipped
    );
    assert!(summary.finished);
    assert_eq!(summary.batches, 3);
}

#[tokio::test]
async fn imported_copy_verifies_without_legacy_store() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    let summary = run_import(&app, &ImportOptions::default()).await;
    assert_eq!(summary.inserted, 5);

    // Without the legacy table, any call to the legacy store returns legacy_unavailable.
    db.execute(&format!("DROP TABLE {TABLE}")).await;
    let (valid, valid_row) = fixture_key(&fixture, "valid");
    let lookup = valid_row["prefix"].as_str().expect("prefix");
    let stored = app
        .app
        .store
        .legacy_key(ADAPTER, lookup)
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(stored.own_hmac, None);
    assert_eq!(stored.origin, "import");

    let response = app.verify(&valid, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["source"], json!("legacy"));
    assert_eq!(response.body["tenantId"], json!(tenant.as_str()));
    let stored = app
        .app
        .store
        .legacy_key(ADAPTER, lookup)
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(
        stored.own_hmac,
        Some(app.app.pepper.digest_hex(valid.as_bytes()))
    );
    assert_eq!(stored.first_seen_at, Some(START));
    // The second verification compares the daemon's HMAC.
    assert_reason(&app, &valid, StatusCode::OK, "valid", "by own HMAC").await;

    let (pbkdf2, _) = fixture_key(&fixture, "pbkdf2_legacy");
    assert_reason(&app, &pbkdf2, StatusCode::OK, "valid", "PBKDF2 row").await;
    let mut wrong = valid.clone();
    wrong.pop();
    wrong.push(if valid.ends_with('a') { 'b' } else { 'a' });
    assert_reason(
        &app,
        &wrong,
        StatusCode::UNAUTHORIZED,
        "unknown_credential",
        "wrong secret",
    )
    .await;
    assert_reason(
        &app,
        &fixture_key(&fixture, "revoked").0,
        StatusCode::UNAUTHORIZED,
        "revoked",
        "revoked",
    )
    .await;
    assert_reason(
        &app,
        &fixture_key(&fixture, "expired").0,
        StatusCode::UNAUTHORIZED,
        "expired",
        "expired",
    )
    .await;
    // A key that was not imported goes to the legacy store, which is gone.
    let unknown = format!("Zz9Zz9Zz{}", &valid[8..]);
    assert_reason(
        &app,
        &unknown,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        "not imported",
    )
    .await;
}

#[tokio::test]
async fn lazy_import_on_first_verification() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    let (valid, valid_row) = fixture_key(&fixture, "valid");
    let lookup = valid_row["prefix"].as_str().expect("prefix");

    assert_reason(&app, &valid, StatusCode::OK, "valid", "live").await;
    let stored = app
        .app
        .store
        .legacy_key(ADAPTER, lookup)
        .await
        .unwrap()
        .expect("imported lazily");
    assert_eq!(stored.origin, "lazy");
    assert_eq!(
        stored.own_hmac,
        Some(app.app.pepper.digest_hex(valid.as_bytes()))
    );
    assert_eq!(stored.data.hash_scheme, "django");
    assert_eq!(stored.data.owner.as_deref(), Some("\"valid\""));
    // A rejected key is not recorded.
    assert_reason(
        &app,
        &fixture_key(&fixture, "revoked").0,
        StatusCode::UNAUTHORIZED,
        "revoked",
        "revoked",
    )
    .await;
    assert_eq!(app.app.store.count_legacy_keys(ADAPTER).await.unwrap(), 1);

    // After the live result's cache time, the key still verifies without the legacy table.
    db.execute(&format!("DROP TABLE {TABLE}")).await;
    app.clock.advance(301);
    assert_reason(&app, &valid, StatusCode::OK, "valid", "from the lazy copy").await;
}

#[tokio::test]
async fn shadow_phase_asks_the_legacy_store() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "shadow").await;
    run_import(&app, &ImportOptions::default()).await;
    db.execute(&format!("DROP TABLE {TABLE}")).await;
    let (valid, _) = fixture_key(&fixture, "valid");
    assert_reason(
        &app,
        &valid,
        StatusCode::SERVICE_UNAVAILABLE,
        "legacy_unavailable",
        "shadow",
    )
    .await;
}

#[tokio::test]
async fn legacy_revocation_arrives_with_next_import() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    run_import(&app, &ImportOptions::default()).await;
    let (valid, valid_row) = fixture_key(&fixture, "valid");
    assert_reason(&app, &valid, StatusCode::OK, "valid", "before revocation").await;

    let prefix = valid_row["prefix"].as_str().expect("prefix");
    db.execute(&format!(
        "UPDATE {TABLE} SET revoked = 1 WHERE prefix = '{prefix}'"
    ))
    .await;
    // The imported copy decides until the next import.
    assert_reason(
        &app,
        &valid,
        StatusCode::OK,
        "valid",
        "revoked in the legacy store only",
    )
    .await;
    let summary = run_import(&app, &ImportOptions::default()).await;
    assert_eq!(summary.updated, 1);
    assert_reason(
        &app,
        &valid,
        StatusCode::UNAUTHORIZED,
        "revoked",
        "after the next import",
    )
    .await;
}

#[tokio::test]
async fn imported_row_is_served_from_memory() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "dual").await;
    run_import(&app, &ImportOptions::default()).await;
    let (valid, _) = fixture_key(&fixture, "valid");
    assert_reason(&app, &valid, StatusCode::OK, "valid", "first verification").await;

    // Both copies are gone, so only the row cached by the first verification can decide.
    sqlx::query("DELETE FROM legacy_keys")
        .execute(app.app.store.pool())
        .await
        .expect("delete the imported rows");
    db.execute(&format!("DELETE FROM {TABLE}")).await;
    assert_reason(
        &app,
        &valid,
        StatusCode::OK,
        "valid",
        "row cached in memory",
    )
    .await;
}

#[tokio::test]
async fn shadow_records_disagreement_with_tampered_copy() {
    let fixture = fixture();
    let db = LegacyDb::create(&fixture).await;
    db.insert_fixture_rows(&fixture).await;
    let tenant = TenantId::generate();
    let app = app_with_adapter(&db, &tenant, "shadow").await;
    run_import(&app, &ImportOptions::default()).await;
    let (valid, valid_row) = fixture_key(&fixture, "valid");
    let lookup = valid_row["prefix"].as_str().expect("prefix");

    // Tamper with the imported copy: the live store still has the genuine row.
    sqlx::query("UPDATE legacy_keys SET legacy_hash = $1 WHERE adapter = $2 AND lookup = $3")
        .bind(format!("sha512$${}", "0".repeat(128)))
        .bind(ADAPTER)
        .bind(lookup)
        .execute(app.app.store.pool())
        .await
        .unwrap();
    assert_reason(
        &app,
        &valid,
        StatusCode::OK,
        "valid",
        "the live legacy answer decides in shadow",
    )
    .await;

    app.app.audit.flush().await.unwrap();
    let events = authbridge::audit::store::events_page(
        &app.app.store,
        &authbridge::audit::EventFilter {
            reason: Some("shadow_disagreement".to_owned()),
            ..Default::default()
        },
        None,
        authbridge::audit::store::PageOrder::Descending,
        10,
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1, "one disagreement recorded: {events:?}");
    let detail: Value =
        serde_json::from_str(events[0].detail.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(detail["legacy"], json!("valid"));
    assert_eq!(detail["bridge"], json!("unknown_credential"));

    // An untouched key agrees and records nothing more.
    let (pbkdf2, _) = fixture_key(&fixture, "pbkdf2_legacy");
    assert_reason(&app, &pbkdf2, StatusCode::OK, "valid", "agreeing key").await;
    app.app.audit.flush().await.unwrap();
    let again = authbridge::audit::store::events_page(
        &app.app.store,
        &authbridge::audit::EventFilter {
            reason: Some("shadow_disagreement".to_owned()),
            ..Default::default()
        },
        None,
        authbridge::audit::store::PageOrder::Descending,
        10,
    )
    .await
    .unwrap();
    assert_eq!(again.len(), 1, "agreement adds no disagreement");
}
