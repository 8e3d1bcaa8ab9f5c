//! The `introspection` and `remote_verify` adapter kinds and the Userfront preset, against
//! wiremock servers on 127.0.0.1: the exact requests sent, the responses mapped to reasons, the
//! cache, and the checks on recognition patterns at startup.

use std::time::Duration;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use authbridge::config::AdapterEntries;
use authbridge::ids::TenantId;
use authbridge::legacy::Adapters;
use authbridge::store::TenantRecord;

use crate::common::{Backend, TestApp, ISSUER, START};

const INTROSPECT_PATH: &str = "/oauth/introspect";
const VERIFY_PATH: &str = "/v0/api-keys/verify";

/// Opens an app whose configuration has exactly `adapters`.
async fn app_with(adapters: Vec<Value>) -> TestApp {
    TestApp::with_config(Backend::Sqlite, |config| {
        config.adapters = AdapterEntries(adapters)
    })
    .await
}

/// Returns `base` with the members of `extra` added or replaced.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// Returns an introspection adapter entry for `server` that maps the `tenant` member of the response.
fn introspection_adapter(server: &MockServer, extra: Value) -> Value {
    let base = json!({
        "name": "legacy-oauth",
        "kind": "introspection",
        "endpoint": format!("{}{INTROSPECT_PATH}", server.uri()),
        "allow_http": true,
        "client_id": "bridge",
        "client_secret": "bridge:secret",
        "pattern": "lo_[A-Za-z0-9]{20}",
        "mapping": {"tenant": {"claim": "tenant"}, "roles": {"default": ["reader"]}},
    });
    merged(base, extra)
}

/// Returns a token that the introspection adapter's pattern recognises.
fn opaque_token(n: u32) -> String {
    format!("lo_{n:0>20}")
}

async fn respond(server: &MockServer, route: &str, response: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

fn header(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("<missing>")
        .to_owned()
}

fn active_answer(tenant: &str, exp: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "active": true,
        "sub": "svc-billing",
        "client_id": "billing",
        "scope": "read write",
        "exp": exp,
        "iat": START - 10,
        "aud": ["legacy-api"],
        "tenant": tenant,
    }))
}

#[tokio::test]
async fn introspection_request_is_exact() {
    let server = MockServer::start().await;
    let app = app_with(vec![introspection_adapter(
        &server,
        json!({"token_type_hint": "access_token"}),
    )])
    .await;
    let (tenant, _) = app.bootstrap("acme").await;
    respond(
        &server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), START + 600),
    )
    .await;

    let token = opaque_token(1);
    let response = app.verify(&token, None).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["reason"], "valid");
    assert_eq!(response.body["source"], "legacy");
    assert_eq!(response.body["adapter"], "legacy-oauth");
    assert_eq!(response.body["tenantId"], tenant.as_str());
    assert_eq!(response.body["roles"], json!(["reader"]));

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), INTROSPECT_PATH);
    assert_eq!(request.url.query(), None);
    // RFC 6749 section 2.3.1: the id and secret are form-encoded before base64.
    let expected_basic = format!("Basic {}", STANDARD.encode("bridge:bridge%3Asecret"));
    assert_eq!(header(request, "authorization"), expected_basic);
    assert_eq!(
        header(request, "content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(header(request, "accept"), "application/json");
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert_eq!(body, format!("token={token}&token_type_hint=access_token"));
}

#[tokio::test]
async fn introspection_client_secret_post_and_bearer() {
    let server = MockServer::start().await;
    let post = introspection_adapter(&server, json!({"auth_method": "client_secret_post"}));
    let app = app_with(vec![post]).await;
    let (tenant, _) = app.bootstrap("acme").await;
    respond(
        &server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), START + 600),
    )
    .await;

    let token = opaque_token(2);
    assert_eq!(app.reason(&token).await, "valid");
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(header(&received[0], "authorization"), "<missing>");
    let body = String::from_utf8(received[0].body.clone()).unwrap();
    assert_eq!(
        body,
        format!("token={token}&client_id=bridge&client_secret=bridge%3Asecret")
    );

    let bearer_server = MockServer::start().await;
    let bearer = introspection_adapter(
        &bearer_server,
        json!({"client_id": null, "client_secret": null, "token": "rs-token"}),
    );
    let bearer_app = app_with(vec![bearer]).await;
    let (tenant, _) = bearer_app.bootstrap("acme").await;
    respond(
        &bearer_server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), START + 600),
    )
    .await;

    assert_eq!(bearer_app.reason(&token).await, "valid");
    let received = requests(&bearer_server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(header(&received[0], "authorization"), "Bearer rs-token");
    assert_eq!(
        String::from_utf8(received[0].body.clone()).unwrap(),
        format!("token={token}")
    );
}

