//! AES-256-GCM encryption of secrets stored in the database, under the master key. Each value is
//! bound to its purpose and row through the associated data, so a ciphertext copied to another
//! row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::secret::SecretBytes;

/// Version byte in front of every sealed value, so the format can change later.
const FORMAT_VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("encrypted value is malformed")]
    Malformed,
    #[error("encrypted value does not decrypt under this master key: check security.master_key")]
    WrongKey,
}

/// Encrypts and decrypts values under the master key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    pub fn new(master_key: &SecretBytes) -> Self {
        let key = aes_gcm::Key::<Aes256Gcm>::from_slice(master_key.expose());
        Self {
            cipher: Aes256Gcm::new(key),
        }
    }

    /// Returns `version || nonce || ciphertext`.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: associated_data,
        };
        // AES-GCM encryption fails only for inputs over 64 GiB.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<SecretBytes, SealError> {
        if sealed.len() < 1 + NONCE_BYTES + 16 || sealed[0] != FORMAT_VERSION {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: associated_data,
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(SecretBytes::new)
            .map_err(|_| SealError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_with_same_key_and_context() {
        let sealer = Sealer::new(&SecretBytes::new(vec![7; 32]));
        let sealed = sealer.seal(b"private key", b"signing-key:abc");
        assert_eq!(
            sealer.open(&sealed, b"signing-key:abc").unwrap().expose(),
            b"private key"
        );
        assert!(sealer.open(&sealed, b"signing-key:xyz").is_err());
        let other = Sealer::new(&SecretBytes::new(vec![8; 32]));
        assert!(other.open(&sealed, b"signing-key:abc").is_err());
    }
}
