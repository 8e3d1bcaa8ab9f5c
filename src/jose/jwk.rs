//! Public JWK and JWKS parsing (RFC 7517, RFC 7518 section 6, RFC 8037) into [`VerifyingKey`]s.
//!
//! A key is refused when it carries private parameters, is meant for encryption (`use`,
//! `key_ops`), names an algorithm outside its key type, or has coordinates of the wrong size.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::algorithm::{Algorithm, KeyFamily};
use super::keys::{KeyError, VerifyingKey};

/// Reason a JWK was rejected.
#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    #[error("JWK is not a JSON object")]
    NotObject,
    #[error("JWK member {0:?} is missing or not a string")]
    Missing(&'static str),
    #[error("JWK member {0:?} is not base64url")]
    Base64(&'static str),
    #[error("JWK contains the private parameter {0:?}; register only the public key")]
    PrivateParameter(String),
    #[error("JWK is not for signatures (use {0:?})")]
    NotForSignatures(String),
    #[error("JWK key type {0:?} is not supported")]
    UnsupportedKeyType(String),
    #[error("JWK curve {0:?} is not supported")]
    UnsupportedCurve(String),
    #[error("JWK alg {alg:?} does not fit key type {kty}")]
    AlgorithmMismatch { alg: String, kty: String },
    #[error("JWKS has no \"keys\" array")]
    NotKeySet,
    #[error(transparent)]
    Key(#[from] KeyError),
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn member<'a>(
    jwk: &'a serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, JwkError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Missing(name))
}

fn decode(jwk: &serde_json::Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    URL_SAFE_NO_PAD
        .decode(member(jwk, name)?)
        .map_err(|_| JwkError::Base64(name))
}

/// Parses one public JWK.
pub fn parse_jwk(value: &Value) -> Result<VerifyingKey, JwkError> {
    let jwk = value.as_object().ok_or(JwkError::NotObject)?;
    for private in PRIVATE_MEMBERS {
        if jwk.contains_key(private) {
            return Err(JwkError::PrivateParameter(private.to_owned()));
        }
    }
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Err(JwkError::NotForSignatures(usage.to_string()));
        }
    }
    if let Some(operations) = jwk.get("key_ops") {
        let verifies = operations
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(JwkError::NotForSignatures(operations.to_string()));
        }
    }
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let kty = member(jwk, "kty")?;
    let algorithm = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => {
            Some(
                Algorithm::from_jose_name(name).ok_or_else(|| JwkError::AlgorithmMismatch {
                    alg: name.clone(),
                    kty: kty.to_owned(),
                })?,
            )
        }
        Some(other) => {
            return Err(JwkError::AlgorithmMismatch {
                alg: other.to_string(),
                kty: kty.to_owned(),
            })
        }
    };

    let key = match kty {
        "RSA" => {
            // TODO: keys that carry only `x5c` (no `n`/`e`) are not read yet.
            let n = decode(jwk, "n")?;
            let e = decode(jwk, "e")?;
            VerifyingKey::rsa_from_components(&n, &e, kid, algorithm)?
        }
        "EC" => {
            let curve = member(jwk, "crv")?;
            let family = match curve {
                "P-256" => KeyFamily::EcP256,
                "P-384" => KeyFamily::EcP384,
                other => return Err(JwkError::UnsupportedCurve(other.to_owned())),
            };
            let mut point = vec![0x04];
            point.extend(decode(jwk, "x")?);
            point.extend(decode(jwk, "y")?);
            VerifyingKey::ec_from_point(family, &point, kid)?
        }
        "OKP" => match member(jwk, "crv")? {
            "Ed25519" => VerifyingKey::ed25519(&decode(jwk, "x")?, kid)?,
            other => return Err(JwkError::UnsupportedCurve(other.to_owned())),
        },
        other => return Err(JwkError::UnsupportedKeyType(other.to_owned())),
    };
    if let Some(algorithm) = algorithm {
        if algorithm.key_family() != key.family() {
            return Err(JwkError::AlgorithmMismatch {
                alg: algorithm.jose_name().to_owned(),
                kty: kty.to_owned(),
            });
        }
    }
    Ok(key)
}

