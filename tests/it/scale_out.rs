//! Two `authbridge serve` processes on one PostgreSQL database: what an admin changes on one
//! instance takes effect on the other within a second, through LISTEN/NOTIFY between real
//! processes. `cluster.rs` checks the same within one test process. Runs when
//! `AUTHBRIDGE_TEST_POSTGRES_URL` is set.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{postgres_backend, Backend, PostgresDatabase};
use crate::daemon::{Daemon, DaemonEnv};

const ADAPTER: &str = "old-idp";
const LEGACY_ISSUER: &str = "https://legacy-idp.test";
const LEGACY_SECRET: &str = "scale-out-test-secret-of-32-bytes-or-more";

/// The time a change on one instance may take to reach the other.
const PROPAGATION: Duration = Duration::from_secs(1);

fn adapter_config(tenant_id: &str) -> String {
    format!(
        r#"
[[adapters]]
name = "{ADAPTER}"
kind = "jwt"
phase = "dual"
issuers = ["{LEGACY_ISSUER}"]
audiences = ["legacy-api"]
algorithms = ["HS256"]
hmac_secret = "{LEGACY_SECRET}"

[adapters.mapping]
tenant = {{ default = "{tenant_id}" }}
roles = {{ default = ["reader"] }}
"#
    )
}

