//! Migration progress: a scripted week of audit events with figures computed by hand, the admin
//! endpoints with their subtree confinement, translated-token classification and the dashboard.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use authbridge::audit::{Action, AuditEvent, Outcome};
use authbridge::clock::to_rfc3339;
use authbridge::credentials::Mode;
use authbridge::ids::TenantId;
use authbridge::store::LegacyLink;

use crate::common::{admin, Backend, TestApp, START};

const DAY: i64 = 86_400;
const ADAPTER: &str = "old-idp";
/// The report time: ten days after the test clock's start.
const NOW: i64 = START + 10 * DAY;
const WEEK_START: i64 = NOW - 7 * DAY;

fn legacy_credential(k: usize) -> String {
    format!("legacy-credential-{k}")
}

struct Scenario {
    t: TestApp,
    root: TenantId,
    admin_key: String,
    tenant_a: TenantId,
    tenant_b: TenantId,
}

async fn record(t: &TestApp, at: i64, event: AuditEvent) {
    t.clock.set(at);
    t.app.audit.record(event).await.expect("record event");
}

fn legacy_event(k: usize, tenant: &TenantId) -> AuditEvent {
    let mut event = AuditEvent::new(Action::Verify, Outcome::Success, "valid")
        .with_fingerprint(authbridge::verify::fingerprint(&legacy_credential(k)))
        .with_tenant(tenant)
        .with_machine(format!("m{k}"));
    event.source = ADAPTER.to_owned();
    event.adapter = Some(ADAPTER.to_owned());
    event
}

/// Root R with sub-tenants A and B, and a second root that R's admin must never see.
///
/// Legacy credential k (0 to 6) of tenant A (k even) or B (k odd) is verified once on each of
/// days 0 to 6 - k of the week before `NOW`, so day i has 7 - i distinct credentials.
/// Credential 6 is replaced through a legacy link; credential 5's machine `m5` uses translated
/// tokens after its last legacy use. In the last hours: 10 native verifications in A, 5
/// translated ones in B, and failures: 3 `expired` without a tenant 3 days ago, 2 `revoked` in A.
async fn scenario() -> Scenario {
    scenario_on(Backend::Sqlite).await
}

async fn scenario_on(backend: Backend) -> Scenario {
    let t = TestApp::with_config(backend, |config| {
        config.progress.ready_after_days = 1;
    })
    .await;
    let (root, admin_key) = t.bootstrap("root").await;
    let tenant_a = t.sub_tenant(&root, "tenant a").await;
    let tenant_b = t.sub_tenant(&root, "tenant b").await;
    let (other_root, _) = t.bootstrap("other").await;

    for k in 0..7 {
        let tenant = if k % 2 == 0 { &tenant_a } else { &tenant_b };
        for day in 0..=(6 - k as i64) {
            let at = WEEK_START + day * DAY + 60 * (k as i64 + 1);
            record(&t, at, legacy_event(k, tenant)).await;
        }
    }
    record(&t, NOW - 100, legacy_event(99, &other_root)).await;
    for _ in 0..10 {
        let event = AuditEvent::new(Action::Verify, Outcome::Success, "valid")
            .with_tenant(&tenant_a)
            .with_machine("native-machine");
        record(&t, NOW - 1800, event).await;
    }
    for _ in 0..5 {
        let mut event = AuditEvent::new(Action::Verify, Outcome::Success, "valid")
            .with_tenant(&tenant_b)
            .with_machine("m5");
        event.adapter = Some(ADAPTER.to_owned());
        record(&t, NOW - 7200, event).await;
    }
    for _ in 0..3 {
        record(
            &t,
            NOW - 3 * DAY,
            AuditEvent::new(Action::Verify, Outcome::Failure, "expired"),
        )
        .await;
    }
    for _ in 0..2 {
        let event =
            AuditEvent::new(Action::Verify, Outcome::Failure, "revoked").with_tenant(&tenant_a);
        record(&t, NOW - 3600, event).await;
    }
    t.app.audit.flush().await.expect("flush");

    t.app
        .store
        .insert_legacy_link(&LegacyLink {
            credential_hash: hex::encode(Sha256::digest(legacy_credential(6).as_bytes())),
            adapter: ADAPTER.to_owned(),
            legacy_subject: Some("svc-6".to_owned()),
            tenant_id: tenant_a.to_string(),
            api_key_id: "key_replacement6".to_owned(),
            created_at: NOW - 5 * DAY,
        })
        .await
        .expect("insert link");
    t.clock.set(NOW);
    Scenario {
        t,
        root,
        admin_key,
        tenant_a,
        tenant_b,
    }
}

