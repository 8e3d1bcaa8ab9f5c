//! Public JWK and JWKS parsing (RFC 7517, RFC 7518 section 6, RFC 8037) into [`VerifyingKey`]s.
//!
//! A key is refused when it carries private parameters, is meant for encryption (`use`,
//! `key_ops`), names an algorithm outside its key type, or has coordinates of the wrong size.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

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
    #[error("JWK member \"x5c\" must be an array of base64 DER certificates")]
    InvalidCertificateChain,
    #[error("X.509 certificate is invalid: {0}")]
    InvalidCertificate(String),
    #[error("public key algorithm {0} is not supported")]
    UnsupportedPublicKey(String),
    #[error("the key in \"x5c\" does not match the key parameters of the JWK")]
    CertificateMismatch,
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

    let leaf = leaf_certificate_key(jwk)?;
    let key = match kty {
        // RFC 7517 section 4.7: a key may carry only `x5c`; its leaf certificate's key is used.
        "RSA" | "EC" | "OKP"
            if !jwk.contains_key("n") && !jwk.contains_key("x") && leaf.is_some() =>
        {
            let key = key_from_spki(
                leaf.as_ref().ok_or(JwkError::Missing("x5c"))?,
                kid,
                algorithm,
            )?;
            let fits = match key.family() {
                KeyFamily::Rsa => kty == "RSA",
                KeyFamily::EcP256 | KeyFamily::EcP384 => kty == "EC",
                KeyFamily::Ed25519 => kty == "OKP",
                KeyFamily::Hmac => false,
            };
            if !fits {
                return Err(JwkError::CertificateMismatch);
            }
            key
        }
        "RSA" => {
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
    if let Some(certificate_key) = &leaf {
        // With both forms present, a key whose certificate names another key is dropped, so the
        // two can never disagree about which key verifies.
        if let Some(parameters) = public_key_bits(kty, jwk)? {
            if parameters != certificate_key.subject_public_key.raw_bytes() {
                return Err(JwkError::CertificateMismatch);
            }
        }
    }
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

/// Returns the SubjectPublicKeyInfo of the leaf (first) certificate of a JWK's `x5c`, or `None`
/// without `x5c`. The chain itself is not validated: the key is trusted because the configured
/// key source served it, not because of the certificate.
fn leaf_certificate_key(
    jwk: &serde_json::Map<String, Value>,
) -> Result<Option<SubjectPublicKeyInfoOwned>, JwkError> {
    let Some(chain) = jwk.get("x5c") else {
        return Ok(None);
    };
    let leaf = chain
        .as_array()
        .and_then(|certificates| certificates.first())
        .and_then(Value::as_str)
        .ok_or(JwkError::InvalidCertificateChain)?;
    // RFC 7517 section 4.7: standard base64 with padding, not base64url.
    let der = STANDARD
        .decode(leaf)
        .map_err(|_| JwkError::InvalidCertificateChain)?;
    certificate_public_key(&der).map(Some)
}

/// Returns the SubjectPublicKeyInfo of a DER X.509 certificate.
pub fn certificate_public_key(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, JwkError> {
    let certificate =
        Certificate::from_der(der).map_err(|e| JwkError::InvalidCertificate(e.to_string()))?;
    Ok(certificate.tbs_certificate.subject_public_key_info)
}

/// Returns the subject public key bits the JWK's own parameters describe, in the form an X.509
/// SubjectPublicKeyInfo carries them: PKCS#1 `RSAPublicKey` DER, an uncompressed EC point, or
/// the raw Ed25519 key. `None` when the JWK has no such parameters.
fn public_key_bits(
    kty: &str,
    jwk: &serde_json::Map<String, Value>,
) -> Result<Option<Vec<u8>>, JwkError> {
    match kty {
        "RSA" if jwk.contains_key("n") => {
            let (n, e) = (decode(jwk, "n")?, decode(jwk, "e")?);
            let components = aws_lc_rs::rsa::PublicKeyComponents { n: &n, e: &e };
            let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
                &components,
            )
            .map_err(|_| JwkError::CertificateMismatch)?;
            let spki = SubjectPublicKeyInfoOwned::from_der(der.as_ref())
                .map_err(|_| JwkError::CertificateMismatch)?;
            Ok(Some(spki.subject_public_key.raw_bytes().to_vec()))
        }
        "EC" if jwk.contains_key("x") => {
            let mut point = vec![0x04];
            point.extend(decode(jwk, "x")?);
            point.extend(decode(jwk, "y")?);
            Ok(Some(point))
        }
        "OKP" if jwk.contains_key("x") => Ok(Some(decode(jwk, "x")?)),
        _ => Ok(None),
    }
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const CURVE_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const CURVE_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Builds a verifying key from a SubjectPublicKeyInfo: RSA, EC P-256 or P-384, or Ed25519.
/// `algorithm` limits an RSA key to one algorithm.
pub fn key_from_spki(
    spki: &SubjectPublicKeyInfoOwned,
    kid: Option<String>,
    algorithm: Option<Algorithm>,
) -> Result<VerifyingKey, JwkError> {
    let bits = spki.subject_public_key.raw_bytes();
    let oid = spki.algorithm.oid;
    if oid == RSA_ENCRYPTION {
        let der = spki
            .to_der()
            .map_err(|e| JwkError::InvalidCertificate(e.to_string()))?;
        return Ok(VerifyingKey::rsa_from_der(&der, kid, algorithm)?);
    }
    if oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| JwkError::UnsupportedPublicKey("EC without a named curve".to_owned()))?;
        let family = match curve {
            c if c == CURVE_P256 => KeyFamily::EcP256,
            c if c == CURVE_P384 => KeyFamily::EcP384,
            other => return Err(JwkError::UnsupportedCurve(other.to_string())),
        };
        return Ok(VerifyingKey::ec_from_point(family, bits, kid)?);
    }
    if oid == ED25519 {
        return Ok(VerifyingKey::ed25519(bits, kid)?);
    }
    Err(JwkError::UnsupportedPublicKey(oid.to_string()))
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

/// Picks the key for a token from one issuer's keys: by `kid` when the token names one.
/// Without a `kid`, a key is picked only when exactly one fits the algorithm.
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

    /// An RSA key pair and a self-signed DER certificate for its public key.
    fn rsa_with_certificate() -> (openssl::pkey::PKey<openssl::pkey::Private>, Vec<u8>) {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "jwks test").unwrap();
        let name = name.build();
        let mut builder = X509Builder::new().unwrap();
        builder.set_version(2).unwrap();
        builder
            .set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        let der = builder.build().to_der().unwrap();
        (key, der)
    }

    fn rsa_components(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> (String, String) {
        let rsa = key.rsa().unwrap();
        (
            URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        )
    }

    #[test]
    fn x5c_only_key_uses_leaf_certificate() {
        let (key, der) = rsa_with_certificate();
        let jwk = json!({"kty": "RSA", "use": "sig", "kid": "c1", "x5c": [STANDARD.encode(&der)]});
        let parsed = parse_jwk(&jwk).unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        let signature = signer.sign_oneshot_to_vec(b"m").unwrap();
        assert!(parsed.verify(Algorithm::RS256, b"m", &signature));
        assert_eq!(parsed.kid.as_deref(), Some("c1"));
    }

    #[test]
    fn x5c_matching_components_is_accepted() {
        let (key, der) = rsa_with_certificate();
        let (n, e) = rsa_components(&key);
        let jwk = json!({"kty": "RSA", "n": n, "e": e, "x5c": [STANDARD.encode(&der)]});
        assert!(parse_jwk(&jwk).is_ok());
    }

    #[test]
    fn x5c_not_matching_components_is_dropped() {
        let (_, der) = rsa_with_certificate();
        let (other, _) = rsa_with_certificate();
        let (n, e) = rsa_components(&other);
        let jwk = json!({"kty": "RSA", "n": n, "e": e, "x5c": [STANDARD.encode(&der)]});
        assert!(matches!(
            parse_jwk(&jwk),
            Err(JwkError::CertificateMismatch)
        ));
    }

    #[test]
    fn x5c_as_string_is_refused() {
        let (_, der) = rsa_with_certificate();
        let jwk = json!({"kty": "RSA", "x5c": STANDARD.encode(&der)});
        assert!(matches!(
            parse_jwk(&jwk),
            Err(JwkError::InvalidCertificateChain)
        ));
        let garbage = json!({"kty": "RSA", "x5c": ["AAAA"]});
        assert!(matches!(
            parse_jwk(&garbage),
            Err(JwkError::InvalidCertificate(_))
        ));
    }
}
