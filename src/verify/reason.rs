//! The closed set of reason codes every verification answer carries.

use serde::{Deserialize, Serialize};

/// Reason a credential was accepted or rejected. The set is closed and documented in the README;
/// clients may match on these strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Valid,
    /// The text is not a well-formed credential of the kind it claims to be.
    Malformed,
    /// No verifier recognises the credential.
    UnknownCredential,
    /// A JWT whose `iss` is not configured.
    UnknownIssuer,
    /// A JWT whose `kid` is not among its issuer's keys.
    UnknownKey,
    InvalidSignature,
    Expired,
    NotYetValid,
    Revoked,
    WrongAudience,
    WrongTokenType,
    /// A valid credential that does not reach the required tenant or lacks a required role.
    OutOfScope,
    /// A valid credential of the other mode (`test` where `live` was required, or the reverse).
    WrongMode,
    /// A verified legacy credential whose identity maps to no existing tenant.
    UnmappedIdentity,
    /// A legacy credential refused because its adapter is in the `enforce` phase.
    LegacyRetired,
    /// The legacy source that must check the credential could not be reached.
    LegacyUnavailable,
    /// The daemon's own store could not be reached to check the credential.
    Unavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Malformed => "malformed",
            Self::UnknownCredential => "unknown_credential",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::WrongAudience => "wrong_audience",
            Self::WrongTokenType => "wrong_token_type",
            Self::OutOfScope => "out_of_scope",
            Self::WrongMode => "wrong_mode",
            Self::UnmappedIdentity => "unmapped_identity",
            Self::LegacyRetired => "legacy_retired",
            Self::LegacyUnavailable => "legacy_unavailable",
            Self::Unavailable => "unavailable",
        }
    }

    /// True when no verifier could decide, so the answer is 503 and never "invalid".
    pub fn is_unavailable(self) -> bool {
        matches!(self, Self::LegacyUnavailable | Self::Unavailable)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
