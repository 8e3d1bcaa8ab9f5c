//! Overload and abuse limits: the failure limit on every endpoint that checks a credential, and
//! the header limits, header read timeout and connection limit of the served listener, tested
//! over real TCP connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use serde_json::Value;

use authbridge::config::Config;
use authbridge::credentials::Mode;

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

/// A daemon served on an ephemeral loopback port, stopped when dropped.
struct Served {
    address: SocketAddr,
    _app: TestApp,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(configure: impl FnOnce(&mut Config)) -> Served {
    let app = TestApp::with_config(Backend::Sqlite, configure).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(authbridge::server::run(listener, app.app.clone(), shutdown));
    Served {
        address,
        _app: app,
        stop: Some(stop),
    }
}

/// A raw HTTP/1.1 exchange: the status code (0 when the connection ended without a response),
/// the response head and the body.
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

/// Sends `head` (request line and header fields, without the final empty line) on a new
/// connection and reads the whole response. The request carries `Connection: close`.
fn raw_request(address: SocketAddr, head: &str) -> RawResponse {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    // The server may respond and close before it has read the whole request.
    let _ = stream.write_all(request.as_bytes());
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn with_headers(count: usize, value_bytes: usize) -> String {
    let mut head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1".to_owned();
    for index in 0..count {
        head.push_str(&format!(
            "\r\nX-Filler-{index}: {}",
            "v".repeat(value_bytes)
        ));
    }
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_limits_over_tcp() {
    let served = serve(|_| {}).await;
    let address = served.address;

    let checks = tokio::task::spawn_blocking(move || {
        let normal = raw_request(address, &with_headers(5, 20));
        assert_eq!(normal.status, 200, "a normal request: {}", normal.head);

        // Host, Connection and 99 fillers: 101 fields against the default of 100.
        let many = raw_request(address, &with_headers(99, 1));
        assert_eq!(many.status, 431, "too many header fields: {}", many.head);
        assert!(
            many.head
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{}",
            many.head
        );
        let problem: Value = serde_json::from_str(&many.body).unwrap();
        assert_eq!(problem["status"], 431);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("101 header fields"),
            "{problem}"
        );

        let at_count_limit = raw_request(address, &with_headers(98, 1));
        assert_eq!(at_count_limit.status, 200, "100 fields are allowed");

        let large = raw_request(address, &with_headers(2, 10_000));
        assert_eq!(large.status, 431, "20 KB of header fields: {}", large.head);
        assert!(large.body.contains("bytes"), "{}", large.body);

        // Far past the limits, hyper's own backstop responds with 431 without a body and closes the
        // connection. When hyper closes with part of the request unread, the kernel resets the
        // connection, and the client may lose the 431 (status 0 here).
        let huge = raw_request(address, &with_headers(10, 8_000));
        assert!(
            [431, 0].contains(&huge.status),
            "80 KB of header fields: {}",
            huge.head
        );
        let flood = raw_request(address, &with_headers(500, 1));
        assert_eq!(flood.status, 431, "500 header fields: {}", flood.head);
    });
    checks.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_credential_gets_credential_error() {
    let served = serve(|_| {}).await;
    let address = served.address;

    let checks = tokio::task::spawn_blocking(move || {
        for length in [8192, 8193, 9000] {
            let head = format!(
                "POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nAuthorization: Bearer {}",
                "a".repeat(length)
            );
            let response = raw_request(address, &head);
            assert_eq!(
                response.status, 401,
                "a {length}-byte credential: {}",
                response.head
            );
            let body: Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(body["valid"], false, "{body}");
            assert!(body["reason"].is_string(), "{body}");
        }
    });
    checks.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed() {
    let served = serve(|config| config.server.header_read_timeout_seconds = 1).await;
    let address = served.address;

    let checks = tokio::task::spawn_blocking(move || {
        for (case, sent) in [
            ("nothing", &b""[..]),
            ("part of the HTTP/2 preface", &b"PRI * HTTP"[..]),
            (
                "part of a request head",
                &b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..],
            ),
        ] {
            let mut stream = TcpStream::connect(address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(sent).unwrap();
            let started = Instant::now();
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            let waited = started.elapsed();
            assert!(
                waited < Duration::from_secs(5),
                "{case}: the connection stayed open for {waited:?}"
            );
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("200 OK"),
                "{case}: no request was served: {text}"
            );
        }
    });
    checks.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_limit_wait() {
    let served = serve(|config| {
        config.server.max_connections = 1;
        config.server.header_read_timeout_seconds = 30;
    })
    .await;
    let address = served.address;

    let checks = tokio::task::spawn_blocking(move || {
        let mut holder = TcpStream::connect(address).unwrap();
        holder.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));

        let mut waiting = TcpStream::connect(address).unwrap();
        waiting
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        waiting
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buffer = [0u8; 64];
        let early = waiting.read(&mut buffer);
        assert!(
            early.is_err(),
            "the second connection was served while the first held the only slot: {early:?}"
        );

        drop(holder);
        waiting
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = waiting.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "served once the slot was free: {text}"
        );
    });
    checks.await.unwrap();
}
