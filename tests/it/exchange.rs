//! The legacy path end to end with a shared-secret legacy issuer: verification through an
//! adapter, token exchange (RFC 8693), replacement API keys, the `enforce` phase and
//! forward-auth.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

use authbridge::app::App;
use authbridge::clock::ManualClock;
use authbridge::config::{AdapterEntries, Config};

use crate::common::{form, payload, send, Response, ISSUER, START};

const LEGACY_ISSUER: &str = "https://legacy.example/";
const LEGACY_SECRET: &str = "a-legacy-hs256-secret-of-at-least-32-bytes!";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const API_KEY_TYPE: &str = "urn:authbridge:params:oauth:token-type:api-key";

struct Legacy {
    app: Arc<App>,
    router: axum::Router,
    clock: Arc<ManualClock>,
    tenant: String,
    _dir: tempfile::TempDir,
}

async fn legacy_app(phase: &str) -> Legacy {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The tenant must exist before the adapter maps to it, so the first App creates it and a
    // second App on the same database carries the adapter.
    let mut config = Config::default();
    config.database.data_dir = dir.path().to_owned();
    config.server.issuer = Some(ISSUER.to_owned());
    let clock = ManualClock::new(START);
    let first = App::open(config.clone(), clock.clone())
        .await
        .expect("open");
    let tenant = first
        .create_tenant(&authbridge::admin::CreateTenant {
            name: "legacy customers".to_owned(),
            parent_id: None,
            inherit_roles: None,
        })
        .await
        .expect("tenant")
        .id
        .to_string();
    first.store.close().await;

    config.adapters = AdapterEntries(vec![json!({
        "name": "old-idp",
        "kind": "jwt",
        "phase": phase,
        "issuers": [LEGACY_ISSUER],
        "audiences": ["legacy-api"],
        "algorithms": ["HS256"],
        "hmac_secret": LEGACY_SECRET,
        "mapping": {
            "tenant": {"claim": "org", "table": {"acme": tenant}},
            "roles": {"claim": "roles"}
        }
    })]);
    let app = App::open(config, clock.clone())
        .await
        .expect("open with adapter");
    let router = authbridge::http::router(app.clone());
    Legacy {
        app,
        router,
        clock,
        tenant,
        _dir: dir,
    }
}

fn legacy_token(claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let mut mac = Hmac::<Sha256>::new_from_slice(LEGACY_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn claims(org: &str, exp: i64) -> Value {
    json!({
        "iss": LEGACY_ISSUER, "sub": "svc-billing", "aud": "legacy-api",
        "iat": START - 10, "exp": exp, "org": org, "roles": ["reader"], "scope": "read write"
    })
}

async fn verify(t: &Legacy, credential: &str) -> Response {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/verify")
        .header("authorization", format!("Bearer {credential}"))
        .body(Body::empty())
        .unwrap();
    send(&t.router, request).await
}

async fn exchange(t: &Legacy, body: &str) -> Response {
    send(&t.router, form("/oauth/token", None, body)).await
}

#[tokio::test]
async fn legacy_token_verifies_with_mapped_identity() {
    let t = legacy_app("dual").await;
    let response = verify(&t, &legacy_token(claims("acme", START + 600))).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["source"], "legacy");
    assert_eq!(response.body["adapter"], "old-idp");
    assert_eq!(response.body["tenantId"], t.tenant.as_str());
    assert_eq!(response.body["machineId"], "svc-billing");
    assert_eq!(response.body["roles"], json!(["reader"]));
}

#[tokio::test]
async fn unmapped_legacy_identity_is_reported() {
    let t = legacy_app("dual").await;
    let response = verify(&t, &legacy_token(claims("globex", START + 600))).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.reason(), "unmapped_identity");
}

#[tokio::test]
async fn enforce_phase_retires_legacy_tokens() {
    let t = legacy_app("enforce").await;
    let token = legacy_token(claims("acme", START + 600));
    assert_eq!(verify(&t, &token).await.reason(), "legacy_retired");
    let body = format!("grant_type={EXCHANGE}&subject_token={token}&subject_token_type={JWT_TYPE}");
    let response = exchange(&t, &body).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body["error"], "invalid_request");
}

#[tokio::test]
async fn exchanged_token_is_native_and_short_lived() {
    let t = legacy_app("dual").await;
    let subject = legacy_token(claims("acme", START + 300));
    let body = format!(
        "grant_type={EXCHANGE}&subject_token={subject}&subject_token_type={JWT_TYPE}&scope=read"
    );
    let response = exchange(&t, &body).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        response.body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(
        response.body["expires_in"].as_i64().unwrap() <= 300,
        "lifetime bounded by the subject"
    );
    let native = response.body["access_token"].as_str().unwrap().to_owned();

    let claims = payload(&native);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["exp"], START + 300);
    assert_eq!(claims["tenantId"], t.tenant.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["origin"]["adapter"], "old-idp");
    assert_eq!(claims["origin"]["issuer"], LEGACY_ISSUER);
    assert_eq!(claims["origin"]["subject"], "svc-billing");

    let verified = verify(&t, &native).await;
    assert_eq!(verified.status, 200);
    assert_eq!(verified.body["source"], "native");
}

