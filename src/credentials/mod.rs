//! Wire formats of the credentials the daemon issues itself, and the shared vocabulary of modes
//! and roles.

pub mod api_key;
pub mod client_secret;

use serde::{Deserialize, Serialize};

/// `live` or `test`. Every credential carries one; a test credential never satisfies a
/// requirement for `live`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Live,
    Test,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Mode::Live),
            "test" => Some(Mode::Test),
            _ => None,
        }
    }
}

/// True for a role name: a lowercase letter, then up to 31 lowercase letters, digits or `-`.
/// Roles appear inside API keys, so `_` is excluded.
pub fn is_valid_role(role: &str) -> bool {
    let mut bytes = role.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && role.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
