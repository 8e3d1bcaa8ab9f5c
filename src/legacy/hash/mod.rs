//! Hash schemes of legacy API key stores, so that authbridge accepts a legacy key exactly when
//! the legacy application would.
//!
//! A store's configuration names one [`HashScheme`]. [`verify`] checks presented key bytes
//! against one stored value and returns `Ok(false)` only for a wrong key. A stored value that
//! does not parse as the configured scheme, or whose cost exceeds [`HashLimits`], is an error,
//! because treating it as a wrong key would hide a configuration problem.
//!
//! Every comparison of a computed digest with a stored one is constant-time (`subtle`, or the
//! constant-time comparison inside the `bcrypt` and `password-hash` crates). Parsing the stored
//! value is not, because the stored value is not secret from the verifier.
//!
//! The tests check every scheme against vectors made by the real libraries
//! (`tools/fixtures/make_hash_vectors.py`).

mod argon2_hash;
mod bcrypt_hash;
mod describe;
mod digest;
mod django;
mod error;
mod pbkdf2_hash;
mod scrypt_hash;

#[cfg(test)]
mod tests;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use describe::{describe_stored, HashCost, HashDescription};
pub use error::{stored_tag, HashError};

use crate::secret::SecretBytes;

/// How a legacy store hashed its keys. Deserialized from configuration with a `scheme` field,
/// for example `{ scheme = "sha256", encoding = "base64" }` or `{ scheme = "django" }`.
///
/// The slow schemes read their parameters (iterations, cost, memory, salt) from the stored value,
/// so they take no settings here, and [`HashLimits`] caps those parameters. Variants without
/// settings are empty struct variants so that `deny_unknown_fields` rejects stray keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum HashScheme {
    /// The stored value is the key itself (DRF authtoken, Rails `has_secure_token`, Kong).
    Plaintext {},
    /// SHA-256 of the key (Sanctum: hex; Unkey: padded base64; better-auth: unpadded base64url).
    Sha256 {
        #[serde(default)]
        encoding: DigestEncoding,
    },
    /// SHA-512 of the key, without a tag (for `sha512$$<hex>` use [`HashScheme::Django`]).
    Sha512 {
        #[serde(default)]
        encoding: DigestEncoding,
    },
    /// HMAC-SHA256 of the key under a server-side pepper (Devise-style token digests).
    HmacSha256 {
        pepper: LegacyPepper,
        #[serde(default)]
        encoding: DigestEncoding,
    },
    /// bcrypt: `$2a$`, `$2b$` or `$2y$`. Only the first 72 bytes of the key count, because the
    /// legacy libraries truncate there too, and that truncation is reproduced.
    Bcrypt {},
    /// Argon2 PHC strings: `$argon2id$`, `$argon2i$` or `$argon2d$`.
    Argon2 {},
    /// scrypt in Django form (`scrypt$n$salt$r$p$hash`) or passlib form
    /// (`$scrypt$ln=..,r=..,p=..$salt$hash`).
    Scrypt {},
    /// PBKDF2 in Django form (`pbkdf2_sha256$`, `pbkdf2_sha1$`) or passlib form
    /// (`$pbkdf2-sha256$`, `$pbkdf2-sha512$`, `$pbkdf2$`).
    Pbkdf2 {},
    /// Any Django password hash, dispatched on its algorithm tag as Django's `check_password`
    /// does, plus the `sha512$$<hex>` form of djangorestframework-api-key 3.x.
    Django {},
}

impl HashScheme {
    /// Returns the scheme's configuration name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plaintext {} => "plaintext",
            Self::Sha256 { .. } => "sha256",
            Self::Sha512 { .. } => "sha512",
            Self::HmacSha256 { .. } => "hmac_sha256",
            Self::Bcrypt {} => "bcrypt",
            Self::Argon2 {} => "argon2",
            Self::Scrypt {} => "scrypt",
            Self::Pbkdf2 {} => "pbkdf2",
            Self::Django {} => "django",
        }
    }
}

/// Text encoding of a stored digest. Decoding accepts both letter cases for `hex`, and values
/// with or without `=` padding for `base64` and `base64url`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestEncoding {
    #[default]
    Hex,
    Base64,
    Base64url,
}

/// The HMAC key of a `hmac_sha256` store, configured as standard base64. Its `Debug` output and
/// its serialized form are redacted, so printing the effective configuration does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyPepper(SecretBytes);

