//! Migration progress: how much traffic still uses legacy credentials, which legacy credentials
//! remain, which tenants are ready to enforce, and when the migration may finish.
//!
//! The report is computed on request from the audit events, which the audit writer already
//! stores in batches off the request path, plus the `legacy_links` table of replacement keys.
//! Nothing is written per request for it. The SQL lives in [`load`], the arithmetic in [`build`].
//!
//! Traffic is every successful `verify` or `introspect` event, in three source classes:
//! `native` (a native credential), `legacy_direct` (a legacy credential verified through its
//! adapter) and `legacy_translated` (a native token that token exchange minted from a legacy
//! credential, recorded with source `native` and the originating adapter).

pub mod build;
pub mod html;
pub mod load;

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::ids::TenantId;
use crate::store::StoreResult;

pub use build::{burndown_fit, BurndownFit};

/// Filter of the events a report covers.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Only this legacy adapter's credentials and traffic. Native traffic, which belongs to no
    /// adapter, is kept so that shares stay comparable.
    pub adapter: Option<String>,
    /// Only this tenant and its sub-tenants; `None` covers every tenant (for the CLI).
    pub tenant: Option<TenantId>,
    /// Whether events that name no tenant (failures of unrecognised credentials) are included;
    /// only for a root tenant without a tenant filter, as in the audit API.
    pub include_untenanted: bool,
}

/// Counts of successful traffic by source class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    pub native: i64,
    pub legacy_direct: i64,
    pub legacy_translated: i64,
    pub total: i64,
    /// `(legacyDirect + legacyTranslated) / total`, from 0 to 1; 0 when there is no traffic.
    pub legacy_fraction: f64,
}

/// Traffic counts of one hour or one day.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficBucket {
    /// RFC 3339 start of the bucket.
    pub start: String,
    pub native: i64,
    pub legacy_direct: i64,
    pub legacy_translated: i64,
}

/// Traffic share over the last hour, day and week, ending at the report time.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    pub last_hour: Share,
    pub last_day: Share,
    pub last_week: Share,
    /// The last 24 hours, one bucket per hour, oldest first.
    pub hourly: Vec<TrafficBucket>,
    /// The last 7 days, one bucket per 24 hours ending at the report time, oldest first.
    pub daily: Vec<TrafficBucket>,
}

/// The legacy credential inventory of one adapter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub adapter: String,
    /// Distinct legacy credentials ever seen in audit events or replaced by a native key.
    pub known: i64,
    pub seen_last_day: i64,
    pub seen_last_7_days: i64,
    pub seen_last_30_days: i64,
    pub seen_last_90_days: i64,
    /// Replaced by a native API key through token exchange, or not seen since the same machine
    /// started using a native or translated credential.
    pub migrated: i64,
    /// Known only from a replacement link, with no audit event (for example after pruning).
    pub never_seen: i64,
    /// `known - migrated`.
    pub remaining: i64,
}

/// One legacy credential, named by its fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCredential {
    /// `sha256:` and 16 hex digits of the credential's SHA-256.
    pub fingerprint: String,
    pub adapter: String,
    pub tenant_id: Option<String>,
    /// The mapped machine identifier, or the legacy subject of a replacement link.
    pub owner: Option<String>,
    /// RFC 3339; absent when the credential is known only from a replacement link.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Audit events that name this credential.
    pub uses: i64,
    pub migrated: bool,
    /// The native API key that replaced it, when token exchange minted one.
    pub replacement_key_id: Option<String>,
    #[serde(skip)]
    pub last_seen_unix: Option<i64>,
}

/// Failed traffic events with one reason.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureCount {
    pub reason: String,
    pub last_day: i64,
    pub last_week: i64,
}

/// The phase in force for an adapter, adapter-wide or at a tenant.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterPhase {
    pub adapter: String,
    /// `shadow`, `dual`, `sunset` or `enforce`.
    pub phase: String,
    /// RFC 3339 time the phase took effect.
    pub since: String,
    pub sunset_at: Option<String>,
}

/// Whether a tenant still uses legacy credentials.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantReadiness {
    pub tenant_id: String,
    pub name: String,
    /// RFC 3339 time of the tenant's last legacy credential use; absent when never seen.
    pub last_legacy_use: Option<String>,
    /// True when no legacy credential was used for `readyAfterDays`.
    pub ready: bool,
    /// Legacy credentials of this tenant that are not migrated.
    pub remaining_credentials: i64,
    pub phases: Vec<AdapterPhase>,
}

/// Distinct legacy credentials seen on one day.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BurndownDay {
    /// RFC 3339 start of the 24 hours.
    pub start: String,
    pub credentials: i64,
}

/// The burndown of the last 7 days and its linear projection.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Burndown {
    pub days: Vec<BurndownDay>,
    /// Least-squares slope in credentials per day; absent without data.
    pub slope_per_day: Option<f64>,
    /// RFC 3339 time at which the fitted line reaches zero; absent when the line is not
    /// decreasing.
    pub projected_finish: Option<String>,
}

/// The migration progress report.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    /// RFC 3339 time the report was computed for; every window ends here.
    pub generated_at: String,
    /// The root of the subtree covered; absent when the report covers every tenant.
    pub tenant_id: Option<String>,
    pub adapter: Option<String>,
    pub ready_after_days: u32,
    pub traffic: Traffic,
    pub inventory: Vec<Inventory>,
    /// Not-migrated legacy credentials, most recently seen first, at most 20.
    pub recent_credentials: Vec<LegacyCredential>,
    /// Not-migrated legacy credentials, least recently seen first, at most 20.
    pub stalest_credentials: Vec<LegacyCredential>,
    /// Failed `verify` and `introspect` events by reason, most frequent first.
    pub failures: Vec<FailureCount>,
    /// Events marked as shadow-mode disagreements in the last 7 days.
    pub shadow_disagreements: i64,
    pub phases: Vec<AdapterPhase>,
    pub readiness: Vec<TenantReadiness>,
    pub burndown: Burndown,
}

/// Computes the report at `now` (Unix seconds) for `scope`.
pub async fn report(app: &App, now: i64, scope: &Scope) -> StoreResult<ProgressReport> {
    let inputs = load::load(&app.store, now).await?;
    let tenants = app.store.all_tenants().await?;
    let context = build::Context::new(app, scope, now, tenants);
    Ok(build::report(&inputs, &context))
}

/// Lists the legacy credentials in `scope`, most recently seen first.
pub async fn credentials(app: &App, now: i64, scope: &Scope) -> StoreResult<Vec<LegacyCredential>> {
    let inputs = load::load(&app.store, now).await?;
    let context = build::Context::new(app, scope, now, Vec::new());
    Ok(build::credentials(&inputs, &context))
}
