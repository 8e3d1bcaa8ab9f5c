//! Wrappers for secret material: a redacted `Debug`, no `Display`, no `Serialize`, and memory
//! wiped on drop. Reading the value takes an explicit call to `expose()`.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret text value such as an API key, a client secret or a bearer token.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Secret bytes such as a master key, a pepper or a private key in DER form.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secret() {
        let secret = SecretString::new("ab_live_admin_abcd1234_deadbeef");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("deadbeef"));
        let bytes = SecretBytes::new(vec![0x41; 32]);
        assert!(!format!("{bytes:?}").contains("AAAA"));
    }
}
