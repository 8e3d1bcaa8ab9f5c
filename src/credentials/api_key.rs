//! The native API key format: `<prefix>_<mode>_<role>_<tenantId>_<secret><checksum>`, for
//! example `ab_live_admin_abcd1234_<32 hex><6 base62>`.
//!
//! The secret is 128 random bits as 32 lowercase hex digits. The checksum is the CRC32 of all
//! text before it, in base62, left-padded to 6 characters; it lets the verifier and secret
//! scanners drop a mistyped key without a lookup. It is not authentication.

use rand::RngCore;

use super::{is_valid_role, Mode};
use crate::ids::TenantId;
use crate::secret::SecretString;

const SECRET_HEX_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The parts of a native API key that are not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyParts {
    pub mode: Mode,
    pub role: String,
    pub tenant_id: TenantId,
}

/// Format error of text that starts with the native prefix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiKeyFormatError {
    #[error("API key does not have 5 parts separated by '_'")]
    Shape,
    #[error("API key mode is not live or test")]
    Mode,
    #[error("API key role is not a valid role name")]
    Role,
    #[error("API key tenant id is not 8 lowercase letters and digits")]
    Tenant,
    #[error(
        "API key secret is not {SECRET_HEX_LEN} hex digits and a {CHECKSUM_LEN}-character checksum"
    )]
    Secret,
    #[error("API key checksum does not match: the key was mistyped or truncated")]
    Checksum,
}

/// Returns the base62 CRC32 checksum of `body`, 6 characters wide.
pub fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

/// Generates a new key for `parts` under `prefix`.
pub fn generate(prefix: &str, parts: &ApiKeyParts) -> SecretString {
    let mut random = [0u8; SECRET_HEX_LEN / 2];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let body = format!(
        "{prefix}_{}_{}_{}_{}",
        parts.mode.as_str(),
        parts.role,
        parts.tenant_id,
        hex::encode(random)
    );
    let sum = checksum(&body);
    SecretString::new(format!("{body}{sum}"))
}

/// True when `text` claims to be a native key of this deployment: it starts with `<prefix>_`.
pub fn has_native_prefix(prefix: &str, text: &str) -> bool {
    text.len() > prefix.len() && text.starts_with(prefix) && text.as_bytes()[prefix.len()] == b'_'
}

/// Parses and checksums a key that starts with the native prefix.
pub fn parse(prefix: &str, text: &str) -> Result<ApiKeyParts, ApiKeyFormatError> {
    let rest = text
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or(ApiKeyFormatError::Shape)?;
    let parts: Vec<&str> = rest.split('_').collect();
    let [mode, role, tenant, tail] = parts.as_slice() else {
        return Err(ApiKeyFormatError::Shape);
    };
    let mode = Mode::parse(mode).ok_or(ApiKeyFormatError::Mode)?;
    if !is_valid_role(role) {
        return Err(ApiKeyFormatError::Role);
    }
    let tenant_id = TenantId::parse(tenant).map_err(|_| ApiKeyFormatError::Tenant)?;
    if tail.len() != SECRET_HEX_LEN + CHECKSUM_LEN || !tail.is_ascii() {
        return Err(ApiKeyFormatError::Secret);
    }
    let (secret, sum) = tail.split_at(SECRET_HEX_LEN);
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !secret_ok || !sum.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiKeyFormatError::Secret);
    }
    let body = &text[..text.len() - CHECKSUM_LEN];
    if checksum(body) != sum {
        return Err(ApiKeyFormatError::Checksum);
    }
    Ok(ApiKeyParts {
        mode,
        role: (*role).to_owned(),
        tenant_id,
    })
}

/// Returns the first characters of a key that are safe to show: everything up to the secret plus 4
/// characters of it, as a reminder of which key is meant.
pub fn display_prefix(key: &str) -> String {
    let cut = key.rfind('_').map(|i| i + 5).unwrap_or(8).min(key.len());
    format!("{}...", &key[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> ApiKeyParts {
        ApiKeyParts {
            mode: Mode::Live,
            role: "admin".to_owned(),
            tenant_id: TenantId::parse("abcd1234").unwrap(),
        }
    }

    #[test]
    fn generated_key_parses_back() {
        let key = generate("ab", &parts());
        assert!(key.expose().starts_with("ab_live_admin_abcd1234_"));
        assert_eq!(key.expose().len(), "ab_live_admin_abcd1234_".len() + 38);
        assert_eq!(parse("ab", key.expose()).unwrap(), parts());
    }

    #[test]
    fn any_single_character_change_fails_checksum_or_shape() {
        let key = generate("ab", &parts());
        let text = key.expose();
        let start = "ab_live_admin_abcd1234_".len();
        for index in start..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[index] = if bytes[index] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                parse("ab", &changed).is_err(),
                "change at {index} went unnoticed"
            );
        }
    }

    #[test]
    fn malformed_keys_name_their_fault() {
        assert_eq!(parse("ab", "ab_live_admin"), Err(ApiKeyFormatError::Shape));
        assert_eq!(
            parse("ab", "ab_prod_admin_abcd1234_x"),
            Err(ApiKeyFormatError::Mode)
        );
        assert_eq!(
            parse("ab", "ab_live_Admin_abcd1234_x"),
            Err(ApiKeyFormatError::Role)
        );
        assert_eq!(
            parse("ab", "ab_live_admin_ABCD1234_x"),
            Err(ApiKeyFormatError::Tenant)
        );
        assert_eq!(
            parse("ab", "ab_live_admin_abcd1234_x"),
            Err(ApiKeyFormatError::Secret)
        );
    }

    #[test]
    fn checksum_is_six_base62_characters() {
        assert_eq!(checksum("").len(), 6);
        assert_eq!(checksum("x"), checksum("x"));
        assert_ne!(checksum("x"), checksum("y"));
    }

    #[test]
    fn display_prefix_hides_secret() {
        let key = generate("ab", &parts());
        let shown = display_prefix(key.expose());
        assert!(shown.len() < 32);
        assert!(shown.starts_with("ab_live_admin_abcd1234_"));
    }
}
