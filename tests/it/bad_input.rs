//! Bad requests: every one is a 4xx with a problem+json body (or an RFC 6749 error on the OAuth
//! endpoints), never a 500, and a rejected create writes nothing.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use authbridge::credentials::Mode;

use crate::common::{admin, basic, form, Response, TestApp};

fn raw(
    method: Method,
    uri: &str,
    credential: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {credential}"));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).expect("request")
}

fn assert_problem(response: &Response, label: &str) {
    assert!(
        response.status.is_client_error(),
        "{label}: expected 4xx, got {} {}",
        response.status,
        response.body
    );
    assert_eq!(
        response.content_type(),
        "application/problem+json",
        "{label}: content type"
    );
    assert_eq!(
        response.body["status"].as_u64(),
        Some(u64::from(response.status.as_u16())),
        "{label}: problem status member"
    );
    assert!(
        response.body["detail"].is_string(),
        "{label}: problem detail"
    );
}

async fn child_count(t: &TestApp, admin_key: &str) -> usize {
    let response = t
        .send(admin(Method::GET, "/v1/tenants", admin_key, None))
        .await;
    assert_eq!(response.status, StatusCode::OK, "list tenants");
    response.body.as_array().expect("tenant list").len()
}

#[tokio::test]
async fn bad_tenant_bodies_are_rejected_without_writes() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    let before = child_count(&t, &admin_key).await;

    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("malformed JSON", json, b"{\"name\": ".to_vec()),
        ("not an object", json, b"[1, 2]".to_vec()),
        ("name is a number", json, br#"{"name": 5}"#.to_vec()),
        (
            "inheritRoles is a string",
            json,
            br#"{"name": "x", "inheritRoles": "yes"}"#.to_vec(),
        ),
        (
            "unknown field",
            json,
            br#"{"name": "x", "owner": "me"}"#.to_vec(),
        ),
        ("missing name", json, b"{}".to_vec()),
        ("empty name", json, br#"{"name": "   "}"#.to_vec()),
        (
            "control character in name",
            json,
            br#"{"name": "a\u0007b"}"#.to_vec(),
        ),
        (
            "invalid parent id",
            json,
            br#"{"name": "x", "parentId": "NOT-AN-ID"}"#.to_vec(),
        ),
        ("empty body", json, Vec::new()),
        ("invalid UTF-8", json, vec![b'{', b'"', 0xff, b'"', b'}']),
        ("no content type", None, br#"{"name": "x"}"#.to_vec()),
        (
            "text/plain",
            Some("text/plain"),
            br#"{"name": "x"}"#.to_vec(),
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            b"name=x".to_vec(),
        ),
        (
            "oversized body",
            json,
            format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024)).into_bytes(),
        ),
    ];
    for (label, content_type, body) in cases {
        let response = t
            .send(raw(
                Method::POST,
                "/v1/tenants",
                &admin_key,
                content_type,
                body,
            ))
            .await;
        assert_problem(&response, label);
    }
    assert_eq!(
        child_count(&t, &admin_key).await,
        before,
        "no tenant was created"
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    let body = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024)).into_bytes();
    let response = t
        .send(raw(
            Method::POST,
            "/v1/tenants",
            &admin_key,
            Some("application/json"),
            body,
        ))
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE, "status");
}

