//! Several daemons on one PostgreSQL database: each change that others cache (a revoked token,
//! a revoked or rotated API key, the tenant tree, signing keys, phases) is announced with
//! `NOTIFY`, and every instance applies what it hears within a second. The periodic resync in
//! the server remains the safety net for a missed notification.
//!
//! On SQLite there is one process, so announcing does nothing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::app::App;
use crate::store::Backend;

/// The PostgreSQL channel the instances share.
const CHANNEL: &str = "authbridge_changes";

/// A change other instances must apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An access token revoked by `jti`, with its expiry.
    TokenRevoked {
        jti: String,
        expires_at: i64,
    },
    /// An API key whose cached row must be dropped, by key hash.
    ApiKeyChanged {
        key_hash: String,
    },
    Tenants,
    SigningKeys,
    Phases,
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Change::TokenRevoked { jti, expires_at } => format!("token {jti} {expires_at}"),
            Change::ApiKeyChanged { key_hash } => format!("api_key {key_hash}"),
            Change::Tenants => "tenants".to_owned(),
            Change::SigningKeys => "signing_keys".to_owned(),
            Change::Phases => "phases".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        Some(match parts.next()? {
            "token" => Change::TokenRevoked {
                jti: parts.next()?.to_owned(),
                expires_at: parts.next()?.parse().ok()?,
            },
            "api_key" => Change::ApiKeyChanged {
                key_hash: parts.next()?.to_owned(),
            },
            "tenants" => Change::Tenants,
            "signing_keys" => Change::SigningKeys,
            "phases" => Change::Phases,
            _ => return None,
        })
    }
}

impl App {
    /// Tells the other instances about `change`. A failure is logged, not raised: the change is
    /// already stored, and the periodic resync delivers it later.
    pub async fn announce(&self, change: Change) {
        if self.store.backend() != Backend::Postgres {
            return;
        }
        let result = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.encode())
            .execute(self.store.pool())
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, change = ?change, "could not notify other instances; they pick the change up at the next resync");
        }
    }

    async fn apply(&self, change: Change) {
        let now = self.clock.now();
        let result = match change {
            Change::TokenRevoked { jti, expires_at } => {
                self.revocations.insert(jti, expires_at);
                Ok(())
            }
            Change::ApiKeyChanged { key_hash } => {
                self.verifier.api_key_cache().invalidate(&key_hash);
                Ok(())
            }
            Change::Tenants => {
                let reloaded = self.directory.reload(&self.store).await;
                self.verifier.api_key_cache().clear();
                reloaded.map_err(|e| e.to_string())
            }
            Change::SigningKeys => self.keyring.reload().await.map_err(|e| e.to_string()),
            Change::Phases => self
                .phases
                .reload(&self.store, now)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "applying a change from another instance failed; the next resync retries");
        }
    }
}

/// Listens for changes until the app is dropped, reconnecting after errors. Does nothing on
/// SQLite.
pub async fn listen(app: Weak<App>, database_url: String) {
    loop {
        let Some(current) = app.upgrade() else { return };
        if current.store.backend() != Backend::Postgres {
            return;
        }
        drop(current);
        match PgListener::connect(&database_url).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "LISTEN failed; retrying in 5 s");
                } else {
                    tracing::info!("listening for changes from other instances");
                    loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                let Some(app) = app.upgrade() else { return };
                                match Change::decode(notification.payload()) {
                                    Some(change) => app.apply(change).await,
                                    None => tracing::warn!(
                                        payload = notification.payload(),
                                        "ignoring an unknown change notification"
                                    ),
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, "change listener lost its connection; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot connect the change listener; retrying in 5 s")
            }
        }
        // Changes missed while disconnected arrive with the next resync; resync now as well.
        if let Some(app) = app.upgrade() {
            if let Err(error) = app.resync().await {
                tracing::warn!(%error, "resync after a listener reconnect failed");
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Starts the listener task for `app`.
pub fn start(app: &Arc<App>) {
    if app.store.backend() == Backend::Postgres {
        tokio::spawn(listen(Arc::downgrade(app), app.config.database_url()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_text() {
        let changes = [
            Change::TokenRevoked {
                jti: "abc".to_owned(),
                expires_at: 42,
            },
            Change::ApiKeyChanged {
                key_hash: "ff00".to_owned(),
            },
            Change::Tenants,
            Change::SigningKeys,
            Change::Phases,
        ];
        for change in changes {
            assert_eq!(Change::decode(&change.encode()), Some(change.clone()));
        }
        assert_eq!(Change::decode("nonsense"), None);
    }
}
