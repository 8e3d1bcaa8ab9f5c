//! The phase in force for an adapter and tenant, from the configured phase and the recorded
//! changes, with exceptions that keep legacy access alive past enforcement.
//!
//! Changes are history rows: the latest row whose `effective_at` has passed is in force, so a
//! scheduled change needs no timer, and `sunset` turns into `enforce` at its `sunset_at` on its
//! own. A tenant override applies to the tenant and its sub-tenants; the nearest one wins.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::Phase;
use crate::ids::TenantId;
use crate::store::{PhaseChangeRecord, PhaseExceptionRecord, Store, StoreResult};
use crate::tenancy::TenantDirectory;

/// The phase in force and the dates its headers announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseInForce {
    pub phase: Phase,
    /// When this phase took effect; the `Deprecation` header date.
    pub since: i64,
    /// The cutoff of a `sunset` phase; the `Sunset` header date.
    pub sunset_at: Option<i64>,
}

#[derive(Debug, Default)]
struct Book {
    /// Changes per adapter, oldest first.
    changes: HashMap<String, Vec<PhaseChangeRecord>>,
    exceptions: Vec<PhaseExceptionRecord>,
}

/// Recorded phase changes and exceptions, held in memory and reloaded on change and resync.
#[derive(Debug, Default)]
pub struct PhaseBook {
    book: RwLock<Book>,
    /// When the daemon started, the `since` of a phase that comes from the configuration.
    started_at: i64,
}

fn parse_phase(text: &str) -> Option<Phase> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

impl PhaseBook {
    pub async fn load(store: &Store, started_at: i64) -> StoreResult<Self> {
        let book = Self {
            book: RwLock::default(),
            started_at,
        };
        book.reload(store, started_at).await?;
        Ok(book)
    }

    pub async fn reload(&self, store: &Store, now: i64) -> StoreResult<()> {
        let mut changes: HashMap<String, Vec<PhaseChangeRecord>> = HashMap::new();
        for change in store.phase_changes().await? {
            changes
                .entry(change.adapter.clone())
                .or_default()
                .push(change);
        }
        let exceptions = store.live_phase_exceptions(now).await?;
        *self.book.write() = Book {
            changes,
            exceptions,
        };
        Ok(())
    }

    /// Returns true when some tenant override or exception exists for `adapter`, so an
    /// adapter-wide `enforce` cannot be decided before mapping the credential's tenant.
    pub fn has_tenant_rules(&self, adapter: &str, now: i64) -> bool {
        let book = self.book.read();
        let overrides = book
            .changes
            .get(adapter)
            .is_some_and(|changes| changes.iter().any(|c| c.tenant_id.is_some()));
        overrides
            || book
                .exceptions
                .iter()
                .any(|e| e.adapter == adapter && e.expires_at > now)
    }

    /// Returns the phase in force for `adapter` at `tenant` (or adapter-wide with `None`).
    pub fn in_force(
        &self,
        adapter: &str,
        configured: Phase,
        tenant: Option<&TenantId>,
        directory: &TenantDirectory,
        now: i64,
    ) -> PhaseInForce {
        let book = self.book.read();
        let changes = book
            .changes
            .get(adapter)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let latest = |tenant: Option<&str>| {
            changes
                .iter()
                .filter(|c| c.tenant_id.as_deref() == tenant && c.effective_at <= now)
                .max_by_key(|c| (c.effective_at, c.id))
        };
        let path = tenant
            .map(|t| directory.path_to_root(t))
            .unwrap_or_default();
        let row = path
            .iter()
            .find_map(|t| latest(Some(t.as_str())))
            .or_else(|| latest(None));
        let mut in_force = match row.and_then(|r| parse_phase(&r.phase).map(|p| (p, r))) {
            Some((phase, row)) => PhaseInForce {
                phase,
                since: row.effective_at,
                sunset_at: row.sunset_at,
            },
            None => PhaseInForce {
                phase: configured,
                since: self.started_at,
                sunset_at: None,
            },
        };
        if in_force.phase == Phase::Sunset {
            if let Some(cutoff) = in_force.sunset_at.filter(|cutoff| *cutoff <= now) {
                in_force = PhaseInForce {
                    phase: Phase::Enforce,
                    since: cutoff,
                    sunset_at: Some(cutoff),
                };
            }
        }
        in_force
    }