#[tokio::test]
async fn bad_machine_and_key_bodies_are_rejected() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let machines = format!("/v1/tenants/{root}/machines");
    let keys = format!("/v1/tenants/{root}/api-keys");
    let cases = [
        (
            &machines,
            json!({"name": "m", "roles": {"zzzz9999": ["reader"]}}),
            "grant outside the subtree",
        ),
        (
            &machines,
            json!({"name": "m", "roles": {root.as_str(): ["Admin"]}}),
            "invalid role",
        ),
        (
            &machines,
            json!({"name": "m", "scopes": ["a b"]}),
            "scope with a space",
        ),
        (
            &machines,
            json!({"name": "m", "jwks": {"keys": []}}),
            "empty JWKS",
        ),
        (
            &machines,
            json!({"name": "m", "jwks": {"kty": "oct", "k": "AAAA"}}),
            "symmetric JWK",
        ),
        (
            &machines,
            json!({"name": "m", "mode": "prod"}),
            "unknown mode",
        ),
        (&keys, json!({"role": "admin"}), "missing mode"),
        (
            &keys,
            json!({"role": "admin_x", "mode": "live"}),
            "role with underscore",
        ),
        (
            &keys,
            json!({"role": "admin", "mode": "live", "expiresAt": "tomorrow"}),
            "expiresAt not RFC 3339",
        ),
        (
            &keys,
            json!({"role": "admin", "mode": "live", "expiresAt": "2000-01-01T00:00:00Z"}),
            "expiresAt in the past",
        ),
    ];
    for (uri, body, label) in cases {
        let response = t
            .send(admin(Method::POST, uri, &admin_key, Some(body)))
            .await;
        assert_problem(&response, label);
    }
    assert!(
        t.app
            .store
            .machines_of_tenant(&root)
            .await
            .expect("machines")
            .is_empty(),
        "no machine created"
    );
    assert_eq!(
        t.app
            .store
            .api_keys_of_tenant(&root)
            .await
            .expect("keys")
            .len(),
        1,
        "no key created"
    );
}

#[tokio::test]
async fn bad_verify_requests_are_rejected() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    let cases: Vec<(&str, Request<Body>)> = vec![
        (
            "malformed JSON",
            raw(
                Method::POST,
                "/v1/verify",
                &admin_key,
                Some("application/json"),
                b"{".to_vec(),
            ),
        ),
        (
            "unknown field",
            raw(
                Method::POST,
                "/v1/verify",
                &admin_key,
                Some("application/json"),
                br#"{"tenant": "x"}"#.to_vec(),
            ),
        ),
        (
            "roles not a list",
            raw(
                Method::POST,
                "/v1/verify",
                &admin_key,
                Some("application/json"),
                br#"{"roles": "admin"}"#.to_vec(),
            ),
        ),
        (
            "invalid tenantId",
            raw(
                Method::POST,
                "/v1/verify",
                &admin_key,
                Some("application/json"),
                br#"{"tenantId": "ROOT"}"#.to_vec(),
            ),
        ),
        (
            "unknown mode",
            raw(
                Method::POST,
                "/v1/verify",
                &admin_key,
                Some("application/json"),
                br#"{"mode": "prod"}"#.to_vec(),
            ),
        ),
        (
            "no credential",
            Request::builder()
                .method(Method::POST)
                .uri("/v1/verify")
                .body(Body::empty())
                .expect("request"),
        ),
        (
            "Basic scheme",
            Request::builder()
                .method(Method::POST)
                .uri("/v1/verify")
                .header(header::AUTHORIZATION, "Basic YTpi")
                .body(Body::empty())
                .expect("request"),
        ),
        (
            "both headers",
            Request::builder()
                .method(Method::POST)
                .uri("/v1/verify")
                .header(header::AUTHORIZATION, format!("Bearer {admin_key}"))
                .header("x-api-key", admin_key.as_str())
                .body(Body::empty())
                .expect("request"),
        ),
    ];
    for (label, request) in cases {
        let response = t.send(request).await;
        assert_problem(&response, label);
    }
}

#[tokio::test]

async fn oversized_verify_body_is_problem_json() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    let body = format!(r#"{{"audience": "{}"}}"#, "x".repeat(70 * 1024)).into_bytes();
    let response = t
        .send(raw(
            Method::POST,
            "/v1/verify",
            &admin_key,
            Some("application/json"),
            body,
        ))
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE, "status");
    assert_problem(&response, "oversized verify body");
}

#[tokio::test]
async fn x_api_key_header_is_accepted() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/verify")
        .header("x-api-key", admin_key.as_str())
        .body(Body::empty())
        .expect("request");
    let response = t.send(request).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "X-API-Key: {}",
        response.body
    );
    assert_eq!(response.reason(), "valid", "reason");
}

