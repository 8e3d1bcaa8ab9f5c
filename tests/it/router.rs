//! The HTTP API through the router: the main flow on every backend, and every native reason
//! code of `/v1/verify`.

use axum::http::{Method, StatusCode};
use serde_json::json;

use authbridge::credentials::Mode;
use authbridge::jose::Algorithm;

use crate::common::{admin, backends, basic, form, form_encode, payload, TestApp, ISSUER};

#[tokio::test]
async fn admin_flow_issues_verifies_and_revokes() {
    for backend in backends() {
        let name = backend.name();
        let t = TestApp::open(backend, Algorithm::ES256).await;
        let (root, admin_key) = t.bootstrap("root").await;

        let created = t
            .send(admin(
                Method::POST,
                "/v1/tenants",
                &admin_key,
                Some(json!({"name": "team"})),
            ))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{name}: create tenant: {}",
            created.body
        );
        assert_eq!(
            created.body["parentId"],
            json!(root.as_str()),
            "{name}: parent defaults to caller"
        );
        let team = created.body["id"].as_str().expect("tenant id").to_owned();

        let machine = t
            .send(admin(
                Method::POST,
                &format!("/v1/tenants/{team}/machines"),
                &admin_key,
                Some(json!({"name": "worker", "roles": {team.clone(): ["reader"]}, "scopes": ["read"]})),
            ))
            .await;
        assert_eq!(
            machine.status,
            StatusCode::CREATED,
            "{name}: create machine: {}",
            machine.body
        );
        let client_id = machine.body["clientId"]
            .as_str()
            .expect("clientId")
            .to_owned();
        let secret = machine.body["clientSecret"]
            .as_str()
            .expect("clientSecret")
            .to_owned();

        let by_basic = t
            .send(form(
                "/oauth/token",
                Some(&basic(&client_id, &secret)),
                "grant_type=client_credentials&scope=read",
            ))
            .await;
        assert_eq!(
            by_basic.status,
            StatusCode::OK,
            "{name}: client_secret_basic: {}",
            by_basic.body
        );
        assert_eq!(
            by_basic.body["token_type"],
            json!("Bearer"),
            "{name}: token_type"
        );
        assert_eq!(by_basic.body["scope"], json!("read"), "{name}: scope");
        assert_eq!(
            by_basic
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{name}: token response is not cached"
        );

        let post_body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            form_encode(&client_id),
            form_encode(&secret)
        );
        let by_post = t.send(form("/oauth/token", None, &post_body)).await;
        assert_eq!(
            by_post.status,
            StatusCode::OK,
            "{name}: client_secret_post: {}",
            by_post.body
        );
        let token = by_post.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();

        let verified = t
            .verify(&token, Some(json!({"tenantId": team, "roles": ["reader"]})))
            .await;
        assert_eq!(
            verified.status,
            StatusCode::OK,
            "{name}: token verifies: {}",
            verified.body
        );
        assert_eq!(verified.body["valid"], json!(true), "{name}: valid");
        assert_eq!(verified.body["tenantId"], json!(team), "{name}: tenantId");
        assert_eq!(verified.body["roles"], json!(["reader"]), "{name}: roles");

        let key = t
            .send(admin(
                Method::POST,
                &format!("/v1/tenants/{team}/api-keys"),
                &admin_key,
                Some(json!({"role": "reader", "mode": "live"})),
            ))
            .await;
        assert_eq!(
            key.status,
            StatusCode::CREATED,
            "{name}: create API key: {}",
            key.body
        );
        let api_key = key.body["key"].as_str().expect("key").to_owned();
        let key_id = key.body["id"].as_str().expect("key id").to_owned();
        assert_eq!(
            t.reason(&api_key).await,
            "valid",
            "{name}: API key verifies"
        );

        let revoked = t
            .send(form(
                "/oauth/revoke",
                Some(&basic(&client_id, &secret)),
                &format!("token={}", form_encode(&token)),
            ))
            .await;
        assert_eq!(revoked.status, StatusCode::OK, "{name}: revoke token");
        let deleted = t
            .send(admin(
                Method::DELETE,
                &format!("/v1/tenants/{team}/api-keys/{key_id}"),
                &admin_key,
                None,
            ))
            .await;
        assert_eq!(
            deleted.status,
            StatusCode::OK,
            "{name}: revoke API key: {}",
            deleted.body
        );

        let token_after = t.verify(&token, None).await;
        assert_eq!(
            token_after.status,
            StatusCode::UNAUTHORIZED,
            "{name}: revoked token status"
        );
        assert_eq!(
            token_after.reason(),
            "revoked",
            "{name}: revoked token reason"
        );
        assert_eq!(
            t.reason(&api_key).await,
            "revoked",
            "{name}: revoked API key reason"
        );
        let other = t
            .verify(by_basic.body["access_token"].as_str().expect("token"), None)
            .await;
        assert_eq!(
            other.reason(),
            "valid",
            "{name}: the other token stays valid"
        );
    }
}

