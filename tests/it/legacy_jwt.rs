//! The `jwt` adapter kind through `/v1/verify`. Remote key sources (discovery, JWKS, X.509
//! certificate maps) are served by wiremock on 127.0.0.1. The tests cover the key cache
//! (rotation, outages, `Cache-Control`, unknown-`kid` floods), every JWT preset, attack classes
//! against a legacy issuer, and genuine tokens issued by `oidc-provider`.

use std::time::Duration;

use axum::http::StatusCode;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use openssl::pkey::{PKey, Private};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use authbridge::config::AdapterEntries;
use authbridge::ids::TenantId;
use authbridge::jose::keys::SigningKey;
use authbridge::jose::Algorithm;
use authbridge::legacy::Adapters;
use authbridge::store::TenantRecord;

use crate::common::{b64, send, Backend, TestApp, ISSUER, START};

/// The tenant every test adapter maps to; it is inserted with this id after the app opens.
const TENANT: &str = "jwtt0001";

/// Cache bounds small enough to step through with the manual clock.
fn test_cache() -> Value {
    json!({
        "min_ttl_seconds": 60,
        "max_ttl_seconds": 3600,
        "stale_seconds": 600,
        "refetch_cooldown_seconds": 30,
        "timeout_seconds": 1,
        "max_bytes": 65536,
    })
}

/// Returns `base` with the members of `extra` added or replaced.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// Returns an adapter entry with the test mapping, test cache bounds and `allow_http`.
fn adapter(name: &str, settings: Value) -> Value {
    let base = json!({
        "name": name,
        "allow_http": true,
        "cache": test_cache(),
        "mapping": {
            "tenant": {"default": TENANT},
            "machine": {"claim": "sub"},
            "roles": {"default": ["reader"]},
        },
    });
    merged(base, settings)
}

/// Opens an app with `adapters` and the tenant they map to.
async fn app_with(adapters: Vec<Value>) -> TestApp {
    let app = TestApp::with_config(Backend::Sqlite, |config| {
        config.adapters = AdapterEntries(adapters)
    })
    .await;
    let record = TenantRecord {
        id: TenantId::parse(TENANT).unwrap(),
        parent_id: None,
        name: "legacy-jwt".to_owned(),
        inherit_roles: true,
        created_at: START,
        updated_at: START,
    };
    app.app.store.insert_tenant(&record).await.unwrap();
    app
}

fn now(app: &TestApp) -> i64 {
    authbridge::clock::Clock::now(app.clock.as_ref())
}

/// A legacy issuer's signing key.
struct TestKey {
    key: SigningKey,
}

impl TestKey {
    fn new(algorithm: Algorithm) -> Self {
        Self {
            key: SigningKey::generate(algorithm).unwrap().0,
        }
    }

    fn kid(&self) -> String {
        self.key.kid.clone()
    }

    fn jwk(&self) -> Value {
        self.key.public_jwk().clone()
    }

