use serde_json::{json, Value};

use super::*;
use crate::jose::b64url;
use crate::jose::keys::SigningKey;
use crate::legacy::config::resolve;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Resolves an `[[adapters]]` table and builds its `jwt` verifier.
fn build_entry(entry: Value) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let resolved = resolve(0, &entry)?;
    assert_eq!(resolved.kind, "jwt");
    build(&resolved.common.name, &resolved.settings, &http())
}

fn signed(key: &SigningKey, header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(&signature))
}

#[test]
fn preset_auth0_builds() {
    let adapter = build_entry(json!({"name": "auth0", "preset": "auth0", "domain": "tenant.eu.auth0.com", "audience": "https://api.example"})).unwrap();
    assert_eq!(adapter.issuers(), ["https://tenant.eu.auth0.com/"]);
}

#[test]
fn preset_keycloak_builds_with_aliases() {
    let adapter = build_entry(json!({
        "name": "kc", "preset": "keycloak", "base_url": "https://kc.example", "realm": "prod", "audience": "billing",
        "issuers": ["https://kc.example/realms/prod", "https://kc.example/auth/realms/prod"],
    }))
    .unwrap();
    assert_eq!(
        adapter.issuers(),
        [
            "https://kc.example/realms/prod",
            "https://kc.example/auth/realms/prod"
        ]
    );
}

#[test]
fn preset_okta_builds() {
    let adapter = build_entry(json!({"name": "okta", "preset": "okta", "domain": "acme.okta.com", "authorization_server": "default", "audience": "api://default"})).unwrap();
    assert_eq!(adapter.issuers(), ["https://acme.okta.com/oauth2/default"]);
}

#[test]
fn preset_cognito_builds() {
    let adapter = build_entry(json!({"name": "cognito", "preset": "cognito", "region": "eu-west-1", "user_pool_id": "eu-west-1_AbC", "client_id": "3n4b5"})).unwrap();
    assert_eq!(
        adapter.issuers(),
        ["https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"]
    );
}

#[test]
fn preset_entra_v1_builds() {
    let adapter = build_entry(json!({"name": "entra", "preset": "entra-v1", "tenant_id": "t-1", "audience": "api://billing"})).unwrap();
    assert_eq!(adapter.issuers(), ["https://sts.windows.net/t-1/"]);
}

#[test]
fn preset_entra_v2_builds() {
    let adapter = build_entry(json!({"name": "entra", "preset": "entra-v2", "tenant_id": "t-1", "audience": "api://billing"})).unwrap();
    assert_eq!(
        adapter.issuers(),
        ["https://login.microsoftonline.com/t-1/v2.0"]
    );
}

#[test]
fn preset_firebase_builds() {
    let adapter = build_entry(
        json!({"name": "firebase", "preset": "firebase", "project_id": "demo-project"}),
    )
    .unwrap();
    assert_eq!(
        adapter.issuers(),
        ["https://securetoken.google.com/demo-project"]
    );
}

#[test]
fn preset_oidc_builds() {
    let adapter = build_entry(json!({"name": "idp", "preset": "oidc", "issuer": "https://idp.example", "audience": "api"})).unwrap();
    assert_eq!(adapter.issuers(), ["https://idp.example"]);
}

#[test]
fn preset_key_url_overridden_keeps_one_source() {
    let adapter = build_entry(json!({
        "name": "cognito", "preset": "cognito", "region": "eu-west-1", "user_pool_id": "p", "client_id": "c",
        "jwks_url": "http://127.0.0.1:9/keys", "allow_http": true,
    }));
    assert!(
        adapter.is_ok(),
        "{:?}",
        adapter.err().map(|e| e.to_string())
    );
}

#[test]
fn http_key_url_needs_allow_http() {
    let error = build_entry(json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"], "jwks_url": "http://idp.example/keys"}))
        .err()
        .unwrap();
    assert!(error.to_string().contains("allow_http"), "{error}");
}

#[test]
fn two_key_sources_are_rejected() {
    let error = build_entry(json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"],
        "jwks_url": "https://idp.example/keys", "discovery_url": "https://idp.example/.well-known/openid-configuration"}))
    .err()
    .unwrap();
    assert!(
        error.to_string().contains("exactly one key source"),
        "{error}"
    );
}

#[test]
fn weak_hmac_secret_needs_opt_in() {
    let entry = json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"], "algorithms": ["HS256"], "hmac_secret": "secret"});
    let error = build_entry(entry.clone()).err().unwrap();
    assert!(error.to_string().contains("allow_weak_secret"), "{error}");
    let mut opted_in = entry;
    opted_in["allow_weak_secret"] = json!(true);
    assert!(build_entry(opted_in).is_ok());
}

#[test]
fn x509_url_allows_only_rs256() {
    let error = build_entry(
        json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"],
        "algorithms": ["RS256", "ES256"], "x509_url": "https://keys.example/x509"}),
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains("RS256"), "{error}");
}

/// Returns the SPKI PEM of an RSA signing key's public half.
fn rsa_public_pem(key: &SigningKey) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let jwk = key.public_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let components = aws_lc_rs::rsa::PublicKeyComponents { n: &n, e: &e };
    let der =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&components)
            .unwrap();
    x509_cert::der::pem::encode_string(
        "PUBLIC KEY",
        x509_cert::der::pem::LineEnding::LF,
        der.as_ref(),
    )
    .unwrap()
}

#[tokio::test]
async fn inline_pem_key_verifies() {
    let (key, _) = SigningKey::generate(Algorithm::RS256).unwrap();
    let pem = rsa_public_pem(&key);
    let claims =
        json!({"iss": "https://i", "aud": "api", "sub": "svc", "exp": 2_000, "iat": 1_000});
    let token = signed(&key, json!({"alg": "RS256", "kid": "any"}), claims);

    let single = build_entry(json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"], "pem": pem})).unwrap();
    let verified = single.verify(&token, 1_000).await.unwrap();
    assert_eq!(verified.subject.as_deref(), Some("svc"));

    let by_kid = build_entry(json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"], "pem": {"other": pem}})).unwrap();
    assert_eq!(
        by_kid.verify(&token, 1_000).await.unwrap_err(),
        Reason::UnknownKey
    );
}

#[test]
fn invalid_pem_is_a_config_error() {
    let error = build_entry(json!({"name": "a", "kind": "jwt", "issuers": ["https://i"], "audiences": ["api"], "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}))
        .err()
        .unwrap();
    assert!(error.to_string().contains("pem"), "{error}");
}
