//! End to end with the real binary: `bootstrap --json`, then `serve` on a free local port, and
//! the main flow over HTTP with reqwest.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_authbridge");

/// Kills the server when the test ends, also when it fails.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("AUTHBRIDGE_DATABASE__DATA_DIR", data_dir)
        .env_remove("AUTHBRIDGE_DATABASE__URL")
        .env("AUTHBRIDGE_LOGGING__LEVEL", "warn")
        .current_dir(data_dir);
    command
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn wait_until_healthy(client: &Client, base: &str, server: &mut ServerGuard) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("authbridge serve exited early with {status}");
        }
        if let Ok(response) = client.get(format!("{base}/healthz")).send() {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "authbridge serve did not become healthy within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_of(response: reqwest::blocking::Response, label: &str, expected: StatusCode) -> Value {
    let status = response.status();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert_eq!(status, expected, "{label}: {body}");
    body
}

#[test]
fn binary_serves_the_main_flow() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bootstrap = command(dir.path())
        .args(["bootstrap", "--json"])
        .output()
        .expect("run authbridge bootstrap");
    assert!(
        bootstrap.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    let printed: Value = serde_json::from_slice(&bootstrap.stdout).expect("bootstrap prints JSON");
    let root = printed["tenantId"].as_str().expect("tenantId").to_owned();
    let admin_key = printed["apiKey"].as_str().expect("apiKey").to_owned();

    let again = command(dir.path())
        .args(["bootstrap", "--json"])
        .output()
        .expect("run bootstrap again");
    assert!(!again.status.success(), "a second bootstrap must fail");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The log is kept at debug level and scanned for secrets at the end.
    let log_path = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log_path).expect("create the log file");
    let child = command(dir.path())
        .arg("serve")
        .env("AUTHBRIDGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTHBRIDGE_LOGGING__LEVEL", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("start authbridge serve");
    let mut server = ServerGuard(child);
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    wait_until_healthy(&client, &base, &mut server);

    let team = json_of(
        client
            .post(format!("{base}/v1/tenants"))
            .bearer_auth(&admin_key)
            .json(&json!({"name": "team"}))
            .send()
            .expect("create tenant"),
        "create tenant",
        StatusCode::CREATED,
    );
    let team = team["id"].as_str().expect("team id").to_owned();
    let squad = json_of(
        client
            .post(format!("{base}/v1/tenants"))
            .bearer_auth(&admin_key)
            .json(&json!({"name": "squad", "parentId": team}))
            .send()
            .expect("create sub-tenant"),
        "create sub-tenant",
        StatusCode::CREATED,
    );
    assert_eq!(squad["parentId"], json!(team), "sub-tenant parent");
    let squad = squad["id"].as_str().expect("squad id").to_owned();

    let machine = json_of(
        client
            .post(format!("{base}/v1/tenants/{squad}/machines"))
            .bearer_auth(&admin_key)
            .json(&json!({"name": "worker", "roles": {squad.clone(): ["reader"]}}))
            .send()
            .expect("create machine"),
        "create machine",
        StatusCode::CREATED,
    );
    let client_id = machine["clientId"].as_str().expect("clientId").to_owned();
    let secret = machine["clientSecret"]
        .as_str()
        .expect("clientSecret")
        .to_owned();

    let token = json_of(
        client
            .post(format!("{base}/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .expect("token request"),
        "token",
        StatusCode::OK,
    );
    let token = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();

    let verify = |credential: &str, expected: StatusCode, label: &str| {
        json_of(
            client
                .post(format!("{base}/v1/verify"))
                .bearer_auth(credential)
                .json(&json!({"tenantId": squad, "roles": ["reader"]}))
                .send()
                .expect("verify request"),
            label,
            expected,
        )
    };
    let verified = verify(&token, StatusCode::OK, "token verifies");
    assert_eq!(verified["reason"], json!("valid"), "token reason");
    assert_eq!(verified["tenantId"], json!(squad), "token tenant");

    let key = json_of(
        client
            .post(format!("{base}/v1/tenants/{squad}/api-keys"))
            .bearer_auth(&admin_key)
            .json(&json!({"role": "reader", "mode": "live"}))
            .send()
            .expect("create API key"),
        "create API key",
        StatusCode::CREATED,
    );
    let api_key = key["key"].as_str().expect("key").to_owned();
    let key_id = key["id"].as_str().expect("key id").to_owned();
    assert_eq!(
        verify(&api_key, StatusCode::OK, "API key verifies")["reason"],
        json!("valid"),
        "API key reason"
    );

    let revoke = client
        .post(format!("{base}/oauth/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .expect("revoke token");
    assert_eq!(revoke.status(), StatusCode::OK, "revoke token");
    json_of(
        client
            .delete(format!("{base}/v1/tenants/{squad}/api-keys/{key_id}"))
            .bearer_auth(&admin_key)
            .send()
            .expect("revoke API key"),
        "revoke API key",
        StatusCode::OK,
    );

    let token_after = verify(&token, StatusCode::UNAUTHORIZED, "revoked token");
    assert_eq!(
        token_after["reason"],
        json!("revoked"),
        "revoked token reason"
    );
    let key_after = verify(&api_key, StatusCode::UNAUTHORIZED, "revoked API key");
    assert_eq!(
        key_after["reason"],
        json!("revoked"),
        "revoked API key reason"
    );

    let jwks = json_of(
        client
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .expect("JWKS"),
        "JWKS",
        StatusCode::OK,
    );
    assert!(
        !jwks["keys"].as_array().expect("keys").is_empty(),
        "JWKS has keys"
    );

    let admin_identity = json_of(
        client
            .post(format!("{base}/v1/verify"))
            .header("x-api-key", &admin_key)
            .send()
            .expect("verify admin key"),
        "admin key verifies",
        StatusCode::OK,
    );
    assert_eq!(
        admin_identity["tenantId"],
        json!(root),
        "bootstrap key belongs to the root tenant"
    );

    drop(server);
    let log = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(
        log.contains("verify"),
        "the debug log recorded the requests"
    );
    let secrets = [
        ("admin API key", admin_key.as_str()),
        ("client secret", secret.as_str()),
        ("access token", token.as_str()),
        ("API key", api_key.as_str()),
    ];
    for (name, value) in secrets {
        assert!(!log.contains(value), "the {name} appears in the log");
    }
}
