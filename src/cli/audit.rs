//! `authbridge audit`: verify the hash chains and export events.

use std::io::Write;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::app::App;
use crate::audit::export::{export, ExportFormat};
use crate::audit::{verify_chains, EventFilter};
use crate::clock::parse_rfc3339;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk every chain, recompute the hashes and report the first bad event of each chain.
    /// Exits with 1 when any chain is broken.
    Verify,
    /// Write events to standard output, oldest first.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
    },
    /// Print the compliance report of a tenant subtree (or of every tenant) for a period.
    Report {
        /// The tenant whose subtree to report on; default every tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Start of the period (inclusive).
        #[arg(long, value_name = "RFC3339")]
        since: String,
        /// End of the period (exclusive); default now.
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
    },
}

pub async fn audit(app: &App, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => verify(app).await,
        AuditCommand::Report {
            tenant,
            since,
            until,
        } => {
            let tenant = tenant
                .as_deref()
                .map(crate::ids::TenantId::parse)
                .transpose()?;
            let since = parse_time("--since", Some(&since))?.unwrap_or_default();
            let until =
                parse_time("--until", until.as_deref())?.unwrap_or_else(|| app.clock.now() + 1);
            let report = crate::audit::report::compliance_report(
                &app.store,
                &app.directory,
                tenant.as_ref(),
                since,
                until,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        AuditCommand::Export {
            format,
            since,
            until,
        } => {
            let filter = EventFilter {
                since: parse_time("--since", since.as_deref())?,
                until: parse_time("--until", until.as_deref())?,
                ..EventFilter::default()
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = export(&app.store, &filter, format, &mut out).await?;
            out.flush()?;
            eprintln!("exported {written} events");
            Ok(())
        }
    }
}

fn parse_time(option: &str, text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|text| {
        parse_rfc3339(text).with_context(|| {
            format!("{option} {text:?} is not an RFC 3339 time such as 2024-01-31T00:00:00Z")
        })
    })
    .transpose()
}

async fn verify(app: &App) -> anyhow::Result<()> {
    let reports = verify_chains(&app.store).await?;
    let mut broken = 0;
    for report in &reports {
        let start = match report.checkpoint_seq {
            Some(seq) => format!(" after checkpoint {seq}"),
            None => String::new(),
        };
        match &report.fault {
            None => println!(
                "chain {}: ok, {} events checked{start}, last event {}",
                report.chain_id,
                report.events_checked,
                report
                    .last_seq
                    .map_or("-".to_owned(), |seq| seq.to_string()),
            ),
            Some(fault) => {
                broken += 1;
                println!("{fault}");
            }
        }
    }
    if broken > 0 {
        bail!("{broken} of {} audit chains are broken", reports.len());
    }
    eprintln!("{} audit chains verified", reports.len());
    Ok(())
}
