//! Two daemons on one PostgreSQL database: revocations, API key changes and signing key
//! rotations made on one instance take effect on the other within a second, through
//! LISTEN/NOTIFY. Runs when `AUTHBRIDGE_TEST_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authbridge::app::App;
use authbridge::clock::Clock;
use authbridge::credentials::Mode;
use authbridge::verify::Requirements;

use crate::common::{form, postgres_backend, send, TestApp};

async fn reason_on(app: &App, credential: &str) -> String {
    app.verifier
        .verify(credential, &Requirements::default())
        .await
        .reason
        .as_str()
        .to_owned()
}

/// Polls `check` for up to one second.
async fn within_one_second<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changes_reach_the_other_instance_within_a_second() {
    let Some(backend) = postgres_backend() else {
        println!("AUTHBRIDGE_TEST_POSTGRES_URL not set: skipping the two-instance PostgreSQL test");
        return;
    };
    let first = TestApp::open(backend, authbridge::jose::Algorithm::RS256).await;
    let second: Arc<App> = App::open(first.app.config.clone(), first.clock.clone())
        .await
        .expect("second instance");
    authbridge::cluster::start(&first.app);
    authbridge::cluster::start(&second);
    // Give both listeners time to subscribe before the first change.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (tenant, admin_key) = first.bootstrap("root").await;
    let reader_key = first.api_key(&tenant, "readonly", Mode::Live).await;
    assert_eq!(
        reason_on(&second, &reader_key).await,
        "valid",
        "the key verifies on the other instance"
    );

    let keys = first.app.store.api_keys_of_tenant(&tenant).await.unwrap();
    let reader = keys.iter().find(|k| k.role == "readonly").unwrap();
    first.app.revoke_api_key(&tenant, &reader.id).await.unwrap();
    assert!(
        within_one_second(|| async { reason_on(&second, &reader_key).await == "revoked" }).await,
        "API key revocation reaches the other instance"
    );

    let (client_id, secret) = first.machine(&tenant, &["reader"], Mode::Live).await;
    let token = first.token(&client_id, &secret, "").await;
    assert_eq!(reason_on(&second, &token).await, "valid");
    let revoke = send(
        &first.router,
        form(
            "/oauth/revoke",
            Some(&format!("Bearer {admin_key}")),
            &format!("token={token}"),
        ),
    )
    .await;
    assert_eq!(revoke.status, 200);
    assert!(
        within_one_second(|| async { reason_on(&second, &token).await == "revoked" }).await,
        "token revocation reaches the other instance"
    );

    first.app.keyring.rotate(first.clock.now()).await.unwrap();
    first
        .app
        .announce(authbridge::cluster::Change::SigningKeys)
        .await;
    let current = first.app.keyring.current().kid.clone();
    assert!(
        within_one_second(|| async { second.keyring.current().kid == current }).await,
        "signing key rotation reaches the other instance"
    );
    let fresh = first.token(&client_id, &secret, "").await;
    assert_eq!(
        reason_on(&second, &fresh).await,
        "valid",
        "a token signed after rotation verifies on the other instance"
    );
}