#[tokio::test]
async fn introspection_answers_map_to_reasons() {
    let server = MockServer::start().await;
    let adapter = introspection_adapter(&server, json!({"audiences": ["legacy-api"]}));
    let app = app_with(vec![adapter]).await;
    let (tenant, _) = app.bootstrap("acme").await;
    let tenant = tenant.as_str();

    let cases = [
        ("inactive", json!({"active": false}), "unknown_credential"),
        (
            "inactive and revoked",
            json!({"active": false, "revoked": true}),
            "revoked",
        ),
        (
            "inactive with status",
            json!({"active": false, "status": "revoked"}),
            "revoked",
        ),
        (
            "inactive and expired",
            json!({"active": false, "exp": START - 5}),
            "expired",
        ),
        (
            "active but expired",
            json!({"active": true, "exp": START - 1, "tenant": tenant}),
            "expired",
        ),
        (
            "active, not yet valid",
            json!({"active": true, "nbf": START + 60, "tenant": tenant}),
            "not_yet_valid",
        ),
        (
            "active, other audience",
            json!({"active": true, "aud": "other", "tenant": tenant}),
            "wrong_audience",
        ),
        (
            "active, unknown tenant",
            json!({"active": true, "aud": "legacy-api", "tenant": "zzzz0000"}),
            "unmapped_identity",
        ),
        (
            "active",
            json!({"active": true, "aud": "legacy-api", "tenant": tenant}),
            "valid",
        ),
    ];
    for (n, (case, answer, expected)) in (10..).zip(cases) {
        respond(
            &server,
            INTROSPECT_PATH,
            ResponseTemplate::new(200).set_body_json(answer),
        )
        .await;
        let response = app.verify(&opaque_token(n), None).await;
        assert_eq!(response.reason(), expected, "{case}: {}", response.body);
        let status = if expected == "valid" {
            StatusCode::OK
        } else if expected == "unmapped_identity" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(response.status, status, "{case}");
    }
}

#[tokio::test]
async fn introspection_failures_are_unavailable() {
    let server = MockServer::start().await;
    let app = app_with(vec![introspection_adapter(
        &server,
        json!({"timeout_seconds": 1}),
    )])
    .await;
    let (tenant, _) = app.bootstrap("acme").await;
    let token = opaque_token(3);

    let cases = [
        ("503", ResponseTemplate::new(503)),
        ("401 from the endpoint", ResponseTemplate::new(401)),
        (
            "timeout",
            active_answer(tenant.as_str(), START + 600).set_delay(Duration::from_secs(3)),
        ),
        (
            "garbage JSON",
            ResponseTemplate::new(200).set_body_string("{\"active\": tru"),
        ),
        (
            "no active member",
            ResponseTemplate::new(200).set_body_json(json!({"sub": "x"})),
        ),
    ];
    for (case, answer) in cases {
        respond(&server, INTROSPECT_PATH, answer).await;
        let response = app.verify(&token, None).await;
        assert_eq!(
            response.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{case}: {}",
            response.body
        );
        assert_eq!(response.reason(), "legacy_unavailable", "{case}");
        assert_eq!(response.body["valid"], false, "{case}");
    }

    // An unavailable result is not cached: the same token verifies once the server is back.
    respond(
        &server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), START + 600),
    )
    .await;
    assert_eq!(app.reason(&token).await, "valid");
}

