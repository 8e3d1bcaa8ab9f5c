//! Signing and verifying keys, parsed once and kept ready for use on the hot path.
//!
//! A [`VerifyingKey`] belongs to one key family and, when its JWK named one, to one algorithm.
//! It rejects every other algorithm, so an RSA public key can never act as an HMAC secret.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::algorithm::{Algorithm, KeyFamily};
use super::b64url;
use crate::secret::SecretBytes;

/// A key could not be generated, parsed or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed for {0}")]
    Generation(Algorithm),
    #[error("invalid {family} key: {detail}")]
    Invalid {
        family: &'static str,
        detail: String,
    },
    #[error("signing failed")]
    Signing,
}

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

fn rsa_parameters(algorithm: Algorithm) -> Option<&'static signature::RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

enum PublicInner {
    /// One parsed key per RSA algorithm, because aws-lc-rs binds the padding and hash at parse
    /// time.
    Rsa(Vec<(Algorithm, ParsedPublicKey)>),
    Ec(ParsedPublicKey),
    Ed25519(ParsedPublicKey),
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

/// A public key (or, for legacy HS issuers only, a shared HMAC secret) ready to verify.
pub struct VerifyingKey {
    pub kid: Option<String>,
    /// The only algorithm this key verifies, when its source named one.
    pub algorithm: Option<Algorithm>,
    family: KeyFamily,
    inner: PublicInner,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses an RSA key from its SubjectPublicKeyInfo or PKCS#1 DER.
    pub fn rsa_from_der(
        der: &[u8],
        kid: Option<String>,
        algorithm: Option<Algorithm>,
    ) -> Result<Self, KeyError> {
        let mut parsed = Vec::with_capacity(RSA_ALGORITHMS.len());
        for candidate in RSA_ALGORITHMS {
            if algorithm.is_some_and(|only| only != candidate) {
                continue;
            }
            if let Some(params) = rsa_parameters(candidate) {
                let key = ParsedPublicKey::new(params, der).map_err(|e| KeyError::Invalid {
                    family: "RSA",
                    detail: e.to_string(),
                })?;
                parsed.push((candidate, key));
            }
        }
        Ok(Self {
            kid,
            algorithm,
            family: KeyFamily::Rsa,
            inner: PublicInner::Rsa(parsed),
        })
    }

    /// Builds an RSA key from its modulus and exponent (big-endian bytes).
    pub fn rsa_from_components(
        n: &[u8],
        e: &[u8],
        kid: Option<String>,
        algorithm: Option<Algorithm>,
    ) -> Result<Self, KeyError> {
        let components = aws_lc_rs::rsa::PublicKeyComponents { n, e };
        let der =
            AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&components).map_err(|_| {
                KeyError::Invalid {
                    family: "RSA",
                    detail: "modulus or exponent rejected".to_owned(),
                }
            })?;
        Self::rsa_from_der(der.as_ref(), kid, algorithm)
    }

    /// Parses a P-256 or P-384 key from its uncompressed point. aws-lc-rs rejects points off the curve.
    pub fn ec_from_point(
        family: KeyFamily,
        point: &[u8],
        kid: Option<String>,
    ) -> Result<Self, KeyError> {
        let (verification, coordinate, algorithm): (
            &'static dyn signature::VerificationAlgorithm,
            usize,
            Algorithm,
        ) = match family {
            KeyFamily::EcP256 => (&signature::ECDSA_P256_SHA256_FIXED, 32, Algorithm::ES256),
            KeyFamily::EcP384 => (&signature::ECDSA_P384_SHA384_FIXED, 48, Algorithm::ES384),
            _ => {
                return Err(KeyError::Invalid {
                    family: "EC",
                    detail: "unsupported curve".to_owned(),
                })
            }
        };
        if point.len() != 1 + 2 * coordinate || point[0] != 0x04 {
            return Err(KeyError::Invalid {
                family: "EC",
                detail: format!("point must be uncompressed with {coordinate}-byte coordinates"),
            });
        }
        let key = ParsedPublicKey::new(verification, point).map_err(|e| KeyError::Invalid {
            family: "EC",
            detail: e.to_string(),
        })?;
        Ok(Self {
            kid,
            algorithm: Some(algorithm),
            family,
            inner: PublicInner::Ec(key),
        })
    }

