//! The store on every backend: each test body runs on SQLite and, when configured, PostgreSQL.

use authbridge::admin::{CreateTenant, UpdateTenant};
use authbridge::credentials::Mode;
use authbridge::jose::Algorithm;
use authbridge::store::SigningKeyStatus;

use crate::common::{backends, TestApp, START};

async fn each_backend<F, Fut>(body: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        println!("backend: {}", backend.name());
        body(TestApp::open(backend, Algorithm::ES256).await).await;
    }
}

#[tokio::test]
async fn tenant_lifecycle_round_trips() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let (root, _) = t.bootstrap("root").await;
        let child = t.sub_tenant(&root, "child").await;

        let stored = t.app.store.tenant(&child).await.expect("read tenant");
        let stored = stored.unwrap_or_else(|| panic!("{backend}: child tenant not stored"));
        assert_eq!(
            stored.parent_id.as_ref(),
            Some(&root),
            "{backend}: parent id"
        );
        assert_eq!(stored.name, "child", "{backend}: name");
        assert!(
            stored.inherit_roles,
            "{backend}: inherit_roles defaults to true"
        );

        let children = t.app.store.child_tenants(&root).await.expect("children");
        assert_eq!(children.len(), 1, "{backend}: one child");
        assert_eq!(children[0].id, child, "{backend}: child id");
        let roots = t.app.store.root_tenants().await.expect("roots");
        assert_eq!(roots.len(), 1, "{backend}: one root");

        t.clock.advance(10);
        let update = UpdateTenant {
            name: Some("renamed".to_owned()),
            inherit_roles: Some(false),
        };
        t.app.update_tenant(&child, &update).await.expect("update");
        let updated = t
            .app
            .store
            .tenant(&child)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(updated.name, "renamed", "{backend}: updated name");
        assert!(!updated.inherit_roles, "{backend}: updated inherit_roles");
        assert_eq!(updated.updated_at, START + 10, "{backend}: updated_at");
        assert_eq!(updated.created_at, START, "{backend}: created_at unchanged");

        let refused = t.app.delete_tenant(&root).await;
        assert!(
            matches!(refused, Err(authbridge::admin::AdminError::Conflict(_))),
            "{backend}: deleting a tenant with sub-tenants must be a conflict, got {refused:?}"
        );
        assert!(
            t.app.store.tenant(&root).await.expect("read").is_some(),
            "{backend}: refused delete must keep the tenant"
        );

        t.app.delete_tenant(&child).await.expect("delete leaf");
        assert!(
            t.app.store.tenant(&child).await.expect("read").is_none(),
            "{backend}: deleted tenant is gone"
        );
        t.app
            .delete_tenant(&root)
            .await
            .expect("delete root once empty");
    })
    .await;
}

#[tokio::test]
async fn unknown_parent_is_rejected() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let result = t
            .app
            .create_tenant(&CreateTenant {
                name: "orphan".to_owned(),
                parent_id: Some("zzzz9999".to_owned()),
                inherit_roles: None,
            })
            .await;
        assert!(
            matches!(result, Err(authbridge::admin::AdminError::NotFound(_))),
            "{}: unknown parent must be not found, got {result:?}",
            t.backend.name()
        );
    })
    .await;
}