#[tokio::test]
async fn introspection_cache_honours_ttls() {
    let server = MockServer::start().await;
    let adapter = introspection_adapter(
        &server,
        json!({"cache_seconds": 60, "negative_cache_seconds": 5}),
    );
    let app = app_with(vec![adapter]).await;
    let (tenant, _) = app.bootstrap("acme").await;
    respond(
        &server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), START + 600),
    )
    .await;

    let token = opaque_token(4);
    assert_eq!(app.reason(&token).await, "valid");
    assert_eq!(app.reason(&token).await, "valid");
    assert_eq!(
        requests(&server).await.len(),
        1,
        "the second verification is served from the cache"
    );

    app.clock.advance(59);
    assert_eq!(app.reason(&token).await, "valid");
    assert_eq!(
        requests(&server).await.len(),
        1,
        "still inside cache_seconds"
    );

    app.clock.advance(1);
    assert_eq!(app.reason(&token).await, "valid");
    assert_eq!(
        requests(&server).await.len(),
        2,
        "one request after cache_seconds"
    );

    // A rejection is cached for negative_cache_seconds only.
    respond(
        &server,
        INTROSPECT_PATH,
        ResponseTemplate::new(200).set_body_json(json!({"active": false})),
    )
    .await;
    let unknown = opaque_token(5);
    assert_eq!(app.reason(&unknown).await, "unknown_credential");
    assert_eq!(app.reason(&unknown).await, "unknown_credential");
    assert_eq!(requests(&server).await.len(), 1);
    app.clock.advance(5);
    assert_eq!(app.reason(&unknown).await, "unknown_credential");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn introspection_cache_stops_at_exp() {
    let server = MockServer::start().await;
    let app = app_with(vec![introspection_adapter(
        &server,
        json!({"cache_seconds": 60}),
    )])
    .await;
    let (tenant, _) = app.bootstrap("acme").await;
    let now = START;
    respond(
        &server,
        INTROSPECT_PATH,
        active_answer(tenant.as_str(), now + 30),
    )
    .await;

    let token = opaque_token(6);
    assert_eq!(app.reason(&token).await, "valid");
    app.clock.advance(30);
    assert_eq!(
        app.reason(&token).await,
        "expired",
        "the cached answer ends at exp"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

/// Returns a Userfront preset entry for `server`, with the operator's `extra` keys.
fn userfront_adapter(server: &MockServer, extra: Value) -> Value {
    let base = json!({
        "name": "userfront",
        "preset": "userfront",
        "url": format!("{}{VERIFY_PATH}", server.uri()),
        "api_secret": "uf-api-secret",
        "allow_http": true,
    });
    merged(base, extra)
}

fn userfront_key(mode: &str, role: &str, tenant: &str) -> String {
    format!("uf_{mode}_{role}_{tenant}_0123456789abcdef0123456789abcdef")
}

#[tokio::test]
async fn userfront_preset_end_to_end() {
    let server = MockServer::start().await;
    let app = app_with(vec![userfront_adapter(&server, json!({}))]).await;
    let (tenant, _) = app.bootstrap("acme").await;
    respond(
        &server,
        VERIFY_PATH,
        ResponseTemplate::new(200).set_body_json(json!({"userId": 42})),
    )
    .await;

    let key = userfront_key("test", "admin", tenant.as_str());
    let response = app.verify(&key, None).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["adapter"], "userfront");
    assert_eq!(response.body["tenantId"], tenant.as_str());
    assert_eq!(response.body["mode"], "test");
    assert_eq!(response.body["roles"], json!(["admin"]));

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), VERIFY_PATH);
    assert_eq!(header(request, "authorization"), "Bearer uf-api-secret");
    assert_eq!(header(request, "content-type"), "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"apiKey": key}));

    respond(&server, VERIFY_PATH, ResponseTemplate::new(401)).await;
    let other = userfront_key("live", "readonly", tenant.as_str());
    let response = app.verify(&other, None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.reason(), "unknown_credential");

    respond(&server, VERIFY_PATH, ResponseTemplate::new(502)).await;
    let third = userfront_key("live", "admin", tenant.as_str());
    let response = app.verify(&third, None).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.reason(), "legacy_unavailable");
}

