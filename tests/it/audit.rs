//! The audit trail: one event per decision at every entry point, no secrets in events, no loss
//! under load, tamper detection by the hash chain, pruning, export and the events API.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use authbridge::audit::export::{export, ExportFormat};
use authbridge::audit::store::{events_page, PageOrder};
use authbridge::audit::{prune, verify_chains, EventFilter, FaultKind, StoredEvent};
use authbridge::config::AuditMode;
use authbridge::credentials::Mode;
use authbridge::verify::fingerprint;

use crate::common::{admin, backends, basic, form, Backend, TestApp};

/// Flushes the audit queue and reads every event in the store, oldest first.
async fn events(t: &TestApp) -> Vec<StoredEvent> {
    t.app.audit.flush().await.expect("flush the audit queue");
    stored_events(t).await
}

/// Reads every event in the store, oldest first, without flushing the queue.
async fn stored_events(t: &TestApp) -> Vec<StoredEvent> {
    events_page(
        &t.app.store,
        &EventFilter::default(),
        None,
        PageOrder::Ascending,
        100_000,
    )
    .await
    .expect("read audit events")
}

async fn verify_events(t: &TestApp) -> Vec<StoredEvent> {
    events(t)
        .await
        .into_iter()
        .filter(|e| e.action == "verify")
        .collect()
}

#[tokio::test]
async fn verify_reasons_record_one_event_each() {
    for backend in backends() {
        let name = backend.name();
        let t = TestApp::open(backend, authbridge::jose::Algorithm::RS256).await;
        let (root, admin_key) = t.bootstrap("root").await;
        let (client_id, secret) = t.machine(&root, &["reader"], Mode::Live).await;
        let token = t.token(&client_id, &secret, "").await;
        let now = t.clock.as_ref().now_for_test();

        let (record, revoked_key) = t
            .app
            .create_api_key(
                &root,
                &authbridge::admin::CreateApiKey {
                    role: "reader".to_owned(),
                    mode: Mode::Live,
                    name: None,
                    expires_at: None,
                },
            )
            .await
            .expect("create API key");
        let revoked_key = revoked_key.expose().to_owned();
        t.app
            .revoke_api_key(&root, &record.id)
            .await
            .expect("revoke the key");

        let mut expired = t.claims(&root);
        expired["exp"] = json!(now - 3600);
        expired["iat"] = json!(now - 7200);
        expired["nbf"] = json!(now - 7200);
        let mut future = t.claims(&root);
        future["nbf"] = json!(now + 3600);
        future["iat"] = json!(now + 3600);
        future["exp"] = json!(now + 7200);
        let mut foreign = t.claims(&root);
        foreign["iss"] = json!("http://other.test");
        let mut unknown_kid = t.native_header();
        unknown_kid["kid"] = json!("not-a-published-kid");
        let mut plain_jwt = t.native_header();
        plain_jwt["typ"] = json!("JWT");
        let (input, _) = token.rsplit_once('.').expect("three segments");
        let bad_signature = format!("{input}.{}", crate::common::b64("not the signature"));

        // (label, credential, requirements, reason, tenant recorded)
        let cases: Vec<(&str, String, Option<Value>, &str, bool)> = vec![
            ("API key", admin_key.clone(), None, "valid", true),
            ("access token", token.clone(), None, "valid", true),
            (
                "JWE shape",
                "eyJ.eyJ.a.b.c".to_owned(),
                None,
                "malformed",
                false,
            ),
            (
                "opaque",
                "opaque-token".to_owned(),
                None,
                "unknown_credential",
                false,
            ),
            (
                "foreign iss",
                t.sign(&foreign),
                None,
                "unknown_issuer",
                false,
            ),
            (
                "unknown kid",
                t.sign_with_header(&unknown_kid, &t.claims(&root)),
                None,
                "unknown_key",
                false,
            ),
            (
                "bad signature",
                bad_signature,
                None,
                "invalid_signature",
                false,
            ),
            ("expired", t.sign(&expired), None, "expired", false),
            ("future", t.sign(&future), None, "not_yet_valid", false),
            ("revoked key", revoked_key.clone(), None, "revoked", false),
            (
                "typ JWT",
                t.sign_with_header(&plain_jwt, &t.claims(&root)),
                None,
                "wrong_token_type",
                false,
            ),
            (
                "audience",
                token.clone(),
                Some(json!({"audience": "https://elsewhere.test"})),
                "wrong_audience",
                true,
            ),
            (
                "role",
                token.clone(),
                Some(json!({"roles": ["missing-role"]})),
                "out_of_scope",
                true,
            ),
            (
                "mode",
                admin_key.clone(),
                Some(json!({"mode": "test"})),
                "wrong_mode",
                true,
            ),
        ];
        for (label, credential, requirements, reason, has_tenant) in cases {
            let before = verify_events(&t).await.len();
            let response = t.verify(&credential, requirements).await;
            assert_eq!(response.reason(), reason, "{name} {label}: response reason");
            let recorded = verify_events(&t).await;
            assert_eq!(recorded.len(), before + 1, "{name} {label}: one event");
            let event = recorded.last().expect("an event");
            assert_eq!(event.reason, reason, "{name} {label}: reason");
            let outcome = if reason == "valid" {
                "success"
            } else {
                "failure"
            };
            assert_eq!(event.outcome, outcome, "{name} {label}: outcome");
            assert_eq!(
                event.fingerprint.as_deref(),
                Some(fingerprint(&credential).as_str()),
                "{name} {label}: fingerprint"
            );
            assert_eq!(event.source, "native", "{name} {label}: source");
            assert_eq!(event.adapter, None, "{name} {label}: adapter");
            let tenant = has_tenant.then(|| root.to_string());
            assert_eq!(event.tenant_id, tenant, "{name} {label}: tenant");
            assert!(event.request_id.is_some(), "{name} {label}: request id");
            assert_eq!(event.client_address, None, "{name} {label}: no ConnectInfo");
        }

        let before = verify_events(&t).await.len();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/verify")
            .body(Body::empty())
            .expect("request");
        let response = t.send(request).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{name}: no credential"
        );
        let recorded = verify_events(&t).await;
        assert_eq!(
            recorded.len(),
            before + 1,
            "{name}: missing credential event"
        );
        let last = recorded.last().expect("an event");
        assert_eq!(
            last.reason, "missing_credential",
            "{name}: missing credential reason"
        );
        assert_eq!(
            last.fingerprint, None,
            "{name}: no fingerprint without credential"
        );
    }
}

