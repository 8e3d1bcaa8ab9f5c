//! Errors of legacy hash verification, and the non-secret tag shown in their messages.

use thiserror::Error;

/// Failure to check a stored hash. A wrong key is not an error: [`super::verify`]
/// returns `Ok(false)` for it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HashError {
    /// The stored value does not parse as the configured scheme. This is a configuration error
    /// (wrong scheme for the store, or a damaged row), so it is never reported as a wrong key.
    #[error(
        "stored hash is not a valid `{scheme}` hash: {reason}; the stored value starts with \
         {tag}. Check the hash scheme configured for this key store"
    )]
    InvalidFormat {
        /// The configured scheme, as named in the configuration.
        scheme: &'static str,
        /// The form the parser expected, without any part of the stored value.
        reason: &'static str,
        /// The stored value's algorithm tag from [`stored_tag`].
        tag: String,
    },

    /// A cost parameter read from the stored value exceeds the configured maximum.
    #[error(
        "stored `{scheme}` hash has {parameter} {value}, above the configured maximum of {max}; \
         raise `{setting}` if this cost is expected"
    )]
    CostTooHigh {
        scheme: &'static str,
        parameter: &'static str,
        value: u64,
        max: u64,
        /// The `HashLimits` field that sets the maximum.
        setting: &'static str,
    },

    /// The `django` scheme found an algorithm tag it does not implement.
    #[error(
        "stored hash uses the Django algorithm {tag}, which is not supported; supported tags: \
         pbkdf2_sha256, pbkdf2_sha1, argon2, bcrypt_sha256, bcrypt, scrypt, sha1, md5, \
         unsalted_sha1, unsalted_md5 and sha512 (djangorestframework-api-key)"
    )]
    UnsupportedDjangoAlgorithm { tag: String },

    /// [`super::HashInput::Part`] names a part that the key parser did not supply.
    #[error("hash input part `{part}` is missing from the parsed key; check the key format's part names")]
    MissingInputPart { part: String },
}

impl HashError {
    pub(super) fn invalid(scheme: &'static str, reason: &'static str, stored: &str) -> Self {
        Self::InvalidFormat {
            scheme,
            reason,
            tag: stored_tag(stored),
        }
    }

    pub(super) fn check_cost(
        scheme: &'static str,
        parameter: &'static str,
        value: u64,
        max: u64,
        setting: &'static str,
    ) -> Result<(), Self> {
        if value > max {
            return Err(Self::CostTooHigh {
                scheme,
                parameter,
                value,
                max,
                setting,
            });
        }
        Ok(())
    }
}

/// Maximum length of an algorithm tag that [`stored_tag`] shows.
const MAX_TAG_LENGTH: usize = 32;

/// Returns the algorithm tag of a stored hash for messages: `` `$2b$` `` for an MCF/PHC string,
/// `` `pbkdf2_sha256$` `` for a Django-style string, or only the length when the value has no
/// tag. Salts, costs and digests are never included.
pub fn stored_tag(stored: &str) -> String {
    let (lead, rest) = match stored.strip_prefix('$') {
        Some(rest) => ("$", rest),
        None => ("", stored),
    };
    if let Some((tag, _)) = rest.split_once('$') {
        if is_tag(tag) {
            return format!("`{lead}{tag}$`");
        }
        return "an unrecognized algorithm tag".to_owned();
    }
    format!("no algorithm tag ({} characters)", stored.chars().count())
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LENGTH
        && tag
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}
