//! Tenant rows: the nodes of the tenant tree.

use sqlx::Row;

use super::{to_flag, Store, StoreError, StoreResult};
use crate::ids::TenantId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub parent_id: Option<TenantId>,
    pub name: String,
    /// Whether roles granted at ancestors apply here.
    pub inherit_roles: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn tenant_from_row(row: &sqlx::any::AnyRow) -> StoreResult<TenantRecord> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "tenant",
        detail,
    };
    let id: String = row.try_get("id")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    Ok(TenantRecord {
        id: TenantId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        parent_id: parent
            .map(|p| TenantId::parse(&p))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        inherit_roles: row.try_get::<i64, _>("inherit_roles")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "id, parent_id, name, inherit_roles, created_at, updated_at";

impl Store {
    pub async fn insert_tenant(&self, tenant: &TenantRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tenants (id, parent_id, name, inherit_roles, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.id.as_str())
        .bind(tenant.parent_id.as_ref().map(|p| p.as_str().to_owned()))
        .bind(&tenant.name)
        .bind(to_flag(tenant.inherit_roles))
        .bind(tenant.created_at)
        .bind(tenant.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("tenant"),
            other => other,
        })?;
        Ok(())
    }

    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    /// Reads every tenant, for the in-memory tenant directory.
    pub async fn all_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenants ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    pub async fn child_tenants(&self, parent: &TenantId) -> StoreResult<Vec<TenantRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE parent_id = $1 ORDER BY created_at, id"
        ))
        .bind(parent.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    pub async fn root_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE parent_id IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    pub async fn update_tenant(&self, tenant: &TenantRecord) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE tenants SET name = $1, inherit_roles = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&tenant.name)
        .bind(to_flag(tenant.inherit_roles))
        .bind(tenant.updated_at)
        .bind(tenant.id.as_str())
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        Ok(())
    }

    /// Deletes a tenant that has no sub-tenants, with its machines and API keys, in one
    /// transaction.
    pub async fn delete_tenant(&self, id: &TenantId) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        // Writes come first so SQLite takes the write lock at once; a tenant with sub-tenants
        // rolls the deletes back below.
        sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM machines WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        let children: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tenants WHERE parent_id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *transaction)
            .await?
            .try_get("n")?;
        if children > 0 {
            transaction.rollback().await?;
            return Err(StoreError::Conflict("sub-tenant"));
        }
        let result = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *transaction)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        transaction.commit().await?;
        Ok(())
    }
}