    fn header(&self) -> Value {
        json!({"alg": self.key.algorithm.jose_name(), "typ": "JWT", "kid": self.kid()})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
        let signature = self.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

/// Claims of a valid token issued now by `issuer` for `audience`.
fn claims(app: &TestApp, issuer: &str, audience: Value) -> Value {
    let now = now(app);
    json!({
        "iss": issuer,
        "sub": "svc-billing",
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "scope": "read",
    })
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Serves `body` at `route` with an optional `Cache-Control` value.
async fn serve_json(server: &MockServer, route: &str, body: Value, cache_control: Option<&str>) {
    let mut response = ResponseTemplate::new(200).set_body_json(body);
    if let Some(value) = cache_control {
        response = response.insert_header("cache-control", value);
    }
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn request_paths(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| request.url.path().to_owned())
        .collect()
}

async fn assert_valid(app: &TestApp, token: &str, adapter: &str) {
    let response = app.verify(token, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["source"], "legacy");
    assert_eq!(response.body["adapter"], adapter);
    assert_eq!(response.body["tenantId"], TENANT);
}

// ---------------------------------------------------------------------------------------------
// OpenSSL keys and certificates, for key sources that carry X.509 certificates.

fn openssl_rsa() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

fn self_signed(key: &PKey<Private>) -> openssl::x509::X509 {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "legacy issuer").unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    builder.sign(key, MessageDigest::sha256()).unwrap();
    builder.build()
}

fn openssl_rs256(key: &PKey<Private>, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap();
    let signature = signer.sign_oneshot_to_vec(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn openssl_jwk(key: &PKey<Private>, kid: &str) -> Value {
    let rsa = key.rsa().unwrap();
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
        "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
    })
}

// ---------------------------------------------------------------------------------------------
// Remote key sources.

#[tokio::test]
async fn discovery_document_names_the_jwks() {
    let server = MockServer::start().await;
    let issuer = server.uri();
    let key = TestKey::new(Algorithm::RS256);
    serve_json(
        &server,
        "/.well-known/openid-configuration",
        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/oauth/keys")}),
        None,
    )
    .await;
    serve_json(&server, "/oauth/keys", jwks(&[key.jwk()]), None).await;
    let app = app_with(vec![adapter(
        "idp",
        json!({"preset": "oidc", "issuer": issuer, "audience": "api"}),
    )])
    .await;

    let token = key.token(&claims(&app, &issuer, json!("api")));
    assert_valid(&app, &token, "idp").await;
    let response = app.verify(&token, None).await;
    assert_eq!(response.body["machineId"], "svc-billing");
    assert_eq!(
        request_paths(&server).await,
        ["/.well-known/openid-configuration", "/oauth/keys"]
    );
}

#[tokio::test]
async fn discovery_issuer_mismatch_is_unavailable() {
    let server = MockServer::start().await;
    let issuer = server.uri();
    let key = TestKey::new(Algorithm::RS256);
    serve_json(
        &server,
        "/.well-known/openid-configuration",
        json!({"issuer": "https://other.example", "jwks_uri": format!("{issuer}/oauth/keys")}),
        None,
    )
    .await;
    serve_json(&server, "/oauth/keys", jwks(&[key.jwk()]), None).await;
    let app = app_with(vec![adapter(
        "idp",
        json!({"preset": "oidc", "issuer": issuer, "audience": "api"}),
    )])
    .await;

    let response = app
        .verify(&key.token(&claims(&app, &issuer, json!("api"))), None)
        .await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.reason(), "legacy_unavailable");
    assert_eq!(
        request_paths(&server).await,
        ["/.well-known/openid-configuration"]
    );
}

#[tokio::test]
async fn http_key_url_needs_allow_http() {
    for key in ["jwks_url", "discovery_url", "x509_url"] {
        let mut entry = json!({
            "name": "plain", "kind": "jwt", "issuers": ["https://idp.example"], "audiences": ["api"],
        });
        entry[key] = json!("http://127.0.0.1:9/keys");
        let error = Adapters::build(&[entry], ISSUER, "ab", &reqwest::Client::new()).unwrap_err();
        assert!(error.to_string().contains("allow_http"), "{key}: {error}");
    }
}

#[tokio::test]
async fn config_time_key_rules() {
    let base = json!({"name": "hs", "kind": "jwt", "issuers": ["https://hs.example"], "audiences": ["api"]});
    let cases = [
        // A09: short shared secrets need an explicit opt-in.
        (
            json!({"algorithms": ["HS256"], "hmac_secret": "your-256-bit-secret"}),
            Some("allow_weak_secret"),
        ),
        (
            json!({"algorithms": ["HS256"], "hmac_secret": "your-256-bit-secret", "allow_weak_secret": true}),
            None,
        ),
        // A08: an empty secret is never configured.
        (
            json!({"algorithms": ["HS256"], "hmac_secret": "", "allow_weak_secret": true}),
            Some("empty"),
        ),
        // A03: an issuer with public keys never verifies HS algorithms.
        (
            json!({"algorithms": ["RS256", "HS256"], "jwks_url": "https://hs.example/keys"}),
            Some("HS algorithms"),
        ),
        (
            json!({"algorithms": ["RS256"], "hmac_secret": "0123456789abcdef0123456789abcdef"}),
            Some("hmac_secret"),
        ),
    ];
    for (settings, expected) in cases {
        let entry = merged(base.clone(), settings.clone());
        let result = Adapters::build(&[entry], ISSUER, "ab", &reqwest::Client::new());
        match expected {
            Some(text) => {
                let error = result.unwrap_err().to_string();
                assert!(error.contains(text), "{settings}: {error}");
            }
            None => assert!(result.is_ok(), "{settings}: {:?}", result.err()),
        }
    }
}

#[tokio::test]
async fn weak_secret_issuer_verifies_hs256() {
    let secret = "your-256-bit-secret";
    let app = app_with(vec![adapter(
        "hs",
        json!({"kind": "jwt", "issuers": ["https://hs.example"], "audiences": ["api"], "algorithms": ["HS256"],
               "hmac_secret": secret, "allow_weak_secret": true}),
    )])
    .await;
    let claims = claims(&app, "https://hs.example", json!("api"));
    let header = json!({"alg": "HS256", "typ": "JWT"});
    assert_valid(&app, &hs256(secret.as_bytes(), &header, &claims), "hs").await;
    // A08: a MAC under the empty secret.
    assert_eq!(
        app.reason(&hs256(b"", &header, &claims)).await,
        "invalid_signature"
    );
}

// ---------------------------------------------------------------------------------------------
// The key cache.

/// Returns an adapter entry for `issuer` whose keys are `server`'s JWKS at `route`.
fn jwks_adapter(name: &str, server: &MockServer, route: &str, issuer: &str, extra: Value) -> Value {
    let settings = json!({
        "kind": "jwt",
        "issuers": [issuer],
        "audiences": ["api"],
        "algorithms": ["RS256", "ES256", "EdDSA"],
        "jwks_url": format!("{}{route}", server.uri()),
    });
    adapter(name, merged(settings, extra))
}

#[tokio::test]
async fn rotation_refetches_once_for_new_kid() {
    let server = MockServer::start().await;
    let old = TestKey::new(Algorithm::RS256);
    let new = TestKey::new(Algorithm::RS256);
    let issuer = "https://rotating.example";
    serve_json(&server, "/keys", jwks(&[old.jwk()]), None).await;
    let app = app_with(vec![jwks_adapter(
        "rotating",
        &server,
        "/keys",
        issuer,
        json!({}),
    )])
    .await;

    assert_valid(
        &app,
        &old.token(&claims(&app, issuer, json!("api"))),
        "rotating",
    )
    .await;
    assert_eq!(request_paths(&server).await.len(), 1);

    // The issuer publishes a second key; a token with its kid causes one refetch.
    server.reset().await;
    serve_json(&server, "/keys", jwks(&[old.jwk(), new.jwk()]), None).await;
    app.clock.advance(31);
    assert_valid(
        &app,
        &new.token(&claims(&app, issuer, json!("api"))),
        "rotating",
    )
    .await;
    assert_valid(
        &app,
        &new.token(&claims(&app, issuer, json!("api"))),
        "rotating",
    )
    .await;
    assert_eq!(
        request_paths(&server).await.len(),
        1,
        "one refetch for the new kid"
    );

    // The old key is withdrawn; once the cached set expires, its tokens fail.
    server.reset().await;
    serve_json(&server, "/keys", jwks(&[new.jwk()]), None).await;
    app.clock.advance(61);
    let response = app
        .verify(&old.token(&claims(&app, issuer, json!("api"))), None)
        .await;
    assert_eq!(response.reason(), "unknown_key");
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_valid(
        &app,
        &new.token(&claims(&app, issuer, json!("api"))),
        "rotating",
    )
    .await;
    assert_eq!(request_paths(&server).await.len(), 1);
}

#[tokio::test]
async fn unknown_kid_within_cooldown_makes_no_fetch() {
    let server = MockServer::start().await;
    let known = TestKey::new(Algorithm::RS256);
    let unknown = TestKey::new(Algorithm::RS256);
    let issuer = "https://cooldown.example";
    serve_json(&server, "/keys", jwks(&[known.jwk()]), None).await;
    let app = app_with(vec![jwks_adapter(
        "cooldown",
        &server,
        "/keys",
        issuer,
        json!({}),
    )])
    .await;

    assert_valid(
        &app,
        &known.token(&claims(&app, issuer, json!("api"))),
        "cooldown",
    )
    .await;
    // Within the cooldown of the first fetch: no refetch.
    assert_eq!(
        app.reason(&unknown.token(&claims(&app, issuer, json!("api"))))
            .await,
        "unknown_key"
    );
    assert_eq!(request_paths(&server).await.len(), 1);
    // After it: one refetch, and the kid is remembered as unknown until the next fetch.
    app.clock.advance(31);
    assert_eq!(
        app.reason(&unknown.token(&claims(&app, issuer, json!("api"))))
            .await,
        "unknown_key"
    );
    assert_eq!(request_paths(&server).await.len(), 2);
    app.clock.advance(31);
    assert_eq!(
        app.reason(&unknown.token(&claims(&app, issuer, json!("api"))))
            .await,
        "unknown_key"
    );
    assert_eq!(
        request_paths(&server).await.len(),
        2,
        "a known-unknown kid causes no fetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_flood_fetches_once() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let issuer = "https://flood.example";
    serve_json(&server, "/keys", jwks(&[key.jwk()]), None).await;
    let app = app_with(vec![jwks_adapter(
        "flood",
        &server,
        "/keys",
        issuer,
        json!({}),
    )])
    .await;
    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "flood",
    )
    .await;

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(jwks(&[key.jwk()]))
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    app.clock.advance(31);

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let mut header = key.header();
        header["kid"] = json!(format!("random-{n}"));
        let token = key.sign(&header, &claims(&app, issuer, json!("api")));
        let router = app.router.clone();
        tasks.spawn(async move {
            let request = axum::http::Request::builder()
                .method("POST")
                .uri("/v1/verify")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            send(&router, request).await.reason()
        });
    }
    let known = key.token(&claims(&app, issuer, json!("api")));
    assert_valid(&app, &known, "flood").await;
    while let Some(reason) = tasks.join_next().await {
        assert_eq!(reason.unwrap(), "unknown_key");
    }
    server.verify().await;
}