#[tokio::test]
async fn revocation_survives_restart_state_reload() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;
    let revoke = t
        .send(form(
            "/oauth/revoke",
            Some(&basic(&client_id, &secret)),
            &format!("token={token}"),
        ))
        .await;
    assert_eq!(revoke.status, StatusCode::OK, "revoke");
    t.app
        .revocations
        .reload(&t.app.store, crate::common::START)
        .await
        .expect("reload");
    assert_eq!(
        t.reason(&token).await,
        "revoked",
        "revocation is read back from the store"
    );
}

#[tokio::test]
async fn introspection_reports_active_and_claims() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;
    let response = t
        .send(form(
            "/oauth/introspect",
            Some(&basic(&client_id, &secret)),
            &format!("token={token}"),
        ))
        .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "introspect: {}",
        response.body
    );
    assert_eq!(response.body["active"], json!(true), "active");
    assert_eq!(response.body["tenantId"], json!(root.as_str()), "tenantId");
    assert_eq!(response.body["client_id"], json!(client_id), "client_id");

    let garbage = t
        .send(form(
            "/oauth/introspect",
            Some(&basic(&client_id, &secret)),
            "token=garbage",
        ))
        .await;
    assert_eq!(
        garbage.body,
        json!({"active": false}),
        "garbage is inactive"
    );
}

#[tokio::test]
async fn malformed_credentials_are_rejected() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;

    let mut bad_checksum = admin_key.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let bad_checksum = String::from_utf8(bad_checksum).expect("ASCII key");
    assert_eq!(
        t.reason(&bad_checksum).await,
        "malformed",
        "API key with a bad checksum"
    );

    let short = format!("ab_live_admin_{root}_abc");
    assert_eq!(t.reason(&short).await, "malformed", "truncated API key");
    assert_eq!(
        t.reason("eyJ.eyJ.sig").await,
        "malformed",
        "JWT with undecodable segments"
    );
    let no_iss = format!(
        "{}.{}.AAAA",
        crate::common::b64(r#"{"alg":"RS256"}"#),
        crate::common::b64("{}")
    );
    assert_eq!(t.reason(&no_iss).await, "malformed", "JWT without iss");
    assert_eq!(
        t.reason(&"a".repeat(9000)).await,
        "malformed",
        "credential over max_credential_bytes"
    );
}

#[tokio::test]
async fn unknown_credential_is_rejected() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let response = t.verify("some-random-opaque-token", None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED, "status");
    assert_eq!(response.reason(), "unknown_credential", "opaque token");
    assert_eq!(response.body["valid"], json!(false), "valid flag");
    assert!(
        response.headers.get("www-authenticate").is_some(),
        "a 401 carries WWW-Authenticate"
    );

    // A well-formed key with a correct checksum that was never issued.
    let body = format!("ab_live_admin_{root}_{}", "0".repeat(32));
    let never_issued = format!(
        "{body}{}",
        authbridge::credentials::api_key::checksum(&body)
    );
    assert_eq!(
        t.reason(&never_issued).await,
        "unknown_credential",
        "key never issued"
    );
}

#[tokio::test]
async fn foreign_issuer_is_unknown_issuer() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let mut claims = t.claims(&root);
    claims["iss"] = json!("http://other.test");
    assert_eq!(
        t.reason(&t.sign(&claims)).await,
        "unknown_issuer",
        "other iss"
    );
    claims["iss"] = json!(format!("{ISSUER}/"));
    assert_eq!(
        t.reason(&t.sign(&claims)).await,
        "unknown_issuer",
        "iss with a trailing slash"
    );
}

#[tokio::test]
async fn unknown_kid_is_unknown_key() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let mut header = t.native_header();
    header["kid"] = json!("not-a-published-kid");
    let token = t.sign_with_header(&header, &t.claims(&root));
    assert_eq!(t.reason(&token).await, "unknown_key", "unknown kid");
}

#[tokio::test]
async fn altered_token_has_invalid_signature() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;

    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let mut bytes = crate::common::decode(signature);
    bytes[10] ^= 1;
    let flipped = crate::common::with_signature(&token, &bytes);
    assert_eq!(
        t.reason(&flipped).await,
        "invalid_signature",
        "flipped signature bit"
    );

    let mut claims = payload(&token);
    claims["tenantId"] = json!("zzzz9999");
    let swapped = format!(
        "{}.{}.{signature}",
        input.split('.').next().expect("header"),
        crate::common::b64(&claims.to_string())
    );
    assert_eq!(
        t.reason(&swapped).await,
        "invalid_signature",
        "payload changed after signing"
    );
}

