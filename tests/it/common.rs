//! Shared test helpers: an `App` on a temporary SQLite file or a fresh PostgreSQL database, a
//! manual clock, and request helpers for the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

use authbridge::admin::{CreateApiKey, CreateMachine, CreateTenant};
use authbridge::app::App;
use authbridge::clock::ManualClock;
use authbridge::config::Config;
use authbridge::credentials::Mode;
use authbridge::ids::TenantId;
use authbridge::jose::Algorithm;

/// The issuer every test app uses.
pub const ISSUER: &str = "http://issuer.test";

/// The start time of every manual clock: 2024-01-01T00:00:00Z.
pub const START: i64 = 1_704_067_200;

const POSTGRES_ENV: &str = "AUTHBRIDGE_TEST_POSTGRES_URL";

/// The database a test app runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The server URL from `AUTHBRIDGE_TEST_POSTGRES_URL`. Each app gets its own database there.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always, and PostgreSQL when `AUTHBRIDGE_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    match postgres_backend() {
        Some(backend) => list.push(backend),
        None => println!("{POSTGRES_ENV} not set: skipping PostgreSQL"),
    }
    list
}

/// PostgreSQL when `AUTHBRIDGE_TEST_POSTGRES_URL` is set.
pub fn postgres_backend() -> Option<Backend> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.is_empty())
        .map(Backend::Postgres)
}

/// A database created for one test and dropped when the value goes out of scope.
pub struct PostgresDatabase {
    server_url: String,
    name: String,
    pub url: String,
}

impl PostgresDatabase {
    pub async fn create(server_url: &str) -> Self {
        sqlx::any::install_default_drivers();
        let name = format!(
            "ab_test_{}",
            authbridge::ids::random_lowercase_alphanumeric(12)
        );
        let mut connection = connect_any(server_url).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .expect("CREATE DATABASE on the test PostgreSQL server");
        Self {
            server_url: server_url.to_owned(),
            url: replace_database(server_url, &name),
            name,
        }
    }
}

async fn connect_any(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, so the cleanup gets a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let mut connection = connect_any(&server_url).await;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(error) = sqlx::query(&drop).execute(&mut connection).await {
                    eprintln!("failed to drop test database {name}: {error}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Replaces the database name in a PostgreSQL URL, keeping any query string.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{database}?{query}"),
        None => format!("{host_part}/{database}"),
    }
}

