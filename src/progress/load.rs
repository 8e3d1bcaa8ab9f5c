//! Aggregate queries over `audit_events` and `legacy_links` that feed the progress report.
//!
//! The queries group in SQL and leave the tenant subtree check to the caller, because SQL cannot
//! see the tenant tree. Every query is written in the SQL that SQLite and PostgreSQL both accept.

use sqlx::Row;

use crate::store::{Store, StoreResult};

/// Audit actions that count as traffic: a credential presented to a relying party.
/// Forward-auth records its checks as `verify`.
pub const TRAFFIC_ACTIONS: &str = "('verify', 'introspect')";

/// Reason code that marks a shadow-mode disagreement between the legacy and the native decision.
pub const SHADOW_DISAGREEMENT_REASON: &str = "shadow_disagreement";

/// Successful traffic events counted per hour, tenant, source and adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficRow {
    /// Hour index from the start of the 7-day window: 0 to 167.
    pub hour: i64,
    pub tenant_id: Option<String>,
    pub source: String,
    pub adapter: Option<String>,
    pub count: i64,
}

/// One legacy credential (by fingerprint) as seen in audit events of one tenant and machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRow {
    pub fingerprint: String,
    pub adapter: String,
    pub tenant_id: Option<String>,
    pub machine_id: Option<String>,
    /// Unix seconds.
    pub first_seen: i64,
    /// Unix seconds.
    pub last_seen: i64,
    pub uses: i64,
}

/// A legacy credential seen on one day of the 7-day window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyUseRow {
    /// Day index from the start of the 7-day window: 0 to 6.
    pub day: i64,
    pub fingerprint: String,
    pub adapter: String,
    pub tenant_id: Option<String>,
}

/// Failed traffic events counted per tenant, adapter and reason over the 7-day window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRow {
    pub tenant_id: Option<String>,
    pub adapter: Option<String>,
    pub reason: String,
    /// Whether these events fall in the last 24 hours.
    pub last_day: bool,
    pub count: i64,
}

/// A legacy credential replaced by a native API key through token exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    /// The audit fingerprint of the legacy credential: `sha256:` and the first 16 hex digits
    /// of the stored full SHA-256.
    pub fingerprint: String,
    pub adapter: String,
    pub tenant_id: String,
    pub legacy_subject: Option<String>,
    pub api_key_id: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The last successful native (or translated) use by a machine of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeUseRow {
    pub tenant_id: String,
    pub machine_id: String,
    /// Unix seconds.
    pub last_seen: i64,
}

/// Shadow disagreements counted per tenant and adapter over the 7-day window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowRow {
    pub tenant_id: Option<String>,
    pub adapter: Option<String>,
    pub count: i64,
}

/// Everything the report is computed from, read at one time `now`.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Unix seconds; the end (exclusive) of every window.
    pub now: i64,
    pub traffic: Vec<TrafficRow>,
    pub credentials: Vec<CredentialRow>,
    pub daily_use: Vec<DailyUseRow>,
    pub failures: Vec<FailureRow>,
    pub links: Vec<LinkRow>,
    pub native_use: Vec<NativeUseRow>,
    pub shadow: Vec<ShadowRow>,
}

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
pub const WEEK: i64 = 7 * DAY;

/// Reads the inputs of a report at `now` (Unix seconds).
pub async fn load(store: &Store, now: i64) -> StoreResult<Inputs> {
    let week_start = now - WEEK;
    Ok(Inputs {
        now,
        traffic: traffic(store, week_start, now).await?,
        credentials: credentials(store, now).await?,
        daily_use: daily_use(store, week_start, now).await?,
        failures: failures(store, week_start, now).await?,
        links: links(store).await?,
        native_use: native_use(store, now).await?,
        shadow: shadow(store, week_start, now).await?,
    })
}

async fn traffic(store: &Store, since: i64, until: i64) -> StoreResult<Vec<TrafficRow>> {
    let sql = format!(
        "SELECT (occurred_at - $1) / {HOUR} AS hour, tenant_id, source, adapter, COUNT(*) AS count \
         FROM audit_events \
         WHERE action IN {TRAFFIC_ACTIONS} AND outcome = 'success' \
         AND occurred_at >= $2 AND occurred_at < $3 \
         GROUP BY 1, 2, 3, 4"
    );
    let rows = sqlx::query(&sql)
        .bind(since)
        .bind(since)
        .bind(until)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TrafficRow {
                hour: row.try_get("hour")?,
                tenant_id: row.try_get("tenant_id")?,
                source: row.try_get("source")?,
                adapter: row.try_get("adapter")?,
                count: row.try_get("count")?,
            })
        })
        .collect()
}

