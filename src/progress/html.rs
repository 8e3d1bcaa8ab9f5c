//! The progress report as one self-contained HTML page: inline CSS and inline SVG charts, no
//! scripts and no external assets. Every value from the report passes through [`escape`].

use std::fmt::Write as _;

use super::{LegacyCredential, ProgressReport, TrafficBucket};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for a query string value (RFC 3986 unreserved characters pass unchanged).
fn query_value(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px}
header h1{font-size:18px;margin:0}
header p{margin:4px 0 0;color:#c8cdd8}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:16px;padding:16px 24px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eceef2}
th{color:#5a6275;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ready{color:#176b2c;font-weight:600}.waiting{color:#a4400b;font-weight:600}
.legend span{display:inline-block;margin-right:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.native{fill:#3b8a4e;background:#3b8a4e}.translated{fill:#3b6fb6;background:#3b6fb6}
.direct{fill:#d9822b;background:#d9822b}.burn{fill:#8a5cc2}
.muted{color:#5a6275}
code{font-size:12px}
";

/// Renders the dashboard page of `report`.
pub fn render(report: &ProgressReport) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>authbridge migration progress</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        page,
        "<header><h1>authbridge migration progress</h1><p>At {} · tenant {} · adapter {} · \
         a tenant is ready after {} days without legacy use</p></header><main>",
        escape(&report.generated_at),
        escape(report.tenant_id.as_deref().unwrap_or("all")),
        escape(report.adapter.as_deref().unwrap_or("all")),
        report.ready_after_days
    );
    phases(&mut page, report);
    traffic(&mut page, report);
    burndown(&mut page, report);
    inventory(&mut page, report);
    readiness(&mut page, report);
    stalest(&mut page, &report.stalest_credentials);
    failures(&mut page, report);
    page.push_str("</main></body></html>");
    page
}

fn phases(page: &mut String, report: &ProgressReport) {
    page.push_str("<section id=\"phases\"><h2>Adapters</h2><table><tr><th>adapter</th><th>phase</th><th>since</th><th>sunset</th></tr>");
    for phase in &report.phases {
        let _ = write!(
            page,
            "<tr><td><a href=\"/dashboard?adapter={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&query_value(&phase.adapter)),
            escape(&phase.adapter),
            escape(&phase.phase),
            escape(&phase.since),
            escape(phase.sunset_at.as_deref().unwrap_or("-"))
        );
    }
    if report.phases.is_empty() {
        page.push_str(
            "<tr><td colspan=\"4\" class=\"muted\">no legacy adapter configured</td></tr>",
        );
    }
    page.push_str("</table></section>");
}

fn share_line(page: &mut String, label: &str, share: &super::Share) {
    let _ = write!(
        page,
        "<tr><td>{label}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td></tr>",
        share.native,
        share.legacy_translated,
        share.legacy_direct,
        share.total,
        share.legacy_fraction * 100.0
    );
}

/// Draws stacked bars: native at the bottom, then translated, then direct legacy traffic.
fn stacked_bars(page: &mut String, id: &str, buckets: &[TrafficBucket], label_every: usize) {
    const WIDTH: f64 = 560.0;
    const HEIGHT: f64 = 140.0;
    let max = buckets
        .iter()
        .map(|b| b.native + b.legacy_translated + b.legacy_direct)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = WIDTH / buckets.len().max(1) as f64;
    let _ = write!(
        page,
        "<svg id=\"{id}\" role=\"img\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">",
        HEIGHT + 18.0
    );
    for (i, bucket) in buckets.iter().enumerate() {
        let x = i as f64 * slot + 1.0;
        let mut base = HEIGHT;
        for (class, value) in [
            ("native", bucket.native),
            ("translated", bucket.legacy_translated),
            ("direct", bucket.legacy_direct),
        ] {
            let height = value as f64 / max * HEIGHT;
            base -= height;
            let _ = write!(
                page,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{base:.1}\" width=\"{:.1}\" height=\"{height:.1}\"><title>{} {class}: {value}</title></rect>",
                (slot - 2.0).max(1.0),
                escape(&bucket.start)
            );
        }
        if i % label_every == 0 {
            let label = bucket.start.get(5..16).unwrap_or(&bucket.start);
            let _ = write!(
                page,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" fill=\"#5a6275\">{}</text>",
                HEIGHT + 14.0,
                escape(label)
            );
        }
    }
    page.push_str("</svg>");
}

fn traffic(page: &mut String, report: &ProgressReport) {
    let traffic = &report.traffic;
    page.push_str("<section id=\"traffic\"><h2>Traffic share</h2><div class=\"legend\"><span><i class=\"sw native\"></i>native</span><span><i class=\"sw translated\"></i>legacy translated</span><span><i class=\"sw direct\"></i>legacy direct</span></div>");
    page.push_str("<table><tr><th>window</th><th class=\"n\">native</th><th class=\"n\">translated</th><th class=\"n\">direct</th><th class=\"n\">total</th><th class=\"n\">legacy</th></tr>");
    share_line(page, "last hour", &traffic.last_hour);
    share_line(page, "last 24 h", &traffic.last_day);
    share_line(page, "last 7 d", &traffic.last_week);
    page.push_str("</table><p class=\"muted\">Last 24 hours, per hour (UTC)</p>");
    stacked_bars(page, "traffic-hourly", &traffic.hourly, 4);
    page.push_str("<p class=\"muted\">Last 7 days, per 24 hours</p>");
    stacked_bars(page, "traffic-daily", &traffic.daily, 1);
    page.push_str("</section>");
}

fn burndown(page: &mut String, report: &ProgressReport) {
    const WIDTH: f64 = 560.0;
    const HEIGHT: f64 = 120.0;
    let days = &report.burndown.days;
    let max = days.iter().map(|d| d.credentials).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / days.len().max(1) as f64;
    page.push_str(
        "<section id=\"burndown\"><h2>Burndown: distinct legacy credentials per day</h2>",
    );
    let _ = write!(
        page,
        "<svg role=\"img\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">",
        HEIGHT + 18.0
    );
    for (i, day) in days.iter().enumerate() {
        let height = day.credentials as f64 / max * HEIGHT;
        let x = i as f64 * slot + 4.0;
        let _ = write!(
            page,
            "<rect class=\"burn\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\"><title>{}: {}</title></rect>\
             <text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" fill=\"#5a6275\">{} ({})</text>",
            HEIGHT - height,
            (slot - 8.0).max(1.0),
            escape(&day.start),
            day.credentials,
            HEIGHT + 14.0,
            escape(day.start.get(5..10).unwrap_or(&day.start)),
            day.credentials
        );
    }
    page.push_str("</svg>");
    let _ = write!(
        page,
        "<p>Projected finish: <strong>{}</strong>{}</p></section>",
        escape(
            report
                .burndown
                .projected_finish
                .as_deref()
                .unwrap_or("none: legacy use is not decreasing")
        ),
        report
            .burndown
            .slope_per_day
            .map(|slope| format!(" (trend {slope:+.2} credentials per day, linear fit)"))
            .unwrap_or_default()
    );
}

fn inventory(page: &mut String, report: &ProgressReport) {
    page.push_str("<section id=\"inventory\"><h2>Legacy credential inventory</h2><table><tr><th>adapter</th><th class=\"n\">known</th><th class=\"n\">seen 24 h</th><th class=\"n\">7 d</th><th class=\"n\">30 d</th><th class=\"n\">90 d</th><th class=\"n\">migrated</th><th class=\"n\">remaining</th><th class=\"n\">never seen</th></tr>");
    for row in &report.inventory {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&row.adapter),
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
    if report.inventory.is_empty() {
        page.push_str("<tr><td colspan=\"9\" class=\"muted\">no legacy credential seen</td></tr>");
    }
    let _ = write!(
        page,
        "</table><p class=\"muted\">Shadow disagreements in the last 7 days: {}</p></section>",
        report.shadow_disagreements
    );
}

fn readiness(page: &mut String, report: &ProgressReport) {
    page.push_str("<section id=\"readiness\"><h2>Readiness to enforce</h2><table><tr><th>tenant</th><th>status</th><th class=\"n\">remaining</th><th>last legacy use</th><th>phases</th></tr>");
    for tenant in &report.readiness {
        let phases: Vec<String> = tenant
            .phases
            .iter()
            .map(|p| format!("{}: {}", escape(&p.adapter), escape(&p.phase)))
            .collect();
        let _ = write!(
            page,
            "<tr><td><a href=\"/dashboard?tenantId={}\">{}</a><br><code>{}</code></td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&query_value(&tenant.tenant_id)),
            escape(&tenant.name),
            escape(&tenant.tenant_id),
            if tenant.ready { "ready" } else { "waiting" },
            if tenant.ready { "ready" } else { "in use" },
            tenant.remaining_credentials,
            escape(tenant.last_legacy_use.as_deref().unwrap_or("never")),
            if phases.is_empty() { "-".to_owned() } else { phases.join("<br>") }
        );
    }
    page.push_str("</table></section>");
}

fn stalest(page: &mut String, credentials: &[LegacyCredential]) {
    page.push_str("<section id=\"stalest\"><h2>Stalest legacy credentials not yet migrated</h2><table><tr><th>fingerprint</th><th>adapter</th><th>tenant</th><th>owner</th><th>last seen</th><th class=\"n\">uses</th></tr>");
    for credential in credentials {
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&credential.fingerprint),
            escape(&credential.adapter),
            escape(credential.tenant_id.as_deref().unwrap_or("-")),
            escape(credential.owner.as_deref().unwrap_or("-")),
            escape(credential.last_seen.as_deref().unwrap_or("never")),
            credential.uses
        );
    }
    if credentials.is_empty() {
        page.push_str("<tr><td colspan=\"6\" class=\"muted\">none</td></tr>");
    }
    page.push_str("</table></section>");
}

fn failures(page: &mut String, report: &ProgressReport) {
    page.push_str("<section id=\"failures\"><h2>Verification failures by reason</h2><table><tr><th>reason</th><th class=\"n\">24 h</th><th class=\"n\">7 d</th></tr>");
    for failure in &report.failures {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&failure.reason),
            failure.last_day,
            failure.last_week
        );
    }
    if report.failures.is_empty() {
        page.push_str("<tr><td colspan=\"3\" class=\"muted\">none</td></tr>");
    }
    page.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_script_tag() {
        assert_eq!(
            escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("a & \"b\""), "a &amp; &quot;b&quot;");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn query_value_percent_encodes() {
        assert_eq!(query_value("old idp&x"), "old%20idp%26x");
        assert_eq!(query_value("old-idp_1.~"), "old-idp_1.~");
    }
}