/// Parses a JWKS document (`{"keys": [...]}`) or a single JWK. Returns the usable keys and,
/// separately, the reason each refused key was dropped, so one bad key never hides the rest.
pub fn parse_key_set(value: &Value) -> Result<(Vec<VerifyingKey>, Vec<JwkError>), JwkError> {
    let entries: Vec<&Value> = match value.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        Some(_) => return Err(JwkError::NotKeySet),
        None if value.get("kty").is_some() => vec![value],
        None => return Err(JwkError::NotKeySet),
    };
    let mut keys = Vec::new();
    let mut refused = Vec::new();
    for entry in entries {
        match parse_jwk(entry) {
            Ok(key) => keys.push(key),
            Err(error) => refused.push(error),
        }
    }
    Ok((keys, refused))
}

/// Picks the key for a token from one issuer's keys: by `kid` when the token names one; without
/// a `kid`, only when exactly one key fits the algorithm.
pub fn select_key<'a>(
    keys: &'a [VerifyingKey],
    kid: Option<&str>,
    algorithm: Algorithm,
) -> Option<&'a VerifyingKey> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|key| key.kid.as_deref() == Some(kid) && key.accepts(algorithm)),
        None => {
            let mut fitting = keys.iter().filter(|key| key.accepts(algorithm));
            let first = fitting.next()?;
            fitting.next().is_none().then_some(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::keys::SigningKey;
    use serde_json::json;

    #[test]
    fn public_jwk_round_trips() {
        for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let (key, _) = SigningKey::generate(algorithm).unwrap();
            let parsed = parse_jwk(key.public_jwk()).unwrap();
            let signature = key.sign(b"m").unwrap();
            assert!(parsed.verify(algorithm, b"m", &signature));
        }
    }

    #[test]
    fn private_parameters_are_refused() {
        let jwk = json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
        assert!(matches!(
            parse_jwk(&jwk),
            Err(JwkError::PrivateParameter(_))
        ));
    }

    #[test]
    fn encryption_keys_are_refused() {
        let (key, _) = SigningKey::generate(Algorithm::RS256).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk["use"] = json!("enc");
        assert!(matches!(
            parse_jwk(&jwk),
            Err(JwkError::NotForSignatures(_))
        ));
    }

    #[test]
    fn off_curve_point_is_refused() {
        let jwk = json!({"kty":"EC","crv":"P-256","x":URL_SAFE_NO_PAD.encode([1u8;32]),"y":URL_SAFE_NO_PAD.encode([2u8;32])});
        assert!(parse_jwk(&jwk).is_err());
    }

    #[test]
    fn unsupported_curves_are_skipped_not_fatal() {
        let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let set = json!({"keys":[
            {"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"},
            {"kty":"OKP","crv":"Ed448","x":"AAAA"},
            key.public_jwk()
        ]});
        let (keys, refused) = parse_key_set(&set).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(refused.len(), 2);
    }

    #[test]
    fn rfc8037_example_signature_verifies() {
        // RFC 8037 appendix A.4.
        let key = parse_jwk(
            &json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        )
        .unwrap();
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = URL_SAFE_NO_PAD
            .decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
            .unwrap();
        assert!(key.verify(Algorithm::EdDSA, input, &signature));
        let mut flipped = signature.clone();
        flipped[0] ^= 1;
        assert!(!key.verify(Algorithm::EdDSA, input, &flipped));
    }

    #[test]
    fn key_without_kid_needs_single_candidate() {
        let (a, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let (b, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut ja = a.public_jwk().clone();
        ja.as_object_mut().unwrap().remove("kid");
        let mut jb = b.public_jwk().clone();
        jb.as_object_mut().unwrap().remove("kid");
        let one = vec![parse_jwk(&ja).unwrap()];
        assert!(select_key(&one, None, Algorithm::ES256).is_some());
        let two = vec![parse_jwk(&ja).unwrap(), parse_jwk(&jb).unwrap()];
        assert!(select_key(&two, None, Algorithm::ES256).is_none());
    }
}
