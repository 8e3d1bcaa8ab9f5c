//! Management commands that act on the store directly, for operators with access to the
//! daemon's configuration and database.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use crate::admin::{
    ApiKeyView, CreateApiKey, CreateMachine, CreateTenant, MachineView, TenantView,
};
use crate::app::App;
use crate::credentials::Mode;
use crate::ids::TenantId;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List the root tenants, or the children of --parent.
    List {
        #[arg(long)]
        parent: Option<String>,
    },
    /// Create a tenant under --parent.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// List the machines of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Register a machine with a client secret; the secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Roles in the machine's own tenant, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the API keys of a tenant, without secrets.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Create an API key; the key is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// `admin`, `readonly` or a custom role.
        #[arg(long)]
        role: String,
        /// `live` or `test`.
        #[arg(long, default_value = "live")]
        mode: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke an API key by id.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// List the published signing keys.
    List,
    /// Rotate: the next key starts signing, the current key stays published as previous.
    Rotate,
}

fn tenant_id(text: &str) -> anyhow::Result<TenantId> {
    Ok(TenantId::parse(text)?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Creates the root tenant and its first admin key, once.
pub async fn bootstrap(app: &App, name: &str, as_json: bool) -> anyhow::Result<()> {
    let roots = app.store.root_tenants().await?;
    if let Some(root) = roots.first() {
        bail!(
            "already bootstrapped: root tenant {} exists; create another admin key with `authbridge keys create --tenant {} --role admin`",
            root.id,
            root.id
        );
    }
    let tenant = app
        .create_tenant(&CreateTenant {
            name: name.to_owned(),
            parent_id: None,
            inherit_roles: Some(true),
        })
        .await?;
    let (_, key) = app
        .create_api_key(
            &tenant.id,
            &CreateApiKey {
                role: "admin".to_owned(),
                mode: Mode::Live,
                name: Some("bootstrap admin".to_owned()),
                expires_at: None,
            },
        )
        .await?;
    if as_json {
        println!(
            "{}",
            json!({"tenantId": tenant.id.as_str(), "apiKey": key.expose()})
        );
    } else {
        println!("root tenant: {}", tenant.id);
        println!("admin API key (shown once, store it now): {}", key.expose());
    }
    Ok(())
}

pub async fn tenants(app: &App, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::List { parent } => {
            let tenants = match parent {
                Some(parent) => app.store.child_tenants(&tenant_id(&parent)?).await?,
                None => app.store.root_tenants().await?,
            };
            print_json(&tenants.iter().map(TenantView::from).collect::<Vec<_>>())
        }
        TenantCommand::Create { name, parent } => {
            let tenant = app
                .create_tenant(&CreateTenant {
                    name,
                    parent_id: Some(parent),
                    inherit_roles: None,
                })
                .await?;
            print_json(&TenantView::from(&tenant))
        }
    }
}

pub async fn machines(app: &App, command: MachineCommand) -> anyhow::Result<()> {
    match command {
        MachineCommand::List { tenant } => {
            let machines = app.store.machines_of_tenant(&tenant_id(&tenant)?).await?;
            print_json(&machines.iter().map(MachineView::from).collect::<Vec<_>>())
        }
        MachineCommand::Create {
            tenant,
            name,
            roles,
        } => {
            let tenant = tenant_id(&tenant)?;
            let request = CreateMachine {
                name,
                roles: BTreeMap::from([(tenant.to_string(), roles)]),
                jwks: None,
                scopes: Vec::new(),
                audiences: Vec::new(),
                claims: None,
                mode: None,
            };
            let (machine, secret) = app.create_machine(&tenant, &request).await?;
            let mut view = serde_json::to_value(MachineView::from(&machine))?;
            if let Some(secret) = secret {
                view["clientSecret"] = json!(secret.expose());
            }
            print_json(&view)
        }
    }
}

pub async fn keys(app: &App, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::List { tenant } => {
            let keys = app.store.api_keys_of_tenant(&tenant_id(&tenant)?).await?;
            print_json(&keys.iter().map(ApiKeyView::from).collect::<Vec<_>>())
        }
        KeyCommand::Create {
            tenant,
            role,
            mode,
            name,
        } => {
            let mode = Mode::parse(&mode)
                .with_context(|| format!("mode {mode:?} must be live or test"))?;
            let request = CreateApiKey {
                role,
                mode,
                name,
                expires_at: None,
            };
            let (record, key) = app.create_api_key(&tenant_id(&tenant)?, &request).await?;
            let mut view = serde_json::to_value(ApiKeyView::from(&record))?;
            view["key"] = json!(key.expose());
            print_json(&view)
        }
        KeyCommand::Revoke { tenant, id } => {
            let record = app.revoke_api_key(&tenant_id(&tenant)?, &id).await?;
            print_json(&ApiKeyView::from(&record))
        }
    }
}

pub async fn signing_keys(app: &App, command: SigningKeyCommand) -> anyhow::Result<()> {
    if let SigningKeyCommand::Rotate = command {
        app.keyring.rotate(app.clock.now()).await?;
        app.announce(crate::cluster::Change::SigningKeys).await;
    }
    print_json(&app.keyring.summaries())
}
