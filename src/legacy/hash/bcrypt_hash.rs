//! bcrypt (`$2a$`, `$2b$`, `$2y$`) through the `bcrypt` crate.
//!
//! The bcrypt algorithm uses at most 72 bytes of key, and common implementations (Python's
//! bcrypt 4.3, checked by the fixture generator) silently drop the rest. So a longer key
//! verifies when its first 72 bytes match. That behaviour is reproduced on purpose, because
//! `bcrypt::verify` truncates in the same way.

use super::{HashError, HashLimits};

/// Cost and validated text of a bcrypt hash.
pub(super) struct BcryptHash<'a> {
    pub(super) cost: u32,
    text: &'a str,
}

pub(super) fn parse<'a>(
    scheme: &'static str,
    stored: &'a str,
) -> Result<BcryptHash<'a>, HashError> {
    let known_prefix = ["$2a$", "$2b$", "$2y$"]
        .into_iter()
        .any(|prefix| stored.starts_with(prefix));
    if !known_prefix {
        let reason = "expected a `$2a$`, `$2b$` or `$2y$` bcrypt hash";
        return Err(HashError::invalid(scheme, reason, stored));
    }
    // Layout: prefix (4), two cost digits, `$`, 22 salt and 31 digest characters.
    let well_formed = stored.len() == 60
        && stored.as_bytes()[4..6].iter().all(u8::is_ascii_digit)
        && stored.as_bytes()[6] == b'$'
        && stored.as_bytes()[7..]
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'.' || *byte == b'/');
    if !well_formed {
        return Err(HashError::invalid(
            scheme,
            "expected 60 characters: prefix, two-digit cost, `$`, 53 characters of salt and digest",
            stored,
        ));
    }
    let cost = u32::from(stored.as_bytes()[4] - b'0') * 10 + u32::from(stored.as_bytes()[5] - b'0');
    Ok(BcryptHash { cost, text: stored })
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
        "bcrypt cost",
        hash.cost.into(),
        limits.max_bcrypt_cost.into(),
        "max_bcrypt_cost",
    )?;
    bcrypt::verify(key, hash.text).map_err(|_| {
        HashError::invalid(
            scheme,
            "bcrypt rejected the cost, salt or digest (cost must be 4 to 31)",
            stored,
        )
    })
}
