//! Machine rows: non-human clients of a tenant, with their credentials and roles.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{parse_json, Store, StoreError, StoreResult};
use crate::credentials::Mode;
use crate::ids::{MachineId, TenantId};

#[derive(Clone, Debug)]
pub struct MachineRecord {
    pub id: MachineId,
    pub tenant_id: TenantId,
    pub name: String,
    pub client_id: String,
    /// HMAC-SHA256 of the client secret under the pepper, hex; `None` for `private_key_jwt`.
    pub secret_hash: Option<String>,
    /// The registered JWKS for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// Roles per tenant id.
    pub roles: BTreeMap<TenantId, Vec<String>>,
    /// Scopes the machine may request; empty means none.
    pub scopes: Vec<String>,
    /// Audiences the machine may request; empty means any.
    pub audiences: Vec<String>,
    /// Extra claims copied into every access token.
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub mode: Mode,
    pub created_at: i64,
}

pub type NewMachine = MachineRecord;

const COLUMNS: &str = "id, tenant_id, name, client_id, secret_hash, jwks, roles, scopes, audiences, claims, mode, created_at";

fn machine_from_row(row: &sqlx::any::AnyRow) -> StoreResult<MachineRecord> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "machine",
        detail,
    };
    let id: String = row.try_get("id")?;
    let tenant: String = row.try_get("tenant_id")?;
    let jwks: Option<String> = row.try_get("jwks")?;
    let mode: String = row.try_get("mode")?;
    Ok(MachineRecord {
        id: MachineId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        tenant_id: TenantId::parse(&tenant).map_err(|e| corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        jwks: jwks
            .map(|text| parse_json("machine jwks", &text))
            .transpose()?,
        roles: parse_json("machine roles", &row.try_get::<String, _>("roles")?)?,
        scopes: parse_json("machine scopes", &row.try_get::<String, _>("scopes")?)?,
        audiences: parse_json("machine audiences", &row.try_get::<String, _>("audiences")?)?,
        claims: parse_json("machine claims", &row.try_get::<String, _>("claims")?)?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt(format!("mode {mode:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

impl Store {
    pub async fn insert_machine(&self, machine: &MachineRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO machines ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(machine.id.as_str())
        .bind(machine.tenant_id.as_str())
        .bind(&machine.name)
        .bind(&machine.client_id)
        .bind(machine.secret_hash.clone())
        .bind(machine.jwks.as_ref().map(to_json))
        .bind(to_json(&machine.roles))
        .bind(to_json(&machine.scopes))
        .bind(to_json(&machine.audiences))
        .bind(to_json(&machine.claims))
        .bind(machine.mode.as_str())
        .bind(machine.created_at)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("machine"),
            other => other,
        })?;
        Ok(())
    }

    pub async fn machine(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> StoreResult<Option<MachineRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM machines WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(machine_from_row).transpose()
    }

    pub async fn machine_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<MachineRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM machines WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(machine_from_row).transpose()
    }

    pub async fn machines_of_tenant(&self, tenant: &TenantId) -> StoreResult<Vec<MachineRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM machines WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(machine_from_row).collect()
    }

    pub async fn delete_machine(&self, tenant: &TenantId, id: &MachineId) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM machines WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound("machine"));
        }
        Ok(())
    }

    /// Records a client assertion's `jti` until its expiry. Returns false when the pair was seen
    /// before, which means the assertion is a replay.
    pub async fn record_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        sqlx::query("DELETE FROM assertion_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        let result = sqlx::query(
            "INSERT INTO assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
