//! The compliance report counts a scripted period exactly.

use axum::http::Method;
use serde_json::json;

use crate::common::{admin, TestApp, START};

#[tokio::test]
async fn compliance_report_counts_scripted_period() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let child = t.sub_tenant(&root, "child").await;

    let created = t
        .send(admin(
            Method::POST,
            &format!("/v1/tenants/{child}/api-keys"),
            &admin_key,
            Some(json!({"role": "readonly", "mode": "live"})),
        ))
        .await;
    assert_eq!(created.status, 201);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();

    assert_eq!(t.verify(&key, None).await.status, 200);
    assert_eq!(
        t.verify(&key, None).await.status,
        200,
        "the same key twice counts as one used credential"
    );
    let wrong_tenant = t
        .verify(&key, Some(json!({"tenantId": root.as_str()})))
        .await;
    assert_eq!(wrong_tenant.reason(), "out_of_scope");
    let revoked = t
        .send(admin(
            Method::DELETE,
            &format!("/v1/tenants/{child}/api-keys/{key_id}"),
            &admin_key,
            None,
        ))
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(t.verify(&key, None).await.reason(), "revoked");

    let since = authbridge::clock::to_rfc3339(START - 10);
    let uri = format!("/v1/audit/report?tenantId={child}&since={since}");
    let report = t.send(admin(Method::GET, &uri, &admin_key, None)).await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.body["credentialsCreated"], 1, "{}", report.body);
    assert_eq!(report.body["credentialsRevoked"], 1, "{}", report.body);
    assert_eq!(report.body["credentialsUsed"], 1, "{}", report.body);
    assert_eq!(report.body["outOfScopeAttempts"], 1, "{}", report.body);
    // A failed verification names no verified tenant, so only the whole-deployment report
    // counts the attempt with the revoked key.
    assert_eq!(report.body["byAction"]["verify"], 3, "{}", report.body);
    assert!(
        report.body["byReason"]["revoked"].is_null(),
        "{}",
        report.body
    );
    t.app.audit.flush().await.unwrap();
    let everything = authbridge::audit::report::compliance_report(
        &t.app.store,
        &t.app.directory,
        None,
        START - 10,
        START + 1,
    )
    .await
    .unwrap();
    assert_eq!(
        everything.by_reason.get("revoked"),
        Some(&1),
        "{everything:?}"
    );

    let outside = t.bootstrap("other").await.0;
    let forbidden = t
        .send(admin(
            Method::GET,
            &format!("/v1/audit/report?tenantId={outside}&since={since}"),
            &admin_key,
            None,
        ))
        .await;
    assert_eq!(
        forbidden.status, 404,
        "another root's report is out of reach"
    );
}
