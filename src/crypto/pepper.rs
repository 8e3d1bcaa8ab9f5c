//! The server pepper: an HMAC-SHA256 key under which API keys and client secrets are stored.
//! These secrets carry at least 128 bits of entropy, so a keyed hash is enough; a slow password
//! hash would only cost time on every verification.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::SecretBytes;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Pepper {
    key: SecretBytes,
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

impl Pepper {
    pub fn new(key: SecretBytes) -> Self {
        Self { key }
    }

    /// HMAC-SHA256 of `secret` under the pepper, as 32 bytes.
    pub fn digest(&self, secret: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac =
            HmacSha256::new_from_slice(self.key.expose()).unwrap_or_else(|_| unreachable_hmac());
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }

    /// HMAC-SHA256 as lowercase hex, the form stored in the database.
    pub fn digest_hex(&self, secret: &[u8]) -> String {
        hex::encode(self.digest(secret))
    }

    /// Compares `secret` with a stored hex digest in constant time.
    pub fn matches(&self, secret: &[u8], stored_hex: &str) -> bool {
        let computed = self.digest_hex(secret);
        computed.as_bytes().ct_eq(stored_hex.as_bytes()).into()
    }
}

fn unreachable_hmac() -> HmacSha256 {
    // HMAC keys of any length are valid (RFC 2104), so this is never reached.
    match HmacSha256::new_from_slice(&[0u8; 32]) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts a 32-byte key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_same_secret() {
        let pepper = Pepper::new(SecretBytes::new(vec![1; 32]));
        let stored = pepper.digest_hex(b"secret-a");
        assert!(pepper.matches(b"secret-a", &stored));
        assert!(!pepper.matches(b"secret-b", &stored));
        let other = Pepper::new(SecretBytes::new(vec![2; 32]));
        assert!(!other.matches(b"secret-a", &stored));
    }
}
