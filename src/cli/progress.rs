//! `authbridge progress`: the migration progress report as tables on standard output.

use std::fmt::Write as _;

use anyhow::Context;
use clap::Args;

use crate::app::App;
use crate::ids::TenantId;
use crate::progress::{self, ProgressReport, Scope, Share};

#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// Only this legacy adapter's credentials and traffic (native traffic is still counted).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Only this tenant and its sub-tenants. Default: every tenant.
    #[arg(long, value_name = "TENANT_ID")]
    tenant: Option<String>,
}

pub async fn progress(app: &App, args: ProgressArgs) -> anyhow::Result<()> {
    let tenant = args
        .tenant
        .as_deref()
        .map(|text| {
            let id = TenantId::parse(text)
                .with_context(|| format!("--tenant {text:?} is not a tenant id"))?;
            if !app.directory.contains(&id) {
                anyhow::bail!("tenant {text} not found");
            }
            Ok(id)
        })
        .transpose()?;
    let scope = Scope {
        adapter: args.adapter,
        tenant,
        include_untenanted: args.tenant.is_none(),
    };
    let report = progress::report(app, app.clock.now(), &scope).await?;
    print!("{}", render(&report));
    Ok(())
}

fn share_row(out: &mut String, window: &str, share: &Share) {
    let _ = writeln!(
        out,
        "  {window:<10} {:>10} {:>14} {:>18} {:>10} {:>7.1}%",
        share.native,
        share.legacy_direct,
        share.legacy_translated,
        share.total,
        share.legacy_fraction * 100.0
    );
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// Renders the report as plain-text tables.
pub fn render(report: &ProgressReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Migration progress at {} (tenant {}, adapter {}, ready after {} quiet days)",
        report.generated_at,
        or_dash(report.tenant_id.as_deref()),
        report.adapter.as_deref().unwrap_or("all"),
        report.ready_after_days
    );

    let _ = writeln!(out, "\nTraffic (successful verify and introspect)");
    let _ = writeln!(
        out,
        "  {:<10} {:>10} {:>14} {:>18} {:>10} {:>8}",
        "window", "native", "legacy_direct", "legacy_translated", "total", "legacy"
    );
    share_row(&mut out, "1 h", &report.traffic.last_hour);
    share_row(&mut out, "24 h", &report.traffic.last_day);
    share_row(&mut out, "7 d", &report.traffic.last_week);

    let _ = writeln!(out, "\nAdapters");
    let _ = writeln!(out, "  {:<20} {:<8} {:<22}", "adapter", "phase", "since");
    for phase in &report.phases {
        let _ = writeln!(
            out,
            "  {:<20} {:<8} {:<22}",
            phase.adapter, phase.phase, phase.since
        );
    }

    let _ = writeln!(out, "\nLegacy credential inventory");
    let _ = writeln!(
        out,
        "  {:<20} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>10} {:>10}",
        "adapter", "known", "1d", "7d", "30d", "90d", "migrated", "remaining", "never_seen"
    );
    for row in &report.inventory {
        let _ = writeln!(
            out,
            "  {:<20} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>10} {:>10}",
            row.adapter,
            row.known,
            row.seen_last_day,
            row.seen_last_7_days,
            row.seen_last_30_days,
            row.seen_last_90_days,
            row.migrated,
            row.remaining,
            row.never_seen
        );
    }

    let _ = writeln!(out, "\nBurndown (distinct legacy credentials per day)");
    for day in &report.burndown.days {
        let _ = writeln!(out, "  {}  {:>6}", day.start, day.credentials);
    }
    let _ = writeln!(
        out,
        "  projected finish: {}",
        report
            .burndown
            .projected_finish
            .as_deref()
            .unwrap_or("none (legacy use is not decreasing)")
    );

    let _ = writeln!(out, "\nReadiness");
    let _ = writeln!(
        out,
        "  {:<28} {:<24} {:<6} {:>9}  {:<22}",
        "tenant", "name", "ready", "remaining", "last legacy use"
    );
    for tenant in &report.readiness {
        let _ = writeln!(
            out,
            "  {:<28} {:<24} {:<6} {:>9}  {:<22}",
            tenant.tenant_id,
            tenant.name,
            if tenant.ready { "yes" } else { "no" },
            tenant.remaining_credentials,
            or_dash(tenant.last_legacy_use.as_deref())
        );
    }

    let _ = writeln!(out, "\nLegacy credentials still in use (most recent first)");
    let _ = writeln!(
        out,
        "  {:<24} {:<16} {:<28} {:<24} {:<22}",
        "fingerprint", "adapter", "tenant", "owner", "last seen"
    );
    for credential in &report.recent_credentials {
        let _ = writeln!(
            out,
            "  {:<24} {:<16} {:<28} {:<24} {:<22}",
            credential.fingerprint,
            credential.adapter,
            or_dash(credential.tenant_id.as_deref()),
            or_dash(credential.owner.as_deref()),
            or_dash(credential.last_seen.as_deref())
        );
    }

    let _ = writeln!(out, "\nFailures by reason");
    let _ = writeln!(out, "  {:<28} {:>8} {:>8}", "reason", "24 h", "7 d");
    for failure in &report.failures {
        let _ = writeln!(
            out,
            "  {:<28} {:>8} {:>8}",
            failure.reason, failure.last_day, failure.last_week
        );
    }
    let _ = writeln!(
        out,
        "\nShadow disagreements (7 d): {}",
        report.shadow_disagreements
    );
    out
}
