//! The tenant tree held in memory: ancestry checks for admin confinement and the roles a grant
//! gives at a tenant, without a database read on the verify path.
//!
//! A role granted at a tenant applies to its descendants, except below a tenant that turns
//! inheritance off: such a tenant receives no roles granted above it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use parking_lot::RwLock;

use crate::ids::TenantId;
use crate::store::{Store, StoreResult, TenantRecord};

#[derive(Clone, Debug)]
struct Node {
    parent: Option<TenantId>,
    inherit_roles: bool,
}

/// An in-memory copy of the tenant tree, refreshed on every change and on resync.
#[derive(Debug, Default)]
pub struct TenantDirectory {
    nodes: RwLock<HashMap<TenantId, Node>>,
}

/// Deepest tree walked; deeper trees are refused at creation, and the bound also stops a loop
/// in corrupt data.
pub const MAX_DEPTH: usize = 32;

impl TenantDirectory {
    pub async fn load(store: &Store) -> StoreResult<Self> {
        let directory = Self::default();
        directory.reload(store).await?;
        Ok(directory)
    }

    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        let tenants = store.all_tenants().await?;
        let nodes = tenants
            .into_iter()
            .map(|t| {
                (
                    t.id,
                    Node {
                        parent: t.parent_id,
                        inherit_roles: t.inherit_roles,
                    },
                )
            })
            .collect();
        *self.nodes.write() = nodes;
        Ok(())
    }

    pub fn upsert(&self, tenant: &TenantRecord) {
        self.nodes.write().insert(
            tenant.id.clone(),
            Node {
                parent: tenant.parent_id.clone(),
                inherit_roles: tenant.inherit_roles,
            },
        );
    }

    pub fn remove(&self, id: &TenantId) {
        self.nodes.write().remove(id);
    }

    pub fn contains(&self, id: &TenantId) -> bool {
        self.nodes.read().contains_key(id)
    }

    /// Number of tenants from `id` up to its root, counting both.
    pub fn depth(&self, id: &TenantId) -> usize {
        self.path_to_root(id).len()
    }

    /// `id` followed by its ancestors up to the root; empty for an unknown tenant.
    pub fn path_to_root(&self, id: &TenantId) -> Vec<TenantId> {
        let nodes = self.nodes.read();
        let mut path = Vec::new();
        let mut cursor = Some(id.clone());
        while let Some(tenant) = cursor {
            let Some(node) = nodes.get(&tenant) else {
                break;
            };
            path.push(tenant);
            if path.len() > MAX_DEPTH {
                break;
            }
            cursor = node.parent.clone();
        }
        path
    }

    /// True when `tenant` is `ancestor` or lies below it.
    pub fn is_within(&self, tenant: &TenantId, ancestor: &TenantId) -> bool {
        self.path_to_root(tenant).iter().any(|t| t == ancestor)
    }

    /// Computes the roles that `grants` (roles per tenant) give at `target`, following inheritance.
    pub fn effective_roles(
        &self,
        grants: &BTreeMap<TenantId, Vec<String>>,
        target: &TenantId,
    ) -> BTreeSet<String> {
        let nodes = self.nodes.read();
        let mut roles = BTreeSet::new();
        let mut cursor = target.clone();
        for _ in 0..=MAX_DEPTH {
            if let Some(granted) = grants.get(&cursor) {
                roles.extend(granted.iter().cloned());
            }
            let Some(node) = nodes.get(&cursor) else {
                break;
            };
            if !node.inherit_roles {
                break;
            }
            match &node.parent {
                Some(parent) => cursor = parent.clone(),
                None => break,
            }
        }
        roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, parent: Option<&str>, inherit: bool) -> TenantRecord {
        TenantRecord {
            id: TenantId::parse(id).unwrap(),
            parent_id: parent.map(|p| TenantId::parse(p).unwrap()),
            name: id.to_owned(),
            inherit_roles: inherit,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn id(text: &str) -> TenantId {
        TenantId::parse(text).unwrap()
    }

    #[test]
    fn roles_inherit_down_unless_turned_off() {
        let directory = TenantDirectory::default();
        directory.upsert(&tenant("root0000", None, true));
        directory.upsert(&tenant("child000", Some("root0000"), true));
        directory.upsert(&tenant("closed00", Some("root0000"), false));
        directory.upsert(&tenant("grand000", Some("child000"), true));
        let grants = BTreeMap::from([(id("root0000"), vec!["admin".to_owned()])]);
        assert!(directory
            .effective_roles(&grants, &id("grand000"))
            .contains("admin"));
        assert!(directory
            .effective_roles(&grants, &id("closed00"))
            .is_empty());
        let child_grants = BTreeMap::from([(id("child000"), vec!["reader".to_owned()])]);
        assert!(directory
            .effective_roles(&child_grants, &id("root0000"))
            .is_empty());
    }

    #[test]
    fn is_within_follows_ancestry_only() {
        let directory = TenantDirectory::default();
        directory.upsert(&tenant("root0000", None, true));
        directory.upsert(&tenant("child000", Some("root0000"), true));
        directory.upsert(&tenant("other000", None, true));
        assert!(directory.is_within(&id("child000"), &id("root0000")));
        assert!(!directory.is_within(&id("root0000"), &id("child000")));
        assert!(!directory.is_within(&id("child000"), &id("other000")));
    }
}
