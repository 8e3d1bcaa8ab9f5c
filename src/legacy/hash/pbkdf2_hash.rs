//! PBKDF2-HMAC in Django form (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`,
//! `pbkdf2_sha1$...`) and passlib form (`$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>`,
//! `$pbkdf2-sha512$...`, `$pbkdf2$...` for SHA-1).
//!
//! Django uses the salt text's UTF-8 bytes as the salt, and passlib decodes its salt from ab64
//! (base64 with `.` in place of `+` and no padding).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{HashError, HashLimits};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pbkdf2Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Pbkdf2Digest {
    fn output_length(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// Digest, iteration count, salt and expected output of a stored PBKDF2 hash.
pub(super) struct Pbkdf2Hash {
    pub(super) digest: Pbkdf2Digest,
    pub(super) iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

/// Returns whether `stored` starts with a PBKDF2 tag that [`parse`] reads.
pub(super) fn has_pbkdf2_tag(stored: &str) -> bool {
    [
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "$pbkdf2-sha256$",
        "$pbkdf2-sha512$",
        "$pbkdf2$",
    ]
    .iter()
    .any(|tag| stored.starts_with(tag))
}

pub(super) fn parse(scheme: &'static str, stored: &str) -> Result<Pbkdf2Hash, HashError> {
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return parse_django(scheme, stored, rest, Pbkdf2Digest::Sha256);
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha1$") {
        return parse_django(scheme, stored, rest, Pbkdf2Digest::Sha1);
    }
    let passlib = [
        ("$pbkdf2-sha256$", Pbkdf2Digest::Sha256),
        ("$pbkdf2-sha512$", Pbkdf2Digest::Sha512),
        ("$pbkdf2$", Pbkdf2Digest::Sha1),
    ];
    for (tag, digest) in passlib {
        if let Some(rest) = stored.strip_prefix(tag) {
            return parse_passlib(scheme, stored, rest, digest);
        }
    }
    Err(HashError::invalid(
        scheme,
        "expected the tag `pbkdf2_sha256$`, `pbkdf2_sha1$`, `$pbkdf2-sha256$`, `$pbkdf2-sha512$` \
         or `$pbkdf2$`",
        stored,
    ))
}

fn parse_django(
    scheme: &'static str,
    stored: &str,
    rest: &str,
    digest: Pbkdf2Digest,
) -> Result<Pbkdf2Hash, HashError> {
    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let fields: Vec<&str> = rest.split('$').collect();
    let [iterations, salt, hash] = fields[..] else {
        return Err(invalid(
            "expected `<tag>$<iterations>$<salt>$<base64 hash>`",
        ));
    };
    let iterations = parse_decimal(iterations)
        .ok_or_else(|| invalid("expected a positive decimal iteration count"))?;
    // Django writes padded standard base64 and compares the text, so only that form can match.
    let expected = STANDARD
        .decode(hash)
        .map_err(|_| invalid("expected a padded standard base64 hash"))?;
    finish(
        scheme,
        stored,
        digest,
        iterations,
        salt.as_bytes().to_vec(),
        expected,
    )
}

fn parse_passlib(
    scheme: &'static str,
    stored: &str,
    rest: &str,
    digest: Pbkdf2Digest,
) -> Result<Pbkdf2Hash, HashError> {
    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let fields: Vec<&str> = rest.split('$').collect();
    let [rounds, salt, hash] = fields[..] else {
        return Err(invalid("expected `<tag><rounds>$<ab64 salt>$<ab64 hash>`"));
    };
    let iterations =
        parse_decimal(rounds).ok_or_else(|| invalid("expected a positive decimal round count"))?;
    let salt = decode_ab64(salt).ok_or_else(|| invalid("expected an ab64 salt"))?;
    let expected = decode_ab64(hash).ok_or_else(|| invalid("expected an ab64 hash"))?;
    finish(scheme, stored, digest, iterations, salt, expected)
}

fn finish(
    scheme: &'static str,
    stored: &str,
    digest: Pbkdf2Digest,
    iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
) -> Result<Pbkdf2Hash, HashError> {
    if expected.len() != digest.output_length() {
        return Err(HashError::invalid(
            scheme,
            "the decoded hash is not as long as the digest output",
            stored,
        ));
    }
    Ok(Pbkdf2Hash {
        digest,
        iterations,
        salt,
        expected,
    })
}

/// Decodes passlib's "adapted base64": the standard alphabet with `.` for `+`, unpadded.
fn decode_ab64(text: &str) -> Option<Vec<u8>> {
    if text.contains('+') {
        return None;
    }
    STANDARD_NO_PAD.decode(text.replace('.', "+")).ok()
}

/// Parses a decimal count as Django and passlib write it: digits only, no leading zero, not 0.
pub(super) fn parse_decimal(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && !text.starts_with('0');
    if !canonical {
        return None;
    }
    text.parse().ok()
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
        "PBKDF2 iterations",
        hash.iterations.into(),
        limits.max_pbkdf2_iterations.into(),
        "max_pbkdf2_iterations",
    )?;

    let mut computed = vec![0u8; hash.expected.len()];
    match hash.digest {
        Pbkdf2Digest::Sha1 => {
            pbkdf2::pbkdf2_hmac::<Sha1>(key, &hash.salt, hash.iterations, &mut computed)
        }
        Pbkdf2Digest::Sha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(key, &hash.salt, hash.iterations, &mut computed)
        }
        Pbkdf2Digest::Sha512 => {
            pbkdf2::pbkdf2_hmac::<Sha512>(key, &hash.salt, hash.iterations, &mut computed)
        }
    }
    Ok(computed.ct_eq(&hash.expected).into())
}