/// The clock's current time, for building claims.
trait NowForTest {
    fn now_for_test(&self) -> i64;
}

impl NowForTest for authbridge::clock::ManualClock {
    fn now_for_test(&self) -> i64 {
        authbridge::clock::Clock::now(self)
    }
}

#[tokio::test]
async fn events_contain_no_secret() {
    for backend in backends() {
        let name = backend.name();
        let t = TestApp::open(backend, authbridge::jose::Algorithm::RS256).await;
        let (root, admin_key) = t.bootstrap("root").await;
        let mut secrets = vec![admin_key.clone()];

        let created = t
            .send(admin(
                Method::POST,
                "/v1/tenants",
                &admin_key,
                Some(json!({"name": "child"})),
            ))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{name}: create tenant");
        let child = created.body["id"].as_str().expect("tenant id").to_owned();
        let patched = t
            .send(admin(
                Method::PATCH,
                &format!("/v1/tenants/{child}"),
                &admin_key,
                Some(json!({"name": "renamed"})),
            ))
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{name}: update tenant");

        let machine = t
            .send(admin(
                Method::POST,
                &format!("/v1/tenants/{root}/machines"),
                &admin_key,
                Some(json!({"name": "worker", "roles": {root.as_str(): ["reader"]}})),
            ))
            .await;
        assert_eq!(
            machine.status,
            StatusCode::CREATED,
            "{name}: create machine"
        );
        let client_id = machine.body["clientId"]
            .as_str()
            .expect("clientId")
            .to_owned();
        let client_secret = machine.body["clientSecret"]
            .as_str()
            .expect("secret")
            .to_owned();
        secrets.push(client_secret.clone());

        let key = t
            .send(admin(
                Method::POST,
                &format!("/v1/tenants/{root}/api-keys"),
                &admin_key,
                Some(json!({"role": "reader", "mode": "live"})),
            ))
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{name}: create key");
        let key_id = key.body["id"].as_str().expect("key id").to_owned();
        secrets.push(key.body["key"].as_str().expect("key").to_owned());
        let rotated = t
            .send(admin(
                Method::POST,
                &format!("/v1/tenants/{root}/api-keys/{key_id}/rotate"),
                &admin_key,
                Some(json!({"gracePeriodSeconds": 0})),
            ))
            .await;
        assert_eq!(rotated.status, StatusCode::CREATED, "{name}: rotate key");
        let new_key_id = rotated.body["id"].as_str().expect("new key id").to_owned();
        secrets.push(rotated.body["key"].as_str().expect("new key").to_owned());
        let revoked = t
            .send(admin(
                Method::DELETE,
                &format!("/v1/tenants/{root}/api-keys/{new_key_id}"),
                &admin_key,
                None,
            ))
            .await;
        assert_eq!(revoked.status, StatusCode::OK, "{name}: revoke key");
        let rotated_signing = t
            .send(admin(
                Method::POST,
                "/v1/signing-keys/rotate",
                &admin_key,
                None,
            ))
            .await;
        assert_eq!(
            rotated_signing.status,
            StatusCode::OK,
            "{name}: rotate signing keys"
        );

        let token = t.token(&client_id, &client_secret, "").await;
        secrets.push(token.clone());
        let wrong_secret = "wrong-secret-0123456789abcdef".to_owned();
        secrets.push(wrong_secret.clone());
        let failed = t
            .send(form(
                "/oauth/token",
                Some(&basic(&client_id, &wrong_secret)),
                "grant_type=client_credentials",
            ))
            .await;
        assert_eq!(
            failed.status,
            StatusCode::UNAUTHORIZED,
            "{name}: wrong secret"
        );
        let introspected = t
            .send(form(
                "/oauth/introspect",
                Some(&basic(&client_id, &client_secret)),
                &format!("token={token}"),
            ))
            .await;
        assert_eq!(
            introspected.body["active"],
            json!(true),
            "{name}: introspect"
        );
        let revoked_token = t
            .send(form(
                "/oauth/revoke",
                Some(&basic(&client_id, &client_secret)),
                &format!("token={token}"),
            ))
            .await;
        assert_eq!(revoked_token.status, StatusCode::OK, "{name}: revoke token");
        let bad_admin = t
            .send(admin(
                Method::GET,
                "/v1/tenants",
                "opaque-admin-guess",
                None,
            ))
            .await;
        assert_eq!(
            bad_admin.status,
            StatusCode::UNAUTHORIZED,
            "{name}: bad admin key"
        );
        let deleted = t
            .send(admin(
                Method::DELETE,
                &format!("/v1/tenants/{child}"),
                &admin_key,
                None,
            ))
            .await;
        assert_eq!(
            deleted.status,
            StatusCode::NO_CONTENT,
            "{name}: delete tenant"
        );

        let recorded = events(&t).await;
        let actions: Vec<(String, String, String)> = recorded
            .iter()
            .map(|e| (e.action.clone(), e.outcome.clone(), e.reason.clone()))
            .collect();
        for (action, outcome, reason) in [
            ("admin:tenant.create", "success", "ok"),
            ("admin:tenant.update", "success", "ok"),
            ("admin:tenant.delete", "success", "ok"),
            ("admin:machine.create", "success", "ok"),
            ("admin:api_key.create", "success", "ok"),
            ("admin:api_key.rotate", "success", "ok"),
            ("admin:api_key.revoke", "success", "ok"),
            ("admin:signing_key.rotate", "success", "ok"),
            ("admin:authenticate", "failure", "unknown_credential"),
            ("token_issue", "success", "valid"),
            ("token_issue", "failure", "invalid_client"),
            ("introspect", "success", "valid"),
            ("revoke", "success", "valid"),
        ] {
            let expected = (action.to_owned(), outcome.to_owned(), reason.to_owned());
            assert!(
                actions.contains(&expected),
                "{name}: missing event {expected:?} in {actions:?}"
            );
        }
        let issued = recorded
            .iter()
            .find(|e| e.action == "token_issue" && e.outcome == "success")
            .expect("token_issue event");
        assert_eq!(
            issued.fingerprint,
            Some(fingerprint(&token)),
            "{name}: token fingerprint"
        );
        assert_eq!(
            issued.tenant_id.as_deref(),
            Some(root.as_str()),
            "{name}: token tenant"
        );
        assert!(issued.machine_id.is_some(), "{name}: token machine");

        for event in &recorded {
            let columns = [
                event.id.to_string(),
                event.chain_id.clone(),
                event.seq.to_string(),
                event.occurred_at.to_string(),
                event.action.clone(),
                event.outcome.clone(),
                event.reason.clone(),
                event.fingerprint.clone().unwrap_or_default(),
                event.source.clone(),
                event.adapter.clone().unwrap_or_default(),
                event.tenant_id.clone().unwrap_or_default(),
                event.machine_id.clone().unwrap_or_default(),
                event.client_address.clone().unwrap_or_default(),
                event.request_id.clone().unwrap_or_default(),
                event.detail.clone().unwrap_or_default(),
                String::from_utf8_lossy(&event.prev_hash).into_owned(),
                String::from_utf8_lossy(&event.hash).into_owned(),
            ];
            for secret in &secrets {
                for column in &columns {
                    assert!(
                        !column.contains(secret.as_str()),
                        "{name}: event {} ({}) contains a secret",
                        event.seq,
                        event.action
                    );
                }
            }
        }
    }
}