#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let issuer = "https://cached.example";
    serve_json(
        &server,
        "/keys",
        jwks(&[key.jwk()]),
        Some("public, max-age=600"),
    )
    .await;
    serve_json(&server, "/nostore", jwks(&[key.jwk()]), Some("no-store")).await;
    let app = app_with(vec![
        jwks_adapter("cached", &server, "/keys", issuer, json!({})),
        jwks_adapter(
            "nostore",
            &server,
            "/nostore",
            "https://nostore.example",
            json!({}),
        ),
    ])
    .await;

    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "cached",
    )
    .await;
    assert_valid(
        &app,
        &key.token(&claims(&app, "https://nostore.example", json!("api"))),
        "nostore",
    )
    .await;
    app.clock.advance(59);
    assert_valid(
        &app,
        &key.token(&claims(&app, "https://nostore.example", json!("api"))),
        "nostore",
    )
    .await;
    assert_eq!(request_paths(&server).await, ["/keys", "/nostore"]);

    // no-store keeps the set for min_ttl_seconds (60).
    app.clock.advance(1);
    assert_valid(
        &app,
        &key.token(&claims(&app, "https://nostore.example", json!("api"))),
        "nostore",
    )
    .await;
    assert_eq!(
        request_paths(&server).await,
        ["/keys", "/nostore", "/nostore"]
    );

    app.clock.set(START + 599);
    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "cached",
    )
    .await;
    assert_eq!(
        request_paths(&server)
            .await
            .iter()
            .filter(|p| *p == "/keys")
            .count(),
        1
    );
    app.clock.set(START + 600);
    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "cached",
    )
    .await;
    assert_eq!(
        request_paths(&server)
            .await
            .iter()
            .filter(|p| *p == "/keys")
            .count(),
        2
    );
}

#[tokio::test]
async fn outage_serves_stale_keys_then_unavailable() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let large = json!({"keys": [key.jwk()], "padding": "x".repeat(70_000)});
    let failures: Vec<(&str, ResponseTemplate)> = vec![
        ("http-503", ResponseTemplate::new(503)),
        (
            "timeout",
            ResponseTemplate::new(200)
                .set_body_json(jwks(&[key.jwk()]))
                .set_delay(Duration::from_secs(3)),
        ),
        (
            "html",
            ResponseTemplate::new(200)
                .set_body_raw("<html><body>maintenance</body></html>", "text/html"),
        ),
        (
            "empty-set",
            ResponseTemplate::new(200).set_body_json(json!({"keys": []})),
        ),
        (
            "invalid-json",
            ResponseTemplate::new(200).set_body_raw("{\"keys\": [", "application/json"),
        ),
        ("oversized", ResponseTemplate::new(200).set_body_json(large)),
        (
            "redirect",
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/elsewhere", server.uri())),
        ),
    ];
    let adapters: Vec<Value> = failures
        .iter()
        .map(|(name, _)| {
            jwks_adapter(
                name,
                &server,
                &format!("/{name}"),
                &format!("https://{name}.example"),
                json!({}),
            )
        })
        .collect();
    for (name, _) in &failures {
        serve_json(&server, &format!("/{name}"), jwks(&[key.jwk()]), None).await;
    }
    let app = app_with(adapters).await;
    for (name, _) in &failures {
        let token = key.token(&claims(
            &app,
            &format!("https://{name}.example"),
            json!("api"),
        ));
        assert_valid(&app, &token, name).await;
    }

    server.reset().await;
    for (name, response) in failures.iter().cloned() {
        Mock::given(method("GET"))
            .and(path(format!("/{name}")))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    // Past the TTL (60 s), inside the stale window (600 s): the last good set still serves.
    app.clock.advance(61);
    for (name, _) in &failures {
        let token = key.token(&claims(
            &app,
            &format!("https://{name}.example"),
            json!("api"),
        ));
        assert_valid(&app, &token, name).await;
        // An unknown kid during the outage is no rejection.
        let stranger = TestKey::new(Algorithm::RS256);
        let response = app
            .verify(
                &stranger.token(&claims(
                    &app,
                    &format!("https://{name}.example"),
                    json!("api"),
                )),
                None,
            )
            .await;
        assert_eq!(
            response.reason(),
            "legacy_unavailable",
            "{name}: unknown kid during the outage"
        );
    }
    // Past the stale window: unavailable, never invalid.
    app.clock.advance(600);
    for (name, _) in &failures {
        let token = key.token(&claims(
            &app,
            &format!("https://{name}.example"),
            json!("api"),
        ));
        let response = app.verify(&token, None).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{name}");
        assert_eq!(response.reason(), "legacy_unavailable", "{name}");
    }
    assert!(
        !request_paths(&server)
            .await
            .iter()
            .any(|p| p == "/elsewhere"),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn source_down_from_start_is_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let key = TestKey::new(Algorithm::RS256);
    let issuer = "https://down.example";
    let app = app_with(vec![jwks_adapter(
        "down",
        &server,
        "/keys",
        issuer,
        json!({}),
    )])
    .await;

    let token = key.token(&claims(&app, issuer, json!("api")));
    for _ in 0..3 {
        let response = app.verify(&token, None).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.reason(), "legacy_unavailable");
    }
    assert_eq!(
        request_paths(&server).await.len(),
        1,
        "retries wait for the cooldown"
    );
    // A forged signature with the source down is also unavailable, not invalid.
    let forged = crate::common::with_signature(&token, &[0u8; 256]);
    assert_eq!(app.reason(&forged).await, "legacy_unavailable");

    app.clock.advance(31);
    server.reset().await;
    serve_json(&server, "/keys", jwks(&[key.jwk()]), None).await;
    assert_valid(&app, &token, "down").await;
}