async fn get(s: &Scenario, uri: &str, key: &str) -> (StatusCode, Value) {
    let response = s.t.send(admin(Method::GET, uri, key, None)).await;
    (response.status, response.body)
}

#[tokio::test]
async fn progress_report_scripted_week() {
    let s = scenario().await;
    let (status, report) = get(&s, "/v1/migration/progress", &s.admin_key).await;
    assert_eq!(status, StatusCode::OK, "{report}");

    // Last hour: only the 10 native verifications at NOW - 30 min.
    let hour = &report["traffic"]["lastHour"];
    assert_eq!(hour["native"], 10);
    assert_eq!(hour["total"], 10);
    assert_eq!(hour["legacyFraction"], 0.0);
    // Last day: 10 native, 5 translated, and credential 0's use on day 6.
    let day = &report["traffic"]["lastDay"];
    assert_eq!(day["legacyDirect"], 1);
    assert_eq!(day["legacyTranslated"], 5);
    assert_eq!(day["total"], 16);
    assert_eq!(day["legacyFraction"], 6.0 / 16.0);
    // Last week: 7 + 6 + ... + 1 = 28 legacy uses; the other root's use is not visible.
    let week = &report["traffic"]["lastWeek"];
    assert_eq!(week["legacyDirect"], 28);
    assert_eq!(week["total"], 43);
    let daily: Vec<i64> = report["traffic"]["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["legacyDirect"].as_i64().unwrap())
        .collect();
    assert_eq!(daily, vec![7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(report["traffic"]["hourly"].as_array().unwrap().len(), 24);

    let inventory = &report["inventory"][0];
    assert_eq!(inventory["adapter"], ADAPTER);
    assert_eq!(inventory["known"], 7);
    assert_eq!(inventory["seenLastDay"], 1);
    assert_eq!(inventory["seenLast7Days"], 7);
    assert_eq!(
        inventory["migrated"], 2,
        "credential 6 is linked, 5 is replaced"
    );
    assert_eq!(inventory["remaining"], 5);
    assert_eq!(inventory["neverSeen"], 0);
    assert_eq!(report["inventory"].as_array().unwrap().len(), 1);

    let recent = report["recentCredentials"].as_array().unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(
        recent[0]["fingerprint"],
        authbridge::verify::fingerprint(&legacy_credential(0))
    );
    assert_eq!(recent[0]["owner"], "m0");
    assert_eq!(recent[0]["tenantId"], s.tenant_a.to_string());
    assert_eq!(recent[0]["lastSeen"], to_rfc3339(WEEK_START + 6 * DAY + 60));
    let stalest = report["stalestCredentials"].as_array().unwrap();
    assert_eq!(
        stalest[0]["owner"], "m4",
        "credential 4 was last seen on day 2"
    );

    // Σ over days i of (7 - i) fits y = 7 - x exactly: zero one day after the last point.
    assert_eq!(report["burndown"]["slopePerDay"], -1.0);
    assert_eq!(report["burndown"]["projectedFinish"], to_rfc3339(NOW + DAY));

    let failures = report["failures"].as_array().unwrap();
    assert_eq!(
        failures[0],
        json!({"reason": "expired", "lastDay": 0, "lastWeek": 3})
    );
    assert_eq!(
        failures[1],
        json!({"reason": "revoked", "lastDay": 2, "lastWeek": 2})
    );
    assert_eq!(report["shadowDisagreements"], 0);

    // ready_after_days = 1: A used credential 0 one day minus 60 s ago, B last used credential
    // 1 on day 5, almost two days ago, and the root never used a legacy credential.
    let board = report["readiness"].as_array().unwrap();
    assert_eq!(board.len(), 3);
    let ready = |id: &str| {
        board
            .iter()
            .find(|row| row["tenantId"] == id)
            .map(|row| row["ready"].clone())
    };
    assert_eq!(ready(s.tenant_a.as_str()), Some(json!(false)));
    assert_eq!(ready(s.tenant_b.as_str()), Some(json!(true)));
    assert_eq!(ready(s.root.as_str()), Some(json!(true)));
    let root_row = board
        .iter()
        .find(|row| row["tenantId"] == s.root.as_str())
        .unwrap();
    assert_eq!(root_row["lastLegacyUse"], Value::Null);
}

#[tokio::test]
async fn progress_filters_by_tenant_and_adapter() {
    let s = scenario().await;
    let uri = format!("/v1/migration/progress?tenantId={}", s.tenant_b);
    let (status, report) = get(&s, &uri, &s.admin_key).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["inventory"][0]["known"], 3, "credentials 1, 3 and 5");
    assert_eq!(report["inventory"][0]["migrated"], 1);
    assert_eq!(report["traffic"]["lastWeek"]["native"], 0);
    assert_eq!(
        report["failures"],
        json!([]),
        "untenanted failures appear only without a tenant filter"
    );

    let (status, report) = get(&s, "/v1/migration/progress?adapter=other", &s.admin_key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["inventory"], json!([]));
    assert_eq!(report["traffic"]["lastHour"]["native"], 10);
    assert_eq!(report["burndown"]["projectedFinish"], Value::Null);

    let (status, _) = get(&s, "/v1/migration/progress?bogus=1", &s.admin_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn progress_confined_to_subtree() {
    let s = scenario().await;
    let admin_a = s.t.api_key(&s.tenant_a, "admin", Mode::Live).await;
    let uri = format!("/v1/migration/progress?tenantId={}", s.tenant_b);
    let (status, _) = get(&s, &uri, &admin_a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, report) = get(&s, "/v1/migration/progress", &admin_a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        report["inventory"][0]["known"], 4,
        "credentials 0, 2, 4 and 6"
    );
    assert_eq!(
        report["failures"],
        json!([{"reason": "revoked", "lastDay": 2, "lastWeek": 2}])
    );
    assert_eq!(report["readiness"].as_array().unwrap().len(), 1);

    let (status, _) = get(&s, "/v1/migration/progress", "not-a-key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reader = s.t.api_key(&s.tenant_a, "reader", Mode::Live).await;
    let (status, _) = get(&s, "/v1/migration/progress", &reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn credentials_list_filters_and_pages() {
    let s = scenario().await;
    let (status, page) = get(
        &s,
        "/v1/migration/credentials?migrated=false&limit=2",
        &s.admin_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["credentials"].as_array().unwrap().len(), 2);
    assert_eq!(page["credentials"][0]["owner"], "m0");
    assert_eq!(page["credentials"][1]["owner"], "m1");
    assert_eq!(page["nextCursor"], "2");

    let (_, page) = get(
        &s,
        "/v1/migration/credentials?migrated=false&limit=2&cursor=4",
        &s.admin_key,
    )
    .await;
    assert_eq!(page["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(page["nextCursor"], Value::Null);

    let (_, page) = get(&s, "/v1/migration/credentials?migrated=true", &s.admin_key).await;
    let migrated = page["credentials"].as_array().unwrap();
    assert_eq!(migrated.len(), 2);
    assert_eq!(migrated[1]["replacementKeyId"], "key_replacement6");

    let since = to_rfc3339(NOW - DAY);
    let (_, page) = get(
        &s,
        &format!("/v1/migration/credentials?seenSince={since}"),
        &s.admin_key,
    )
    .await;
    assert_eq!(page["credentials"].as_array().unwrap().len(), 1);

    let uri = format!(
        "/v1/migration/credentials?tenantId={}&adapter={ADAPTER}",
        s.tenant_b
    );
    let (_, page) = get(&s, &uri, &s.admin_key).await;
    assert_eq!(page["credentials"].as_array().unwrap().len(), 3);

    let (status, _) = get(&s, "/v1/migration/credentials?limit=0", &s.admin_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &s,
        "/v1/migration/credentials?seenSince=yesterday",
        &s.admin_key,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn translated_token_recorded_with_adapter() {
    let t = TestApp::sqlite().await;
    let (root, admin_key) = t.bootstrap("root").await;
    let mut claims = t.claims(&root);
    claims["origin"] = json!({"adapter": ADAPTER, "subject": "svc-billing"});
    let token = t.sign_with_header(&t.native_header(), &claims);
    assert_eq!(t.reason(&token).await, "valid");
    t.app.audit.flush().await.unwrap();

    let response = t
        .send(admin(Method::GET, "/v1/audit/events", &admin_key, None))
        .await;
    let events = response.body["events"].clone();
    let verify = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "verify")
        .expect("verify event")
        .clone();
    assert_eq!(verify["source"], "native");
    assert_eq!(verify["adapter"], ADAPTER);

    // Windows end before the report time, so the report is taken one second later.
    t.clock.advance(1);
    let (_, report) = {
        let response = t
            .send(admin(
                Method::GET,
                "/v1/migration/progress",
                &admin_key,
                None,
            ))
            .await;
        (response.status, response.body)
    };
    assert_eq!(report["traffic"]["lastHour"]["legacyTranslated"], 1);
}

fn dashboard_request(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn dashboard_key_then_cookie() {
    let s = scenario().await;
    let response = s.t.send(dashboard_request("/dashboard", None)).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let response =
        s.t.send(dashboard_request("/dashboard?key=wrong", None))
            .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let uri = format!("/dashboard?key={}", s.admin_key);
    let response = s.t.send(dashboard_request(&uri, None)).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.headers[header::LOCATION], "/dashboard");
    let set_cookie = response.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=28800"), "{set_cookie}");
    assert!(
        !set_cookie.contains(&s.admin_key),
        "the cookie must not carry the key"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let response =
        s.t.send(dashboard_request("/dashboard", Some(&cookie)))
            .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.content_type().starts_with("text/html"));
    let html = response.body.as_str().unwrap().to_owned();
    for needle in [
        "<svg",
        "id=\"traffic\"",
        "id=\"burndown\"",
        "id=\"readiness\"",
        "id=\"stalest\"",
        "tenant a",
        ADAPTER,
    ] {
        assert!(html.contains(needle), "dashboard lacks {needle}");
    }
    assert!(
        !html.contains("http://") || !html.contains("<link"),
        "no external assets"
    );

    let response =
        s.t.send(dashboard_request(
            "/dashboard",
            Some("authbridge_dashboard=forged"),
        ))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);

    let response =
        s.t.send(
            Request::builder()
                .uri("/dashboard")
                .header(header::AUTHORIZATION, format!("Bearer {}", s.admin_key))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn dashboard_session_expires() {
    let s = scenario().await;
    let uri = format!("/dashboard?key={}", s.admin_key);
    let response = s.t.send(dashboard_request(&uri, None)).await;
    let cookie = response.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    s.t.clock.advance(8 * 3600);
    let response =
        s.t.send(dashboard_request("/dashboard", Some(&cookie)))
            .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

/// The same scripted week on PostgreSQL gives the same figures as on SQLite, apart from the
/// generated ids.
#[tokio::test]
async fn progress_report_matches_on_postgres() {
    let Some(backend) = crate::common::postgres_backend() else {
        println!("AUTHBRIDGE_TEST_POSTGRES_URL not set: skipping PostgreSQL");
        return;
    };
    let sqlite = scenario().await;
    let postgres = scenario_on(backend).await;
    let (_, on_sqlite) = get(&sqlite, "/v1/migration/progress", &sqlite.admin_key).await;
    let (status, on_postgres) = get(&postgres, "/v1/migration/progress", &postgres.admin_key).await;
    assert_eq!(status, StatusCode::OK, "{on_postgres}");
    assert!(
        on_sqlite["traffic"]["lastWeek"].is_object(),
        "the report has traffic figures"
    );
    for field in [
        "traffic",
        "inventory",
        "burndown",
        "readiness",
        "recentCredentials",
    ] {
        assert!(!on_postgres[field].is_null(), "{field} is present");
        assert_eq!(
            strip_ids(&on_sqlite[field]),
            strip_ids(&on_postgres[field]),
            "{field} differs between SQLite and PostgreSQL"
        );
    }
}

/// Drops tenant ids and other generated strings, and sorts arrays, so two runs compare by
/// figures.
fn strip_ids(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "tenantId" | "tenant" | "owner" | "fingerprint" | "machineId"
                    )
                })
                .map(|(key, value)| (key.clone(), strip_ids(value)))
                .collect(),
        ),
        Value::Array(items) => {
            // Rows tied on creation time come back in id order, which is random here.
            let mut items: Vec<Value> = items.iter().map(strip_ids).collect();
            items.sort_by_key(|item| item.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}