/// Sends `count` verifications at once and returns how many got a response.
async fn verify_concurrently(t: &TestApp, key: &str, count: usize) -> usize {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let router = t.router.clone();
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri("/v1/verify")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::empty())
                .expect("request");
            crate::common::send(&router, request).await.status
        }));
    }
    let mut answered = 0;
    for task in tasks {
        let status = task.await.expect("verification task");
        assert_eq!(status, StatusCode::OK, "every verification is answered");
        answered += 1;
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_are_all_recorded() {
    let settings: [(&str, AuditMode, usize, usize); 3] = [
        ("sync", AuditMode::Sync, 256, 10_000),
        ("batched", AuditMode::Batched, 256, 10_000),
        ("batched, tiny queue", AuditMode::Batched, 1, 2),
    ];
    for (label, mode, batch_size, queue_capacity) in settings {
        let t = TestApp::with_config(Backend::Sqlite, |config| {
            config.audit.mode = mode;
            config.audit.batch_size = batch_size;
            config.audit.queue_capacity = queue_capacity;
            config.audit.enqueue_timeout_ms = 30_000;
        })
        .await;
        let (_, key) = t.bootstrap("root").await;
        let answered = verify_concurrently(&t, &key, 200).await;
        if mode == AuditMode::Batched {
            t.app
                .audit
                .shutdown()
                .await
                .expect("shut the audit writer down");
        }
        let recorded = events_page(
            &t.app.store,
            &EventFilter::default(),
            None,
            PageOrder::Ascending,
            100_000,
        )
        .await
        .expect("read events");
        assert_eq!(answered, 200, "{label}: answered");
        assert_eq!(
            recorded.len(),
            answered,
            "{label}: events == answered requests"
        );
        let reports = verify_chains(&t.app.store).await.expect("verify chains");
        assert!(
            reports.iter().all(|r| r.fault.is_none()),
            "{label}: chain intact"
        );
    }
}

/// Counts the stored events without flushing the queue first.
async fn stored_count(t: &TestApp) -> usize {
    stored_events(t).await.len()
}

/// Polls until `count` events are stored, for at most `limit`.
async fn wait_for_stored(t: &TestApp, count: usize, limit: std::time::Duration) -> usize {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let stored = stored_count(t).await;
        if stored >= count || std::time::Instant::now() >= deadline {
            return stored;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writer_writes_without_flush() {
    // A batch is written at its deadline when it stays short of batch_size.
    let t = TestApp::with_config(Backend::Sqlite, |config| {
        config.audit.mode = AuditMode::Batched;
        config.audit.batch_size = 1_000;
        config.audit.flush_interval_ms = 50;
    })
    .await;
    let (_, key) = t.bootstrap("root").await;
    let before = stored_count(&t).await;
    for _ in 0..3 {
        t.verify(&key, None).await;
    }
    let stored = wait_for_stored(&t, before + 3, std::time::Duration::from_secs(5)).await;
    assert_eq!(stored, before + 3, "short batch written at its deadline");

    // Full batches are written long before a far deadline, and the rest at a flush.
    let t = TestApp::with_config(Backend::Sqlite, |config| {
        config.audit.mode = AuditMode::Batched;
        config.audit.batch_size = 8;
        config.audit.flush_interval_ms = 600_000;
    })
    .await;
    let (_, key) = t.bootstrap("root").await;
    t.app
        .audit
        .flush()
        .await
        .expect("flush the bootstrap events");
    let before = stored_count(&t).await;
    for _ in 0..20 {
        t.verify(&key, None).await;
    }
    let stored = wait_for_stored(&t, before + 16, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        stored,
        before + 16,
        "two full batches written, four events wait"
    );
    t.app.audit.flush().await.expect("flush");
    assert_eq!(stored_count(&t).await, before + 20, "flush writes the rest");
}

/// A sync-mode batch whose commit succeeded although the writer saw an error (a lost
/// acknowledgement) is simulated by storing the chain's next event behind the writer's back.
/// The write that collides with it fails, and the writer then continues after that event.
#[tokio::test]
async fn sync_writer_continues_after_stored_failed_batch() {
    let t = TestApp::with_config(Backend::Sqlite, |config| {
        config.audit.mode = AuditMode::Sync;
    })
    .await;
    let (_, key) = t.bootstrap("root").await;
    assert_eq!(t.verify(&key, None).await.status, StatusCode::OK);
    let chain = t.app.audit.chain_id().to_owned();
    let last = events(&t)
        .await
        .into_iter()
        .rfind(|event| event.chain_id == chain)
        .expect("an event of this chain");

    let seq = last.seq + 1;
    let hash = authbridge::audit::chain::HashInput {
        chain_id: &chain,
        seq,
        occurred_at: last.occurred_at,
        action: "verify",
        outcome: "success",
        reason: "valid",
        fingerprint: None,
        source: "native",
        adapter: None,
        tenant_id: None,
        machine_id: None,
        client_address: None,
        request_id: None,
        detail: None,
        prev_hash: &last.hash,
    }
    .hash();
    sqlx::query(
        "INSERT INTO audit_events (chain_id, seq, occurred_at, action, outcome, reason, source, \
         prev_hash, hash) VALUES ($1, $2, $3, 'verify', 'success', 'valid', 'native', $4, $5)",
    )
    .bind(&chain)
    .bind(seq)
    .bind(last.occurred_at)
    .bind(last.hash.clone())
    .bind(hash.to_vec())
    .execute(t.app.store.pool())
    .await
    .expect("store the next event of the chain");

    let collided = t.verify(&key, None).await;
    assert_eq!(
        collided.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the write on the stored sequence number fails: {}",
        collided.body
    );
    let next = t.verify(&key, None).await;
    assert_eq!(
        next.status,
        StatusCode::OK,
        "the writer continues after the stored event: {}",
        next.body
    );

    let reports = verify_chains(&t.app.store).await.expect("verify chains");
    let report = reports
        .iter()
        .find(|report| report.chain_id == chain)
        .expect("a report of this chain");
    assert!(report.fault.is_none(), "chain intact: {:?}", report.fault);
    assert_eq!(
        report.last_seq,
        Some(seq + 1),
        "one event after the stored one"
    );
}

#[tokio::test]
async fn record_after_shutdown_fails() {
    let t = TestApp::sqlite().await;
    let (_, key) = t.bootstrap("root").await;
    t.app.audit.shutdown().await.expect("shutdown");
    let response = t.verify(&key, None).await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no answer without an event"
    );
}

/// Writes `count` verify events to a fresh app and returns it.
async fn app_with_events(backend: Backend, count: usize) -> TestApp {
    let t = TestApp::open(backend, authbridge::jose::Algorithm::RS256).await;
    let (_, key) = t.bootstrap("root").await;
    for _ in 0..count {
        t.verify(&key, None).await;
    }
    t.app.audit.flush().await.expect("flush");
    t
}

async fn execute(t: &TestApp, sql: &str) {
    sqlx::query(sql)
        .bind(t.app.audit.chain_id().to_owned())
        .execute(t.app.store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn chain_verify_names_first_bad_event() {
    for backend in backends() {
        let name = backend.name();
        let t = app_with_events(backend.clone(), 10).await;
        let reports = verify_chains(&t.app.store).await.expect("verify");
        assert_eq!(reports.len(), 1, "{name}: one chain");
        assert_eq!(reports[0].fault, None, "{name}: untouched chain");
        assert_eq!(reports[0].events_checked, 10, "{name}: events checked");

        // (label, tampering statements, first bad event, fault, events checked before it)
        let cases: [(&str, &[&str], i64, FaultKind, u64); 3] = [
            (
                "edited",
                &["UPDATE audit_events SET reason = 'expired' WHERE chain_id = $1 AND seq = 4"],
                4,
                FaultKind::Edited,
                3,
            ),
            (
                "deleted",
                &["DELETE FROM audit_events WHERE chain_id = $1 AND seq = 5"],
                6,
                FaultKind::Deleted { first: 5, last: 5 },
                4,
            ),
            (
                "reordered",
                &[
                    "UPDATE audit_events SET seq = -3 WHERE chain_id = $1 AND seq = 3",
                    "UPDATE audit_events SET seq = 3 WHERE chain_id = $1 AND seq = 4",
                    "UPDATE audit_events SET seq = 4 WHERE chain_id = $1 AND seq = -3",
                ],
                3,
                FaultKind::Reordered { written_as: 4 },
                2,
            ),
        ];
        for (label, statements, seq, kind, checked) in cases {
            let t = app_with_events(backend.clone(), 10).await;
            for sql in statements {
                execute(&t, sql).await;
            }
            let reports = verify_chains(&t.app.store).await.expect("verify");
            let fault = reports[0]
                .fault
                .clone()
                .unwrap_or_else(|| panic!("{name} {label}: no fault"));
            assert_eq!(
                fault.chain_id,
                t.app.audit.chain_id(),
                "{name} {label}: chain"
            );
            assert_eq!(fault.seq, seq, "{name} {label}: first bad event");
            assert_eq!(fault.kind, kind, "{name} {label}: kind");
            assert_eq!(
                reports[0].events_checked, checked,
                "{name} {label}: checked"
            );
            println!("{name} {label}: {fault}");
        }
    }
}

#[tokio::test]
async fn prune_keeps_chain_verifiable() {
    for backend in backends() {
        let name = backend.name();
        let t = app_with_events(backend, 5).await;
        t.clock.advance(3 * 86_400);
        let (_, key) = t.bootstrap("later").await;
        for _ in 0..3 {
            t.verify(&key, None).await;
        }
        t.app.audit.flush().await.expect("flush");
        let cutoff = crate::common::START + 86_400;
        let deleted = prune(&t.app.store, cutoff).await.expect("prune");
        assert_eq!(deleted, 5, "{name}: old events deleted");
        let reports = verify_chains(&t.app.store).await.expect("verify");
        assert_eq!(
            reports[0].fault, None,
            "{name}: chain verifies after pruning"
        );
        assert_eq!(reports[0].checkpoint_seq, Some(5), "{name}: checkpoint");
        assert_eq!(reports[0].events_checked, 3, "{name}: remaining events");
        assert_eq!(
            prune(&t.app.store, cutoff).await.expect("prune again"),
            0,
            "{name}: idempotent"
        );

        execute(
            &t,
            "DELETE FROM audit_events WHERE chain_id = $1 AND seq = 6",
        )
        .await;
        let reports = verify_chains(&t.app.store).await.expect("verify");
        let fault = reports[0]
            .fault
            .clone()
            .expect("deleted event after the checkpoint");
        assert_eq!(
            fault.kind,
            FaultKind::Deleted { first: 6, last: 6 },
            "{name}: gap after checkpoint"
        );
    }
}

#[tokio::test]
async fn export_writes_one_line_per_event() {
    for backend in backends() {
        let name = backend.name();
        let t = app_with_events(backend, 7).await;
        t.clock.advance(3600);
        let (_, key) = t.bootstrap("later").await;
        t.verify(&key, None).await;
        t.verify("opaque,with \"quotes\"", None).await;
        let total = events(&t).await.len();
        assert_eq!(total, 9, "{name}: events");

        let mut jsonl = Vec::new();
        let written = export(
            &t.app.store,
            &EventFilter::default(),
            ExportFormat::Jsonl,
            &mut jsonl,
        )
        .await
        .expect("export jsonl");
        let text = String::from_utf8(jsonl).expect("utf-8");
        assert_eq!(written, 9, "{name}: jsonl count");
        assert_eq!(text.lines().count(), 9, "{name}: jsonl lines");
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(
                value["hash"].as_str().is_some_and(|h| h.len() == 64),
                "{name}: hash hex"
            );
        }

        let mut csv = Vec::new();
        export(
            &t.app.store,
            &EventFilter::default(),
            ExportFormat::Csv,
            &mut csv,
        )
        .await
        .expect("export csv");
        let text = String::from_utf8(csv).expect("utf-8");
        assert_eq!(text.lines().count(), 10, "{name}: csv header and rows");
        assert!(
            text.starts_with("id,chainId,seq,time,"),
            "{name}: csv header"
        );

        let later = EventFilter {
            since: Some(crate::common::START + 1800),
            ..EventFilter::default()
        };
        let mut since = Vec::new();
        let written = export(&t.app.store, &later, ExportFormat::Jsonl, &mut since)
            .await
            .expect("export since");
        assert_eq!(written, 2, "{name}: events since");
        let earlier = EventFilter {
            until: Some(crate::common::START + 1800),
            ..EventFilter::default()
        };
        let mut until = Vec::new();
        let written = export(&t.app.store, &earlier, ExportFormat::Jsonl, &mut until)
            .await
            .expect("export until");
        assert_eq!(written, 7, "{name}: events until");
    }
}

#[tokio::test]
async fn events_api_is_confined_and_paged() {
    let t = TestApp::sqlite().await;
    let (root, root_key) = t.bootstrap("root").await;
    let child = t.sub_tenant(&root, "child").await;
    let child_key = t.api_key(&child, "admin", Mode::Live).await;
    for _ in 0..3 {
        t.verify(&root_key, None).await;
        t.verify(&child_key, None).await;
    }
    t.verify("opaque-token", None).await;
    t.app.audit.flush().await.expect("flush");

    let list = |credential: &str, query: &str| {
        admin(
            Method::GET,
            &format!("/v1/audit/events{query}"),
            credential,
            None,
        )
    };
    let child_view = t.send(list(&child_key, "?action=verify&limit=500")).await;
    assert_eq!(
        child_view.status,
        StatusCode::BAD_REQUEST,
        "unknown query parameter"
    );

    let child_view = t.send(list(&child_key, "?limit=500")).await;
    assert_eq!(child_view.status, StatusCode::OK, "child admin lists");
    let child_events = child_view.body["events"]
        .as_array()
        .expect("events")
        .clone();
    assert!(!child_events.is_empty(), "child sees its events");
    assert!(
        child_events
            .iter()
            .all(|e| e["tenantId"] == json!(child.as_str())),
        "child sees only its subtree: {child_events:?}"
    );
    let outside = t.send(list(&child_key, &format!("?tenantId={root}"))).await;
    assert_eq!(
        outside.status,
        StatusCode::NOT_FOUND,
        "root is outside the child's subtree"
    );

    let root_view = t.send(list(&root_key, "?limit=500")).await;
    let root_events = root_view.body["events"].as_array().expect("events").clone();
    assert!(root_events.len() > child_events.len(), "root sees more");
    assert!(
        root_events.iter().any(|e| e["tenantId"].is_null()),
        "root admin sees events without a tenant"
    );
    let ids: Vec<i64> = root_events
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    let failures = t
        .send(list(
            &root_key,
            "?outcome=failure&reason=unknown_credential",
        ))
        .await;
    let failures = failures.body["events"].as_array().expect("events").clone();
    assert_eq!(failures.len(), 1, "filtered by outcome and reason");

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let query = match &cursor {
            Some(cursor) => format!("?limit=2&cursor={cursor}"),
            None => "?limit=2".to_owned(),
        };
        let page = t.send(list(&root_key, &query)).await;
        assert_eq!(page.status, StatusCode::OK, "page");
        let events = page.body["events"].as_array().expect("events").clone();
        assert!(events.len() <= 2, "page size");
        paged.extend(events.iter().map(|e| e["id"].as_i64().expect("id")));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, ids, "paging returns the full listing in order");

    let too_many = t.send(list(&root_key, "?limit=501")).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST, "limit above 500");
    let bad_time = t.send(list(&root_key, "?since=yesterday")).await;
    assert_eq!(
        bad_time.status,
        StatusCode::BAD_REQUEST,
        "since not RFC 3339"
    );
}
