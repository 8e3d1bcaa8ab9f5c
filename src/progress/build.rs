//! The arithmetic of the progress report: windows, shares, inventory, readiness and the
//! burndown fit, computed from already loaded rows so that it can be tested without a store.

use std::collections::{BTreeMap, HashMap};

use super::load::{Inputs, DAY, HOUR, WEEK};
use super::{
    AdapterPhase, Burndown, BurndownDay, FailureCount, Inventory, LegacyCredential, ProgressReport,
    Scope, Share, TenantReadiness, Traffic, TrafficBucket,
};
use crate::app::App;
use crate::clock::to_rfc3339;
use crate::ids::TenantId;
use crate::store::TenantRecord;

/// Maximum credentials in each list of the report.
const LIST_LIMIT: usize = 20;

/// Source class of a traffic event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceClass {
    Native,
    LegacyDirect,
    LegacyTranslated,
}

/// Classifies an event by its `source` and `adapter` columns: a legacy source is a legacy
/// credential, and a native source with an adapter is a token minted by token exchange.
pub fn classify(source: &str, adapter: Option<&str>) -> SourceClass {
    match (source, adapter) {
        ("native", None) => SourceClass::Native,
        ("native", Some(_)) => SourceClass::LegacyTranslated,
        _ => SourceClass::LegacyDirect,
    }
}

/// What the report covers and the facts it needs besides the rows: the tenant tree and phases.
pub struct Context {
    pub now: i64,
    pub tenant: Option<String>,
    pub adapter: Option<String>,
    pub ready_after_days: u32,
    pub include_untenanted: bool,
    /// Returns true for a tenant id inside the scope's subtree.
    pub in_subtree: Box<dyn Fn(&str) -> bool + Send + Sync>,
    /// Tenants of the subtree, as `(id, name)`, in the order the readiness board lists them.
    pub tenants: Vec<(String, String)>,
    /// Adapter-wide phases of the adapters in scope.
    pub phases: Vec<AdapterPhase>,
    /// Phases in force per tenant id.
    pub tenant_phases: HashMap<String, Vec<AdapterPhase>>,
}

impl Context {
    /// Collects the context of `scope` from the running daemon.
    pub fn new(app: &App, scope: &Scope, now: i64, tenants: Vec<TenantRecord>) -> Self {
        let directory = app.directory.clone();
        let root = scope.tenant.clone();
        let in_subtree = {
            let directory = directory.clone();
            let root = root.clone();
            move |tenant: &str| match &root {
                None => true,
                Some(root) => {
                    TenantId::parse(tenant).is_ok_and(|tenant| directory.is_within(&tenant, root))
                }
            }
        };
        let adapters: Vec<_> = app
            .verifier
            .adapters()
            .all()
            .iter()
            .filter(|adapter| {
                scope
                    .adapter
                    .as_ref()
                    .is_none_or(|name| *name == adapter.name)
            })
            .cloned()
            .collect();
        let phase_at = |tenant: Option<&TenantId>| -> Vec<AdapterPhase> {
            adapters
                .iter()
                .map(|adapter| {
                    let in_force =
                        app.phases
                            .in_force(&adapter.name, adapter.phase, tenant, &directory, now);
                    AdapterPhase {
                        adapter: adapter.name.clone(),
                        phase: in_force.phase.as_str().to_owned(),
                        since: to_rfc3339(in_force.since),
                        sunset_at: in_force.sunset_at.map(to_rfc3339),
                    }
                })
                .collect()
        };
        let tenants: Vec<TenantRecord> = tenants
            .into_iter()
            .filter(|tenant| {
                root.as_ref()
                    .is_none_or(|root| directory.is_within(&tenant.id, root))
            })
            .collect();
        let tenant_phases = tenants
            .iter()
            .map(|tenant| (tenant.id.to_string(), phase_at(Some(&tenant.id))))
            .collect();
        Self {
            now,
            tenant: root.as_ref().map(ToString::to_string),
            adapter: scope.adapter.clone(),
            ready_after_days: app.config.progress.ready_after_days,
            include_untenanted: scope.include_untenanted,
            in_subtree: Box::new(in_subtree),
            tenants: tenants
                .into_iter()
                .map(|tenant| (tenant.id.to_string(), tenant.name))
                .collect(),
            phases: phase_at(None),
            tenant_phases,
        }
    }

    fn tenant_visible(&self, tenant: Option<&str>) -> bool {
        match tenant {
            Some(tenant) => (self.in_subtree)(tenant),
            None => self.include_untenanted,
        }
    }