#[tokio::test]
async fn bad_token_requests_get_oauth_errors() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let auth = basic(&client_id, &secret);

    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "duplicate grant_type",
            form(
                "/oauth/token",
                Some(&auth),
                "grant_type=client_credentials&grant_type=client_credentials",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "duplicate scope",
            form(
                "/oauth/token",
                Some(&auth),
                "grant_type=client_credentials&scope=read&scope=read",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "JSON content type",
            Request::builder()
                .method(Method::POST)
                .uri("/oauth/token")
                .header(header::AUTHORIZATION, auth.as_str())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
                .expect("request"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "missing grant_type",
            form("/oauth/token", Some(&auth), "scope=read"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "password grant",
            form(
                "/oauth/token",
                Some(&auth),
                "grant_type=password&username=a&password=b",
            ),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "scope not allowed",
            form(
                "/oauth/token",
                Some(&auth),
                "grant_type=client_credentials&scope=write",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "invalid tenant_id",
            form(
                "/oauth/token",
                Some(&auth),
                "grant_type=client_credentials&tenant_id=ROOT",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            "basic and post together",
            form(
                "/oauth/token",
                Some(&auth),
                &format!(
                    "grant_type=client_credentials&client_id={client_id}&client_secret={secret}"
                ),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (label, request, status, error) in cases {
        let response = t.send(request).await;
        assert_eq!(
            response.status, status,
            "{label}: status, body {}",
            response.body
        );
        assert_eq!(response.body["error"], json!(error), "{label}: error code");
        assert_eq!(
            response
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{label}: no-store"
        );
    }
}

#[tokio::test]
async fn bad_client_secret_is_invalid_client() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, _) = t.machine(&root, &["reader"], Mode::Live).await;

    let by_basic = t
        .send(form(
            "/oauth/token",
            Some(&basic(&client_id, "wrong-secret")),
            "grant_type=client_credentials",
        ))
        .await;
    assert_eq!(by_basic.status, StatusCode::UNAUTHORIZED, "basic: status");
    assert_eq!(
        by_basic.body["error"],
        json!("invalid_client"),
        "basic: error"
    );
    let challenge = by_basic
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Basic"),
        "basic: WWW-Authenticate is {challenge:?}"
    );

    let by_post = t
        .send(form(
            "/oauth/token",
            None,
            &format!("grant_type=client_credentials&client_id={client_id}&client_secret=wrong"),
        ))
        .await;
    assert_eq!(by_post.status, StatusCode::UNAUTHORIZED, "post: status");
    assert_eq!(
        by_post.body["error"],
        json!("invalid_client"),
        "post: error"
    );
    assert!(
        by_post.headers.get("www-authenticate").is_some(),
        "post: WWW-Authenticate"
    );

    let unknown = t
        .send(form(
            "/oauth/token",
            Some(&basic("no-such-client", "x")),
            "grant_type=client_credentials",
        ))
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "unknown client: status"
    );
    assert_eq!(
        unknown.body["error"],
        json!("invalid_client"),
        "unknown client: error"
    );

    let garbled = t
        .send(form(
            "/oauth/token",
            Some("Basic !!!notbase64"),
            "grant_type=client_credentials",
        ))
        .await;
    assert_eq!(
        garbled.status,
        StatusCode::UNAUTHORIZED,
        "garbled Basic: status"
    );
    assert_eq!(
        garbled.body["error"],
        json!("invalid_client"),
        "garbled Basic: error"
    );

    let none = t
        .send(form("/oauth/token", None, "grant_type=client_credentials"))
        .await;
    assert_eq!(
        none.status,
        StatusCode::UNAUTHORIZED,
        "no client authentication: status"
    );
    assert_eq!(
        none.body["error"],
        json!("invalid_client"),
        "no client authentication: error"
    );
}

#[tokio::test]
async fn oversized_token_request_is_not_500() {
    let t = TestApp::sqlite().await;
    let body = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(70 * 1024)
    );
    let response = t
        .send(form("/oauth/token", Some(&basic("a", "b")), &body))
        .await;
    assert!(
        response.status.is_client_error(),
        "oversized token request: got {}",
        response.status
    );
}