#[tokio::test]
async fn exchange_rejects_bad_subjects() {
    let t = legacy_app("dual").await;
    let expired = legacy_token(claims("acme", START - 120));
    let response = exchange(
        &t,
        &format!("grant_type={EXCHANGE}&subject_token={expired}&subject_token_type={JWT_TYPE}"),
    )
    .await;
    assert_eq!(response.body["error"], "invalid_request", "expired subject");

    let unmapped = legacy_token(claims("globex", START + 300));
    let response = exchange(
        &t,
        &format!("grant_type={EXCHANGE}&subject_token={unmapped}&subject_token_type={JWT_TYPE}"),
    )
    .await;
    assert_eq!(response.body["error"], "invalid_target", "unmapped subject");

    let good = legacy_token(claims("acme", START + 300));
    let response = exchange(
        &t,
        &format!(
            "grant_type={EXCHANGE}&subject_token={good}&subject_token_type={JWT_TYPE}&scope=admin"
        ),
    )
    .await;
    assert_eq!(
        response.body["error"], "invalid_scope",
        "scope beyond the subject's"
    );

    let response = exchange(&t, &format!("grant_type={EXCHANGE}&subject_token={good}&subject_token_type={JWT_TYPE}&tenant_id=zzzz9999")).await;
    assert_eq!(
        response.body["error"], "invalid_target",
        "tenant the identity does not reach"
    );

    let response = exchange(&t, &format!("grant_type={EXCHANGE}&subject_token={good}")).await;
    assert_eq!(
        response.body["error"], "invalid_request",
        "missing subject_token_type"
    );
}

#[tokio::test]
async fn replacement_api_key_is_minted_once() {
    let t = legacy_app("dual").await;
    let subject = legacy_token(claims("acme", START + 300));
    let body = format!("grant_type={EXCHANGE}&subject_token={subject}&subject_token_type={JWT_TYPE}&requested_token_type={API_KEY_TYPE}");
    let first = exchange(&t, &body).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["token_type"], "N_A");
    let key = first.body["access_token"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with(&format!("ab_live_reader_{}_", t.tenant)),
        "{key}"
    );

    let verified = verify(&t, &key).await;
    assert_eq!(verified.status, 200);
    assert_eq!(verified.body["source"], "native");

    let second = exchange(&t, &body).await;
    assert_eq!(second.status, 400);
    assert_eq!(second.body["error"], "invalid_request");
}

#[tokio::test]
async fn forward_auth_sets_identity_and_translates() {
    let t = legacy_app("dual").await;
    let token = legacy_token(claims("acme", START + 600));
    let request = Request::builder()
        .uri("/v1/forward-auth?translate=true&roles=reader")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = send(&t.router, request).await;
    assert_eq!(response.status, 200);
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-auth-tenant-id"), t.tenant);
    assert_eq!(header("x-auth-source"), "legacy");
    assert_eq!(header("x-auth-adapter"), "old-idp");
    let translated = header("authorization");
    let native = translated
        .strip_prefix("Bearer ")
        .expect("translated token");
    assert_eq!(verify(&t, native).await.body["source"], "native");

    let again = Request::builder()
        .uri("/v1/forward-auth?translate=true")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let cached = send(&t.router, again).await;
    let cached_token = cached
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        cached_token, translated,
        "translated token comes from the cache"
    );

    let denied = Request::builder()
        .uri("/v1/forward-auth?roles=admin")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.router, denied).await.status, 403);
    let garbage = Request::builder()
        .uri("/v1/forward-auth")
        .header("x-api-key", "not-a-credential")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.router, garbage).await.status, 401);
}