    /// True when a live exception covers this tenant (or an ancestor) or this credential.
    pub fn has_exception(
        &self,
        adapter: &str,
        tenant: &TenantId,
        fingerprint: &str,
        directory: &TenantDirectory,
        now: i64,
    ) -> bool {
        let book = self.book.read();
        let path = directory.path_to_root(tenant);
        book.exceptions.iter().any(|exception| {
            exception.adapter == adapter
                && exception.expires_at > now
                && (exception.credential_fingerprint.as_deref() == Some(fingerprint)
                    || exception.tenant_id.as_deref().is_some_and(|t| {
                        path.iter().any(|p| p.as_str() == t) || t == tenant.as_str()
                    }))
        })
    }

    /// Returns every recorded change of `adapter`, oldest first.
    pub fn history(&self, adapter: &str) -> Vec<PhaseChangeRecord> {
        self.book
            .read()
            .changes
            .get(adapter)
            .cloned()
            .unwrap_or_default()
    }

    pub fn exceptions(&self) -> Vec<PhaseExceptionRecord> {
        self.book.read().exceptions.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        id: i64,
        tenant: Option<&str>,
        phase: &str,
        at: i64,
        sunset: Option<i64>,
    ) -> PhaseChangeRecord {
        PhaseChangeRecord {
            id,
            adapter: "idp".to_owned(),
            tenant_id: tenant.map(str::to_owned),
            phase: phase.to_owned(),
            effective_at: at,
            sunset_at: sunset,
            created_at: 0,
            actor: "test".to_owned(),
        }
    }

    fn book(changes: Vec<PhaseChangeRecord>) -> PhaseBook {
        let book = PhaseBook::default();
        book.book.write().changes.insert("idp".to_owned(), changes);
        book
    }

    #[test]
    fn configured_phase_applies_without_changes() {
        let directory = TenantDirectory::default();
        let phase = book(vec![]).in_force("idp", Phase::Shadow, None, &directory, 100);
        assert_eq!(phase.phase, Phase::Shadow);
    }

    #[test]
    fn scheduled_change_takes_effect_at_its_time() {
        let directory = TenantDirectory::default();
        let book = book(vec![
            change(1, None, "dual", 10, None),
            change(2, None, "enforce", 200, None),
        ]);
        assert_eq!(
            book.in_force("idp", Phase::Shadow, None, &directory, 100)
                .phase,
            Phase::Dual
        );
        assert_eq!(
            book.in_force("idp", Phase::Shadow, None, &directory, 200)
                .phase,
            Phase::Enforce
        );
    }

    #[test]
    fn sunset_becomes_enforce_at_cutoff() {
        let directory = TenantDirectory::default();
        let book = book(vec![change(1, None, "sunset", 10, Some(500))]);
        let before = book.in_force("idp", Phase::Dual, None, &directory, 499);
        assert_eq!(before.phase, Phase::Sunset);
        assert_eq!(before.sunset_at, Some(500));
        assert_eq!(
            book.in_force("idp", Phase::Dual, None, &directory, 500)
                .phase,
            Phase::Enforce
        );
    }

    #[test]
    fn restoring_an_earlier_phase_is_a_new_row() {
        let directory = TenantDirectory::default();
        let book = book(vec![
            change(1, None, "enforce", 10, None),
            change(2, None, "dual", 20, None),
        ]);
        assert_eq!(
            book.in_force("idp", Phase::Shadow, None, &directory, 30)
                .phase,
            Phase::Dual
        );
    }
}