/// An app with its clock, router and the storage it owns.
pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub router: Router,
    pub backend: Backend,
    _dir: TempDir,
    _database: Option<PostgresDatabase>,
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::open(Backend::Sqlite, Algorithm::RS256).await
    }

    pub async fn with_algorithm(algorithm: Algorithm) -> Self {
        Self::open(Backend::Sqlite, algorithm).await
    }

    pub async fn open(backend: Backend, algorithm: Algorithm) -> Self {
        Self::with_config(backend, |config| config.signing.algorithm = algorithm).await
    }

    /// Opens an app whose default test configuration `configure` may change.
    pub async fn with_config(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut config = Config::default();
        config.database.data_dir = dir.path().to_owned();
        config.server.issuer = Some(ISSUER.to_owned());
        configure(&mut config);
        let database = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(server_url) => {
                let database = PostgresDatabase::create(server_url).await;
                config.database.url = Some(database.url.clone());
                Some(database)
            }
        };
        let clock = ManualClock::new(START);
        let app = App::open(config, clock.clone())
            .await
            .unwrap_or_else(|e| panic!("App::open on {}: {e}", backend.name()));
        let router = authbridge::http::router(app.clone());
        Self {
            app,
            clock,
            router,
            backend,
            _dir: dir,
            _database: database,
        }
    }

    /// Creates a root tenant and a live admin API key for it, like `authbridge bootstrap`.
    pub async fn bootstrap(&self, name: &str) -> (TenantId, String) {
        let tenant = self
            .app
            .create_tenant(&CreateTenant {
                name: name.to_owned(),
                parent_id: None,
                inherit_roles: Some(true),
            })
            .await
            .expect("create root tenant");
        let key = self.api_key(&tenant.id, "admin", Mode::Live).await;
        (tenant.id, key)
    }

    pub async fn sub_tenant(&self, parent: &TenantId, name: &str) -> TenantId {
        self.app
            .create_tenant(&CreateTenant {
                name: name.to_owned(),
                parent_id: Some(parent.to_string()),
                inherit_roles: None,
            })
            .await
            .expect("create sub-tenant")
            .id
    }

    pub async fn api_key(&self, tenant: &TenantId, role: &str, mode: Mode) -> String {
        let (_, key) = self
            .app
            .create_api_key(
                tenant,
                &CreateApiKey {
                    role: role.to_owned(),
                    mode,
                    name: None,
                    expires_at: None,
                },
            )
            .await
            .expect("create API key");
        key.expose().to_owned()
    }

    /// Registers a secret-based machine with `roles` at its own tenant; returns
    /// `(client_id, client_secret)`.
    pub async fn machine(&self, tenant: &TenantId, roles: &[&str], mode: Mode) -> (String, String) {
        let request = CreateMachine {
            name: "worker".to_owned(),
            roles: [(
                tenant.to_string(),
                roles.iter().map(|r| (*r).to_owned()).collect(),
            )]
            .into(),
            jwks: None,
            scopes: vec!["read".to_owned()],
            audiences: Vec::new(),
            claims: None,
            mode: Some(mode),
        };
        let (machine, secret) = self
            .app
            .create_machine(tenant, &request)
            .await
            .expect("create machine");
        let secret = secret.expect("a secret-based machine gets a client secret");
        (machine.client_id, secret.expose().to_owned())
    }

    /// Gets an access token with `client_secret_basic` and extra form parameters.
    pub async fn token(&self, client_id: &str, secret: &str, extra: &str) -> String {
        let body = format!("grant_type=client_credentials{extra}");
        let response = self
            .send(form("/oauth/token", Some(&basic(client_id, secret)), &body))
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "token request: {}",
            response.body
        );
        response.body["access_token"]
            .as_str()
            .expect("access_token in the token response")
            .to_owned()
    }

    /// Calls `/v1/verify` with `credential` as a bearer token and `requirements` as the body.
    pub async fn verify(&self, credential: &str, requirements: Option<Value>) -> Response {
        let body = requirements.map(|r| r.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/verify")
            .header(header::AUTHORIZATION, format!("Bearer {credential}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("build verify request");
        self.send(request).await
    }

    /// Returns the reason `/v1/verify` gives for `credential` without requirements.
    pub async fn reason(&self, credential: &str) -> String {
        self.verify(credential, None).await.reason()
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        send(&self.router, request).await
    }

    /// Signs `claims` with the current key under `header`, which is used as given.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
        let signature = self
            .app
            .keyring
            .current()
            .sign(input.as_bytes())
            .expect("sign with the current key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The header the daemon itself puts on access tokens.
    pub fn native_header(&self) -> Value {
        let key = self.app.keyring.current();
        json!({"alg": key.algorithm.jose_name(), "typ": "at+jwt", "kid": key.kid})
    }

    /// Claims of a valid access token for `tenant`, issued now.
    pub fn claims(&self, tenant: &TenantId) -> Value {
        let now = authbridge::clock::Clock::now(self.clock.as_ref());
        json!({
            "iss": ISSUER,
            "sub": "client-test",
            "aud": ISSUER,
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "client_id": "client-test",
            "tenantId": tenant.as_str(),
            "mode": "live",
            "authorization": { tenant.as_str(): { "roles": ["reader"] } },
        })
    }

    /// Signs `claims` the way the daemon does (`typ: at+jwt`, current key).
    pub fn sign(&self, claims: &Value) -> String {
        self.app
            .issuer
            .sign(claims)
            .expect("sign claims")
            .expose()
            .to_owned()
    }
}

/// A response with its body parsed as JSON (`Value::Null` when empty, a string when not JSON).
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn reason(&self) -> String {
        self.body["reason"].as_str().unwrap_or("<none>").to_owned()
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Response {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("read the response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Response {
        status,
        headers,
        body,
    }
}

/// A form POST, optionally with an `Authorization` header.
pub fn form(uri: &str, authorization: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .body(Body::from(body.to_owned()))
        .expect("build form request")
}

/// An admin API request with a bearer credential and an optional JSON body.
pub fn admin(method: Method, uri: &str, credential: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {credential}"));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("build admin request")
}

/// `Authorization: Basic` for a client id and secret (RFC 6749 section 2.3.1).
pub fn basic(client_id: &str, secret: &str) -> String {
    let id = form_encode(client_id);
    let secret = form_encode(secret);
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn form_encode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .expect("urlencode")
        .trim_start_matches("v=")
        .to_owned()
}

pub fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// Decodes the payload of a compact JWS without checking it.
pub fn payload(token: &str) -> Value {
    let segment = token
        .split('.')
        .nth(1)
        .expect("a JWS has a payload segment");
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

/// Replaces the signature segment of a compact JWS.
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let input = token
        .rsplit_once('.')
        .expect("a JWS has a signature segment")
        .0;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Decodes one base64url segment.
pub fn decode(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .expect("segment is base64url")
}
