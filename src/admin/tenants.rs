//! Creating, reading, changing and deleting tenants.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_name, AdminError, AdminResult};
use crate::app::App;
use crate::clock::to_rfc3339;
use crate::ids::TenantId;
use crate::store::{StoreError, TenantRecord};
use crate::tenancy::MAX_DEPTH;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// The parent tenant; omitted for a root tenant.
    pub parent_id: Option<String>,
    /// Whether roles granted at ancestors apply in this tenant. Default true.
    pub inherit_roles: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub inherit_roles: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub inherit_roles: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&TenantRecord> for TenantView {
    fn from(tenant: &TenantRecord) -> Self {
        Self {
            id: tenant.id.to_string(),
            parent_id: tenant.parent_id.as_ref().map(ToString::to_string),
            name: tenant.name.clone(),
            inherit_roles: tenant.inherit_roles,
            created_at: to_rfc3339(tenant.created_at),
            updated_at: to_rfc3339(tenant.updated_at),
        }
    }
}

pub fn parse_tenant_id(text: &str) -> AdminResult<TenantId> {
    TenantId::parse(text).map_err(|e| AdminError::Invalid(e.to_string()))
}

impl App {
    /// Creates a tenant. `parent_id` must exist; `None` creates a root tenant.
    pub async fn create_tenant(&self, request: &CreateTenant) -> AdminResult<TenantRecord> {
        let name = check_name(&request.name, "tenant")?;
        let parent_id = request
            .parent_id
            .as_deref()
            .map(parse_tenant_id)
            .transpose()?;
        if let Some(parent) = &parent_id {
            if !self.directory.contains(parent) {
                return Err(AdminError::NotFound("parent tenant"));
            }
            if self.directory.depth(parent) >= MAX_DEPTH {
                return Err(AdminError::Invalid(format!(
                    "tenant trees are limited to {MAX_DEPTH} levels"
                )));
            }
        }
        let now = self.clock.now();
        // A collision among 36^8 ids is unlikely but possible; retry with a fresh id.
        for _ in 0..5 {
            let tenant = TenantRecord {
                id: TenantId::generate(),
                parent_id: parent_id.clone(),
                name: name.clone(),
                inherit_roles: request.inherit_roles.unwrap_or(true),
                created_at: now,
                updated_at: now,
            };
            match self.store.insert_tenant(&tenant).await {
                Ok(()) => {
                    self.directory.upsert(&tenant);
                    self.announce(crate::cluster::Change::Tenants).await;
                    self.announce(crate::cluster::Change::Tenants).await;
                    return Ok(tenant);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(AdminError::Conflict(
            "could not allocate a tenant id".to_owned(),
        ))
    }

    pub async fn tenant(&self, id: &TenantId) -> AdminResult<TenantRecord> {
        self.store
            .tenant(id)
            .await?
            .ok_or(AdminError::NotFound("tenant"))
    }

    pub async fn update_tenant(
        &self,
        id: &TenantId,
        request: &UpdateTenant,
    ) -> AdminResult<TenantRecord> {
        let mut tenant = self.tenant(id).await?;
        if let Some(name) = &request.name {
            tenant.name = check_name(name, "tenant")?;
        }
        if let Some(inherit) = request.inherit_roles {
            tenant.inherit_roles = inherit;
        }
        tenant.updated_at = self.clock.now();
        self.store.update_tenant(&tenant).await?;
        self.directory.upsert(&tenant);
        Ok(tenant)
    }

    /// Deletes a tenant without sub-tenants, with its machines and API keys.
    pub async fn delete_tenant(&self, id: &TenantId) -> AdminResult<()> {
        match self.store.delete_tenant(id).await {
            Err(StoreError::Conflict(_)) => {
                return Err(AdminError::Conflict(format!(
                    "tenant {id} has sub-tenants: delete them first"
                )))
            }
            other => other?,
        }
        self.directory.remove(id);
        self.verifier.api_key_cache().clear();
        self.announce(crate::cluster::Change::Tenants).await;
        Ok(())
    }
}
