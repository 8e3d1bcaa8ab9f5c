//! scrypt in Django form (`scrypt$<N>$<salt>$<r>$<p>$<base64 64-byte hash>`, salt used as its
//! UTF-8 text) and passlib form (`$scrypt$ln=<log2 N>,r=<r>,p=<p>$<b64 salt>$<b64 32-byte hash>`,
//! unpadded standard base64).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::pbkdf2_hash::parse_decimal;
use super::{HashError, HashLimits};

/// Parameters, salt and expected output of a stored scrypt hash.
pub(super) struct ScryptHash {
    pub(super) log_n: u8,
    pub(super) r: u32,
    pub(super) p: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl ScryptHash {
    /// Memory that scrypt needs, 128 × N × r bytes, in KiB.
    pub(super) fn memory_kib(&self) -> u64 {
        let bytes = 128u128 * (1u128 << self.log_n) * u128::from(self.r);
        u64::try_from(bytes / 1024).unwrap_or(u64::MAX)
    }
}

/// Django's scrypt hasher always writes a 64-byte hash, and passlib's writes 32 bytes.
const DJANGO_HASH_LENGTH: usize = 64;
const PASSLIB_HASH_LENGTH: usize = 32;

pub(super) fn parse(scheme: &'static str, stored: &str) -> Result<ScryptHash, HashError> {
    if let Some(rest) = stored.strip_prefix("scrypt$") {
        return parse_django(scheme, stored, rest);
    }
    if let Some(rest) = stored.strip_prefix("$scrypt$") {
        return parse_passlib(scheme, stored, rest);
    }
    Err(HashError::invalid(
        scheme,
        "expected the tag `scrypt$` (Django) or `$scrypt$` (passlib)",
        stored,
    ))
}

fn parse_django(scheme: &'static str, stored: &str, rest: &str) -> Result<ScryptHash, HashError> {
    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let fields: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, hash] = fields[..] else {
        return Err(invalid(
            "expected `scrypt$<N>$<salt>$<r>$<p>$<base64 hash>`",
        ));
    };
    let n = parse_decimal(n).ok_or_else(|| invalid("expected a decimal N"))?;
    if n < 2 || !n.is_power_of_two() {
        return Err(invalid("expected N to be a power of two greater than 1"));
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| invalid("N is out of range"))?;
    let r = parse_decimal(r).ok_or_else(|| invalid("expected a positive decimal r"))?;
    let p = parse_decimal(p).ok_or_else(|| invalid("expected a positive decimal p"))?;
    let expected = STANDARD
        .decode(hash)
        .map_err(|_| invalid("expected a padded standard base64 hash"))?;
    if expected.len() != DJANGO_HASH_LENGTH {
        return Err(invalid("expected a 64-byte hash"));
    }
    Ok(ScryptHash {
        log_n,
        r,
        p,
        salt: salt.as_bytes().to_vec(),
        expected,
    })
}

fn parse_passlib(scheme: &'static str, stored: &str, rest: &str) -> Result<ScryptHash, HashError> {
    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let fields: Vec<&str> = rest.split('$').collect();
    let [params, salt, hash] = fields[..] else {
        return Err(invalid("expected `$scrypt$ln=..,r=..,p=..$<salt>$<hash>`"));
    };

    let values: Vec<&str> = params.split(',').collect();
    let [log_n, r, p] = values[..] else {
        return Err(invalid("expected the parameters `ln=<log2 N>,r=<r>,p=<p>`"));
    };
    let log_n = log_n
        .strip_prefix("ln=")
        .and_then(parse_decimal)
        .and_then(|log_n| u8::try_from(log_n).ok())
        .filter(|log_n| *log_n < 64)
        .ok_or_else(|| invalid("expected `ln=` with a log2 N below 64"))?;
    let r = r
        .strip_prefix("r=")
        .and_then(parse_decimal)
        .ok_or_else(|| invalid("expected `r=` with a positive decimal"))?;
    let p = p
        .strip_prefix("p=")
        .and_then(parse_decimal)
        .ok_or_else(|| invalid("expected `p=` with a positive decimal"))?;

    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| invalid("expected an unpadded base64 salt"))?;
    let expected = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|_| invalid("expected an unpadded base64 hash"))?;
    if expected.len() != PASSLIB_HASH_LENGTH {
        return Err(invalid("expected a 32-byte hash"));
    }
    Ok(ScryptHash {
        log_n,
        r,
        p,
        salt,
        expected,
    })
}

pub(super) fn verify(
    scheme: &'static str,
    key: &[u8],
    stored: &str,
    limits: &HashLimits,
) -> Result<bool, HashError> {
    let hash = parse(scheme, stored)?;
    HashError::check_cost(
        scheme,
        "scrypt memory (KiB)",
        hash.memory_kib(),
        limits.max_scrypt_memory_kib,
        "max_scrypt_memory_kib",
    )?;
    HashError::check_cost(
        scheme,
        "scrypt parallelism",
        hash.p.into(),
        limits.max_scrypt_parallelism.into(),
        "max_scrypt_parallelism",
    )?;

    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let params = scrypt::Params::new(hash.log_n, hash.r, hash.p, hash.expected.len())
        .map_err(|_| invalid("expected N, r and p within scrypt's ranges"))?;
    let mut computed = vec![0u8; hash.expected.len()];
    scrypt::scrypt(key, &hash.salt, &params, &mut computed)
        .map_err(|_| invalid("expected a hash length that scrypt supports"))?;
    Ok(computed.ct_eq(&hash.expected).into())
}
