//! The command line: `serve`, `migrate`, `bootstrap` and the management commands. Each command
//! loads the configuration the same way the daemon does.

mod adapters;
mod audit;
mod import;
mod manage;
mod phase;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "authbridge",
    version,
    about = "Machine-to-machine authentication daemon that bridges legacy credentials to tenant-scoped ones"
)]
pub struct Cli {
    /// Configuration file. Default: config/authbridge.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon; applies pending database migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create the root tenant and its first admin API key.
    Bootstrap {
        /// Name of the root tenant.
        #[arg(long, default_value = "root")]
        name: String,
        /// Print `{"tenantId", "apiKey"}` as JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenants(manage::TenantCommand),
    /// Manage machines.
    #[command(subcommand)]
    Machines(manage::MachineCommand),
    /// Manage native API keys.
    #[command(subcommand)]
    Keys(manage::KeyCommand),
    /// Manage the signing keys.
    #[command(name = "signing-keys", subcommand)]
    SigningKeys(manage::SigningKeyCommand),
    /// Verify the audit hash chains and export audit events.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Change and list the migration phases of legacy adapters.
    #[command(subcommand)]
    Phase(phase::PhaseCommand),
    /// List and check the legacy adapters.
    #[command(subcommand)]
    Adapters(adapters::AdapterCommand),
    /// Import the keys of a `sql_keys` legacy adapter into the daemon's store.
    Import(import::ImportArgs),
    /// Print the migration progress report: traffic share, legacy credentials, readiness.
    Progress(progress::ProgressArgs),
}

/// Parses the arguments and runs the command. Exit code 0 on success, 1 on a runtime error,
/// 2 on a usage or configuration error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.logging.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.logging.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn open(config: Config) -> anyhow::Result<Arc<App>> {
    Ok(App::open(config, Arc::new(SystemClock)).await?)
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if let Command::Serve = command {
        return serve(config).await;
    }
    let app = open(config).await?;
    let result = match command {
        Command::Serve => Ok(()),
        Command::Migrate => {
            eprintln!("database is up to date");
            Ok(())
        }
        Command::Bootstrap { name, json } => manage::bootstrap(&app, &name, json).await,
        Command::Tenants(command) => manage::tenants(&app, command).await,
        Command::Machines(command) => manage::machines(&app, command).await,
        Command::Keys(command) => manage::keys(&app, command).await,
        Command::SigningKeys(command) => manage::signing_keys(&app, command).await,
        Command::Audit(command) => audit::audit(&app, command).await,
        Command::Phase(command) => phase::phase(&app, command).await,
        Command::Adapters(command) => adapters::adapters(&app, command).await,
        Command::Import(args) => import::import(&app, args).await,
        Command::Progress(args) => progress::progress(&app, args).await,
    };
    // A command's audit events must be written before the process exits.
    if let Err(error) = app.audit.shutdown().await {
        eprintln!("error: audit events of this command may be incomplete: {error}");
    }
    result
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let app = open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {e}; set server.listen or AUTHBRIDGE_SERVER__LISTEN"
        )
    })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, issuer = %app.issuer.issuer(), database = ?app.store.backend(), "authbridge listening");
    crate::server::run(listener, app, crate::server::shutdown_signal()).await?;
    Ok(())
}