#[tokio::test]
async fn machine_is_found_by_client_id() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let (root, _) = t.bootstrap("root").await;
        let (client_id, _) = t.machine(&root, &["reader"], Mode::Test).await;

        let machine = t
            .app
            .store
            .machine_by_client_id(&client_id)
            .await
            .expect("lookup")
            .unwrap_or_else(|| panic!("{backend}: machine not found by client id"));
        assert_eq!(machine.tenant_id, root, "{backend}: tenant");
        assert_eq!(machine.mode, Mode::Test, "{backend}: mode");
        assert_eq!(
            machine.roles.get(&root),
            Some(&vec!["reader".to_owned()]),
            "{backend}: roles"
        );
        assert_eq!(machine.scopes, vec!["read".to_owned()], "{backend}: scopes");
        assert!(
            machine.secret_hash.is_some(),
            "{backend}: secret hash stored"
        );

        let missing = t
            .app
            .store
            .machine_by_client_id("nobody")
            .await
            .expect("lookup");
        assert!(missing.is_none(), "{backend}: unknown client id");

        let listed = t.app.store.machines_of_tenant(&root).await.expect("list");
        assert_eq!(listed.len(), 1, "{backend}: one machine listed");
        t.app
            .store
            .delete_machine(&root, &machine.id)
            .await
            .expect("delete");
        let listed = t.app.store.machines_of_tenant(&root).await.expect("list");
        assert!(listed.is_empty(), "{backend}: machine deleted");
    })
    .await;
}

#[tokio::test]
async fn api_key_revoke_and_rotate() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let (root, _) = t.bootstrap("root").await;
        let key = t.api_key(&root, "reader", Mode::Live).await;
        let hash = t.app.pepper.digest_hex(key.as_bytes());

        let record = t
            .app
            .store
            .api_key_by_hash(&hash)
            .await
            .expect("lookup")
            .unwrap_or_else(|| panic!("{backend}: key not found by hash"));
        assert_eq!(record.role, "reader", "{backend}: role");
        assert_eq!(record.revoked_at, None, "{backend}: not revoked");
        assert!(
            !record.key_hash.contains(&key),
            "{backend}: the key itself is not stored"
        );

        t.clock.advance(5);
        let (replacement, new_key) = t
            .app
            .rotate_api_key(&root, &record.id, 100)
            .await
            .expect("rotate");
        let old = t.app.api_key(&root, &record.id).await.expect("old key");
        assert_eq!(
            old.revoked_at,
            Some(START + 105),
            "{backend}: revocation scheduled"
        );
        assert_eq!(
            old.replaced_by.as_deref(),
            Some(replacement.id.as_str()),
            "{backend}: replaced_by"
        );
        let new_hash = t.app.pepper.digest_hex(new_key.expose().as_bytes());
        let stored = t
            .app
            .store
            .api_key_by_hash(&new_hash)
            .await
            .expect("lookup");
        assert!(stored.is_some(), "{backend}: replacement stored");

        let again = t.app.rotate_api_key(&root, &record.id, 100).await;
        assert!(
            again.is_err(),
            "{backend}: a rotated key cannot rotate again"
        );

        t.app
            .revoke_api_key(&root, &record.id)
            .await
            .expect("revoke");
        let revoked = t.app.api_key(&root, &record.id).await.expect("read");
        assert_eq!(
            revoked.revoked_at,
            Some(START + 5),
            "{backend}: revoked now"
        );

        t.clock.advance(5);
        t.app
            .revoke_api_key(&root, &record.id)
            .await
            .expect("revoke again");
        let revoked = t.app.api_key(&root, &record.id).await.expect("read");
        assert_eq!(
            revoked.revoked_at,
            Some(START + 5),
            "{backend}: a second revocation keeps the earlier time"
        );

        let keys = t.app.store.api_keys_of_tenant(&root).await.expect("list");
        assert_eq!(keys.len(), 3, "{backend}: admin, old and replacement keys");
    })
    .await;
}

