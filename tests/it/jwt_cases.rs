//! Known JWT attack classes built against the daemon's own tokens, each with the reason
//! `/v1/verify` must give.

use std::net::TcpListener;

use hmac::{Hmac, Mac};
use josekit::jwk::KeyPair;
use josekit::jws::JwsSigner;
use serde_json::{json, Value};
use sha2::Sha256;

use authbridge::ids::TenantId;
use authbridge::jose::Algorithm;

use crate::common::{b64, decode, TestApp};

/// `header.payload.signature` from JSON values and raw signature bytes.
fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&header.to_string()),
        b64(&claims.to_string()),
        base64_url(signature)
    )
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", base64_url(&mac.finalize().into_bytes()))
}

async fn setup(algorithm: Algorithm) -> (TestApp, TenantId) {
    let t = TestApp::with_algorithm(algorithm).await;
    let (root, _) = t.bootstrap("root").await;
    (t, root)
}

#[tokio::test]
async fn alg_none_and_variants_are_rejected() {
    let (t, root) = setup(Algorithm::RS256).await;
    let claims = t.claims(&root);
    let kid = t.app.keyring.current().kid.clone();
    let cases: [(Option<Value>, &str); 7] = [
        (Some(json!("none")), "invalid_signature"),
        (Some(json!("None")), "invalid_signature"),
        (Some(json!("NONE")), "invalid_signature"),
        (Some(json!("nOnE")), "invalid_signature"),
        (Some(json!("")), "invalid_signature"),
        (Some(Value::Null), "malformed"),
        (Some(json!(123)), "malformed"),
    ];
    for (alg, expected) in cases.into_iter().chain([(None, "malformed")]) {
        let mut header = json!({"typ": "at+jwt", "kid": kid});
        if let Some(alg) = &alg {
            header["alg"] = alg.clone();
        }
        let unsigned = format!("{}.{}.", b64(&header.to_string()), b64(&claims.to_string()));
        assert_eq!(
            t.reason(&unsigned).await,
            expected,
            "alg {alg:?} with an empty signature"
        );

        let with_signature = compact(&header, &claims, b"not a signature");
        assert_eq!(
            t.reason(&with_signature).await,
            expected,
            "alg {alg:?} with a signature"
        );
    }
}

#[tokio::test]
async fn hs256_with_public_key_is_rejected() {
    let (t, root) = setup(Algorithm::RS256).await;
    let claims = t.claims(&root);
    let jwk = t.app.keyring.current().public_jwk().clone();
    let kid = jwk["kid"].as_str().expect("kid").to_owned();
    let n = decode(jwk["n"].as_str().expect("n"));
    let e = decode(jwk["e"].as_str().expect("e"));
    let rsa = openssl::rsa::Rsa::from_public_components(
        openssl::bn::BigNum::from_slice(&n).expect("n"),
        openssl::bn::BigNum::from_slice(&e).expect("e"),
    )
    .expect("RSA public key");
    let spki_pem = openssl::pkey::PKey::from_rsa(rsa.clone())
        .expect("pkey")
        .public_key_to_pem()
        .expect("SPKI PEM");
    let pkcs1_pem = rsa.public_key_to_pem_pkcs1().expect("PKCS#1 PEM");
    let jwks = t.app.keyring.jwks().to_string();

    let secrets: [(&str, Vec<u8>); 6] = [
        ("SPKI PEM", spki_pem),
        ("PKCS#1 PEM", pkcs1_pem),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("JWKS JSON", jwks.into_bytes()),
        ("modulus bytes", n.clone()),
        (
            "modulus base64url",
            jwk["n"].as_str().expect("n").as_bytes().to_vec(),
        ),
    ];
    for (form, secret) in secrets {
        for header in [
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            json!({"alg": "HS256", "typ": "at+jwt"}),
        ] {
            let token = hs256(&secret, &header, &claims);
            assert_eq!(
                t.reason(&token).await,
                "invalid_signature",
                "HS256 keyed with the {form}, header {header}"
            );
        }
    }
}

