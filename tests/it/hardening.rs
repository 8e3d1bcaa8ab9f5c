//! Abuse limits: repeated failed verifications from one client address get 429 with
//! `Retry-After`, while other addresses and valid traffic are unaffected.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};

use serde_json::json;

use crate::common::{admin, form, send, Backend, TestApp};

fn verify_from(address: &str, credential: &str) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/verify")
        .header("authorization", format!("Bearer {credential}"))
        .body(Body::empty())
        .unwrap();
    let address: SocketAddr = address.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(address));
    request
}

#[tokio::test]
async fn repeated_failures_from_one_address_get_429() {
    let t = TestApp::with_config(Backend::Sqlite, |config| {
        config.rate_limit.failures_per_window = 3;
        config.rate_limit.window_seconds = 60;
    })
    .await;
    let (_, admin_key) = t.bootstrap("root").await;

    for attempt in 0..3 {
        let response = send(&t.router, verify_from("192.0.2.10:5000", "garbage")).await;
        assert_eq!(
            response.status, 401,
            "attempt {attempt} is answered normally"
        );
    }
    let limited = send(&t.router, verify_from("192.0.2.10:5000", "garbage")).await;
    assert_eq!(limited.status, 429, "the fourth failure is limited");
    let retry_after: i64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");

    let other = send(&t.router, verify_from("192.0.2.11:5000", &admin_key)).await;
    assert_eq!(other.status, 200, "another address is not affected");

    t.clock.advance(60);
    let later = send(&t.router, verify_from("192.0.2.10:5000", &admin_key)).await;
    assert_eq!(
        later.status, 200,
        "the address is served again after the window"
    );
}

#[tokio::test]
async fn revocation_of_others_needs_admin_role() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let reader = t
        .api_key(&root, "readonly", authbridge::credentials::Mode::Live)
        .await;
    let victim = t
        .api_key(&root, "admin", authbridge::credentials::Mode::Live)
        .await;

    let introspected = send(
        &t.router,
        form(
            "/oauth/introspect",
            Some(&format!("Bearer {reader}")),
            &format!("token={victim}"),
        ),
    )
    .await;
    assert_eq!(
        introspected.body["active"], false,
        "a readonly key sees nothing through introspection"
    );
    let revoke = send(
        &t.router,
        form(
            "/oauth/revoke",
            Some(&format!("Bearer {reader}")),
            &format!("token={victim}"),
        ),
    )
    .await;
    assert_eq!(revoke.status, 200, "RFC 7009 answers 200 either way");
    assert_eq!(
        t.reason(&victim).await,
        "valid",
        "a readonly key cannot revoke an admin key"
    );

    let by_admin = send(
        &t.router,
        form(
            "/oauth/introspect",
            Some(&format!("Bearer {admin_key}")),
            &format!("token={victim}"),
        ),
    )
    .await;
    assert_eq!(
        by_admin.body["active"], true,
        "an admin introspects its subtree"
    );
    send(
        &t.router,
        form(
            "/oauth/revoke",
            Some(&format!("Bearer {reader}")),
            &format!("token={reader}"),
        ),
    )
    .await;
    assert_eq!(
        t.reason(&reader).await,
        "revoked",
        "a credential may revoke itself"
    );
    send(
        &t.router,
        form(
            "/oauth/revoke",
            Some(&format!("Bearer {admin_key}")),
            &format!("token={victim}"),
        ),
    )
    .await;
    assert_eq!(
        t.reason(&victim).await,
        "revoked",
        "an admin revokes credentials of its subtree"
    );
}

#[tokio::test]
async fn test_admin_cannot_create_live_credentials() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let test_admin = t
        .api_key(&root, "admin", authbridge::credentials::Mode::Test)
        .await;
    let live = send(
        &t.router,
        admin(
            Method::POST,
            &format!("/v1/tenants/{root}/api-keys"),
            &test_admin,
            Some(json!({"role": "admin", "mode": "live"})),
        ),
    )
    .await;
    assert_eq!(live.status, 403, "{:?}", live.body);
    let machine = send(
        &t.router,
        admin(
            Method::POST,
            &format!("/v1/tenants/{root}/machines"),
            &test_admin,
            Some(json!({"name": "m"})),
        ),
    )
    .await;
    assert_eq!(machine.status, 403, "a machine defaults to live mode");
    let test_key = send(
        &t.router,
        admin(
            Method::POST,
            &format!("/v1/tenants/{root}/api-keys"),
            &test_admin,
            Some(json!({"role": "readonly", "mode": "test"})),
        ),
    )
    .await;
    assert_eq!(test_key.status, 201, "test credentials are allowed");
}

#[tokio::test]
async fn deleted_machine_tokens_are_revoked() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let (client_id, secret) = t
        .machine(&root, &["reader"], authbridge::credentials::Mode::Live)
        .await;
    let token = t.token(&client_id, &secret, "").await;
    assert_eq!(t.reason(&token).await, "valid");
    let machine = t
        .app
        .store
        .machine_by_client_id(&client_id)
        .await
        .unwrap()
        .unwrap();
    let deleted = send(
        &t.router,
        admin(
            Method::DELETE,
            &format!("/v1/tenants/{root}/machines/{}", machine.id),
            &admin_key,
            None,
        ),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        t.reason(&token).await,
        "revoked",
        "a deleted machine's tokens stop verifying"
    );
}

#[tokio::test]
async fn reserved_custom_claims_are_rejected() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    for claim in ["tenantId", "iss", "authorization", "origin"] {
        let response = send(
            &t.router,
            admin(
                Method::POST,
                &format!("/v1/tenants/{root}/machines"),
                &admin_key,
                Some(json!({"name": "m", "claims": {claim: "x"}})),
            ),
        )
        .await;
        assert_eq!(response.status, 400, "claim {claim}: {:?}", response.body);
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let t = TestApp::sqlite().await;
    let (_, admin_key) = t.bootstrap("root").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEARER"] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/verify")
            .header("authorization", format!("{scheme} {admin_key}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send(&t.router, request).await.status,
            200,
            "scheme {scheme}"
        );
    }
}