    /// Parses an Ed25519 key from its 32 public bytes.
    pub fn ed25519(public: &[u8], kid: Option<String>) -> Result<Self, KeyError> {
        if public.len() != 32 {
            return Err(KeyError::Invalid {
                family: "Ed25519",
                detail: "public key must be 32 bytes".to_owned(),
            });
        }
        let key =
            ParsedPublicKey::new(&signature::ED25519, public).map_err(|e| KeyError::Invalid {
                family: "Ed25519",
                detail: e.to_string(),
            })?;
        Ok(Self {
            kid,
            algorithm: Some(Algorithm::EdDSA),
            family: KeyFamily::Ed25519,
            inner: PublicInner::Ed25519(key),
        })
    }

    /// Wraps a shared HMAC secret. Only legacy HS issuers configured with a secret use this.
    pub fn hmac(
        secret: &[u8],
        algorithm: Algorithm,
        kid: Option<String>,
    ) -> Result<Self, KeyError> {
        let hmac_algorithm = match algorithm {
            Algorithm::HS256 => aws_lc_rs::hmac::HMAC_SHA256,
            Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
            Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
            _ => {
                return Err(KeyError::Invalid {
                    family: "HMAC",
                    detail: format!("{algorithm} is not an HMAC algorithm"),
                })
            }
        };
        if secret.is_empty() {
            return Err(KeyError::Invalid {
                family: "HMAC",
                detail: "secret is empty".to_owned(),
            });
        }
        Ok(Self {
            kid,
            algorithm: Some(algorithm),
            family: KeyFamily::Hmac,
            inner: PublicInner::Hmac(Box::new(aws_lc_rs::hmac::Key::new(hmac_algorithm, secret))),
        })
    }

    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// True when this key may verify a signature made with `algorithm`.
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        algorithm.key_family() == self.family && self.algorithm.is_none_or(|only| only == algorithm)
    }

    /// Checks `signature` over `message`. Returns false for any algorithm the key does not
    /// accept, so callers cannot downgrade a key to another family.
    pub fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.accepts(algorithm) {
            return false;
        }
        match &self.inner {
            PublicInner::Rsa(parsed) => parsed
                .iter()
                .find(|(candidate, _)| *candidate == algorithm)
                .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok()),
            PublicInner::Ec(key) => {
                // JWS ECDSA signatures are the fixed-width R || S (RFC 7518 section 3.4); a DER
                // signature or a truncated one is refused by length before any arithmetic.
                let expected = match self.family {
                    KeyFamily::EcP256 => 64,
                    _ => 96,
                };
                signature.len() == expected && key.verify_sig(message, signature).is_ok()
            }
            PublicInner::Ed25519(key) => {
                signature.len() == 64 && key.verify_sig(message, signature).is_ok()
            }
            PublicInner::Hmac(key) => aws_lc_rs::hmac::verify(key, message, signature).is_ok(),
        }
    }
}