impl LegacyPepper {
    pub fn new(key: SecretBytes) -> Self {
        Self(key)
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl std::fmt::Debug for LegacyPepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyPepper(<redacted>)")
    }
}

impl Serialize for LegacyPepper {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for LegacyPepper {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| serde::de::Error::custom("pepper is not valid standard base64"))?;
        if bytes.is_empty() {
            return Err(serde::de::Error::custom("pepper must not be empty"));
        }
        Ok(Self(SecretBytes::new(bytes)))
    }
}

/// Maximum costs accepted from stored values. A stored value above a maximum is rejected with
/// [`HashError::CostTooHigh`] before any hashing, so a bad row cannot stall verification.
/// Each limit applies to one verification, so concurrent verifications add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashLimits {
    /// PBKDF2 iterations. Default 2,000,000. Django 5.2 writes 1,000,000 and raises its default
    /// with each release.
    pub max_pbkdf2_iterations: u32,
    /// bcrypt cost (log2 of the rounds). Default 14. Django 5.2 writes 12.
    pub max_bcrypt_cost: u32,
    /// Argon2 memory in KiB (`m`). Default 262,144 (256 MiB). Django 5.2 writes 102,400.
    pub max_argon2_memory_kib: u32,
    /// Argon2 passes (`t`). Default 10. Django 5.2 writes 2 and argon2-cffi 25.1 writes 3.
    pub max_argon2_iterations: u32,
    /// scrypt memory in KiB, 128 × N × r bytes. Default 262,144 (256 MiB). Django 5.2 uses
    /// 16 MiB (N = 2^14, r = 8).
    pub max_scrypt_memory_kib: u64,
    /// scrypt parallelism `p`, which multiplies the work. Default 16. Django 5.2 writes 5.
    pub max_scrypt_parallelism: u32,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            max_pbkdf2_iterations: 2_000_000,
            max_bcrypt_cost: 14,
            max_argon2_memory_kib: 262_144,
            max_argon2_iterations: 10,
            max_scrypt_memory_kib: 262_144,
            max_scrypt_parallelism: 16,
        }
    }
}

/// Which bytes of a presented key the legacy store hashed. Configured as `"whole_key"` or as
/// `{ part = "<name>" }`.
///
/// This type only selects. The key-format parser splits the key and names its parts, for
/// example Laravel Sanctum hashes the text after `<id>|`, which a parser might call `secret`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashInput {
    #[default]
    WholeKey,
    Part(String),
}

impl HashInput {
    /// Selects the bytes to hash: `whole_key`, or the entry of `parts` with the configured name.
    pub fn select<'a>(
        &self,
        whole_key: &'a [u8],
        parts: &[(&str, &'a [u8])],
    ) -> Result<&'a [u8], HashError> {
        match self {
            Self::WholeKey => Ok(whole_key),
            Self::Part(name) => parts
                .iter()
                .find(|(part_name, _)| part_name == name)
                .map(|(_, bytes)| *bytes)
                .ok_or_else(|| HashError::MissingInputPart { part: name.clone() }),
        }
    }
}

/// Checks `key` (the bytes chosen by [`HashInput::select`]) against one stored hash.
///
/// Returns `Ok(true)` when the legacy application would accept the key and `Ok(false)` when it
/// would reject it. Errors mean that the stored value cannot be checked under this scheme and
/// these limits.
pub fn verify(
    scheme: &HashScheme,
    key: &[u8],
    stored: &str,
    limits: &HashLimits,
) -> Result<bool, HashError> {
    let name = scheme.name();
    match scheme {
        HashScheme::Plaintext {} => Ok(digest::verify_plaintext(key, stored)),
        HashScheme::Sha256 { encoding } => digest::verify_sha256(name, key, stored, *encoding),
        HashScheme::Sha512 { encoding } => digest::verify_sha512(name, key, stored, *encoding),
        HashScheme::HmacSha256 { pepper, encoding } => {
            digest::verify_hmac_sha256(name, pepper.expose(), key, stored, *encoding)
        }
        HashScheme::Bcrypt {} => bcrypt_hash::verify(name, key, stored, limits),
        HashScheme::Argon2 {} => argon2_hash::verify(name, key, stored, limits),
        HashScheme::Scrypt {} => scrypt_hash::verify(name, key, stored, limits),
        HashScheme::Pbkdf2 {} => pbkdf2_hash::verify(name, key, stored, limits),
        HashScheme::Django {} => django::verify(name, key, stored, limits),
    }
}