#[tokio::test]
async fn adapters_check_reports_fetch() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    serve_json(&server, "/keys", jwks(&[key.jwk()]), None).await;
    let app = app_with(vec![
        jwks_adapter("up", &server, "/keys", "https://up.example", json!({})),
        jwks_adapter(
            "down",
            &server,
            "/missing",
            "https://down.example",
            json!({}),
        ),
    ])
    .await;
    let adapters = app.app.verifier.adapters();
    let up = adapters.get("up").unwrap().verifier.check(START).await;
    assert!(up.iter().all(|item| item.ok), "{up:?}");
    assert!(up[0].message.contains("1 key(s)"), "{up:?}");
    let down = adapters.get("down").unwrap().verifier.check(START).await;
    assert!(!down[0].ok);
    assert!(down[0].message.contains("404"), "{down:?}");
}

// ---------------------------------------------------------------------------------------------
// Presets, each with a token shaped like its issuer's and the key URL pointed at wiremock.

#[tokio::test]
async fn preset_auth0_trailing_slash_and_audience_array() {
    let server = MockServer::start().await;
    let domain = "tenant.eu.auth0.com";
    let issuer = format!("https://{domain}/");
    // I09: Auth0 publishes n/e together with the certificate in `x5c`.
    let key = openssl_rsa();
    let certificate = self_signed(&key);
    let mut jwk = openssl_jwk(&key, "auth0-kid");
    jwk["x5c"] = json!([STANDARD.encode(certificate.to_der().unwrap())]);
    let only_x5c = openssl_rsa();
    let only_x5c_jwk = json!({"kty": "RSA", "use": "sig", "kid": "x5c-only",
        "x5c": [STANDARD.encode(self_signed(&only_x5c).to_der().unwrap())]});
    serve_json(
        &server,
        "/.well-known/openid-configuration",
        json!({"issuer": issuer, "jwks_uri": format!("{}/.well-known/jwks.json", server.uri())}),
        None,
    )
    .await;
    serve_json(
        &server,
        "/.well-known/jwks.json",
        jwks(&[jwk, only_x5c_jwk]),
        None,
    )
    .await;
    let app = app_with(vec![adapter(
        "auth0",
        json!({"preset": "auth0", "domain": domain, "audience": "https://api.example",
               "discovery_url": format!("{}/.well-known/openid-configuration", server.uri())}),
    )])
    .await;

    let now = now(&app);
    let mut claims = json!({
        "iss": issuer, "sub": "abc@clients", "azp": "abc", "gty": "client-credentials",
        "aud": ["https://api.example", format!("https://{domain}/userinfo")],
        "iat": now, "exp": now + 86_400, "scope": "read:invoices",
    });
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "auth0-kid"});
    assert_valid(&app, &openssl_rs256(&key, &header, &claims), "auth0").await;
    let x5c_header = json!({"alg": "RS256", "typ": "JWT", "kid": "x5c-only"});
    assert_valid(
        &app,
        &openssl_rs256(&only_x5c, &x5c_header, &claims),
        "auth0",
    )
    .await;

    // I12: the issuer without its trailing slash belongs to no adapter.
    claims["iss"] = json!(format!("https://{domain}"));
    assert_eq!(
        app.reason(&openssl_rs256(&key, &header, &claims)).await,
        "unknown_issuer"
    );
    // An ID token of the same tenant carries the client id as its audience.
    claims["iss"] = json!(issuer);
    claims["aud"] = json!("abc");
    assert_eq!(
        app.reason(&openssl_rs256(&key, &header, &claims)).await,
        "wrong_audience"
    );
}

#[tokio::test]
async fn preset_keycloak_aliases_and_token_type() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    serve_json(
        &server,
        "/realms/prod/protocol/openid-connect/certs",
        jwks(&[key.jwk()]),
        None,
    )
    .await;
    let external = "https://kc.example/realms/prod";
    let internal = "http://keycloak:8080/realms/prod";
    let app = app_with(vec![adapter(
        "keycloak",
        json!({"preset": "keycloak", "base_url": "https://kc.example", "realm": "prod", "audience": "billing",
               "issuers": [external, internal],
               "jwks_url": format!("{}/realms/prod/protocol/openid-connect/certs", server.uri())}),
    )])
    .await;

    let now = now(&app);
    let mut claims = json!({
        "iss": external, "sub": "5f1c", "typ": "Bearer", "azp": "billing-worker", "aud": ["billing", "account"],
        "iat": now, "exp": now + 300, "scope": "profile email", "clientId": "billing-worker",
    });
    assert_valid(&app, &key.token(&claims), "keycloak").await;
    // I07: the internal host name is a configured alias.
    claims["iss"] = json!(internal);
    assert_valid(&app, &key.token(&claims), "keycloak").await;
    // The legacy /auth prefix was not listed, so it is not accepted.
    claims["iss"] = json!("https://kc.example/auth/realms/prod");
    assert_eq!(app.reason(&key.token(&claims)).await, "unknown_issuer");
    // S01: a Keycloak ID token has `typ` "ID".
    claims["iss"] = json!(external);
    claims["typ"] = json!("ID");
    assert_eq!(app.reason(&key.token(&claims)).await, "wrong_token_type");
}

#[tokio::test]
async fn preset_okta_custom_server_and_org_server() {
    let server = MockServer::start().await;
    let custom = TestKey::new(Algorithm::RS256);
    let org = TestKey::new(Algorithm::RS256);
    serve_json(
        &server,
        "/oauth2/default/v1/keys",
        jwks(&[custom.jwk()]),
        None,
    )
    .await;
    serve_json(&server, "/oauth2/v1/keys", jwks(&[org.jwk()]), None).await;
    let domain = "acme.okta.com";
    let issuer = format!("https://{domain}/oauth2/default");
    let app = app_with(vec![adapter(
        "okta",
        json!({"preset": "okta", "domain": domain, "authorization_server": "default", "audience": "api://default",
               "jwks_url": format!("{}/oauth2/default/v1/keys", server.uri())}),
    )])
    .await;

    let now = now(&app);
    let claims = json!({
        "ver": 1, "jti": "AT.x", "iss": issuer, "aud": "api://default", "iat": now, "exp": now + 3600,
        "cid": "0oa1", "scp": ["invoices.read"], "sub": "0oa1",
    });
    assert_valid(&app, &custom.token(&claims), "okta").await;
    let response = app.verify(&custom.token(&claims), None).await;
    assert_eq!(response.body["machineId"], "0oa1");

    // I11: a token signed with an org server key: one refetch, then unknown_key, never 500.
    app.clock.advance(31);
    let response = app.verify(&org.token(&claims), None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.reason(), "unknown_key");
    let mut org_claims = claims.clone();
    org_claims["iss"] = json!(format!("https://{domain}"));
    assert_eq!(app.reason(&org.token(&org_claims)).await, "unknown_issuer");
    assert_eq!(
        request_paths(&server).await,
        ["/oauth2/default/v1/keys", "/oauth2/default/v1/keys"]
    );
}