/// Signs an HS256 token of the legacy issuer, valid for an hour.
fn legacy_token() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": LEGACY_ISSUER, "sub": "svc-billing", "aud": "legacy-api",
        "iat": now, "exp": now + 3600,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(LEGACY_SECRET.as_bytes()).expect("HMAC key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Reads the status and JSON body of a response.
async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn verify(client: &Client, daemon: &Daemon, credential: &str) -> (StatusCode, Value) {
    let response = client
        .post(daemon.url("/v1/verify"))
        .bearer_auth(credential)
        .send()
        .await
        .expect("verify request");
    read(response).await
}

async fn admin_get(client: &Client, daemon: &Daemon, admin_key: &str, path: &str) -> Value {
    let response = client
        .get(daemon.url(path))
        .bearer_auth(admin_key)
        .send()
        .await
        .expect("admin request");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn admin_post(
    client: &Client,
    daemon: &Daemon,
    admin_key: &str,
    path: &str,
    body: Value,
    expected: StatusCode,
) -> Value {
    let response = client
        .post(daemon.url(path))
        .bearer_auth(admin_key)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let (status, body) = read(response).await;
    assert_eq!(status, expected, "POST {path}: {body}");
    body
}

/// Polls `check` until it returns true or `PROPAGATION` has passed since `since`. Returns the
/// time it took, or `None` when the deadline passed.
async fn within_propagation<F, Fut>(since: Instant, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            return Some(since.elapsed());
        }
        if since.elapsed() >= PROPAGATION {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn token(client: &Client, daemon: &Daemon, client_id: &str, secret: &str) -> String {
    let response = client
        .post(daemon.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "token: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Returns the `kid` of the key with `status` in a `/v1/signing-keys` list.
fn kid_with_status(keys: &Value, status: &str) -> String {
    keys.as_array()
        .expect("a key list")
        .iter()
        .find(|key| key["status"] == status)
        .and_then(|key| key["kid"].as_str())
        .unwrap_or_else(|| panic!("no {status} key in {keys}"))
        .to_owned()
}

/// Returns the `kid` in the header of a compact JWS.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("a JWS header");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
            .expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_changes_within_a_second() {
    let Some(Backend::Postgres(server_url)) = postgres_backend() else {
        println!("AUTHBRIDGE_TEST_POSTGRES_URL not set: skipping the two-process PostgreSQL test");
        return;
    };
    let database = PostgresDatabase::create(&server_url).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // Instances behind one load balancer share the issuer, so each accepts the other's tokens.
    let env = DaemonEnv::postgres(dir.path(), &database.url)
        .set("AUTHBRIDGE_SERVER__ISSUER", "http://authbridge.test");
    let root = env.bootstrap().await;
    let env = env.with_config_file(&adapter_config(&root.tenant_id));
    let admin_key = root.admin_key.as_str();

    let first = env.serve("first").await;
    let second = env.serve("second").await;
    for daemon in [&first, &second] {
        daemon
            .wait_for_log(
                "listening for changes from other instances",
                Duration::from_secs(30),
            )
            .await;
    }
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let keys_path = format!("/v1/tenants/{}/api-keys", root.tenant_id);

    // An API key created on the first instance verifies on the second.
    let created = admin_post(
        &client,
        &first,
        admin_key,
        &keys_path,
        json!({"role": "readonly", "mode": "live"}),
        StatusCode::CREATED,
    )
    .await;
    let api_key = created["key"].as_str().expect("key").to_owned();
    let key_id = created["id"].as_str().expect("id").to_owned();
    let since = Instant::now();
    let seen = within_propagation(since, || async {
        verify(&client, &second, &api_key).await.0 == StatusCode::OK
    })
    .await;
    assert!(
        seen.is_some(),
        "the new API key verifies on the second instance"
    );

    // A token revoked on the first instance (RFC 7009) is revoked on the second.
    let machine = admin_post(
        &client,
        &first,
        admin_key,
        &format!("/v1/tenants/{}/machines", root.tenant_id),
        json!({"name": "worker", "roles": {root.tenant_id.clone(): ["reader"]}}),
        StatusCode::CREATED,
    )
    .await;
    let client_id = machine["clientId"].as_str().expect("clientId").to_owned();
    let secret = machine["clientSecret"]
        .as_str()
        .expect("clientSecret")
        .to_owned();
    let access_token = token(&client, &first, &client_id, &secret).await;
    let (status, body) = verify(&client, &second, &access_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "token on the second instance: {body}"
    );
    let revoke = client
        .post(first.url("/oauth/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", access_token.as_str())])
        .send()
        .await
        .expect("revoke the token");
    assert_eq!(revoke.status(), StatusCode::OK, "revoke the token");
    let since = Instant::now();
    let took = within_propagation(since, || async {
        verify(&client, &second, &access_token).await.1["reason"] == "revoked"
    })
    .await;
    println!("token revocation reached the second instance after {took:?}");
    assert!(
        took.is_some(),
        "token revocation reaches the second instance"
    );

    // An API key revoked on the first instance is revoked on the second, although the second
    // has it in its cache (`api_keys.cache_ttl_seconds`, 10 s by default).
    let response = client
        .delete(first.url(&format!("{keys_path}/{key_id}")))
        .bearer_auth(admin_key)
        .send()
        .await
        .expect("revoke the API key");
    assert_eq!(response.status(), StatusCode::OK, "revoke the API key");
    let since = Instant::now();
    let took = within_propagation(since, || async {
        verify(&client, &second, &api_key).await.1["reason"] == "revoked"
    })
    .await;
    println!("API key revocation reached the second instance after {took:?}");
    assert!(
        took.is_some(),
        "API key revocation reaches the second instance"
    );

    // Two rotations, one with the CLI and one with the admin API of the first instance. After
    // both, the current key was created by the first rotation, so the second instance loads it
    // only after a notification.
    let before = admin_get(&client, &first, admin_key, "/v1/signing-keys").await;
    let promoted = kid_with_status(&before, "next");
    let output = env.run(&["signing-keys", "rotate"]).await;
    assert!(
        output.status.success(),
        "signing-keys rotate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let since = Instant::now();
    for (name, daemon) in [("first", &first), ("second", &second)] {
        let took = within_propagation(since, || async {
            let keys = admin_get(&client, daemon, admin_key, "/v1/signing-keys").await;
            kid_with_status(&keys, "current") == promoted
        })
        .await;
        println!("CLI rotation reached the {name} instance after {took:?}");
        assert!(
            took.is_some(),
            "the CLI rotation reaches the {name} instance"
        );
    }
    let rotated = admin_post(
        &client,
        &first,
        admin_key,
        "/v1/signing-keys/rotate",
        json!({}),
        StatusCode::OK,
    )
    .await;
    let since = Instant::now();
    let took = within_propagation(since, || async {
        admin_get(&client, &second, admin_key, "/v1/signing-keys").await == rotated
    })
    .await;
    println!("admin API rotation reached the second instance after {took:?}");
    assert!(
        took.is_some(),
        "the admin API rotation reaches the second instance: first has {rotated}"
    );
    let fresh = token(&client, &first, &client_id, &secret).await;
    assert_eq!(
        kid_of(&fresh),
        kid_with_status(&rotated, "current"),
        "signed by the new key"
    );
    let (status, body) = verify(&client, &second, &fresh).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a token signed after the rotation verifies on the second instance: {body}"
    );

    // An adapter moved to `enforce` on the first instance retires legacy tokens on the second.
    let legacy = legacy_token();
    let (status, body) = verify(&client, &second, &legacy).await;
    assert_eq!(status, StatusCode::OK, "legacy token in dual: {body}");
    assert_eq!(body["source"], "legacy", "legacy token in dual: {body}");
    admin_post(
        &client,
        &first,
        admin_key,
        &format!("/v1/adapters/{ADAPTER}/phase"),
        json!({"phase": "enforce"}),
        StatusCode::CREATED,
    )
    .await;
    let since = Instant::now();
    let took = within_propagation(since, || async {
        verify(&client, &second, &legacy).await.1["reason"] == "legacy_retired"
    })
    .await;
    println!("phase change reached the second instance after {took:?}");
    assert!(
        took.is_some(),
        "the phase change reaches the second instance"
    );
    let adapters = admin_get(&client, &second, admin_key, "/v1/adapters").await;
    assert_eq!(
        adapters[0]["phase"], "enforce",
        "phase listed by the second instance: {adapters}"
    );

    // Both instances flush their audit queues on SIGTERM. Then every chain verifies.
    let chains = [first.chain_id(), second.chain_id()];
    for (name, mut daemon) in [("first", first), ("second", second)] {
        let status = daemon.child.terminate(Duration::from_secs(30)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "the {name} instance stops cleanly on SIGTERM: {status:?}"
        );
    }
    let verified = env.verify_audit_chains().await;
    for chain in &chains {
        let events = verified
            .get(chain)
            .unwrap_or_else(|| panic!("chain {chain} missing from audit verify: {verified:?}"));
        assert!(*events > 0, "chain {chain} has events");
    }
}
