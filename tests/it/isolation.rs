//! Tenant confinement of the admin API: anything outside the caller's subtree is 404, and a
//! sub-tenant credential never satisfies a requirement on its parent.

use axum::http::{Method, StatusCode};
use serde_json::json;

use authbridge::credentials::Mode;

use crate::common::{admin, TestApp};

#[tokio::test]
async fn admin_cannot_reach_other_tenant() {
    let t = TestApp::sqlite().await;
    let (_a, key_a) = t.bootstrap("a").await;
    let (b, _) = t.bootstrap("b").await;
    let b_child = t.sub_tenant(&b, "b-child").await;
    let b_key = t.api_key(&b, "reader", Mode::Live).await;
    let b_key_id = t
        .app
        .store
        .api_key_by_hash(&t.app.pepper.digest_hex(b_key.as_bytes()))
        .await
        .expect("lookup")
        .expect("stored")
        .id;

    let attempts = [
        (Method::GET, format!("/v1/tenants/{b}"), None),
        (
            Method::PATCH,
            format!("/v1/tenants/{b}"),
            Some(json!({"name": "taken"})),
        ),
        (Method::DELETE, format!("/v1/tenants/{b_child}"), None),
        (Method::GET, format!("/v1/tenants?parentId={b}"), None),
        (Method::GET, format!("/v1/tenants/{b}/machines"), None),
        (Method::GET, format!("/v1/tenants/{b}/api-keys"), None),
        (
            Method::GET,
            format!("/v1/tenants/{b}/api-keys/{b_key_id}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/{b}/api-keys/{b_key_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{b}/machines"),
            Some(json!({"name": "intruder"})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{b}/api-keys"),
            Some(json!({"role": "admin", "mode": "live"})),
        ),
        (
            Method::POST,
            "/v1/tenants".to_owned(),
            Some(json!({"name": "intruder", "parentId": b.as_str()})),
        ),
    ];
    for (method, uri, body) in attempts {
        let response = t.send(admin(method.clone(), &uri, &key_a, body)).await;
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "{method} {uri} with tenant A's admin key: {}",
            response.body
        );
    }

    let b_record = t
        .app
        .store
        .tenant(&b)
        .await
        .expect("read")
        .expect("B exists");
    assert_eq!(b_record.name, "b", "B was not renamed");
    assert!(
        t.app.store.tenant(&b_child).await.expect("read").is_some(),
        "B's child still exists"
    );
    assert_eq!(
        t.app.store.child_tenants(&b).await.expect("children").len(),
        1,
        "no tenant created in B"
    );
    assert!(
        t.app
            .store
            .machines_of_tenant(&b)
            .await
            .expect("machines")
            .is_empty(),
        "no machine created in B"
    );
    assert_eq!(
        t.app
            .store
            .api_keys_of_tenant(&b)
            .await
            .expect("keys")
            .len(),
        2,
        "no key created in B"
    );
    assert_eq!(t.reason(&b_key).await, "valid", "B's key was not revoked");
}

#[tokio::test]
async fn sub_tenant_admin_cannot_reach_parent() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let sibling = t.sub_tenant(&root, "sibling").await;
    let team_admin = t.api_key(&team, "admin", Mode::Live).await;

    for uri in [
        format!("/v1/tenants/{root}"),
        format!("/v1/tenants/{sibling}"),
        format!("/v1/tenants/{root}/machines"),
        format!("/v1/tenants/{root}/api-keys"),
        format!("/v1/tenants?parentId={root}"),
    ] {
        let response = t.send(admin(Method::GET, &uri, &team_admin, None)).await;
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "GET {uri} as the sub-tenant admin"
        );
    }
    let own = t
        .send(admin(
            Method::GET,
            &format!("/v1/tenants/{team}"),
            &team_admin,
            None,
        ))
        .await;
    assert_eq!(own.status, StatusCode::OK, "own tenant is visible");

    let delete_self = t
        .send(admin(
            Method::DELETE,
            &format!("/v1/tenants/{team}"),
            &team_admin,
            None,
        ))
        .await;
    assert_eq!(
        delete_self.status,
        StatusCode::CONFLICT,
        "a credential cannot delete its own tenant"
    );
}

#[tokio::test]
async fn non_admin_roles_are_forbidden() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let reader = t.api_key(&root, "readonly", Mode::Live).await;
    let response = t
        .send(admin(
            Method::GET,
            &format!("/v1/tenants/{root}"),
            &reader,
            None,
        ))
        .await;
    assert_eq!(
        response.status,
        StatusCode::FORBIDDEN,
        "readonly key on the admin API"
    );

    let anonymous = t
        .send(
            axum::http::Request::builder()
                .uri(format!("/v1/tenants/{root}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "no credential");
    assert!(
        anonymous.headers.get("www-authenticate").is_some(),
        "401 carries WWW-Authenticate"
    );
}

#[tokio::test]
async fn sub_tenant_credential_is_out_of_scope_for_parent() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let team_admin = t.api_key(&team, "admin", Mode::Live).await;
    let (client_id, secret) = t.machine(&team, &["admin"], Mode::Live).await;
    let token = t.token(&client_id, &secret, "").await;

    for (label, credential) in [("API key", &team_admin), ("token", &token)] {
        let response = t
            .verify(credential, Some(json!({"tenantId": root.as_str()})))
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{label}: status");
        assert_eq!(response.reason(), "out_of_scope", "{label}: reason");
        assert_eq!(response.body["valid"], json!(false), "{label}: valid flag");
    }
}

#[tokio::test]
async fn token_cannot_target_tenant_without_roles() {
    let t = TestApp::sqlite().await;
    let (root, _) = t.bootstrap("root").await;
    let team = t.sub_tenant(&root, "team").await;
    let (client_id, secret) = t.machine(&team, &["reader"], Mode::Live).await;
    let response = t
        .send(crate::common::form(
            "/oauth/token",
            Some(&crate::common::basic(&client_id, &secret)),
            &format!("grant_type=client_credentials&tenant_id={root}"),
        ))
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "token for the parent tenant"
    );
    assert_eq!(
        response.body["error"],
        json!("invalid_target"),
        "error code"
    );
}

#[tokio::test]
async fn introspection_hides_other_tenants() {
    let t = TestApp::sqlite().await;
    let (_a, key_a) = t.bootstrap("a").await;
    let (b, _) = t.bootstrap("b").await;
    let b_key = t.api_key(&b, "reader", Mode::Live).await;
    let response = t
        .send(crate::common::form(
            "/oauth/introspect",
            Some(&format!("Bearer {key_a}")),
            &format!("token={b_key}"),
        ))
        .await;
    assert_eq!(response.status, StatusCode::OK, "introspection status");
    assert_eq!(
        response.body,
        json!({"active": false}),
        "another tenant's key is inactive"
    );

    let revoke = t
        .send(crate::common::form(
            "/oauth/revoke",
            Some(&format!("Bearer {key_a}")),
            &format!("token={b_key}"),
        ))
        .await;
    assert_eq!(revoke.status, StatusCode::OK, "revocation answers 200");
    assert_eq!(
        t.reason(&b_key).await,
        "valid",
        "another tenant's key is not revoked"
    );
}
