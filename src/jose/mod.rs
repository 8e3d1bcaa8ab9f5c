//! Strict JOSE handling for signed JWTs (RFC 7515, RFC 7519, RFC 8725): compact serialization
//! only, an algorithm allow-list that is bound to the key type, no keys taken from the token, no
//! critical extensions. Cryptography comes from aws-lc-rs through [`keys`].
//!
//! This module has no notion of issuers or tenants: it turns text into a [`CompactJws`] and checks
//! a signature with a key chosen by the caller.

mod algorithm;
pub mod jwk;
pub mod keys;

pub use algorithm::Algorithm;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Maximum decoded size of a JOSE header in bytes; real headers are well under 1 KiB.
const MAX_HEADER_BYTES: usize = 2048;

/// Error parsing a compact JWS. The verifier maps each variant to a reason code, mostly
/// `malformed`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("token has {0} segments; a compact JWS has exactly 3")]
    SegmentCount(usize),
    #[error("token segment {0} is not unpadded base64url")]
    Base64(&'static str),
    #[error("JOSE header is not a JSON object")]
    HeaderNotObject,
    #[error("JOSE header is larger than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge,
    #[error("JOSE header has no string \"alg\"")]
    MissingAlgorithm,
    #[error("algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    #[error("JOSE header parameter {0:?} is not allowed")]
    ForbiddenHeader(&'static str),
    #[error("JOSE header parameter {0:?} has the wrong type")]
    HeaderType(&'static str),
    #[error("JWT claims are not a JSON object")]
    ClaimsNotObject,
    #[error("signature is empty")]
    EmptySignature,
}

/// A compact JWS split into its parts, with the header parsed and checked but the signature not
/// yet verified.
#[derive(Debug)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    pub algorithm: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

impl<'a> CompactJws<'a> {
    /// Parses `token` without trusting it: exactly three segments, strict base64url, a JSON
    /// object header with a known `alg`, no `crit` or `b64`, and JSON object claims.
    ///
    /// `jwk`, `jku`, `x5u` and `x5c` are ignored: keys only ever come from configuration, so a
    /// token that carries its own key fails signature verification against the configured one.
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        let segments: Vec<&str> = token.split('.').collect();
        if segments.len() != 3 {
            // A 5-segment JWE is refused here, before any decoding or cryptography.
            return Err(JwsError::SegmentCount(segments.len()));
        }
        let (header_b64, claims_b64, signature_b64) = (segments[0], segments[1], segments[2]);
        if header_b64.len() > MAX_HEADER_BYTES * 4 / 3 + 4 {
            return Err(JwsError::HeaderTooLarge);
        }

        let header_bytes = decode_segment(header_b64, "header")?;
        let header = match serde_json::from_slice::<Value>(&header_bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(JwsError::HeaderNotObject),
        };
        let algorithm = match header.get("alg") {
            Some(Value::String(name)) => Algorithm::from_jose_name(name)
                .ok_or_else(|| JwsError::UnsupportedAlgorithm(name.clone()))?,
            _ => return Err(JwsError::MissingAlgorithm),
        };
        // RFC 7515 section 4.1.11: a recipient must reject `crit` it does not understand, and
        // this verifier understands no extension. RFC 7797 `b64` is refused with or without it.
        if header.contains_key("crit") {
            return Err(JwsError::ForbiddenHeader("crit"));
        }
        if header.contains_key("b64") {
            return Err(JwsError::ForbiddenHeader("b64"));
        }
        if header.contains_key("zip") || header.contains_key("enc") {
            return Err(JwsError::ForbiddenHeader("enc"));
        }
        let kid = optional_string(&header, "kid")?;
        let typ = optional_string(&header, "typ")?;

        let claims_bytes = decode_segment(claims_b64, "payload")?;
        let claims = match serde_json::from_slice::<Value>(&claims_bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(JwsError::ClaimsNotObject),
        };

        if signature_b64.is_empty() {
            return Err(JwsError::EmptySignature);
        }
        let signature = decode_segment(signature_b64, "signature")?;
        let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];

        Ok(Self {
            signing_input,
            signature,
            algorithm,
            kid,
            typ,
            header,
            claims,
        })
    }

    /// Returns the bytes the signature covers: `BASE64URL(header) "." BASE64URL(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Returns the unverified `iss` claim, used only to choose the verifier.
    pub fn unverified_issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// Reads the unverified `iss` of a compact JWS without decoding or checking anything else: the
/// classifier uses it to pick exactly one verifier.
///
/// Only `iss` is deserialized, and the other claims are skipped without building values. A payload
/// that names `iss` twice has no issuer here, so such a token is malformed.
pub fn peek_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }

    let mut segments = token.split('.');
    let _header = segments.next()?;
    let payload = segments.next()?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    // serde also reads a struct from a JSON array, which is no claims set.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let peeked: Issuer = serde_json::from_slice(&bytes).ok()?;
    peeked.iss
}