#[tokio::test]
async fn expiry_honours_leeway() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;
    let exp = payload(&token)["exp"].as_i64().expect("exp");

    t.clock.set(exp + 30);
    assert_eq!(
        t.reason(&token).await,
        "valid",
        "exp 30 s ago is inside the leeway"
    );
    t.clock.set(exp + 59);
    assert_eq!(
        t.reason(&token).await,
        "valid",
        "exp 59 s ago is inside the leeway"
    );
    t.clock.set(exp + 61);
    assert_eq!(t.reason(&token).await, "expired", "exp 61 s ago is expired");
}

#[tokio::test]
async fn future_token_is_not_yet_valid() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;
    let nbf = payload(&token)["nbf"].as_i64().expect("nbf");

    t.clock.set(nbf - 30);
    assert_eq!(
        t.reason(&token).await,
        "valid",
        "nbf 30 s ahead is inside the leeway"
    );
    t.clock.set(nbf - 61);
    assert_eq!(t.reason(&token).await, "not_yet_valid", "nbf 61 s ahead");

    t.clock.set(nbf);
    let mut claims = t.claims(&root);
    claims["iat"] = json!(nbf + 120);
    claims.as_object_mut().expect("object").remove("nbf");
    assert_eq!(
        t.reason(&t.sign(&claims)).await,
        "not_yet_valid",
        "iat 120 s ahead"
    );
}

#[tokio::test]
async fn expired_api_key_is_rejected() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let created = t
        .send(admin(
            Method::POST,
            &format!("/v1/tenants/{root}/api-keys"),
            &admin_key,
            Some(json!({"role": "reader", "mode": "live", "expiresAt": "2024-01-01T01:00:00Z"})),
        ))
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "create: {}",
        created.body
    );
    let key = created.body["key"].as_str().expect("key").to_owned();
    assert_eq!(t.reason(&key).await, "valid", "before expiry");
    t.clock.advance(3600);
    assert_eq!(t.reason(&key).await, "expired", "at expiry");
}

#[tokio::test]
async fn rotated_api_key_works_until_grace_ends() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let old = t.api_key(&root, "reader", Mode::Live).await;
    let record = t
        .app
        .store
        .api_key_by_hash(&t.app.pepper.digest_hex(old.as_bytes()))
        .await
        .expect("lookup")
        .expect("stored");
    let rotated = t
        .send(admin(
            Method::POST,
            &format!("/v1/tenants/{root}/api-keys/{}/rotate", record.id),
            &admin_key,
            Some(json!({"gracePeriodSeconds": 60})),
        ))
        .await;
    assert_eq!(
        rotated.status,
        StatusCode::CREATED,
        "rotate: {}",
        rotated.body
    );
    let new = rotated.body["key"].as_str().expect("key").to_owned();
    assert_eq!(
        t.reason(&old).await,
        "valid",
        "old key inside the grace period"
    );
    assert_eq!(t.reason(&new).await, "valid", "new key");
    t.clock.advance(60);
    assert_eq!(
        t.reason(&old).await,
        "revoked",
        "old key after the grace period"
    );
    assert_eq!(
        t.reason(&new).await,
        "valid",
        "new key after the grace period"
    );
}

#[tokio::test]
async fn deleted_tenant_credentials_are_revoked() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let key = t.api_key(&team, "reader", Mode::Live).await;
    let (client_id, secret) = t.machine(&team, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;
    let deleted = t
        .send(admin(
            Method::DELETE,
            &format!("/v1/tenants/{team}"),
            &admin_key,
            None,
        ))
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "delete tenant: {}",
        deleted.body
    );
    assert_eq!(
        t.reason(&token).await,
        "revoked",
        "token of a deleted tenant"
    );
    assert_ne!(t.reason(&key).await, "valid", "API key of a deleted tenant");
}

#[tokio::test]
async fn typ_confusion_is_wrong_token_type() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let claims = t.claims(&root);
    for typ in [
        Some("JWT"),
        Some("jwt"),
        Some("id_token+jwt"),
        Some("at+jwt2"),
        None,
    ] {
        let mut header = t.native_header();
        match typ {
            Some(typ) => header["typ"] = json!(typ),
            None => {
                header.as_object_mut().expect("object").remove("typ");
            }
        }
        let token = t.sign_with_header(&header, &claims);
        assert_eq!(t.reason(&token).await, "wrong_token_type", "typ {typ:?}");
    }
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let mut header = t.native_header();
        header["typ"] = json!(typ);
        let token = t.sign_with_header(&header, &claims);
        assert_eq!(t.reason(&token).await, "valid", "typ {typ:?} is accepted");
    }
}

