//! Identifier newtypes and their generation. Tenant and machine ids are 8 lowercase letters and
//! digits; other ids are longer random strings of the same alphabet.

use rand::Rng;
use serde::{Deserialize, Serialize};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Returns `len` random characters from `[a-z0-9]`, drawn from the operating system's CSPRNG.
pub fn random_lowercase_alphanumeric(len: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn is_short_id(text: &str) -> bool {
    text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

macro_rules! short_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(random_lowercase_alphanumeric(8))
            }

            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                if is_short_id(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(InvalidId { kind: $what, value: text.chars().take(64).collect() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

short_id!(
    /// A tenant id such as `abcd1234`.
    TenantId,
    "tenant id"
);
short_id!(
    /// A machine id such as `m0x9k2pq`.
    MachineId,
    "machine id"
);

/// An id that is not 8 lowercase letters and digits.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected 8 lowercase letters and digits, like abcd1234")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_accepts_eight_lowercase_alphanumerics() {
        assert!(TenantId::parse("abcd1234").is_ok());
        assert!(TenantId::parse("ABCD1234").is_err());
        assert!(TenantId::parse("abcd123").is_err());
        assert!(TenantId::parse("abcd-234").is_err());
        let generated = TenantId::generate();
        assert!(TenantId::parse(generated.as_str()).is_ok());
    }
}