#[tokio::test]
async fn preset_cognito_access_token_only() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let pool = "eu-west-1_AbCdEf";
    serve_json(
        &server,
        &format!("/{pool}/.well-known/jwks.json"),
        jwks(&[key.jwk()]),
        None,
    )
    .await;
    let issuer = format!("https://cognito-idp.eu-west-1.amazonaws.com/{pool}");
    let app = app_with(vec![adapter(
        "cognito",
        json!({"preset": "cognito", "region": "eu-west-1", "user_pool_id": pool, "client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
               "jwks_url": format!("{}/{pool}/.well-known/jwks.json", server.uri())}),
    )])
    .await;

    let now = now(&app);
    let access = json!({
        "sub": "3n4b5urk1ft4fl3mg5e62d9ado", "token_use": "access", "scope": "billing/read",
        "auth_time": now, "iss": issuer, "exp": now + 3600, "iat": now, "version": 2,
        "jti": "5f1c", "client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
    });
    let header = json!({"kid": key.kid(), "alg": "RS256"});
    assert_valid(&app, &key.sign(&header, &access), "cognito").await;

    // I03: another app client of the same pool.
    let mut other = access.clone();
    other["client_id"] = json!("7other");
    assert_eq!(
        app.reason(&key.sign(&header, &other)).await,
        "wrong_audience"
    );
    // I03: an ID token (token_use "id", aud = client id) is refused.
    let id_token = json!({
        "sub": "user-1", "aud": "3n4b5urk1ft4fl3mg5e62d9ado", "token_use": "id", "auth_time": now,
        "iss": issuer, "exp": now + 3600, "iat": now, "email": "a@example.com",
    });
    assert_eq!(
        app.reason(&key.sign(&header, &id_token)).await,
        "wrong_token_type"
    );
}

/// Claims of an Entra access token for an app registration.
fn entra_claims(app: &TestApp, issuer: &str, audience: &str, version: &str) -> Value {
    let now = now(app);
    json!({
        "aud": audience, "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "appid": "11111111-2222-3333-4444-555555555555", "azp": "11111111-2222-3333-4444-555555555555",
        "oid": "0f0e", "roles": ["Invoices.Read"], "sub": "0f0e",
        "tid": "aaaaaaaa-0000-0000-0000-000000000001", "ver": version,
    })
}

#[tokio::test]
async fn preset_entra_v1_and_graph_tokens() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let tenant = "aaaaaaaa-0000-0000-0000-000000000001";
    serve_json(
        &server,
        &format!("/{tenant}/discovery/keys"),
        jwks(&[key.jwk()]),
        None,
    )
    .await;
    let issuer = format!("https://sts.windows.net/{tenant}/");
    let app = app_with(vec![adapter(
        "entra",
        json!({"preset": "entra-v1", "tenant_id": tenant, "audience": "api://billing",
               "jwks_url": format!("{}/{tenant}/discovery/keys", server.uri())}),
    )])
    .await;

    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": key.kid(), "kid": key.kid()});
    let claims = entra_claims(&app, &issuer, "api://billing", "1.0");
    assert_valid(&app, &key.sign(&header, &claims), "entra").await;

    // I01: a Graph token carries a nonce in its header, and its signature covers a header in
    // which the nonce was replaced by its SHA-256. It fails on the signature.
    let nonce = "kT3bZ0aQ1wS2";
    let hashed = URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()));
    let graph_claims = entra_claims(&app, &issuer, "https://graph.microsoft.com", "1.0");
    let mut signed_header = header.clone();
    signed_header["nonce"] = json!(hashed);
    let signed = key.sign(&signed_header, &graph_claims);
    let signature = signed.rsplit('.').next().unwrap();
    let mut sent_header = header.clone();
    sent_header["nonce"] = json!(nonce);
    let graph_token = format!(
        "{}.{}.{signature}",
        b64(&sent_header.to_string()),
        b64(&graph_claims.to_string())
    );
    assert_eq!(app.reason(&graph_token).await, "invalid_signature");
    // With the signature intact, the Graph audience is still not this API's.
    for audience in [
        "https://graph.microsoft.com",
        "00000003-0000-0000-c000-000000000000",
    ] {
        let claims = entra_claims(&app, &issuer, audience, "1.0");
        assert_eq!(
            app.reason(&key.sign(&header, &claims)).await,
            "wrong_audience",
            "{audience}"
        );
    }
    // I02: the v2.0 issuer of the same tenant is not configured for this adapter.
    let v2 = entra_claims(
        &app,
        &format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        "api://billing",
        "2.0",
    );
    assert_eq!(app.reason(&key.sign(&header, &v2)).await, "unknown_issuer");
    // I18: the key set is shared across tenants, but another tenant's issuer is not trusted.
    let other_tenant = entra_claims(
        &app,
        "https://sts.windows.net/bbbbbbbb-0000-0000-0000-000000000002/",
        "api://billing",
        "1.0",
    );
    assert_eq!(
        app.reason(&key.sign(&header, &other_tenant)).await,
        "unknown_issuer"
    );
}

#[tokio::test]
async fn preset_entra_v2_token() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let tenant = "aaaaaaaa-0000-0000-0000-000000000001";
    serve_json(
        &server,
        &format!("/{tenant}/discovery/v2.0/keys"),
        jwks(&[key.jwk()]),
        None,
    )
    .await;
    let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
    let app = app_with(vec![adapter(
        "entra",
        json!({"preset": "entra-v2", "tenant_id": tenant, "audience": "11111111-aaaa-bbbb-cccc-000000000000",
               "jwks_url": format!("{}/{tenant}/discovery/v2.0/keys", server.uri())}),
    )])
    .await;

    let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid()});
    let claims = entra_claims(&app, &issuer, "11111111-aaaa-bbbb-cccc-000000000000", "2.0");
    assert_valid(&app, &key.sign(&header, &claims), "entra").await;
    let v1 = entra_claims(
        &app,
        &format!("https://sts.windows.net/{tenant}/"),
        "11111111-aaaa-bbbb-cccc-000000000000",
        "1.0",
    );
    assert_eq!(app.reason(&key.sign(&header, &v1)).await, "unknown_issuer");
}

