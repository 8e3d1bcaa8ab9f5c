//! The compliance report: what happened in a tenant subtree during a period, from the audit
//! events: counts by outcome and reason, out-of-scope attempts, and credentials created,
//! revoked and used.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::clock::to_rfc3339;
use crate::ids::TenantId;
use crate::store::{Store, StoreResult};
use crate::tenancy::TenantDirectory;

/// Events read per query while the report is built.
const PAGE: i64 = 5000;

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceReport {
    /// The subtree covered; `None` for every tenant.
    pub tenant_id: Option<String>,
    pub since: String,
    pub until: String,
    pub events: i64,
    pub by_outcome: BTreeMap<String, i64>,
    pub by_reason: BTreeMap<String, i64>,
    pub by_action: BTreeMap<String, i64>,
    pub out_of_scope_attempts: i64,
    /// API keys and machines created, including keys minted by token exchange and rotation.
    pub credentials_created: i64,
    /// API keys and tokens revoked.
    pub credentials_revoked: i64,
    /// Distinct credentials (by fingerprint) that verified successfully.
    pub credentials_used: i64,
}

fn is_creation(action: &str, outcome: &str, detail: Option<&str>) -> bool {
    match action {
        "admin:api_key.create" | "admin:api_key.rotate" | "admin:machine.create" => {
            outcome == "success"
        }
        "exchange" => {
            outcome == "success" && detail.is_some_and(|d| d.contains("token-type:api-key"))
        }
        _ => false,
    }
}

fn is_revocation(action: &str, outcome: &str) -> bool {
    matches!(action, "admin:api_key.revoke" | "revoke") && outcome == "success"
}

/// Builds the report for events in `[since, until)` of `tenant`'s subtree (or of every tenant).
/// Events without a tenant are included only for the whole-deployment report.
pub async fn compliance_report(
    store: &Store,
    directory: &TenantDirectory,
    tenant: Option<&TenantId>,
    since: i64,
    until: i64,
) -> StoreResult<ComplianceReport> {
    let mut report = ComplianceReport {
        tenant_id: tenant.map(ToString::to_string),
        since: to_rfc3339(since),
        until: to_rfc3339(until),
        ..ComplianceReport::default()
    };
    let mut used = BTreeSet::new();
    let mut last_id = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT id, action, outcome, reason, fingerprint, tenant_id, detail FROM audit_events \
             WHERE occurred_at >= $1 AND occurred_at < $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(since)
        .bind(until)
        .bind(last_id)
        .bind(PAGE)
        .fetch_all(store.pool())
        .await?;
        let count = rows.len();
        for row in rows {
            last_id = row.try_get("id")?;
            let event_tenant: Option<String> = row.try_get("tenant_id")?;
            let in_scope = match (tenant, &event_tenant) {
                (None, _) => true,
                (Some(root), Some(text)) => {
                    TenantId::parse(text).is_ok_and(|t| directory.is_within(&t, root))
                }
                (Some(_), None) => false,
            };
            if !in_scope {
                continue;
            }
            let action: String = row.try_get("action")?;
            let outcome: String = row.try_get("outcome")?;
            let reason: String = row.try_get("reason")?;
            let fingerprint: Option<String> = row.try_get("fingerprint")?;
            let detail: Option<String> = row.try_get("detail")?;
            report.events += 1;
            *report.by_outcome.entry(outcome.clone()).or_default() += 1;
            *report.by_reason.entry(reason.clone()).or_default() += 1;
            *report.by_action.entry(action.clone()).or_default() += 1;
            if reason == "out_of_scope" {
                report.out_of_scope_attempts += 1;
            }
            if is_creation(&action, &outcome, detail.as_deref()) {
                report.credentials_created += 1;
            }
            if is_revocation(&action, &outcome) {
                report.credentials_revoked += 1;
            }
            if matches!(action.as_str(), "verify" | "introspect") && outcome == "success" {
                if let Some(fingerprint) = fingerprint {
                    used.insert(fingerprint);
                }
            }
        }
        if i64::try_from(count).unwrap_or(0) < PAGE {
            break;
        }
    }
    report.credentials_used = i64::try_from(used.len()).unwrap_or(i64::MAX);
    Ok(report)
}
