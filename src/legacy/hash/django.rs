//! Django password hashes, dispatched on the algorithm tag as `django.contrib.auth.hashers`
//! does (`identify_hasher` and each hasher's `verify`, Django 4.2 and 5.2), plus the
//! `sha512$$<hex>` form of djangorestframework-api-key 3.x.
//!
//! Two deliberate differences from Django: an unknown tag is an error instead of `False`, and
//! every hasher Django ships is accepted, whereas a Django application accepts only the hashers
//! listed in its `PASSWORD_HASHERS` setting.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{argon2_hash, bcrypt_hash, pbkdf2_hash, scrypt_hash, HashError, HashLimits};

/// Django's `make_password(None)` and `set_unusable_password` write `!` and random text. Django's
/// `check_password` returns `False` for such values without looking further.
const UNUSABLE_PASSWORD_PREFIX: char = '!';

/// Prefix of djangorestframework-api-key 3.x's `Sha512ApiKeyHasher`, which its `KeyGenerator`
/// checks before falling back to Django's `check_password`.
const DRF_API_KEY_SHA512_PREFIX: &str = "sha512$$";

/// A Django hasher, identified as `identify_hasher` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DjangoAlgorithm {
    DrfApiKeySha512,
    Pbkdf2,
    Argon2,
    BcryptSha256,
    Bcrypt,
    Scrypt,
    SaltedSha1,
    SaltedMd5,
    UnsaltedSha1,
    UnsaltedMd5,
}

pub(super) fn identify(stored: &str) -> Result<DjangoAlgorithm, HashError> {
    if stored.starts_with(DRF_API_KEY_SHA512_PREFIX) {
        return Ok(DjangoAlgorithm::DrfApiKeySha512);
    }
    // Python's `len` counts characters, so these checks count characters too.
    let length = stored.chars().count();
    if (length == 32 && !stored.contains('$')) || (length == 37 && stored.starts_with("md5$$")) {
        return Ok(DjangoAlgorithm::UnsaltedMd5);
    }
    if length == 46 && stored.starts_with("sha1$$") {
        return Ok(DjangoAlgorithm::UnsaltedSha1);
    }
    let tag = stored.split('$').next().unwrap_or_default();
    match tag {
        "pbkdf2_sha256" | "pbkdf2_sha1" => Ok(DjangoAlgorithm::Pbkdf2),
        "argon2" => Ok(DjangoAlgorithm::Argon2),
        "bcrypt_sha256" => Ok(DjangoAlgorithm::BcryptSha256),
        "bcrypt" => Ok(DjangoAlgorithm::Bcrypt),
        "scrypt" => Ok(DjangoAlgorithm::Scrypt),
        "sha1" => Ok(DjangoAlgorithm::SaltedSha1),
        "md5" => Ok(DjangoAlgorithm::SaltedMd5),
        _ => Err(HashError::UnsupportedDjangoAlgorithm {
            tag: super::stored_tag(stored),
        }),
    }
}

pub(super) fn verify(
    scheme: &'static str,
    key: &[u8],
    stored: &str,
    limits: &HashLimits,
) -> Result<bool, HashError> {
    if stored.starts_with(UNUSABLE_PASSWORD_PREFIX) {
        return Ok(false);
    }
    match identify(stored)? {
        DjangoAlgorithm::DrfApiKeySha512 => {
            let hex = &stored[DRF_API_KEY_SHA512_PREFIX.len()..];
            verify_hex_digest::<Sha512>(scheme, stored, hex, &[], key)
        }
        DjangoAlgorithm::Pbkdf2 => pbkdf2_hash::verify(scheme, key, stored, limits),
        DjangoAlgorithm::Argon2 => {
            // Django stores `argon2` followed by argon2-cffi's PHC string, which starts with `$`.
            argon2_hash::verify(scheme, key, &stored["argon2".len()..], limits)
        }
        DjangoAlgorithm::BcryptSha256 => {
            // Django passes the lowercase hex SHA-256 of the password to bcrypt, so keys longer
            // than 72 bytes are not truncated.
            let prehashed = hex::encode(Sha256::digest(key));
            let bcrypt = &stored["bcrypt_sha256$".len()..];
            bcrypt_hash::verify(scheme, prehashed.as_bytes(), bcrypt, limits)
        }
        DjangoAlgorithm::Bcrypt => {
            bcrypt_hash::verify(scheme, key, &stored["bcrypt$".len()..], limits)
        }
        DjangoAlgorithm::Scrypt => scrypt_hash::verify(scheme, key, stored, limits),
        DjangoAlgorithm::SaltedSha1 => {
            let (salt, hex) = split_salted(scheme, stored, "sha1$")?;
            verify_hex_digest::<Sha1>(scheme, stored, hex, salt.as_bytes(), key)
        }
        DjangoAlgorithm::SaltedMd5 => {
            let (salt, hex) = split_salted(scheme, stored, "md5$")?;
            verify_hex_digest::<Md5>(scheme, stored, hex, salt.as_bytes(), key)
        }
        DjangoAlgorithm::UnsaltedSha1 => {
            verify_hex_digest::<Sha1>(scheme, stored, &stored["sha1$$".len()..], &[], key)
        }
        DjangoAlgorithm::UnsaltedMd5 => {
            let hex = stored.strip_prefix("md5$$").unwrap_or(stored);
            verify_hex_digest::<Md5>(scheme, stored, hex, &[], key)
        }
    }
}

/// Splits `<tag><salt>$<hex>`, as Django's `encoded.split("$", 2)` does.
fn split_salted<'a>(
    scheme: &'static str,
    stored: &'a str,
    tag: &str,
) -> Result<(&'a str, &'a str), HashError> {
    stored
        .strip_prefix(tag)
        .and_then(|rest| rest.split_once('$'))
        .ok_or_else(|| HashError::invalid(scheme, "expected `<tag>$<salt>$<hex digest>`", stored))
}

/// Compares `hex` with the digest of `salt` followed by `key`. Django compares the lowercase hex
/// text, so any other form of the digest can never match and is reported as a format error.
fn verify_hex_digest<D: Digest>(
    scheme: &'static str,
    stored: &str,
    hex: &str,
    salt: &[u8],
    key: &[u8],
) -> Result<bool, HashError> {
    let expected_length = 2 * <D as Digest>::output_size();
    let lowercase_hex = hex
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if hex.len() != expected_length || !lowercase_hex {
        return Err(HashError::invalid(
            scheme,
            "expected a lowercase hex digest of the algorithm's length",
            stored,
        ));
    }
    let mut hasher = D::new();
    hasher.update(salt);
    hasher.update(key);
    let computed = hex::encode(hasher.finalize());
    Ok(computed.as_bytes().ct_eq(hex.as_bytes()).into())
}