#[tokio::test]
async fn preset_firebase_certificate_map() {
    let server = MockServer::start().await;
    let key = openssl_rsa();
    let certificate = self_signed(&key);
    let pem = String::from_utf8(certificate.to_pem().unwrap()).unwrap();
    // A non-RSA certificate in the map is skipped; the RSA one still serves.
    let ec_key = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let ec_pem = String::from_utf8(self_signed(&ec_key).to_pem().unwrap()).unwrap();
    serve_json(
        &server,
        "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
        json!({"f1a2": pem, "ec-key": ec_pem, "broken": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
        Some("public, max-age=19204, must-revalidate, no-transform"),
    )
    .await;
    let app = app_with(vec![adapter(
        "firebase",
        json!({"preset": "firebase", "project_id": "demo-project",
               "x509_url": format!("{}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com", server.uri())}),
    )])
    .await;

    let now = now(&app);
    let claims = json!({
        "iss": "https://securetoken.google.com/demo-project", "aud": "demo-project", "auth_time": now,
        "user_id": "uid-1", "sub": "uid-1", "iat": now, "exp": now + 3600,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    });
    let header = json!({"alg": "RS256", "kid": "f1a2", "typ": "JWT"});
    assert_valid(&app, &openssl_rs256(&key, &header, &claims), "firebase").await;

    // I04: a session cookie has another issuer.
    let mut cookie = claims.clone();
    cookie["iss"] = json!("https://session.firebase.google.com/demo-project");
    assert_eq!(
        app.reason(&openssl_rs256(&key, &header, &cookie)).await,
        "unknown_issuer"
    );
    let mut other_project = claims.clone();
    other_project["aud"] = json!("other-project");
    assert_eq!(
        app.reason(&openssl_rs256(&key, &header, &other_project))
            .await,
        "wrong_audience"
    );
}

#[tokio::test]
async fn preset_oidc_ed25519_and_refused_keys() {
    let server = MockServer::start().await;
    let issuer = server.uri();
    let ed = TestKey::new(Algorithm::EdDSA);
    let rsa = TestKey::new(Algorithm::RS256);
    // I08, I16, A10: keys for encryption, unsupported curves, a private key and an off-curve
    // point are dropped one by one. The rest of the set serves.
    let mut encryption = TestKey::new(Algorithm::RS256).jwk();
    encryption["use"] = json!("enc");
    encryption["alg"] = json!("RSA-OAEP");
    let set = jwks(&[
        ed.jwk(),
        rsa.jwk(),
        encryption,
        json!({"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}),
        json!({"kty": "OKP", "crv": "Ed448", "x": "AAAA"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
               "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}),
        json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])}),
    ]);
    serve_json(
        &server,
        "/.well-known/openid-configuration",
        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
        None,
    )
    .await;
    serve_json(&server, "/jwks", set, None).await;
    let app = app_with(vec![adapter(
        "idp",
        json!({"preset": "oidc", "issuer": issuer, "audience": "api"}),
    )])
    .await;

    let claims = claims(&app, &issuer, json!("api"));
    assert_valid(&app, &ed.token(&claims), "idp").await;
    assert_valid(&app, &rsa.token(&claims), "idp").await;
    // I08: without a kid, a key is chosen only when exactly one fits the algorithm.
    let no_kid = json!({"alg": "EdDSA", "typ": "JWT"});
    assert_valid(&app, &ed.sign(&no_kid, &claims), "idp").await;
}

// ---------------------------------------------------------------------------------------------
// Attack classes and standards rules against one legacy issuer.

struct AttackSetup {
    app: TestApp,
    server: MockServer,
    attacker: MockServer,
    rsa: TestKey,
    ec: TestKey,
}

const RS_ISSUER: &str = "https://legacy-rs.example";
const ES_ISSUER: &str = "https://legacy-es.example";
const TYPED_ISSUER: &str = "https://typed.example";

async fn attack_setup() -> AttackSetup {
    let server = MockServer::start().await;
    let attacker = MockServer::start().await;
    let rsa = TestKey::new(Algorithm::RS256);
    let ec = TestKey::new(Algorithm::ES256);
    serve_json(&server, "/rs", jwks(&[rsa.jwk()]), None).await;
    serve_json(&server, "/es", jwks(&[ec.jwk()]), None).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[])))
        .mount(&attacker)
        .await;
    let app = app_with(vec![
        jwks_adapter("legacy-rs", &server, "/rs", RS_ISSUER, json!({"algorithms": ["RS256"]})),
        jwks_adapter("legacy-es", &server, "/es", ES_ISSUER, json!({"algorithms": ["ES256"]})),
        jwks_adapter(
            "typed",
            &server,
            "/rs",
            TYPED_ISSUER,
            json!({"algorithms": ["RS256"], "token_type": {"typ": ["at+jwt", "application/at+jwt"]}}),
        ),
    ])
    .await;
    AttackSetup {
        app,
        server,
        attacker,
        rsa,
        ec,
    }
}

