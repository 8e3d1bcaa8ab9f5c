//! Tokens checked by an independent JOSE implementation (josekit, on OpenSSL) against the
//! published JWKS, for every signing algorithm the daemon offers.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{json, Value};

use authbridge::credentials::Mode;
use authbridge::jose::Algorithm;

use crate::common::{TestApp, ISSUER};

fn verifier(algorithm: Algorithm, jwk: &Jwk) -> Box<dyn JwsVerifier> {
    let verifier: Result<Box<dyn JwsVerifier>, _> = match algorithm {
        Algorithm::RS256 => josekit::jws::RS256
            .verifier_from_jwk(jwk)
            .map(|v| Box::new(v) as _),
        Algorithm::PS256 => josekit::jws::PS256
            .verifier_from_jwk(jwk)
            .map(|v| Box::new(v) as _),
        Algorithm::ES256 => josekit::jws::ES256
            .verifier_from_jwk(jwk)
            .map(|v| Box::new(v) as _),
        Algorithm::EdDSA => josekit::jws::EdDSA
            .verifier_from_jwk(jwk)
            .map(|v| Box::new(v) as _),
        other => panic!("no josekit verifier set up for {other}"),
    };
    verifier.unwrap_or_else(|e| panic!("{algorithm}: josekit rejects the published JWK: {e}"))
}

async fn check_algorithm(algorithm: Algorithm) {
    let t = TestApp::with_algorithm(algorithm).await;
    let (root, _) = t.bootstrap("root").await;
    let (client_id, secret) = t.machine(&root, &["reader"], Mode::Test).await;
    let token = t.token(&client_id, &secret, "").await;

    let request = Request::builder()
        .uri("/.well-known/jwks.json")
        .body(Body::empty())
        .expect("request");
    let jwks = t.send(request).await;
    assert_eq!(jwks.status, StatusCode::OK, "{algorithm}: JWKS status");

    let header: Value = serde_json::from_slice(&crate::common::decode(
        token.split('.').next().expect("header segment"),
    ))
    .expect("header JSON");
    let kid = header["kid"].as_str().expect("kid in the token header");
    let published = jwks.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .unwrap_or_else(|| panic!("{algorithm}: kid {kid} is not in the JWKS"))
        .clone();
    assert_eq!(
        published["alg"],
        json!(algorithm.jose_name()),
        "{algorithm}: JWK alg"
    );
    let Value::Object(map) = published else {
        panic!("{algorithm}: JWK is not an object");
    };
    let jwk = Jwk::from_map(map).unwrap_or_else(|e| panic!("{algorithm}: josekit JWK: {e}"));

    let (claims, header) =
        josekit::jwt::decode_with_verifier(&token, verifier(algorithm, &jwk).as_ref())
            .unwrap_or_else(|e| panic!("{algorithm}: josekit does not verify the token: {e}"));
    assert_eq!(header.token_type(), Some("at+jwt"), "{algorithm}: typ");
    assert_eq!(
        header.algorithm(),
        Some(algorithm.jose_name()),
        "{algorithm}: alg"
    );
    assert_eq!(claims.issuer(), Some(ISSUER), "{algorithm}: iss");
    assert_eq!(
        claims.claim("tenantId"),
        Some(&json!(root.as_str())),
        "{algorithm}: tenantId"
    );
    assert_eq!(
        claims.claim("mode"),
        Some(&json!("test")),
        "{algorithm}: mode"
    );
    let machine_id = claims
        .claim("machineId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(machine_id.len(), 8, "{algorithm}: machineId is a short id");
    assert_eq!(
        claims.claim("authorization"),
        Some(&json!({root.as_str(): {"roles": ["reader"]}})),
        "{algorithm}: authorization"
    );
    assert_eq!(
        claims.claim("client_id"),
        Some(&json!(client_id)),
        "{algorithm}: client_id"
    );

    let mut tampered = token.clone().into_bytes();
    let index = token.find('.').expect("dot") + 5;
    tampered[index] = if tampered[index] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    assert!(
        josekit::jwt::decode_with_verifier(&tampered, verifier(algorithm, &jwk).as_ref()).is_err(),
        "{algorithm}: josekit must reject a changed payload"
    );
}

#[tokio::test]
async fn rs256_token_verifies_with_josekit() {
    check_algorithm(Algorithm::RS256).await;
}

#[tokio::test]
async fn ps256_token_verifies_with_josekit() {
    check_algorithm(Algorithm::PS256).await;
}

#[tokio::test]
async fn es256_token_verifies_with_josekit() {
    check_algorithm(Algorithm::ES256).await;
}

#[tokio::test]
async fn eddsa_token_verifies_with_josekit() {
    check_algorithm(Algorithm::EdDSA).await;
}
