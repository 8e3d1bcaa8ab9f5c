//! JWS algorithm names (RFC 7518 section 3, RFC 8037) and the key family each one needs.

use serde::{Deserialize, Serialize};

/// A JWS signature algorithm this daemon can verify. `none` is deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

/// The kind of key an algorithm needs; a key of one family never verifies another's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    Hmac,
}

impl Algorithm {
    /// Matches the exact, case-sensitive JOSE name; no normalisation.
    pub fn from_jose_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            _ => return None,
        })
    }

    pub fn jose_name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    pub fn key_family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::EcP256,
            Self::ES384 => KeyFamily::EcP384,
            Self::EdDSA => KeyFamily::Ed25519,
            Self::HS256 | Self::HS384 | Self::HS512 => KeyFamily::Hmac,
        }
    }

    pub fn is_asymmetric(self) -> bool {
        self.key_family() != KeyFamily::Hmac
    }

    /// Minimum HMAC key length in bytes (RFC 7518 section 3.2: at least the hash output size).
    pub fn min_hmac_key_bytes(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.jose_name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_jose_name(text).ok_or_else(|| format!("unknown JWS algorithm {text:?}"))
    }
}