#[tokio::test]
async fn attack_classes_are_rejected() {
    let AttackSetup {
        app,
        server,
        attacker,
        rsa,
        ec,
    } = attack_setup().await;
    let claims = claims(&app, RS_ISSUER, json!("api"));
    assert_valid(&app, &rsa.token(&claims), "legacy-rs").await;

    // A01, A02: alg none and its variants, with and without a signature.
    let cases: [(Option<Value>, &str); 7] = [
        (Some(json!("none")), "invalid_signature"),
        (Some(json!("None")), "invalid_signature"),
        (Some(json!("NONE")), "invalid_signature"),
        (Some(json!("nOnE")), "invalid_signature"),
        (Some(json!("")), "invalid_signature"),
        (Some(Value::Null), "malformed"),
        (Some(json!(123)), "malformed"),
    ];
    for (alg, expected) in cases.into_iter().chain([(None, "malformed")]) {
        let mut header = json!({"typ": "JWT", "kid": rsa.kid()});
        if let Some(alg) = &alg {
            header["alg"] = alg.clone();
        }
        let unsigned = format!("{}.{}.", b64(&header.to_string()), b64(&claims.to_string()));
        assert_eq!(
            app.reason(&unsigned).await,
            expected,
            "alg {alg:?} unsigned"
        );
        let copied_signature = rsa.token(&claims).rsplit('.').next().unwrap().to_owned();
        let copied = format!(
            "{}.{}.{copied_signature}",
            b64(&header.to_string()),
            b64(&claims.to_string())
        );
        assert_eq!(
            app.reason(&copied).await,
            expected,
            "alg {alg:?} with a real signature"
        );
    }

    // A03: HS256 MACed with the issuer's public key material in every common form.
    let jwk = rsa.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let public = openssl::rsa::Rsa::from_public_components(
        openssl::bn::BigNum::from_slice(&n).unwrap(),
        openssl::bn::BigNum::from_slice(&e).unwrap(),
    )
    .unwrap();
    let spki_pem = public.public_key_to_pem().unwrap();
    let pkcs1_pem = public.public_key_to_pem_pkcs1().unwrap();
    let spki_der = public.public_key_to_der().unwrap();
    let trimmed = String::from_utf8(spki_pem.clone())
        .unwrap()
        .trim_end()
        .to_owned();
    let secrets: Vec<Vec<u8>> = vec![
        spki_pem.clone(),
        trimmed.into_bytes(),
        [b"  ".as_slice(), &spki_pem].concat(),
        pkcs1_pem,
        spki_der,
        jwk.to_string().into_bytes(),
        n.clone(),
    ];
    for secret in &secrets {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": rsa.kid()});
        assert_eq!(
            app.reason(&hs256(secret, &header, &claims)).await,
            "invalid_signature"
        );
    }

    // A04: a key embedded in the header, signing with the attacker's key and a real kid.
    let intruder = TestKey::new(Algorithm::RS256);
    let mut header = rsa.header();
    header["jwk"] = intruder.jwk();
    assert_eq!(
        app.reason(&intruder.sign(&header, &claims)).await,
        "invalid_signature"
    );

    // A05: jku, x5u and x5c naming attacker keys make no outbound request.
    let attacker_key = openssl_rsa();
    let attacker_certificate = STANDARD.encode(self_signed(&attacker_key).to_der().unwrap());
    for (name, value) in [
        ("jku", json!(format!("{}/jwks.json", attacker.uri()))),
        ("jku", json!("http://169.254.169.254/latest/meta-data/")),
        ("jku", json!("file:///etc/passwd")),
        ("x5u", json!(format!("{}/cert.pem", attacker.uri()))),
        ("x5c", json!([attacker_certificate])),
    ] {
        let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": rsa.kid()});
        header[name] = value;
        assert_eq!(
            app.reason(&openssl_rs256(&attacker_key, &header, &claims))
                .await,
            "invalid_signature",
            "{name}"
        );
        // The same with a kid the issuer does not have: at most a refetch of the configured URL.
        header["kid"] = json!("attacker-kid");
        assert_eq!(
            app.reason(&openssl_rs256(&attacker_key, &header, &claims))
                .await,
            "unknown_key",
            "{name}"
        );
    }
    assert!(
        attacker.received_requests().await.unwrap().is_empty(),
        "no request reached the attacker"
    );
    assert!(
        request_paths(&server).await.iter().all(|p| p == "/rs"),
        "only the configured key URL was fetched: {:?}",
        request_paths(&server).await
    );

    // A08: an empty signature segment, and a signature of zeros.
    let token = rsa.token(&claims);
    let input = token.rsplit_once('.').unwrap().0;
    assert_eq!(app.reason(&format!("{input}.")).await, "invalid_signature");
    assert_eq!(
        app.reason(&crate::common::with_signature(&token, &[0u8; 256]))
            .await,
        "invalid_signature"
    );

    // A11: crit and b64.
    for extra in [
        json!({"crit": ["exp"], "exp": 1}),
        json!({"crit": []}),
        json!({"crit": ["alg"]}),
        json!({"crit": ["missing"]}),
        json!({"b64": false, "crit": ["b64"]}),
        json!({"b64": false}),
    ] {
        let header = merged(rsa.header(), extra.clone());
        assert_eq!(
            app.reason(&rsa.sign(&header, &claims)).await,
            "malformed",
            "{extra}"
        );
    }

    // A12: a five-segment JWE with a huge p2c is refused on its shape.
    let jwe_header = b64(
        &json!({"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 2_147_483_647_u32})
            .to_string(),
    );
    assert_eq!(
        app.reason(&format!("{jwe_header}.AAAA.AAAA.AAAA.AAAA"))
            .await,
        "malformed"
    );

    // A16: a detached payload and the JSON serializations.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        app.reason(&format!("{}..{}", parts[0], parts[2])).await,
        "malformed"
    );
    let flattened =
        json!({"protected": parts[0], "payload": parts[1], "signature": parts[2]}).to_string();
    assert_ne!(app.reason(&flattened).await, "valid");
    let general = json!({"payload": parts[1], "signatures": [{"protected": parts[0], "signature": parts[2]}]}).to_string();
    assert_ne!(app.reason(&general).await, "valid");

    // A07, A15: psychic and wrongly encoded ECDSA signatures.
    let es_claims = claims_for(&app, ES_ISSUER);
    let es_token = ec.token(&es_claims);
    assert_valid(&app, &es_token, "legacy-es").await;
    let order = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_s_n = order.clone();
    r_s_n.extend(&order);
    let mut r0_s1 = vec![0u8; 63];
    r0_s1.push(1);
    let real = URL_SAFE_NO_PAD
        .decode(es_token.rsplit('.').next().unwrap())
        .unwrap();
    let der = der_signature(&real);
    for (label, signature) in [
        ("zeros", vec![0u8; 64]),
        ("r = s = n", r_s_n),
        ("r = 0, s = 1", r0_s1),
        (
            "DER zeros",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
        ("DER encoding of a valid signature", der),
        ("truncated", real[..63].to_vec()),
    ] {
        let forged = crate::common::with_signature(&es_token, &signature);
        assert_eq!(app.reason(&forged).await, "invalid_signature", "{label}");
    }
    // An RS256 token sent to the ES256 issuer fails the allow-list.
    assert_eq!(
        app.reason(&rsa.token(&es_claims)).await,
        "invalid_signature"
    );
}

fn claims_for(app: &TestApp, issuer: &str) -> Value {
    claims(app, issuer, json!("api"))
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// DER-encodes a fixed-width P-256 `r || s` signature.
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let mut trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            trimmed.insert(0, 0);
        }
        let mut out = vec![0x02, trimmed.len() as u8];
        out.extend(trimmed);
        out
    };
    let body = [integer(&fixed[..32]), integer(&fixed[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[tokio::test]
async fn standards_rules_apply() {
    let AttackSetup { app, rsa, .. } = attack_setup().await;
    let base = claims(&app, RS_ISSUER, json!("api"));
    let now = now(&app);

    // S02: shapes of aud.
    let audiences = [
        (json!("api"), "valid"),
        (json!(["other", "api"]), "valid"),
        (json!([]), "wrong_audience"),
        (json!([123]), "malformed"),
        (json!(""), "wrong_audience"),
        (Value::Null, "wrong_audience"),
        (json!("api/"), "wrong_audience"),
        (json!("API"), "wrong_audience"),
    ];
    for (audience, expected) in audiences {
        let mut claims = base.clone();
        if audience.is_null() {
            claims.as_object_mut().unwrap().remove("aud");
        } else {
            claims["aud"] = audience.clone();
        }
        assert_eq!(
            app.reason(&rsa.token(&claims)).await,
            expected,
            "aud {audience}"
        );
    }

    // S04: time windows with the default leeway of 60 seconds.
    let times = [
        ("exp", json!(now), "valid"),
        ("exp", json!(now - 30), "valid"),
        ("exp", json!(now - 60), "expired"),
        ("exp", json!(now - 61), "expired"),
        ("exp", json!("soon"), "malformed"),
        ("nbf", json!(now + 30), "valid"),
        ("nbf", json!(now + 120), "not_yet_valid"),
        ("iat", json!(now + 300), "not_yet_valid"),
        ("iat", Value::Null, "valid"),
    ];
    for (claim, value, expected) in times {
        let mut claims = base.clone();
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(claim);
        } else {
            claims[claim] = value.clone();
        }
        assert_eq!(
            app.reason(&rsa.token(&claims)).await,
            expected,
            "{claim} = {value}"
        );
    }
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(app.reason(&rsa.token(&no_exp)).await, "malformed");

    // S01: an issuer with a typ rule accepts only access tokens.
    let typed = claims(&app, TYPED_ISSUER, json!("api"));
    for (typ, expected) in [
        (Some("at+jwt"), "valid"),
        (Some("application/at+jwt"), "valid"),
        (Some("AT+JWT"), "valid"),
        (Some("JWT"), "wrong_token_type"),
        (None, "wrong_token_type"),
    ] {
        let mut header = json!({"alg": "RS256", "kid": rsa.kid()});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        assert_eq!(
            app.reason(&rsa.sign(&header, &typed)).await,
            expected,
            "typ {typ:?}"
        );
    }
    let mut id_token = typed.clone();
    id_token["aud"] = json!("client-123");
    id_token["nonce"] = json!("n-0S6_WzA2Mj");
    id_token["at_hash"] = json!("77QmUPtjPfzWtF2AnpK9RQ");
    let id_header = json!({"alg": "RS256", "typ": "JWT", "kid": rsa.kid()});
    assert_eq!(
        app.reason(&rsa.sign(&id_header, &id_token)).await,
        "wrong_token_type"
    );

    // I18: a valid signature from the issuer's own key, with an issuer that is not listed.
    let unlisted = claims(&app, "https://legacy-rs.example/", json!("api"));
    assert_eq!(app.reason(&rsa.token(&unlisted)).await, "unknown_issuer");
}

// ---------------------------------------------------------------------------------------------
// Genuine tokens issued by oidc-provider (tools/fixtures/oidc-provider/generate.mjs).

#[tokio::test]
async fn oidc_provider_tokens_verify() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/oidc-provider/tokens.json")).unwrap();
    let issuer = fixture["issuer"].as_str().unwrap();
    let app = app_with(vec![adapter(
        "node-oidc",
        json!({
            "kind": "jwt",
            "issuers": [issuer],
            "audiences": [fixture["audience"]],
            "jwks": fixture["jwks"],
            "token_type": {"typ": ["at+jwt", "application/at+jwt"]},
            "mapping": {
                "tenant": {"default": TENANT},
                "machine": {"claim": "client_id"},
                "roles": {"scope_roles": {"read": ["reader"], "write": ["writer"]}},
            },
        }),
    )])
    .await;

    let tokens = fixture["tokens"].as_array().unwrap();
    assert!(tokens.len() >= 2);
    for entry in tokens {
        let token = entry["access_token"].as_str().unwrap();
        let claims = crate::common::payload(token);
        app.clock.set(claims["iat"].as_i64().unwrap());
        let response = app.verify(token, None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        assert_eq!(response.body["adapter"], "node-oidc");
        assert_eq!(response.body["machineId"], entry["client_id"]);
        assert!(response.body["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("reader")));

        app.clock.set(claims["exp"].as_i64().unwrap() + 60);
        assert_eq!(app.reason(token).await, "expired");
        let tampered = format!("{}x", &token[..token.len() - 1]);
        app.clock.set(claims["iat"].as_i64().unwrap());
        assert_ne!(app.reason(&tampered).await, "valid");
    }
}

#[tokio::test]
async fn metrics_report_key_set_age_and_fetch_failures() {
    let server = MockServer::start().await;
    let key = TestKey::new(Algorithm::RS256);
    let issuer = "https://metered.example";
    serve_json(&server, "/keys", jwks(&[key.jwk()]), Some("max-age=300")).await;
    let app = app_with(vec![jwks_adapter(
        "metered",
        &server,
        "/keys",
        issuer,
        json!({}),
    )])
    .await;
    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "metered",
    )
    .await;

    let scrape = |app: &TestApp| {
        let request = axum::http::Request::builder()
            .uri("/metrics")
            .body(axum::body::Body::empty())
            .unwrap();
        let router = app.router.clone();
        async move {
            use tower::ServiceExt;
            let response = router.oneshot(request).await.unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    app.clock.advance(120);
    let text = scrape(&app).await;
    assert!(
        text.contains(r#"authbridge_legacy_key_set_age_seconds{adapter="metered"} 120"#),
        "{text}"
    );
    assert!(
        text.contains(r#"authbridge_legacy_key_fetch_failures{adapter="metered"} 0"#),
        "{text}"
    );

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    app.clock.advance(400);
    assert_valid(
        &app,
        &key.token(&claims(&app, issuer, json!("api"))),
        "metered",
    )
    .await;
    let text = scrape(&app).await;
    assert!(
        text.contains(r#"authbridge_legacy_key_fetch_failures{adapter="metered"} 1"#),
        "{text}"
    );
}
