//! Overload and abuse limits: the failure limit on every endpoint that checks a credential.

use std::net::SocketAddr;

use authbridge::credentials::Mode;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};

use crate::common::{basic, form, send, Backend, Response, TestApp};

/// Adds the TCP peer address that the served router would add.
fn from_address(mut request: Request<Body>, address: &str) -> Request<Body> {
    let address: SocketAddr = address.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(address));
    request
}

fn forward_auth(address: &str, credential: &str) -> Request<Body> {
    let request = Request::builder()
        .method(Method::GET)
        .uri("/v1/forward-auth")
        .header("authorization", format!("Bearer {credential}"))
        .body(Body::empty())
        .unwrap();
    from_address(request, address)
}

fn verify(address: &str, credential: &str) -> Request<Body> {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/verify")
        .header("authorization", format!("Bearer {credential}"))
        .body(Body::empty())
        .unwrap();
    from_address(request, address)
}

fn client_credentials(address: &str, client_id: &str, secret: &str) -> Request<Body> {
    let request = form(
        "/oauth/token",
        Some(&basic(client_id, secret)),
        "grant_type=client_credentials",
    );
    from_address(request, address)
}

fn retry_after(response: &Response) -> i64 {
    response
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

async fn limited_app(failures: u32) -> TestApp {
    TestApp::with_config(Backend::Sqlite, |config| {
        config.rate_limit.failures_per_window = failures;
        config.rate_limit.window_seconds = 60;
        config.rate_limit.trusted_proxies = vec!["10.0.0.0/8".to_owned()];
    })
    .await
}

#[tokio::test]
async fn forward_auth_failures_get_429() {
    let t = limited_app(3).await;
    let (_, admin_key) = t.bootstrap("root").await;

    for attempt in 0..3 {
        let response = send(&t.router, forward_auth("192.0.2.20:5000", "garbage")).await;
        assert_eq!(response.status, 401, "attempt {attempt}");
    }
    let limited = send(&t.router, forward_auth("192.0.2.20:5000", &admin_key)).await;
    assert_eq!(
        limited.status, 429,
        "the blocked address gets 429, valid key or not"
    );
    assert!((1..=60).contains(&retry_after(&limited)), "Retry-After");
    assert!(
        limited.headers.get("x-auth-reason").is_none(),
        "no verification ran for the blocked request"
    );
    assert_eq!(limited.content_type(), "application/problem+json");

    let other = send(&t.router, forward_auth("192.0.2.21:5000", &admin_key)).await;
    assert_eq!(other.status, 200, "another address is served");

    t.clock.advance(60);
    let later = send(&t.router, forward_auth("192.0.2.20:5000", &admin_key)).await;
    assert_eq!(later.status, 200, "served again after the window");
}

#[tokio::test]
async fn successes_never_count_toward_limit() {
    let t = limited_app(3).await;
    let (_, admin_key) = t.bootstrap("root").await;

    for attempt in 0..2 {
        let response = send(&t.router, forward_auth("192.0.2.30:5000", "garbage")).await;
        assert_eq!(response.status, 401, "failure {attempt}");
    }
    for attempt in 0..50 {
        let forward = send(&t.router, forward_auth("192.0.2.30:5000", &admin_key)).await;
        assert_eq!(forward.status, 200, "forward-auth success {attempt}");
        let verified = send(&t.router, verify("192.0.2.30:5000", &admin_key)).await;
        assert_eq!(verified.status, 200, "verify success {attempt}");
    }
}

#[tokio::test]
async fn forward_auth_counts_client_behind_trusted_proxy() {
    let t = limited_app(2).await;
    let (_, admin_key) = t.bootstrap("root").await;
    let through_proxy = |client: &str, credential: &str| {
        let mut request = forward_auth("10.0.0.1:40000", credential);
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        request
    };

    for attempt in 0..2 {
        let response = send(&t.router, through_proxy("198.51.100.7", "garbage")).await;
        assert_eq!(response.status, 401, "attempt {attempt}");
    }
    let limited = send(&t.router, through_proxy("198.51.100.7", &admin_key)).await;
    assert_eq!(limited.status, 429, "the forwarded client is blocked");

    let neighbour = send(&t.router, through_proxy("198.51.100.8", &admin_key)).await;
    assert_eq!(
        neighbour.status, 200,
        "another client behind the same proxy is served"
    );
    let mut forging = forward_auth("192.0.2.40:5000", &admin_key);
    forging
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    let forged = send(&t.router, forging).await;
    assert_eq!(
        forged.status, 200,
        "an untrusted peer's X-Forwarded-For is ignored"
    );
}

#[tokio::test]
async fn token_endpoint_limits_invalid_client() {
    let t = limited_app(3).await;
    let (tenant, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&tenant, &["reader"], Mode::Live).await;

    let missing = send(
        &t.router,
        from_address(
            form("/oauth/token", None, "grant_type=client_credentials"),
            "192.0.2.50:5000",
        ),
    )
    .await;
    assert_eq!(missing.status, 401, "no client authentication");
    for attempt in 0..3 {
        let response = send(
            &t.router,
            client_credentials("192.0.2.50:5000", &client_id, "wrong-secret"),
        )
        .await;
        assert_eq!(response.status, 401, "attempt {attempt}");
        assert_eq!(response.body["error"], "invalid_client");
    }

    let limited = send(
        &t.router,
        client_credentials("192.0.2.50:5000", &client_id, &secret),
    )
    .await;
    assert_eq!(
        limited.status, 429,
        "missing authentication did not count, three failures did"
    );
    assert_eq!(limited.body["error"], "temporarily_unavailable");
    assert!(limited.body["error_description"].is_string());
    assert!((1..=60).contains(&retry_after(&limited)), "Retry-After");
    assert_eq!(
        limited.headers.get("cache-control").unwrap(),
        "no-store",
        "OAuth errors are not cached"
    );

    let other = send(
        &t.router,
        client_credentials("192.0.2.51:5000", &client_id, &secret),
    )
    .await;
    assert_eq!(other.status, 200, "another address gets its token");
}

#[tokio::test]
async fn valid_clients_are_never_limited() {
    let t = limited_app(2).await;
    let (tenant, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&tenant, &["reader"], Mode::Live).await;
    for attempt in 0..20 {
        let response = send(
            &t.router,
            client_credentials("192.0.2.55:5000", &client_id, &secret),
        )
        .await;
        assert_eq!(response.status, 200, "token request {attempt}");
    }
}

#[tokio::test]
async fn one_budget_spans_all_endpoints() {
    let t = limited_app(4).await;
    let (tenant, admin_key) = t.bootstrap("root").await;
    let (client_id, _) = t.machine(&tenant, &["reader"], Mode::Live).await;
    let address = "192.0.2.60:5000";

    let verified = send(&t.router, verify(address, "garbage")).await;
    assert_eq!(verified.status, 401);
    let introspect = from_address(
        form(
            "/oauth/introspect",
            Some(&basic(&client_id, "wrong-secret")),
            "token=x",
        ),
        address,
    );
    assert_eq!(send(&t.router, introspect).await.status, 401);
    let revoke = from_address(
        form("/oauth/revoke", Some("Bearer garbage"), "token=x"),
        address,
    );
    assert_eq!(send(&t.router, revoke).await.status, 401);
    let exchange = from_address(
        form(
            "/oauth/token",
            None,
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=garbage&subject_token_type=urn:ietf:params:oauth:token-type:jwt",
        ),
        address,
    );
    let exchanged = send(&t.router, exchange).await;
    assert_eq!(exchanged.status, 400, "{}", exchanged.body);
    assert_eq!(exchanged.body["error"], "invalid_request");

    let admin_call = from_address(
        crate::common::admin(Method::GET, "/v1/tenants", &admin_key, None),
        address,
    );
    let blocked = send(&t.router, admin_call).await;
    assert_eq!(
        blocked.status, 429,
        "four failures on four endpoints block the admin API"
    );
    let blocked_introspect = from_address(
        form("/oauth/introspect", Some("Bearer garbage"), "token=x"),
        address,
    );
    let blocked_introspect = send(&t.router, blocked_introspect).await;
    assert_eq!(blocked_introspect.status, 429);
    assert_eq!(blocked_introspect.body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn admin_api_failures_count() {
    let t = limited_app(2).await;
    let (_, admin_key) = t.bootstrap("root").await;
    let call = |credential: &str| {
        from_address(
            crate::common::admin(Method::GET, "/v1/tenants", credential, None),
            "192.0.2.70:5000",
        )
    };
    assert_eq!(send(&t.router, call("garbage")).await.status, 401);
    assert_eq!(send(&t.router, call("garbage")).await.status, 401);
    let blocked = send(&t.router, call(&admin_key)).await;
    assert_eq!(blocked.status, 429);
    assert!((1..=60).contains(&retry_after(&blocked)), "Retry-After");
}
