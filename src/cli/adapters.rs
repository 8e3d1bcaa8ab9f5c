//! `authbridge adapters list` and `authbridge adapters check [NAME]`.

use anyhow::bail;
use clap::Subcommand;

use crate::app::App;
use crate::legacy::presets;

#[derive(Debug, Subcommand)]
pub enum AdapterCommand {
    /// List the configured adapters with their kind, preset and phase, and the built-in presets.
    List,
    /// Check configuration and connectivity of one adapter, or of all.
    Check {
        /// The adapter to check; default all.
        name: Option<String>,
        /// A sample credential to verify through the adapter (read from this environment
        /// variable, so it stays out of the shell history and the process list).
        #[arg(long, value_name = "VARIABLE")]
        sample_from_env: Option<String>,
    },
}

pub async fn adapters(app: &App, command: AdapterCommand) -> anyhow::Result<()> {
    let adapters = app.verifier.adapters();
    match command {
        AdapterCommand::List => {
            if adapters.all().is_empty() {
                println!("no adapters configured");
            }
            let now = app.clock.now();
            for adapter in adapters.all() {
                let in_force =
                    app.phases
                        .in_force(&adapter.name, adapter.phase, None, &app.directory, now);
                println!(
                    "{:<24} kind={:<14} preset={:<12} phase={}",
                    adapter.name,
                    adapter.kind,
                    adapter.preset.as_deref().unwrap_or("-"),
                    in_force.phase.as_str()
                );
            }
            println!();
            println!("built-in presets:");
            for name in presets::names() {
                println!(
                    "  {:<16} {}",
                    name,
                    presets::description(name).unwrap_or_default()
                );
            }
            Ok(())
        }
        AdapterCommand::Check {
            name,
            sample_from_env,
        } => {
            let selected: Vec<_> = match &name {
                Some(name) => match adapters.get(name) {
                    Some(adapter) => vec![adapter.clone()],
                    None => bail!("no adapter named {name:?}: `authbridge adapters list` shows the configured ones"),
                },
                None => adapters.all().to_vec(),
            };
            if selected.is_empty() {
                println!("no adapters configured");
                return Ok(());
            }
            let sample =
                match &sample_from_env {
                    Some(variable) => Some(std::env::var(variable).map_err(|_| {
                        anyhow::anyhow!("environment variable {variable} is not set")
                    })?),
                    None => None,
                };
            let now = app.clock.now();
            let mut problems = 0;
            for adapter in selected {
                println!("{} ({}): configuration valid", adapter.name, adapter.kind);
                for item in adapter.verifier.check(now).await {
                    let mark = if item.ok { "ok" } else { "PROBLEM" };
                    if !item.ok {
                        problems += 1;
                    }
                    println!("  {mark}: {}", item.message);
                }
                if let Some(sample) = &sample {
                    let decision = app.verifier.verify(sample, &Default::default()).await;
                    let routed = decision
                        .identity
                        .as_ref()
                        .map(|i| format!("{:?}", i.source))
                        .unwrap_or_else(|| "-".to_owned());
                    println!(
                        "  sample credential ({}): {} (source {routed})",
                        decision.fingerprint, decision.reason
                    );
                    if !decision.is_valid() {
                        problems += 1;
                    }
                }
            }
            if problems > 0 {
                bail!("{problems} problem(s) found");
            }
            Ok(())
        }
    }
}