    fn adapter_matches(&self, adapter: Option<&str>) -> bool {
        match &self.adapter {
            None => true,
            Some(wanted) => adapter == Some(wanted.as_str()),
        }
    }
}

/// Computes the whole report.
pub fn report(inputs: &Inputs, context: &Context) -> ProgressReport {
    let credentials = credentials(inputs, context);
    let open: Vec<&LegacyCredential> = credentials.iter().filter(|c| !c.migrated).collect();
    let mut stalest = open.clone();
    stalest.sort_by_key(|c| (c.last_seen_unix, c.fingerprint.clone()));
    ProgressReport {
        generated_at: to_rfc3339(context.now),
        tenant_id: context.tenant.clone(),
        adapter: context.adapter.clone(),
        ready_after_days: context.ready_after_days,
        traffic: traffic(inputs, context),
        inventory: inventory(&credentials, context.now),
        recent_credentials: open.iter().take(LIST_LIMIT).map(|c| (*c).clone()).collect(),
        stalest_credentials: stalest.into_iter().take(LIST_LIMIT).cloned().collect(),
        failures: failures(inputs, context),
        shadow_disagreements: inputs
            .shadow
            .iter()
            .filter(|row| context.tenant_visible(row.tenant_id.as_deref()))
            .filter(|row| context.adapter_matches(row.adapter.as_deref()))
            .map(|row| row.count)
            .sum(),
        phases: context.phases.clone(),
        readiness: readiness(&credentials, context),
        burndown: burndown(inputs, context),
    }
}

fn add(share: &mut Share, class: SourceClass, count: i64) {
    match class {
        SourceClass::Native => share.native += count,
        SourceClass::LegacyDirect => share.legacy_direct += count,
        SourceClass::LegacyTranslated => share.legacy_translated += count,
    }
}

fn finish(mut share: Share) -> Share {
    share.total = share.native + share.legacy_direct + share.legacy_translated;
    share.legacy_fraction = if share.total == 0 {
        0.0
    } else {
        (share.legacy_direct + share.legacy_translated) as f64 / share.total as f64
    };
    share
}

fn bucket(start: i64, share: &Share) -> TrafficBucket {
    TrafficBucket {
        start: to_rfc3339(start),
        native: share.native,
        legacy_direct: share.legacy_direct,
        legacy_translated: share.legacy_translated,
    }
}

/// Sums traffic into 168 hourly buckets of the week ending at `now`, then derives the windows.
pub fn traffic(inputs: &Inputs, context: &Context) -> Traffic {
    let week_start = context.now - WEEK;
    let mut hours = vec![Share::default(); (WEEK / HOUR) as usize];
    for row in &inputs.traffic {
        if !context.tenant_visible(row.tenant_id.as_deref()) {
            continue;
        }
        let class = classify(&row.source, row.adapter.as_deref());
        if class != SourceClass::Native && !context.adapter_matches(row.adapter.as_deref()) {
            continue;
        }
        if let Some(hour) = usize::try_from(row.hour)
            .ok()
            .and_then(|h| hours.get_mut(h))
        {
            add(hour, class, row.count);
        }
    }
    let sum = |range: std::ops::Range<usize>| {
        let mut total = Share::default();
        for hour in &hours[range] {
            total.native += hour.native;
            total.legacy_direct += hour.legacy_direct;
            total.legacy_translated += hour.legacy_translated;
        }
        total
    };
    let count = hours.len();
    let hourly = (count - 24..count)
        .map(|h| bucket(week_start + h as i64 * HOUR, &hours[h]))
        .collect();
    let daily = (0..7)
        .map(|d| bucket(week_start + d as i64 * DAY, &sum(d * 24..(d + 1) * 24)))
        .collect();
    Traffic {
        last_hour: finish(sum(count - 1..count)),
        last_day: finish(sum(count - 24..count)),
        last_week: finish(sum(0..count)),
        hourly,
        daily,
    }
}

