//! Management operations on tenants, machines and API keys, shared by the admin HTTP API and
//! the CLI. Each operation validates its input completely before it writes anything.

mod api_keys;
mod machines;
mod phases;
mod tenants;

pub use api_keys::{ApiKeyView, CreateApiKey, CreatedApiKey};
pub use machines::{CreateMachine, CreatedMachine, MachineView};
pub use phases::{AddException, PhaseChangeView, SetPhase};
pub use tenants::{CreateTenant, TenantView, UpdateTenant};

use crate::store::StoreError;

/// A management operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Conflict(what) => {
                AdminError::Conflict(format!("{what} already exists or conflicts"))
            }
            other => AdminError::Store(other),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

fn check_name(name: &str, what: &str) -> AdminResult<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(AdminError::Invalid(format!(
            "{what} name must be 1 to 200 characters without control characters"
        )));
    }
    Ok(trimmed.to_owned())
}