#[tokio::test]
async fn native_kid_with_legacy_issuer_goes_to_the_adapter() {
    let t = legacy_app("dual").await;
    let native_kid = t.app.keyring.current().kid.clone();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": native_kid}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims("acme", START + 600).to_string());
    let input = format!("{header}.{body}");
    let mut mac = Hmac::<Sha256>::new_from_slice(LEGACY_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let response = verify(&t, &token).await;
    assert_eq!(
        response.body["source"], "legacy",
        "routed by iss, not by kid"
    );
}

#[tokio::test]
async fn phases_move_forward_and_back() {
    let t = legacy_app("dual").await;
    let token = legacy_token(claims("acme", START + 100_000));
    let rfc3339 = |at: i64| authbridge::clock::to_rfc3339(at);

    let dual = verify(&t, &token).await;
    assert_eq!(dual.status, 200);
    assert!(
        dual.headers.get("deprecation").is_some(),
        "dual answers carry Deprecation"
    );
    assert!(
        dual.headers.get("sunset").is_none(),
        "dual answers carry no Sunset"
    );

    let sunset = authbridge::admin::SetPhase {
        phase: authbridge::legacy::Phase::Sunset,
        tenant_id: None,
        at: None,
        sunset_at: Some(rfc3339(START + 1000)),
    };
    t.app
        .set_phase("old-idp", &sunset, "test")
        .await
        .expect("set sunset");
    let announced = verify(&t, &token).await;
    assert_eq!(announced.status, 200);
    let header = announced
        .headers
        .get("sunset")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(header.ends_with("GMT"), "Sunset is an HTTP-date: {header}");

    t.clock.set(START + 1000);
    let retired = verify(&t, &token).await;
    assert_eq!(
        retired.reason(),
        "legacy_retired",
        "sunset turns into enforce at its cutoff"
    );

    let exception = authbridge::admin::AddException {
        tenant_id: Some(t.tenant.clone()),
        credential_fingerprint: None,
        until: rfc3339(START + 2000),
    };
    t.app
        .add_phase_exception("old-idp", &exception, "test")
        .await
        .expect("exception");
    assert_eq!(
        verify(&t, &token).await.status,
        200,
        "a live exception keeps legacy access"
    );
    t.clock.set(START + 2000);
    assert_eq!(
        verify(&t, &token).await.reason(),
        "legacy_retired",
        "the exception expired"
    );

    let back = authbridge::admin::SetPhase {
        phase: authbridge::legacy::Phase::Dual,
        tenant_id: None,
        at: None,
        sunset_at: None,
    };
    t.app
        .set_phase("old-idp", &back, "test")
        .await
        .expect("restore dual");
    assert_eq!(
        verify(&t, &token).await.status,
        200,
        "an earlier phase can be restored"
    );

    let scheduled = authbridge::admin::SetPhase {
        phase: authbridge::legacy::Phase::Enforce,
        tenant_id: None,
        at: Some(rfc3339(START + 3000)),
        sunset_at: None,
    };
    t.app
        .set_phase("old-idp", &scheduled, "test")
        .await
        .expect("schedule enforce");
    assert_eq!(
        verify(&t, &token).await.status,
        200,
        "scheduled change not yet in force"
    );
    t.clock.set(START + 3000);
    assert_eq!(
        verify(&t, &token).await.reason(),
        "legacy_retired",
        "scheduled change applies on its own"
    );
}

#[tokio::test]
async fn phase_changes_are_audited_and_listed() {
    let t = legacy_app("shadow").await;
    let (_, admin_key) = {
        let tenant: authbridge::ids::TenantId =
            authbridge::ids::TenantId::parse(&t.tenant).unwrap();
        let (_, key) = t
            .app
            .create_api_key(
                &tenant,
                &authbridge::admin::CreateApiKey {
                    role: "admin".to_owned(),
                    mode: authbridge::credentials::Mode::Live,
                    name: None,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        (tenant, key.expose().to_owned())
    };
    let request = crate::common::admin(
        Method::POST,
        "/v1/adapters/old-idp/phase",
        &admin_key,
        Some(json!({"phase": "dual"})),
    );
    let response = send(&t.router, request).await;
    assert_eq!(response.status, 201, "{:?}", response.body);

    let list = send(
        &t.router,
        crate::common::admin(Method::GET, "/v1/adapters", &admin_key, None),
    )
    .await;
    assert_eq!(list.body[0]["phase"], "dual");
    assert_eq!(list.body[0]["configuredPhase"], "shadow");
    assert_eq!(list.body[0]["history"].as_array().map(Vec::len), Some(1));

    t.app.audit.flush().await.unwrap();
    let events = send(
        &t.router,
        crate::common::admin(Method::GET, "/v1/audit/events", &admin_key, None),
    )
    .await;
    let actions: Vec<String> = events.body["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        actions.iter().any(|a| a == "phase_change"),
        "phase change audited: {actions:?}"
    );
}

#[tokio::test]
async fn metrics_count_decisions_with_bounded_labels() {
    let t = legacy_app("dual").await;
    verify(&t, &legacy_token(claims("acme", START + 600))).await;
    verify(&t, "not-a-credential").await;
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = t.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(r#"authbridge_verifications_total{source="legacy",adapter="old-idp",outcome="valid",reason="valid"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"reason="unknown_credential""#), "{text}");
    assert!(
        text.contains("authbridge_verify_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("authbridge_audit_queue_depth"), "{text}");
    assert!(!text.contains(&t.tenant), "no tenant label");
}

#[tokio::test]
async fn exchange_follows_the_phase_in_force() {
    let t = legacy_app("shadow").await;
    let subject = legacy_token(claims("acme", START + 300));
    let body =
        format!("grant_type={EXCHANGE}&subject_token={subject}&subject_token_type={JWT_TYPE}");
    let closed = exchange(&t, &body).await;
    assert_eq!(
        closed.body["error"], "unauthorized_client",
        "exchange is closed in shadow"
    );

    let dual = authbridge::admin::SetPhase {
        phase: authbridge::legacy::Phase::Dual,
        tenant_id: None,
        at: None,
        sunset_at: None,
    };
    t.app
        .set_phase("old-idp", &dual, "test")
        .await
        .expect("set dual");
    let open = exchange(&t, &body).await;
    assert_eq!(
        open.status, 200,
        "exchange opens with the phase set at run time: {:?}",
        open.body
    );
}