#[tokio::test]
async fn embedded_keys_are_ignored() {
    let (t, root) = setup(Algorithm::RS256).await;
    let claims = t.claims(&root);
    let kid = t.app.keyring.current().kid.clone();

    let attacker = josekit::jws::RS256
        .generate_key_pair(2048)
        .expect("attacker key");
    let signer = josekit::jws::RS256
        .signer_from_der(attacker.to_der_private_key())
        .expect("attacker signer");
    let attacker_jwk: Value =
        serde_json::to_value(attacker.to_jwk_public_key().as_ref()).expect("JWK as JSON");
    let attacker_jwks = json!({"keys": [attacker_jwk.clone()]});

    // A listener that a verifier following jku or x5u would connect to.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind trap listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let trap = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let certificate = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        attacker.to_der_private_key(),
    );

    let headers = [
        (
            "jwk",
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "jwk": attacker_jwk}),
        ),
        (
            "jwk without kid",
            json!({"alg": "RS256", "typ": "at+jwt", "jwk": attacker_jwk}),
        ),
        (
            "jku",
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "jku": trap}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "x5u": trap}),
        ),
        (
            "x5c",
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "x5c": [certificate]}),
        ),
        (
            "jwks in jwk",
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "jwk": attacker_jwks}),
        ),
    ];
    for (label, header) in headers {
        let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
        let signature = signer.sign(input.as_bytes()).expect("attacker signs");
        let token = format!("{input}.{}", base64_url(&signature));
        let reason = t.reason(&token).await;
        if label == "jwk without kid" {
            // Without a kid the verifier tries the published keys: two RS256 keys (current
            // and next) make the choice ambiguous, so unknown_key is as correct as a failure.
            assert!(
                reason == "invalid_signature" || reason == "unknown_key",
                "{label}: got {reason}"
            );
        } else {
            assert_eq!(reason, "invalid_signature", "{label}");
        }
    }
    let connection = listener.accept();
    assert!(
        connection.is_err(),
        "the verifier must not fetch jku or x5u URLs, but something connected"
    );
}

#[tokio::test]
async fn psychic_ecdsa_signature_is_rejected() {
    let (t, root) = setup(Algorithm::ES256).await;
    let token = t.sign(&t.claims(&root));
    assert_eq!(t.reason(&token).await, "valid", "the untouched ES256 token");

    for (label, signature) in [
        ("r = s = 0", vec![0u8; 64]),
        ("r = s = 0, short", vec![0u8; 8]),
        (
            "DER of r = s = 0",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
    ] {
        let forged = crate::common::with_signature(&token, &signature);
        assert_eq!(t.reason(&forged).await, "invalid_signature", "{label}");
    }
}

/// Encodes a fixed-width ECDSA signature R || S as ASN.1 DER.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = openssl::bn::BigNum::from_slice(r).expect("r");
    let s = openssl::bn::BigNum::from_slice(s).expect("s");
    openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .expect("signature")
        .to_der()
        .expect("DER")
}

#[tokio::test]
async fn der_encoded_ecdsa_signature_is_rejected() {
    let (t, root) = setup(Algorithm::ES256).await;
    let token = t.sign(&t.claims(&root));
    let raw = decode(token.rsplit('.').next().expect("signature"));
    assert_eq!(raw.len(), 64, "JWS ES256 signatures are 64 bytes");
    let der = der_signature(&raw);
    let forged = crate::common::with_signature(&token, &der);
    assert_eq!(
        t.reason(&forged).await,
        "invalid_signature",
        "DER form of a valid signature"
    );

    let truncated = crate::common::with_signature(&token, &raw[..63]);
    assert_eq!(
        t.reason(&truncated).await,
        "invalid_signature",
        "63-byte signature"
    );
}

#[tokio::test]
async fn wrong_algorithm_for_key_is_rejected() {
    let (t, root) = setup(Algorithm::ES256).await;
    let claims = t.claims(&root);
    let kid = t.app.keyring.current().kid.clone();
    for alg in ["RS256", "PS256", "ES384", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let token = compact(&header, &claims, &[1u8; 64]);
        assert_eq!(
            t.reason(&token).await,
            "invalid_signature",
            "alg {alg} on an ES256 key"
        );
    }
}

#[tokio::test]
async fn crit_and_b64_headers_are_malformed() {
    let (t, root) = setup(Algorithm::RS256).await;
    let claims = t.claims(&root);
    let base = t.native_header();
    let extras = [
        json!({"crit": ["exp"], "exp": 1}),
        json!({"crit": []}),
        json!({"crit": ["b64"], "b64": false}),
        json!({"b64": false}),
        json!({"b64": true}),
        json!({"zip": "DEF"}),
    ];
    for extra in extras {
        let mut header = base.clone();
        for (name, value) in extra.as_object().expect("object") {
            header[name] = value.clone();
        }
        // Signed with the real key, so only the header can cause the rejection.
        let token = t.sign_with_header(&header, &claims);
        assert_eq!(t.reason(&token).await, "malformed", "header {header}");
    }
}

