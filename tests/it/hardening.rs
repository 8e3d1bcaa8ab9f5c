//! Abuse limits: repeated failed verifications from one client address get 429 with
//! `Retry-After`, while other addresses and valid traffic are unaffected.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};

use crate::common::{send, Backend, TestApp};

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
        assert_eq!(response.status, 401, "attempt {attempt} is answered normally");
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
    assert_eq!(later.status, 200, "the address is served again after the window");
}