/// Lists the legacy credentials in scope, most recently seen first, with their migration state.
pub fn credentials(inputs: &Inputs, context: &Context) -> Vec<LegacyCredential> {
    // Native or translated use per (tenant, machine): a legacy credential of that machine that
    // was not seen after it counts as replaced.
    let native_use: HashMap<(&str, &str), i64> = inputs
        .native_use
        .iter()
        .map(|row| {
            (
                (row.tenant_id.as_str(), row.machine_id.as_str()),
                row.last_seen,
            )
        })
        .collect();
    let links: HashMap<&str, _> = inputs
        .links
        .iter()
        .map(|link| (link.fingerprint.as_str(), link))
        .collect();

    // One credential may appear under several tenants or machines; the most recent row names it.
    let mut merged: BTreeMap<(String, String), LegacyCredential> = BTreeMap::new();
    for row in &inputs.credentials {
        if !context.tenant_visible(row.tenant_id.as_deref())
            || !context.adapter_matches(Some(&row.adapter))
        {
            continue;
        }
        let key = (row.adapter.clone(), row.fingerprint.clone());
        let entry = merged.entry(key).or_insert_with(|| LegacyCredential {
            fingerprint: row.fingerprint.clone(),
            adapter: row.adapter.clone(),
            tenant_id: row.tenant_id.clone(),
            owner: row.machine_id.clone(),
            first_seen: Some(to_rfc3339(row.first_seen)),
            last_seen: Some(to_rfc3339(row.last_seen)),
            uses: 0,
            migrated: false,
            replacement_key_id: None,
            last_seen_unix: Some(row.last_seen),
        });
        entry.uses += row.uses;
        if entry
            .last_seen_unix
            .is_some_and(|last| row.last_seen > last)
        {
            entry.tenant_id = row.tenant_id.clone();
            entry.owner = row.machine_id.clone();
            entry.last_seen = Some(to_rfc3339(row.last_seen));
            entry.last_seen_unix = Some(row.last_seen);
        }
        let first = to_rfc3339(row.first_seen);
        if entry.first_seen.as_ref().is_some_and(|f| first < *f) {
            entry.first_seen = Some(first);
        }
    }
    for link in &inputs.links {
        if !context.tenant_visible(Some(&link.tenant_id))
            || !context.adapter_matches(Some(&link.adapter))
        {
            continue;
        }
        merged
            .entry((link.adapter.clone(), link.fingerprint.clone()))
            .or_insert_with(|| LegacyCredential {
                fingerprint: link.fingerprint.clone(),
                adapter: link.adapter.clone(),
                tenant_id: Some(link.tenant_id.clone()),
                owner: link.legacy_subject.clone(),
                first_seen: None,
                last_seen: None,
                uses: 0,
                migrated: true,
                replacement_key_id: None,
                last_seen_unix: None,
            });
    }

    let mut list: Vec<LegacyCredential> = merged.into_values().collect();
    for credential in &mut list {
        if let Some(link) = links.get(credential.fingerprint.as_str()) {
            credential.migrated = true;
            credential.replacement_key_id = Some(link.api_key_id.clone());
        }
        let replaced = match (
            &credential.tenant_id,
            &credential.owner,
            credential.last_seen_unix,
        ) {
            (Some(tenant), Some(owner), Some(last)) => native_use
                .get(&(tenant.as_str(), owner.as_str()))
                .is_some_and(|native_last| *native_last > last),
            _ => false,
        };
        credential.migrated |= replaced;
    }
    list.sort_by(|a, b| {
        b.last_seen_unix
            .cmp(&a.last_seen_unix)
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    list
}

/// Counts the inventory per adapter, sorted by adapter name.
pub fn inventory(credentials: &[LegacyCredential], now: i64) -> Vec<Inventory> {
    let mut per_adapter: BTreeMap<&str, Inventory> = BTreeMap::new();
    for credential in credentials {
        let entry = per_adapter
            .entry(credential.adapter.as_str())
            .or_insert_with(|| Inventory {
                adapter: credential.adapter.clone(),
                ..Inventory::default()
            });
        entry.known += 1;
        match credential.last_seen_unix {
            None => entry.never_seen += 1,
            Some(last) => {
                let age = now - last;
                entry.seen_last_day += i64::from(age < DAY);
                entry.seen_last_7_days += i64::from(age < 7 * DAY);
                entry.seen_last_30_days += i64::from(age < 30 * DAY);
                entry.seen_last_90_days += i64::from(age < 90 * DAY);
            }
        }
        entry.migrated += i64::from(credential.migrated);
        entry.remaining = entry.known - entry.migrated;
    }
    per_adapter.into_values().collect()
}

fn failures(inputs: &Inputs, context: &Context) -> Vec<FailureCount> {
    let mut per_reason: BTreeMap<&str, FailureCount> = BTreeMap::new();
    for row in &inputs.failures {
        if !context.tenant_visible(row.tenant_id.as_deref()) {
            continue;
        }
        if context.adapter.is_some() && !context.adapter_matches(row.adapter.as_deref()) {
            continue;
        }
        let entry = per_reason
            .entry(row.reason.as_str())
            .or_insert_with(|| FailureCount {
                reason: row.reason.clone(),
                last_day: 0,
                last_week: 0,
            });
        entry.last_week += row.count;
        if row.last_day {
            entry.last_day += row.count;
        }
    }
    let mut list: Vec<FailureCount> = per_reason.into_values().collect();
    list.sort_by(|a, b| {
        b.last_week
            .cmp(&a.last_week)
            .then_with(|| a.reason.cmp(&b.reason))
    });
    list
}

fn readiness(credentials: &[LegacyCredential], context: &Context) -> Vec<TenantReadiness> {
    let quiet_seconds = i64::from(context.ready_after_days) * DAY;
    context
        .tenants
        .iter()
        .map(|(id, name)| {
            let own = credentials
                .iter()
                .filter(|c| c.tenant_id.as_deref() == Some(id.as_str()));
            let last_use = own.clone().filter_map(|c| c.last_seen_unix).max();
            TenantReadiness {
                tenant_id: id.clone(),
                name: name.clone(),
                last_legacy_use: last_use.map(to_rfc3339),
                ready: last_use.is_none_or(|last| context.now - last >= quiet_seconds),
                remaining_credentials: own.filter(|c| !c.migrated).count() as i64,
                phases: context.tenant_phases.get(id).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// A least-squares line through daily counts, and where it reaches zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurndownFit {
    /// Change per day.
    pub slope: f64,
    /// Fitted value at day 0.
    pub intercept: f64,
    /// The day index at which the line reaches zero; `None` unless the slope is negative.
    pub zero_day: Option<f64>,
}

/// Fits `counts[i]` against day `i` by least squares. Returns `None` for fewer than 2 points.
pub fn burndown_fit(counts: &[i64]) -> Option<BurndownFit> {
    if counts.len() < 2 {
        return None;
    }
    let n = counts.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = counts.iter().sum::<i64>() as f64 / n;
    let mut covariance = 0.0;
    let mut variance = 0.0;
    for (i, count) in counts.iter().enumerate() {
        let dx = i as f64 - mean_x;
        covariance += dx * (*count as f64 - mean_y);
        variance += dx * dx;
    }
    let slope = covariance / variance;
    let intercept = mean_y - slope * mean_x;
    let zero_day = (slope < 0.0).then(|| -intercept / slope);
    Some(BurndownFit {
        slope,
        intercept,
        zero_day,
    })
}

/// Counts distinct legacy credentials per day of the last week and projects the finish.
///
/// Day `i` covers `[now - 7d + i·24h, now - 7d + (i+1)·24h)`, and its point sits at the end of
/// that span, so the last point is `now`; the finish is where the fitted line reaches zero.
pub fn burndown(inputs: &Inputs, context: &Context) -> Burndown {
    let week_start = context.now - WEEK;
    let mut per_day: Vec<std::collections::BTreeSet<&str>> = vec![Default::default(); 7];
    for row in &inputs.daily_use {
        if !context.tenant_visible(row.tenant_id.as_deref())
            || !context.adapter_matches(Some(&row.adapter))
        {
            continue;
        }
        if let Some(day) = usize::try_from(row.day)
            .ok()
            .and_then(|d| per_day.get_mut(d))
        {
            day.insert(row.fingerprint.as_str());
        }
    }
    let counts: Vec<i64> = per_day.iter().map(|set| set.len() as i64).collect();
    let fit = burndown_fit(&counts);
    let projected_finish = fit.and_then(|fit| fit.zero_day).map(|zero_day| {
        let last_point = counts.len() as f64 - 1.0;
        let finish = context.now + ((zero_day - last_point) * DAY as f64).round() as i64;
        // NOTE: a line that already crossed zero while credentials are still in use projects a
        // past date; the report shows `now` then, since the remaining ones are still to migrate.
        to_rfc3339(finish.max(context.now))
    });
    Burndown {
        days: counts
            .iter()
            .enumerate()
            .map(|(i, count)| BurndownDay {
                start: to_rfc3339(week_start + i as i64 * DAY),
                credentials: *count,
            })
            .collect(),
        slope_per_day: fit.map(|fit| fit.slope),
        projected_finish,
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::{CredentialRow, DailyUseRow, LinkRow, NativeUseRow, TrafficRow};
    use super::*;

    const NOW: i64 = 1_704_067_200 + 30 * DAY;

    /// Builds a context without a running daemon: `tenants` are the whole subtree.
    fn plain_context(now: i64, tenants: &[&str], ready_after_days: u32) -> Context {
        let owned: Vec<String> = tenants.iter().map(|t| (*t).to_owned()).collect();
        let members = owned.clone();
        Context {
            now,
            tenant: owned.first().cloned(),
            adapter: None,
            ready_after_days,
            include_untenanted: true,
            in_subtree: Box::new(move |tenant| members.iter().any(|m| m == tenant)),
            tenants: owned.iter().map(|t| (t.clone(), t.clone())).collect(),
            phases: Vec::new(),
            tenant_phases: HashMap::new(),
        }
    }

    #[test]
    fn classify_by_source_and_adapter() {
        assert_eq!(classify("native", None), SourceClass::Native);
        assert_eq!(
            classify("native", Some("old-idp")),
            SourceClass::LegacyTranslated
        );
        assert_eq!(
            classify("old-idp", Some("old-idp")),
            SourceClass::LegacyDirect
        );
    }

    #[test]
    fn fit_of_falling_line_reaches_zero() {
        // y = 7 - x: slope -1, intercept 7, zero at day 7.
        let fit = burndown_fit(&[7, 6, 5, 4, 3, 2, 1]).unwrap();
        assert!((fit.slope + 1.0).abs() < 1e-9);
        assert!((fit.intercept - 7.0).abs() < 1e-9);
        assert!((fit.zero_day.unwrap() - 7.0).abs() < 1e-9);
    }

    #[test]
    fn fit_of_noisy_counts() {
        // x̄ = 3, ȳ = 4; Σdx·dy = (-3)(2)+(-2)(2)+(-1)(1)+0+(1)(-1)+(2)(-2)+(3)(-2) = -22,
        // Σdx² = 28, so slope = -22/28 and the zero is at 3 + 4·28/22 = 8.0909...
        let fit = burndown_fit(&[6, 6, 5, 4, 3, 2, 2]).unwrap();
        assert!((fit.slope + 22.0 / 28.0).abs() < 1e-9);
        assert!((fit.zero_day.unwrap() - (3.0 + 4.0 * 28.0 / 22.0)).abs() < 1e-9);
    }

    #[test]
    fn fit_of_flat_or_rising_has_no_zero() {
        assert_eq!(burndown_fit(&[3, 3, 3]).unwrap().zero_day, None);
        assert_eq!(burndown_fit(&[1, 2, 3]).unwrap().zero_day, None);
        assert_eq!(burndown_fit(&[0, 0, 0, 0, 0, 0, 0]).unwrap().zero_day, None);
        assert_eq!(burndown_fit(&[4]), None);
    }

    fn daily(day: i64, fingerprint: &str) -> DailyUseRow {
        DailyUseRow {
            day,
            fingerprint: fingerprint.to_owned(),
            adapter: "old-idp".to_owned(),
            tenant_id: Some("t1".to_owned()),
        }
    }

    #[test]
    fn burndown_projects_one_day_ahead() {
        // Credential k (0..7) is used on days 0..7-k, so day i sees 7 - i credentials.
        let mut inputs = Inputs {
            now: NOW,
            ..Inputs::default()
        };
        for k in 0..7 {
            for day in 0..(7 - k) {
                inputs
                    .daily_use
                    .push(daily(day, &format!("sha256:{k:016}")));
            }
        }
        let context = plain_context(NOW, &["t1"], 7);
        let burndown = burndown(&inputs, &context);
        let counts: Vec<i64> = burndown.days.iter().map(|d| d.credentials).collect();
        assert_eq!(counts, vec![7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(burndown.projected_finish, Some(to_rfc3339(NOW + DAY)));
    }

    #[test]
    fn burndown_ignores_other_tenants() {
        let mut inputs = Inputs::default();
        inputs.daily_use.push(daily(6, "sha256:a"));
        inputs.daily_use.push(DailyUseRow {
            tenant_id: Some("elsewhere".to_owned()),
            ..daily(6, "sha256:b")
        });
        let burndown = burndown(&inputs, &plain_context(NOW, &["t1"], 7));
        assert_eq!(burndown.days[6].credentials, 1);
        assert_eq!(burndown.projected_finish, None);
    }

    fn traffic_row(hour: i64, source: &str, adapter: Option<&str>, count: i64) -> TrafficRow {
        TrafficRow {
            hour,
            tenant_id: Some("t1".to_owned()),
            source: source.to_owned(),
            adapter: adapter.map(str::to_owned),
            count,
        }
    }

    #[test]
    fn traffic_windows_sum_hours() {
        let inputs = Inputs {
            now: NOW,
            traffic: vec![
                traffic_row(167, "native", None, 3),
                traffic_row(167, "old-idp", Some("old-idp"), 1),
                traffic_row(150, "native", Some("old-idp"), 4),
                traffic_row(0, "old-idp", Some("old-idp"), 2),
            ],
            ..Inputs::default()
        };
        let traffic = traffic(&inputs, &plain_context(NOW, &["t1"], 7));
        assert_eq!(traffic.last_hour.total, 4);
        assert!((traffic.last_hour.legacy_fraction - 0.25).abs() < 1e-9);
        assert_eq!(traffic.last_day.legacy_translated, 4);
        assert_eq!(traffic.last_day.total, 8);
        assert_eq!(traffic.last_week.legacy_direct, 3);
        assert_eq!(traffic.last_week.total, 10);
        assert_eq!(traffic.hourly.len(), 24);
        assert_eq!(traffic.hourly[23].native, 3);
        assert_eq!(traffic.daily.len(), 7);
        assert_eq!(traffic.daily[0].legacy_direct, 2);
        assert_eq!(traffic.daily[6].start, to_rfc3339(NOW - DAY));
    }

    fn credential(fingerprint: &str, machine: &str, last_seen: i64) -> CredentialRow {
        CredentialRow {
            fingerprint: fingerprint.to_owned(),
            adapter: "old-idp".to_owned(),
            tenant_id: Some("t1".to_owned()),
            machine_id: Some(machine.to_owned()),
            first_seen: last_seen - DAY,
            last_seen,
            uses: 2,
        }
    }

    #[test]
    fn inventory_counts_migrated_and_windows() {
        let inputs = Inputs {
            now: NOW,
            credentials: vec![
                credential("sha256:linked", "m1", NOW - 2 * DAY),
                credential("sha256:replaced", "m2", NOW - 40 * DAY),
                credential("sha256:active", "m3", NOW - HOUR),
            ],
            links: vec![
                LinkRow {
                    fingerprint: "sha256:linked".to_owned(),
                    adapter: "old-idp".to_owned(),
                    tenant_id: "t1".to_owned(),
                    legacy_subject: None,
                    api_key_id: "key_1".to_owned(),
                    created_at: NOW - DAY,
                },
                LinkRow {
                    fingerprint: "sha256:pruned".to_owned(),
                    adapter: "old-idp".to_owned(),
                    tenant_id: "t1".to_owned(),
                    legacy_subject: Some("svc".to_owned()),
                    api_key_id: "key_2".to_owned(),
                    created_at: NOW - DAY,
                },
            ],
            native_use: vec![NativeUseRow {
                tenant_id: "t1".to_owned(),
                machine_id: "m2".to_owned(),
                last_seen: NOW - 10 * DAY,
            }],
            ..Inputs::default()
        };
        let context = plain_context(NOW, &["t1"], 7);
        let list = credentials(&inputs, &context);
        let inventory = inventory(&list, NOW);
        assert_eq!(inventory.len(), 1);
        let old = &inventory[0];
        assert_eq!(old.known, 4);
        assert_eq!(old.seen_last_day, 1);
        assert_eq!(old.seen_last_7_days, 2);
        assert_eq!(old.seen_last_30_days, 2);
        assert_eq!(old.seen_last_90_days, 3);
        assert_eq!(old.migrated, 3);
        assert_eq!(old.never_seen, 1);
        assert_eq!(old.remaining, 1);
        assert_eq!(list[0].fingerprint, "sha256:active");
        assert_eq!(list[1].replacement_key_id.as_deref(), Some("key_1"));

        let board = readiness(&list, &context);
        assert_eq!(board[0].last_legacy_use, Some(to_rfc3339(NOW - HOUR)));
        assert!(!board[0].ready);
        assert_eq!(board[0].remaining_credentials, 1);
    }

    #[test]
    fn readiness_after_quiet_days() {
        let inputs = Inputs {
            now: NOW,
            credentials: vec![credential("sha256:a", "m1", NOW - 7 * DAY)],
            ..Inputs::default()
        };
        let context = plain_context(NOW, &["t1", "t2"], 7);
        let board = readiness(&credentials(&inputs, &context), &context);
        assert!(board[0].ready, "7 quiet days make t1 ready");
        assert!(board[1].ready, "t2 never used a legacy credential");
        assert_eq!(board[1].last_legacy_use, None);
    }
}
