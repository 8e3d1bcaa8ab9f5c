//! Forward-auth behind a real nginx (`auth_request`): a legacy token sent to nginx reaches the
//! upstream as a native access token, a native API key passes unchanged, and a bad credential
//! is stopped at the gateway. Needs `nginx` on the PATH or in /usr/sbin (Debian's package);
//! without it the test prints why and passes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const BINARY: &str = env!("CARGO_BIN_EXE_authbridge");
const LEGACY_ISSUER: &str = "https://legacy.example/";
const LEGACY_SECRET: &str = "a-legacy-hs256-secret-of-at-least-32-bytes!";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("/usr/sbin/nginx"),
        PathBuf::from("/usr/bin/nginx"),
    ];
    candidates.into_iter().find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(url: &str) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(url).send().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer within 30 s");
}

/// An upstream that answers every request with the `Authorization` header it received.
fn start_echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = vec![0u8; 16384];
            let mut read = 0;
            while read < buffer.len() {
                match stream.read(&mut buffer[read..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let request = String::from_utf8_lossy(&buffer[..read]).to_string();
            let authorization = request
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                authorization.len(),
                authorization
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

fn legacy_token(tenant_claim: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": LEGACY_ISSUER, "sub": "svc-edge", "aud": "legacy-api", "iat": now, "exp": now + 600, "org": tenant_claim});
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(LEGACY_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn write_nginx_config(dir: &Path, listen: u16, authbridge: u16, upstream: u16) -> PathBuf {
    let prefix = dir.display();
    let config = format!(
        r#"daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $translated_authorization $upstream_authorization {{
        "" $http_authorization;
        default $translated_authorization;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            auth_request /_authbridge;
            auth_request_set $translated_authorization $upstream_http_authorization;
            auth_request_set $auth_tenant $upstream_http_x_auth_tenant_id;
            proxy_set_header Authorization $upstream_authorization;
            proxy_set_header X-Tenant-Id $auth_tenant;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location = /_authbridge {{
            internal;
            proxy_pass http://127.0.0.1:{authbridge}/v1/forward-auth?translate=true;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn nginx_auth_request_translates_legacy_tokens() {
    let Some(nginx) = nginx_binary() else {
        println!(
            "nginx not installed (apt-get install nginx): skipping the nginx forward-auth test"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bootstrap = Command::new(BINARY)
        .args(["bootstrap", "--json"])
        .env("AUTHBRIDGE_DATABASE__DATA_DIR", &data)
        .env_remove("AUTHBRIDGE_DATABASE__URL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        bootstrap.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    let printed: Value = serde_json::from_slice(&bootstrap.stdout).unwrap();
    let tenant = printed["tenantId"].as_str().unwrap().to_owned();
    let admin_key = printed["apiKey"].as_str().unwrap().to_owned();

    let authbridge_port = free_port();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{authbridge_port}"
issuer = "http://authbridge.test"

[[adapters]]
name = "old-idp"
kind = "jwt"
issuers = ["{LEGACY_ISSUER}"]
audiences = ["legacy-api"]
algorithms = ["HS256"]
hmac_secret = "{LEGACY_SECRET}"
mapping = {{ tenant = {{ claim = "org", table = {{ acme = "{tenant}" }} }}, roles = {{ default = ["reader"] }} }}
"#
    );
    let config_path = dir.path().join("authbridge.toml");
    std::fs::write(&config_path, config).unwrap();
    let _authbridge = Guard(
        Command::new(BINARY)
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env("AUTHBRIDGE_DATABASE__DATA_DIR", &data)
            .env("AUTHBRIDGE_LOGGING__LEVEL", "warn")
            .env_remove("AUTHBRIDGE_DATABASE__URL")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&format!("http://127.0.0.1:{authbridge_port}/healthz"));

    let upstream_port = start_echo_upstream();
    let nginx_port = free_port();
    let nginx_config = write_nginx_config(dir.path(), nginx_port, authbridge_port, upstream_port);
    let _nginx = Guard(
        Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&nginx_config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let gateway = format!("http://127.0.0.1:{nginx_port}/orders");
    wait_for(&gateway);
    let client = reqwest::blocking::Client::new();

    let legacy = client
        .get(&gateway)
        .bearer_auth(legacy_token("acme"))
        .send()
        .unwrap();
    assert_eq!(legacy.status(), 200, "legacy token passes the gateway");
    let seen = legacy.text().unwrap();
    let native = seen
        .strip_prefix("Bearer ")
        .expect("upstream received a bearer token");
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(native.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["iss"], "http://authbridge.test",
        "upstream sees a native token"
    );
    assert_eq!(payload["tenantId"], tenant.as_str());
    assert_eq!(payload["origin"]["adapter"], "old-idp");

    let native_key = client.get(&gateway).bearer_auth(&admin_key).send().unwrap();
    assert_eq!(
        native_key.status(),
        200,
        "native API key passes the gateway"
    );
    assert_eq!(
        native_key.text().unwrap(),
        format!("Bearer {admin_key}"),
        "native credential passes unchanged"
    );

    let bad = client
        .get(&gateway)
        .bearer_auth("not-a-credential")
        .send()
        .unwrap();
    assert_eq!(
        bad.status(),
        401,
        "bad credential is stopped at the gateway"
    );
    let unmapped = client
        .get(&gateway)
        .bearer_auth(legacy_token("globex"))
        .send()
        .unwrap();
    assert_eq!(
        unmapped.status(),
        403,
        "unmapped legacy identity is refused"
    );
}
