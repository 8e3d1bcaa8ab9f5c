//! Unsalted digests: plaintext, SHA-256, SHA-512 and HMAC-SHA256, each with a text encoding.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{DigestEncoding, HashError};

type HmacSha256 = Hmac<Sha256>;

const INDIFFERENT_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// Standard base64 that decodes values with or without `=` padding.
pub(super) const BASE64_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT_PADDING);
const BASE64URL_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT_PADDING);

/// Compares the key with a stored plaintext key. Both sides are hashed with SHA-256 first, so
/// the time taken depends neither on where they differ nor on the stored length.
pub(super) fn verify_plaintext(key: &[u8], stored: &str) -> bool {
    let presented = Sha256::digest(key);
    let expected = Sha256::digest(stored.as_bytes());
    presented.ct_eq(&expected).into()
}

pub(super) fn verify_sha256(
    scheme: &'static str,
    key: &[u8],
    stored: &str,
    encoding: DigestEncoding,
) -> Result<bool, HashError> {
    let expected = decode_digest(scheme, stored, encoding, 32)?;
    Ok(Sha256::digest(key).ct_eq(&expected).into())
}

pub(super) fn verify_sha512(
    scheme: &'static str,
    key: &[u8],
    stored: &str,
    encoding: DigestEncoding,
) -> Result<bool, HashError> {
    let expected = decode_digest(scheme, stored, encoding, 64)?;
    Ok(Sha512::digest(key).ct_eq(&expected).into())
}

pub(super) fn verify_hmac_sha256(
    scheme: &'static str,
    pepper: &[u8],
    key: &[u8],
    stored: &str,
    encoding: DigestEncoding,
) -> Result<bool, HashError> {
    let expected = decode_digest(scheme, stored, encoding, 32)?;
    let mut mac = new_hmac_sha256(pepper);
    mac.update(key);
    Ok(mac.verify_slice(&expected).is_ok())
}

fn new_hmac_sha256(pepper: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (RFC 2104), so `new_from_slice` never fails.
    match HmacSha256::new_from_slice(pepper) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// Decodes a stored digest and checks that it has `length` bytes.
fn decode_digest(
    scheme: &'static str,
    stored: &str,
    encoding: DigestEncoding,
    length: usize,
) -> Result<Vec<u8>, HashError> {
    let (decoded, reason) = match encoding {
        DigestEncoding::Hex => (hex::decode(stored).ok(), "expected a hex digest"),
        DigestEncoding::Base64 => (
            BASE64_ANY_PADDING.decode(stored).ok(),
            "expected a standard base64 digest",
        ),
        DigestEncoding::Base64url => (
            BASE64URL_ANY_PADDING.decode(stored).ok(),
            "expected a base64url digest",
        ),
    };
    let Some(bytes) = decoded else {
        return Err(HashError::invalid(scheme, reason, stored));
    };
    if bytes.len() != length {
        return Err(HashError::invalid(
            scheme,
            "the decoded digest has the wrong length for this algorithm",
            stored,
        ));
    }
    Ok(bytes)
}