fn decode_segment(segment: &str, name: &'static str) -> Result<Vec<u8>, JwsError> {
    // The base64 engine rejects padding and non-canonical trailing bits, so each token has
    // exactly one accepted spelling.
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwsError::Base64(name))
}

fn optional_string(
    header: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, JwsError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(JwsError::HeaderType(name)),
    }
}

/// Encodes bytes as unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str, signature: &str) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.as_bytes()),
            b64url(claims.as_bytes()),
            signature
        )
    }

    #[test]
    fn peek_issuer_reads_only_iss() {
        let header = r#"{"alg":"RS256"}"#;
        let peek = |claims: &str| peek_issuer(&token(header, claims, "c2ln"));
        assert_eq!(
            peek(r#"{"sub":"a","iss":"https://issuer.example/","aud":["x"],"n":{"d":[1,2]}}"#),
            Some("https://issuer.example/".to_owned())
        );
        assert_eq!(peek(r#"{"sub":"a"}"#), None, "no iss");
        assert_eq!(peek(r#"{"iss":42}"#), None, "iss not a string");
        assert_eq!(peek(r#"{"iss":"a","iss":"b"}"#), None, "iss twice");
        assert_eq!(peek(r#"["a"]"#), None, "payload not an object");
        assert_eq!(peek_issuer("not-a-jwt"), None, "one segment");
        assert_eq!(peek_issuer("e30.!!!.c2ln"), None, "payload not base64url");
    }

    #[test]
    fn parses_compact_jws() {
        let text = token(
            r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"iss":"x"}"#,
            "AAAA",
        );
        let jws = CompactJws::parse(&text).unwrap();
        assert_eq!(jws.algorithm, Algorithm::RS256);
        assert_eq!(jws.kid.as_deref(), Some("k1"));
        assert_eq!(jws.unverified_issuer(), Some("x"));
    }

    #[test]
    fn rejects_alg_none_and_its_variants() {
        for alg in [
            r#""none""#,
            r#""None""#,
            r#""NONE""#,
            r#""nOnE""#,
            r#""""#,
            "null",
            "123",
        ] {
            let text = token(&format!(r#"{{"alg":{alg}}}"#), "{}", "AAAA");
            let error = CompactJws::parse(&text).unwrap_err();
            assert!(
                matches!(
                    error,
                    JwsError::UnsupportedAlgorithm(_) | JwsError::MissingAlgorithm
                ),
                "alg {alg}: {error:?}"
            );
        }
        let missing = token(r#"{"typ":"JWT"}"#, "{}", "AAAA");
        assert_eq!(
            CompactJws::parse(&missing).unwrap_err(),
            JwsError::MissingAlgorithm
        );
    }

    #[test]
    fn rejects_crit_and_b64() {
        for header in [
            r#"{"alg":"RS256","crit":["foo"],"foo":1}"#,
            r#"{"alg":"RS256","crit":[]}"#,
            r#"{"alg":"RS256","crit":["alg"]}"#,
            r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
            r#"{"alg":"HS256","b64":false}"#,
        ] {
            let text = token(header, "{}", "AAAA");
            assert!(
                matches!(CompactJws::parse(&text), Err(JwsError::ForbiddenHeader(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn rejects_jwe_and_detached_forms() {
        assert_eq!(
            CompactJws::parse("a.b.c.d.e").unwrap_err(),
            JwsError::SegmentCount(5)
        );
        assert_eq!(
            CompactJws::parse("a.b").unwrap_err(),
            JwsError::SegmentCount(2)
        );
        let detached = format!("{}..AAAA", b64url(br#"{"alg":"RS256"}"#));
        assert!(CompactJws::parse(&detached).is_err());
        assert!(CompactJws::parse(r#"{"payload":"x","signatures":[]}"#).is_err());
    }

    #[test]
    fn rejects_empty_signature_and_padding() {
        let text = token(r#"{"alg":"RS256"}"#, "{}", "");
        assert_eq!(
            CompactJws::parse(&text).unwrap_err(),
            JwsError::EmptySignature
        );
        let padded = format!("{}=.{}.AAAA", b64url(br#"{"alg":"RS256"}"#), b64url(b"{}"));
        assert!(CompactJws::parse(&padded).is_err());
    }
}