#[tokio::test]
async fn audience_requirement_is_enforced() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
    let token = t
        .token(&client_id, &secret, "&audience=https%3A%2F%2Fapi.test")
        .await;

    let right = t
        .verify(&token, Some(json!({"audience": "https://api.test"})))
        .await;
    assert_eq!(right.reason(), "valid", "requested audience");
    let wrong = t
        .verify(&token, Some(json!({"audience": "https://other.test"})))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "wrong audience status");
    assert_eq!(wrong.reason(), "wrong_audience", "wrong audience reason");

    let key = t.api_key(&root, "reader", Mode::Live).await;
    let key_with_audience = t
        .verify(&key, Some(json!({"audience": "https://api.test"})))
        .await;
    assert_eq!(
        key_with_audience.reason(),
        "wrong_audience",
        "API keys carry no audience"
    );
}

#[tokio::test]
async fn scope_requirements_are_enforced() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let key = t.api_key(&team, "reader", Mode::Live).await;
    let (client_id, secret) = t.machine(&team, &["reader"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;

    for (label, credential) in [("API key", &key), ("token", &token)] {
        let parent = t
            .verify(credential, Some(json!({"tenantId": root.as_str()})))
            .await;
        assert_eq!(
            parent.status,
            StatusCode::FORBIDDEN,
            "{label}: parent requirement status"
        );
        assert_eq!(
            parent.reason(),
            "out_of_scope",
            "{label}: sub-tenant credential vs parent"
        );

        let role = t
            .verify(credential, Some(json!({"roles": ["admin"]})))
            .await;
        assert_eq!(role.reason(), "out_of_scope", "{label}: missing role");

        let own = t
            .verify(
                credential,
                Some(json!({"tenantId": team.as_str(), "roles": ["reader"]})),
            )
            .await;
        assert_eq!(own.reason(), "valid", "{label}: own tenant and role");
    }
}

#[tokio::test]
async fn parent_grant_reaches_child_tenant() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let key = t.api_key(&root, "reader", Mode::Live).await;
    let child = t
        .verify(
            &key,
            Some(json!({"tenantId": team.as_str(), "roles": ["reader"]})),
        )
        .await;
    assert_eq!(
        child.reason(),
        "valid",
        "a root grant applies in a child that inherits"
    );

    t.app
        .update_tenant(
            &team,
            &authbridge::admin::UpdateTenant {
                name: None,
                inherit_roles: Some(false),
            },
        )
        .await
        .expect("turn inheritance off");
    let blocked = t
        .verify(&key, Some(json!({"tenantId": team.as_str()})))
        .await;
    assert_eq!(
        blocked.reason(),
        "out_of_scope",
        "no inheritance below a tenant that turns it off"
    );
}

#[tokio::test]
async fn test_mode_key_fails_live_requirement() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let key = t.api_key(&root, "reader", Mode::Test).await;
    let live = t.verify(&key, Some(json!({"mode": "live"}))).await;
    assert_eq!(live.status, StatusCode::FORBIDDEN, "status");
    assert_eq!(live.reason(), "wrong_mode", "test key vs live");
    let test = t.verify(&key, Some(json!({"mode": "test"}))).await;
    assert_eq!(test.reason(), "valid", "test key vs test");

    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Test).await;
    let token = t.token(&client_id, &secret, "").await;
    let token_live = t.verify(&token, Some(json!({"mode": "live"}))).await;
    assert_eq!(token_live.reason(), "wrong_mode", "test-mode token vs live");
}

#[tokio::test]
async fn discovery_documents_are_served() {
    let t = TestApp::sqlite().await;
    let get = |uri: &str| {
        axum::http::Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let jwks = t.send(get("/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, StatusCode::OK, "jwks");
    let keys = jwks.body["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 2, "current and next keys are published");
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "no private material in the JWKS"
    );

    let metadata = t.send(get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(metadata.status, StatusCode::OK, "metadata");
    assert_eq!(metadata.body["issuer"], json!(ISSUER), "issuer");
    for uri in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(t.send(get(uri)).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(
        t.send(get("/no/such/route")).await.status,
        StatusCode::NOT_FOUND,
        "fallback"
    );
}

#[tokio::test]
async fn tenant_created_by_another_process_verifies_at_once() {
    let t = TestApp::sqlite().await;
    let other = authbridge::app::App::open(t.app.config.clone(), t.clock.clone())
        .await
        .expect("second instance on the same database");
    let (tenant, admin_key) = t.bootstrap("root").await;

    let decision = other
        .verifier
        .verify(&admin_key, &authbridge::verify::Requirements::default())
        .await;
    assert_eq!(
        decision.reason.as_str(),
        "valid",
        "key of a tenant the other instance has not loaded yet"
    );
    assert!(
        other.directory.contains(&tenant),
        "tenant is loaded into the directory after the lookup"
    );
}