#[tokio::test]
async fn non_compact_forms_are_rejected() {
    let (t, root) = setup(Algorithm::RS256).await;
    let token = t.sign(&t.claims(&root));
    let parts: Vec<&str> = token.split('.').collect();

    let jwe = format!(
        "{}.AAAA.AAAA.AAAA.AAAA",
        b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)
    );
    assert_eq!(t.reason(&jwe).await, "malformed", "5-segment JWE");

    let json_serialisation = json!({
        "payload": parts[1],
        "signatures": [{"protected": parts[0], "signature": parts[2]}],
    })
    .to_string();
    let reason = t.reason(&json_serialisation).await;
    assert!(
        reason == "unknown_credential" || reason == "malformed",
        "JWS JSON serialisation gave {reason}"
    );
    let flattened =
        json!({"payload": parts[1], "protected": parts[0], "signature": parts[2]}).to_string();
    let reason = t.reason(&flattened).await;
    assert!(
        reason == "unknown_credential" || reason == "malformed",
        "flattened JWS JSON serialisation gave {reason}"
    );

    let detached = format!("{}..{}", parts[0], parts[2]);
    assert_eq!(t.reason(&detached).await, "malformed", "detached payload");
    let four = format!("{token}.AAAA");
    assert_ne!(t.reason(&four).await, "valid", "4 segments");
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert_ne!(t.reason(&padded).await, "valid", "padded header segment");
    let with_space = format!("{} ", token).replace('.', ". ");
    assert_ne!(
        t.reason(&with_space).await,
        "valid",
        "spaces inside the token"
    );
}

#[tokio::test]
async fn audience_shapes_are_checked() {
    let (t, root) = setup(Algorithm::RS256).await;
    let required = json!({"audience": "https://api.test"});
    let cases: [(Option<Value>, &[&str]); 7] = [
        (Some(json!([])), &["malformed", "wrong_audience"]),
        (Some(json!([123])), &["malformed", "wrong_audience"]),
        (Some(json!("")), &["malformed", "wrong_audience"]),
        (Some(json!([""])), &["malformed", "wrong_audience"]),
        (
            Some(json!({"aud": "https://api.test"})),
            &["malformed", "wrong_audience"],
        ),
        (None, &["malformed", "wrong_audience"]),
        (Some(json!(["https://other.test"])), &["wrong_audience"]),
    ];
    for (aud, expected) in cases {
        let mut claims = t.claims(&root);
        match &aud {
            Some(aud) => claims["aud"] = aud.clone(),
            None => {
                claims.as_object_mut().expect("object").remove("aud");
            }
        }
        let reason = t
            .verify(&t.sign(&claims), Some(required.clone()))
            .await
            .reason();
        assert!(
            expected.contains(&reason.as_str()),
            "aud {aud:?} gave {reason}"
        );
    }

    let mut claims = t.claims(&root);
    claims["aud"] = json!(["https://other.test", "https://api.test"]);
    let response = t.verify(&t.sign(&claims), Some(required.clone())).await;
    assert_eq!(
        response.reason(),
        "valid",
        "array that contains the required audience"
    );
    claims["aud"] = json!("https://api.test");
    let response = t.verify(&t.sign(&claims), Some(required)).await;
    assert_eq!(
        response.reason(),
        "valid",
        "string equal to the required audience"
    );
}

#[tokio::test]
async fn time_claims_are_checked_with_leeway() {
    let (t, root) = setup(Algorithm::RS256).await;
    let now = crate::common::START;
    let cases: [(&str, Value, &str); 10] = [
        ("exp 30 s ago", json!(now - 30), "valid"),
        ("exp 60 s ago", json!(now - 60), "expired"),
        ("exp 61 s ago", json!(now - 61), "expired"),
        (
            "exp as a string",
            json!((now + 600).to_string()),
            "malformed",
        ),
        (
            "exp as a fraction",
            json!((now + 600) as f64 + 0.5),
            "valid",
        ),
        ("exp null", Value::Null, "malformed"),
        ("nbf 30 s ahead", json!(now + 30), "valid"),
        ("nbf 61 s ahead", json!(now + 61), "not_yet_valid"),
        ("iat 61 s ahead", json!(now + 61), "not_yet_valid"),
        ("iat as a string", json!(now.to_string()), "malformed"),
    ];
    for (label, value, expected) in cases {
        let mut claims = t.claims(&root);
        let name = label.split(' ').next().expect("claim name");
        if name != "iat" {
            claims["iat"] = json!(now - 10);
        }
        if name == "iat" {
            claims.as_object_mut().expect("object").remove("nbf");
        }
        claims[name] = value;
        assert_eq!(t.reason(&t.sign(&claims)).await, expected, "{label}");
    }

    let mut claims = t.claims(&root);
    claims.as_object_mut().expect("object").remove("exp");
    assert_eq!(t.reason(&t.sign(&claims)).await, "malformed", "missing exp");
    let mut claims = t.claims(&root);
    claims.as_object_mut().expect("object").remove("jti");
    assert_eq!(t.reason(&t.sign(&claims)).await, "malformed", "missing jti");
}

#[tokio::test]
async fn token_without_kid_is_checked_against_published_keys() {
    let (t, root) = setup(Algorithm::ES256).await;
    let mut header = t.native_header();
    header.as_object_mut().expect("object").remove("kid");
    let token = t.sign_with_header(&header, &t.claims(&root));
    // Two ES256 keys are published (current and next), so no single key fits.
    let reason = t.reason(&token).await;
    assert!(
        reason == "valid" || reason == "unknown_key",
        "token without kid gave {reason}"
    );
}
