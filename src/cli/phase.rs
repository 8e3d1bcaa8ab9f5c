//! `authbridge phase`: change, list and except migration phases of legacy adapters.

use clap::Subcommand;

use crate::admin::{AddException, PhaseChangeView, SetPhase};
use crate::app::App;
use crate::clock::to_rfc3339;
use crate::legacy::Phase;

#[derive(Debug, Subcommand)]
pub enum PhaseCommand {
    /// Set the phase of an adapter (shadow, dual, sunset, enforce), now or at --at.
    Set {
        adapter: String,
        #[arg(value_parser = parse_phase)]
        phase: Phase,
        /// Limit the change to this tenant and its sub-tenants.
        #[arg(long)]
        tenant: Option<String>,
        /// RFC 3339 time the change takes effect; default now.
        #[arg(long)]
        at: Option<String>,
        /// RFC 3339 cutoff of a sunset phase, after which the adapter is enforced.
        #[arg(long)]
        sunset_at: Option<String>,
    },
    /// Show the phase in force and the recorded changes of every adapter.
    List,
    /// Keep a tenant or one credential on legacy access past enforcement, until a time.
    Except {
        adapter: String,
        #[arg(long)]
        tenant: Option<String>,
        /// The credential's fingerprint as audit events show it (`sha256:...`).
        #[arg(long)]
        fingerprint: Option<String>,
        /// RFC 3339 time the exception ends.
        #[arg(long)]
        until: String,
    },
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("phase {text:?} is not one of shadow, dual, sunset, enforce"))
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
    )
}

pub async fn phase(app: &App, command: PhaseCommand) -> anyhow::Result<()> {
    match command {
        PhaseCommand::Set {
            adapter,
            phase,
            tenant,
            at,
            sunset_at,
        } => {
            let request = SetPhase {
                phase,
                tenant_id: tenant,
                at,
                sunset_at,
            };
            let change = app.set_phase(&adapter, &request, &actor()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&PhaseChangeView::from(&change))?
            );
            Ok(())
        }
        PhaseCommand::List => {
            let now = app.clock.now();
            for adapter in app.verifier.adapters().all() {
                let in_force =
                    app.phases
                        .in_force(&adapter.name, adapter.phase, None, &app.directory, now);
                let sunset = in_force
                    .sunset_at
                    .map(|t| format!(" (sunset at {})", to_rfc3339(t)))
                    .unwrap_or_default();
                println!(
                    "{}: {} since {}{sunset}; configured {}",
                    adapter.name,
                    in_force.phase.as_str(),
                    to_rfc3339(in_force.since),
                    adapter.phase.as_str()
                );
                for change in app.phases.history(&adapter.name) {
                    let scope = change
                        .tenant_id
                        .as_deref()
                        .map(|t| format!("tenant {t}"))
                        .unwrap_or_else(|| "all tenants".to_owned());
                    let pending = if change.effective_at > now {
                        " (scheduled)"
                    } else {
                        ""
                    };
                    println!(
                        "  {} {} for {scope} by {}{pending}",
                        to_rfc3339(change.effective_at),
                        change.phase,
                        change.actor
                    );
                }
            }
            for exception in app.phases.exceptions() {
                let target = exception
                    .tenant_id
                    .map(|t| format!("tenant {t}"))
                    .or(exception
                        .credential_fingerprint
                        .map(|f| format!("credential {f}")))
                    .unwrap_or_default();
                println!(
                    "exception: {} keeps {target} until {}",
                    exception.adapter,
                    to_rfc3339(exception.expires_at)
                );
            }
            Ok(())
        }
        PhaseCommand::Except {
            adapter,
            tenant,
            fingerprint,
            until,
        } => {
            let request = AddException {
                tenant_id: tenant,
                credential_fingerprint: fingerprint,
                until,
            };
            let exception = app
                .add_phase_exception(&adapter, &request, &actor())
                .await?;
            println!(
                "exception recorded for adapter {} until {}",
                exception.adapter,
                to_rfc3339(exception.expires_at)
            );
            Ok(())
        }
    }
}