#[tokio::test]
async fn userfront_preset_with_tenant_table() {
    let server = MockServer::start().await;
    let mapping =
        json!({"mapping": {"tenant": {"claim": "tenant", "table": {"legacy01": "abcd1234"}}}});
    let app = app_with(vec![userfront_adapter(&server, mapping)]).await;
    // A tenant with a known id, so that the table can name it before the app starts.
    let record = TenantRecord {
        id: TenantId::parse("abcd1234").unwrap(),
        parent_id: None,
        name: "migrated".to_owned(),
        inherit_roles: true,
        created_at: START,
        updated_at: START,
    };
    app.app.store.insert_tenant(&record).await.unwrap();
    respond(&server, VERIFY_PATH, ResponseTemplate::new(200)).await;

    let response = app
        .verify(&userfront_key("live", "readonly", "legacy01"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["tenantId"], "abcd1234");
    assert_eq!(response.body["mode"], "live");
    assert_eq!(response.body["roles"], json!(["readonly"]));

    let response = app
        .verify(&userfront_key("live", "readonly", "zzzz9999"), None)
        .await;
    assert_eq!(
        response.reason(),
        "unmapped_identity",
        "a legacy tenant missing from the table"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn remote_verify_maps_response_fields() {
    let server = MockServer::start().await;
    let adapter = json!({
        "name": "webhook",
        "kind": "remote_verify",
        "url": format!("{}/check", server.uri()),
        "allow_http": true,
        "pattern": "wh_[a-z0-9]{16}",
        "credential_in": "header",
        "credential_header": "X-Legacy-Key",
        "credential_prefix": "Key ",
        "headers": {"X-Api-Secret": "hook-secret"},
        "valid_field": "/result/status",
        "valid_values": ["active"],
        "subject_field": "result.owner",
        "tenant_field": "result.org",
        "roles_field": "result.perms",
        "expires_field": "result.expires",
        "reject_reason": "revoked",
        "mapping": {"tenant": {"claim": "tenant"}, "roles": {"claim": "roles"}},
    });
    let app = app_with(vec![adapter]).await;
    let (tenant, _) = app.bootstrap("acme").await;
    let answer = json!({"result": {
        "status": "active",
        "owner": "svc-7",
        "org": tenant.as_str(),
        "perms": "read write",
        "expires": "2024-01-02T00:00:00Z",
    }});
    respond(
        &server,
        "/check",
        ResponseTemplate::new(200).set_body_json(answer),
    )
    .await;

    let key = "wh_0123456789abcdef";
    let response = app.verify(key, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["tenantId"], tenant.as_str());
    assert_eq!(response.body["machineId"], "svc-7");
    assert_eq!(response.body["roles"], json!(["read", "write"]));

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method.as_str(), "POST");
    assert_eq!(header(&received[0], "x-legacy-key"), format!("Key {key}"));
    assert_eq!(header(&received[0], "x-api-secret"), "hook-secret");
    assert!(received[0].body.is_empty());

    let cases = [
        (
            "flag not valid",
            ResponseTemplate::new(200).set_body_json(json!({"result": {"status": "disabled"}})),
            "revoked",
        ),
        (
            "flag missing",
            ResponseTemplate::new(200).set_body_json(json!({})),
            "revoked",
        ),
        ("404", ResponseTemplate::new(404), "revoked"),
        ("403", ResponseTemplate::new(403), "revoked"),
        ("500", ResponseTemplate::new(500), "legacy_unavailable"),
        ("429", ResponseTemplate::new(429), "legacy_unavailable"),
        (
            "garbage",
            ResponseTemplate::new(200).set_body_string("<html>"),
            "legacy_unavailable",
        ),
        (
            "past expiry",
            ResponseTemplate::new(200).set_body_json(
                json!({"result": {"status": "active", "org": tenant.as_str(), "expires": START}}),
            ),
            "expired",
        ),
    ];
    for (n, (case, answer, expected)) in (0..).zip(cases) {
        respond(&server, "/check", answer).await;
        let key = format!("wh_{n:0>16}");
        assert_eq!(app.reason(&key).await, expected, "{case}");
    }
}

fn pattern_adapter(name: &str, pattern: &str, sample: Option<&str>) -> Value {
    let mut adapter = json!({
        "name": name,
        "kind": "remote_verify",
        "url": "http://127.0.0.1:9/verify",
        "allow_http": true,
        "pattern": pattern,
        "credential_in": "json",
        "credential_field": "key",
    });
    if let Some(sample) = sample {
        adapter["sample"] = json!(sample);
    }
    adapter
}

fn build_error(entries: &[Value]) -> String {
    match Adapters::build(entries, ISSUER, "ab", &reqwest::Client::new()) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("the adapters were accepted"),
    }
}

#[test]
fn overlapping_patterns_rejected_at_build() {
    let first = pattern_adapter("keys-a", "key_[a-z]{8}", Some("key_abcdefgh"));
    let second = pattern_adapter("keys-b", "key_[a-z0-9]{8}", Some("key_0000aaaa"));
    let error = build_error(&[first.clone(), second]);
    assert!(error.contains("keys-a"), "{error}");
    assert!(error.contains("keys-b"), "{error}");
    assert!(error.contains("overlaps"), "{error}");

    let same = pattern_adapter("keys-c", "key_[a-z]{8}", None);
    let error = build_error(&[first.clone(), same]);
    assert!(
        error.contains("keys-a") && error.contains("keys-c"),
        "{error}"
    );

    let disjoint = pattern_adapter("keys-d", "other_[a-z]{8}", Some("other_abcdefgh"));
    assert!(Adapters::build(&[first, disjoint], ISSUER, "ab", &reqwest::Client::new()).is_ok());
}

#[test]
fn native_key_pattern_rejected() {
    let greedy = pattern_adapter(
        "greedy",
        "[a-z]+_(live|test)_[a-z]+_[a-z0-9]{8}_[0-9A-Za-z]{38}",
        None,
    );
    let error = build_error(std::slice::from_ref(&greedy));
    assert!(error.contains("greedy"), "{error}");
    assert!(error.contains("native API keys"), "{error}");

    // The check follows the configured prefix: native keys with an upper-case prefix do not
    // match this pattern.
    assert!(Adapters::build(&[greedy], ISSUER, "AB9", &reqwest::Client::new()).is_ok());
}

#[tokio::test]
async fn ambiguous_credential_is_malformed() {
    let server = MockServer::start().await;
    // Without samples the overlap cannot be seen at startup, so classification refuses the
    // credentials that both patterns match.
    let mut first = pattern_adapter("keys-a", "key_[a-z]{8}", None);
    let mut second = pattern_adapter("keys-b", "key_[a-d]+", None);
    for adapter in [&mut first, &mut second] {
        adapter["url"] = json!(format!("{}{VERIFY_PATH}", server.uri()));
    }
    let app = app_with(vec![first, second]).await;

    let response = app.verify("key_abcdabcd", None).await;
    assert_eq!(response.reason(), "malformed", "{}", response.body);
    assert!(requests(&server).await.is_empty(), "no adapter is called");
}