#[tokio::test]
async fn signing_keys_rotate_through_statuses() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let records = t.app.store.active_signing_keys().await.expect("keys");
        let status_of = |records: &[authbridge::store::SigningKeyRecord], s| {
            records
                .iter()
                .filter(|r| r.status == s)
                .map(|r| r.kid.clone())
                .collect::<Vec<_>>()
        };
        let current = status_of(&records, SigningKeyStatus::Current);
        let next = status_of(&records, SigningKeyStatus::Next);
        assert_eq!(records.len(), 2, "{backend}: first start creates two keys");
        assert_eq!(current.len(), 1, "{backend}: one current key");
        assert_eq!(next.len(), 1, "{backend}: one next key");
        assert_eq!(
            t.app.keyring.current().kid,
            current[0],
            "{backend}: keyring signs with current"
        );

        t.app.keyring.rotate(START + 1).await.expect("rotate");
        let records = t.app.store.active_signing_keys().await.expect("keys");
        assert_eq!(
            status_of(&records, SigningKeyStatus::Current),
            next,
            "{backend}: next became current"
        );
        assert_eq!(
            status_of(&records, SigningKeyStatus::Previous),
            current,
            "{backend}: current became previous"
        );
        assert_eq!(
            status_of(&records, SigningKeyStatus::Next).len(),
            1,
            "{backend}: a new next key"
        );

        t.app.keyring.rotate(START + 2).await.expect("rotate again");
        let records = t.app.store.active_signing_keys().await.expect("keys");
        assert_eq!(
            records.len(),
            3,
            "{backend}: previous retired after two rotations"
        );
        assert!(
            !records.iter().any(|r| r.kid == current[0]),
            "{backend}: the first key is retired"
        );

        let stale = t
            .app
            .store
            .rotate_signing_keys(Some(&current[0]), &records[0], START + 3)
            .await;
        assert!(
            stale.is_err(),
            "{backend}: rotation with a stale current kid is refused"
        );
    })
    .await;
}

#[tokio::test]
async fn revoked_tokens_expire_and_prune() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let store = &t.app.store;
        store
            .insert_revoked_token("a", START + 10, START)
            .await
            .expect("insert");
        store
            .insert_revoked_token("a", START + 10, START)
            .await
            .expect("duplicate insert");
        store
            .insert_revoked_token("b", START + 100, START)
            .await
            .expect("insert");

        let live = store
            .unexpired_revoked_tokens(START + 50)
            .await
            .expect("list");
        assert_eq!(
            live,
            vec![("b".to_owned(), START + 100)],
            "{backend}: unexpired"
        );
        let pruned = store.prune_revoked_tokens(START + 50).await.expect("prune");
        assert_eq!(pruned, 1, "{backend}: one pruned");
        let all = store.unexpired_revoked_tokens(0).await.expect("list");
        assert_eq!(all.len(), 1, "{backend}: one left");
    })
    .await;
}

#[tokio::test]
async fn assertion_jti_replay_is_detected() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let store = &t.app.store;
        let first = store
            .record_assertion_jti("client", "jti-1", START + 60, START)
            .await
            .expect("record");
        let replay = store
            .record_assertion_jti("client", "jti-1", START + 60, START)
            .await
            .expect("record");
        let other_client = store
            .record_assertion_jti("other", "jti-1", START + 60, START)
            .await
            .expect("record");
        assert!(first, "{backend}: first use is accepted");
        assert!(!replay, "{backend}: second use is a replay");
        assert!(
            other_client,
            "{backend}: the same jti of another client is not a replay"
        );

        let after_expiry = store
            .record_assertion_jti("client", "jti-1", START + 200, START + 61)
            .await
            .expect("record");
        assert!(after_expiry, "{backend}: expired entries are pruned");
    })
    .await;
}

#[tokio::test]
async fn setting_or_insert_keeps_first_value() {
    each_backend(|t| async move {
        // Bind the whole app so its temporary directory lives until the body ends.
        let t = t;
        let backend = t.backend.name();
        let store = &t.app.store;
        let first = store
            .setting_or_insert("test_setting", b"one".to_vec())
            .await
            .expect("insert");
        let second = store
            .setting_or_insert("test_setting", b"two".to_vec())
            .await
            .expect("insert");
        assert_eq!(first, b"one".to_vec(), "{backend}: first value stored");
        assert_eq!(second, b"one".to_vec(), "{backend}: first value kept");
        let missing = store.setting("absent").await.expect("read");
        assert_eq!(missing, None, "{backend}: absent setting");
    })
    .await;
}