enum PrivateInner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key of the daemon with its public half and JWK.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    inner: PrivateInner,
    public_jwk: Value,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key pair and returns it with its PKCS#8 private key for storage.
    pub fn generate(algorithm: Algorithm) -> Result<(Self, SecretBytes), KeyError> {
        let pkcs8 = match algorithm.key_family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generation(algorithm))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der =
                    pair.as_der().map_err(|_| KeyError::Generation(algorithm))?;
                der.as_ref().to_vec()
            }
            KeyFamily::EcP256 => {
                let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Generation(algorithm))?;
                pair.to_pkcs8v1()
                    .map_err(|_| KeyError::Generation(algorithm))?
                    .as_ref()
                    .to_vec()
            }
            KeyFamily::Ed25519 => {
                let pair =
                    Ed25519KeyPair::generate().map_err(|_| KeyError::Generation(algorithm))?;
                pair.to_pkcs8v1()
                    .map_err(|_| KeyError::Generation(algorithm))?
                    .as_ref()
                    .to_vec()
            }
            KeyFamily::EcP384 | KeyFamily::Hmac => return Err(KeyError::Generation(algorithm)),
        };
        let pkcs8 = SecretBytes::new(pkcs8);
        let key = Self::from_pkcs8(algorithm, pkcs8.expose())?;
        Ok((key, pkcs8))
    }

    /// Loads a key from PKCS#8 DER; the `kid` is the key's RFC 7638 thumbprint.
    pub fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |family: &'static str| {
            move |e: aws_lc_rs::error::KeyRejected| KeyError::Invalid {
                family,
                detail: e.to_string(),
            }
        };
        let (inner, public_jwk, verifying) = match algorithm.key_family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(invalid("RSA"))?;
                let components =
                    aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let jwk =
                    json!({"kty": "RSA", "n": b64url(&components.n), "e": b64url(&components.e)});
                let verifying = VerifyingKey::rsa_from_components(
                    &components.n,
                    &components.e,
                    None,
                    Some(algorithm),
                )?;
                (PrivateInner::Rsa(pair), jwk, verifying)
            }
            KeyFamily::EcP256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(invalid("EC"))?;
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
                let verifying = VerifyingKey::ec_from_point(KeyFamily::EcP256, &point, None)?;
                (PrivateInner::Ec(pair), jwk, verifying)
            }
            KeyFamily::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(invalid("Ed25519"))?;
                let public = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&public)});
                let verifying = VerifyingKey::ed25519(&public, None)?;
                (PrivateInner::Ed25519(pair), jwk, verifying)
            }
            KeyFamily::EcP384 | KeyFamily::Hmac => {
                return Err(KeyError::Invalid {
                    family: "signing",
                    detail: format!("{algorithm} keys cannot be used for signing"),
                })
            }
        };
        let kid = jwk_thumbprint(&public_jwk);
        let mut public_jwk = public_jwk;
        if let Value::Object(map) = &mut public_jwk {
            map.insert("kid".to_owned(), Value::String(kid.clone()));
            map.insert(
                "alg".to_owned(),
                Value::String(algorithm.jose_name().to_owned()),
            );
            map.insert("use".to_owned(), Value::String("sig".to_owned()));
        }
        let mut verifying = verifying;
        verifying.kid = Some(kid.clone());
        Ok(Self {
            kid,
            algorithm,
            inner,
            public_jwk,
            verifying,
        })
    }

    /// Signs `message` with this key's algorithm, returning the JWS signature bytes.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            PrivateInner::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.algorithm {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => return Err(KeyError::Signing),
                };
                let mut output = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut output)
                    .map_err(|_| KeyError::Signing)?;
                Ok(output)
            }
            PrivateInner::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            PrivateInner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Returns the public JWK with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }
}

/// Computes the RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members in
/// lexicographic order.
pub fn jwk_thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => &["kty"],
    };
    let mut canonical = String::from("{");
    for (index, member) in members.iter().enumerate() {
        if index > 0 {
            canonical.push(',');
        }
        let value = jwk.get(*member).and_then(Value::as_str).unwrap_or_default();
        canonical.push_str(&format!("\"{member}\":\"{value}\""));
    }
    canonical.push('}');
    b64url(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_signs_and_verifies() {
        for algorithm in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let (key, pkcs8) = SigningKey::generate(algorithm).unwrap();
            let signature = key.sign(b"message").unwrap();
            assert!(
                key.verifying_key()
                    .verify(algorithm, b"message", &signature),
                "{algorithm}"
            );
            assert!(
                !key.verifying_key()
                    .verify(algorithm, b"messagf", &signature),
                "{algorithm}"
            );
            let reloaded = SigningKey::from_pkcs8(algorithm, pkcs8.expose()).unwrap();
            assert_eq!(reloaded.kid, key.kid);
        }
    }

    #[test]
    fn rsa_key_refuses_hmac_algorithm() {
        let (key, _) = SigningKey::generate(Algorithm::RS256).unwrap();
        assert!(!key.verifying_key().accepts(Algorithm::HS256));
        assert!(!key.verifying_key().accepts(Algorithm::PS256));
    }

    #[test]
    fn psychic_ecdsa_signature_is_rejected() {
        let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        assert!(!key
            .verifying_key()
            .verify(Algorithm::ES256, b"m", &[0u8; 64]));
    }

    #[test]
    fn rfc7638_thumbprint_matches_published_example() {
        // RFC 7638 section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB"
        });
        assert_eq!(
            jwk_thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