/// Every legacy credential ever seen, whatever the action and outcome: a row with a legacy
/// source means the credential verified as a legacy credential.
async fn credentials(store: &Store, until: i64) -> StoreResult<Vec<CredentialRow>> {
    let rows = sqlx::query(
        "SELECT fingerprint, source, tenant_id, machine_id, MIN(occurred_at) AS first_seen, \
         MAX(occurred_at) AS last_seen, COUNT(*) AS uses \
         FROM audit_events \
         WHERE source <> 'native' AND fingerprint IS NOT NULL AND occurred_at < $1 \
         GROUP BY fingerprint, source, tenant_id, machine_id",
    )
    .bind(until)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CredentialRow {
                fingerprint: row.try_get("fingerprint")?,
                adapter: row.try_get("source")?,
                tenant_id: row.try_get("tenant_id")?,
                machine_id: row.try_get("machine_id")?,
                first_seen: row.try_get("first_seen")?,
                last_seen: row.try_get("last_seen")?,
                uses: row.try_get("uses")?,
            })
        })
        .collect()
}

async fn daily_use(store: &Store, since: i64, until: i64) -> StoreResult<Vec<DailyUseRow>> {
    let sql = format!(
        "SELECT DISTINCT (occurred_at - $1) / {DAY} AS day, fingerprint, source, tenant_id \
         FROM audit_events \
         WHERE source <> 'native' AND fingerprint IS NOT NULL \
         AND occurred_at >= $2 AND occurred_at < $3"
    );
    let rows = sqlx::query(&sql)
        .bind(since)
        .bind(since)
        .bind(until)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DailyUseRow {
                day: row.try_get("day")?,
                fingerprint: row.try_get("fingerprint")?,
                adapter: row.try_get("source")?,
                tenant_id: row.try_get("tenant_id")?,
            })
        })
        .collect()
}

async fn failures(store: &Store, since: i64, until: i64) -> StoreResult<Vec<FailureRow>> {
    let sql = format!(
        "SELECT tenant_id, adapter, reason, \
         CAST(CASE WHEN occurred_at >= $1 THEN 1 ELSE 0 END AS BIGINT) AS last_day, \
         COUNT(*) AS count \
         FROM audit_events \
         WHERE action IN {TRAFFIC_ACTIONS} AND outcome = 'failure' \
         AND occurred_at >= $2 AND occurred_at < $3 \
         GROUP BY 1, 2, 3, 4"
    );
    let rows = sqlx::query(&sql)
        .bind(until - DAY)
        .bind(since)
        .bind(until)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let last_day: i64 = row.try_get("last_day")?;
            Ok(FailureRow {
                tenant_id: row.try_get("tenant_id")?,
                adapter: row.try_get("adapter")?,
                reason: row.try_get("reason")?,
                last_day: last_day == 1,
                count: row.try_get("count")?,
            })
        })
        .collect()
}

async fn links(store: &Store) -> StoreResult<Vec<LinkRow>> {
    let rows = sqlx::query(
        "SELECT credential_hash, adapter, tenant_id, legacy_subject, api_key_id, created_at \
         FROM legacy_links",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let hash: String = row.try_get("credential_hash")?;
            Ok(LinkRow {
                fingerprint: fingerprint_of_hash(&hash),
                adapter: row.try_get("adapter")?,
                tenant_id: row.try_get("tenant_id")?,
                legacy_subject: row.try_get("legacy_subject")?,
                api_key_id: row.try_get("api_key_id")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Converts the full hex SHA-256 that `legacy_links` stores into the audit fingerprint form
/// that [`crate::verify::fingerprint`] produces for the same credential.
pub fn fingerprint_of_hash(hash: &str) -> String {
    let prefix: String = hash.chars().take(16).collect();
    format!("sha256:{prefix}")
}

async fn native_use(store: &Store, until: i64) -> StoreResult<Vec<NativeUseRow>> {
    let rows = sqlx::query(
        "SELECT tenant_id, machine_id, MAX(occurred_at) AS last_seen \
         FROM audit_events \
         WHERE source = 'native' AND outcome = 'success' \
         AND tenant_id IS NOT NULL AND machine_id IS NOT NULL AND occurred_at < $1 \
         GROUP BY tenant_id, machine_id",
    )
    .bind(until)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NativeUseRow {
                tenant_id: row.try_get("tenant_id")?,
                machine_id: row.try_get("machine_id")?,
                last_seen: row.try_get("last_seen")?,
            })
        })
        .collect()
}

async fn shadow(store: &Store, since: i64, until: i64) -> StoreResult<Vec<ShadowRow>> {
    let rows = sqlx::query(
        "SELECT tenant_id, adapter, COUNT(*) AS count FROM audit_events \
         WHERE reason = $1 AND occurred_at >= $2 AND occurred_at < $3 \
         GROUP BY tenant_id, adapter",
    )
    .bind(SHADOW_DISAGREEMENT_REASON)
    .bind(since)
    .bind(until)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ShadowRow {
                tenant_id: row.try_get("tenant_id")?,
                adapter: row.try_get("adapter")?,
                count: row.try_get("count")?,
            })
        })
        .collect()
}
