//! Client authentication at the token endpoint: `client_secret_basic`, `client_secret_post`
//! (RFC 6749 section 2.3.1) and `private_key_jwt` (RFC 7523 section 2.2, OpenID Connect Core
//! section 9). A request that uses more than one method is refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::crypto::Pepper;
use crate::jose::jwk::{parse_key_set, select_key};
use crate::jose::CompactJws;
use crate::store::{MachineRecord, Store, StoreError};

pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credentials a token request carried.
#[derive(Debug, Default)]
pub struct PresentedClient {
    /// The `Authorization` header value, when it is `Basic`.
    pub basic: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<crate::secret::SecretString>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<crate::secret::SecretString>,
}

/// Client authentication failure. Each is `invalid_client` on the wire, except an unavailable
/// store.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("no client authentication was given")]
    Missing,
    #[error("more than one client authentication method was used")]
    MultipleMethods,
    #[error("the Authorization header is not valid Basic credentials")]
    MalformedBasic,
    #[error("client authentication failed")]
    Failed,
    #[error("client assertion is invalid: {0}")]
    InvalidAssertion(&'static str),
    #[error("client assertion type must be {JWT_BEARER_ASSERTION_TYPE}")]
    AssertionType,
    #[error("store unavailable")]
    Unavailable,
}

impl ClientAuthError {
    /// True when the client tried HTTP Basic, so the 401 must carry `WWW-Authenticate: Basic`.
    pub fn used_basic(presented: &PresentedClient) -> bool {
        presented.basic.is_some()
    }
}

/// Settings for checking client assertions.
#[derive(Debug, Clone)]
pub struct AssertionRules {
    /// Accepted `aud` values: the token endpoint URL and the issuer.
    pub audiences: Vec<String>,
    pub max_lifetime_seconds: i64,
    pub leeway_seconds: i64,
}

fn store_error(error: StoreError) -> ClientAuthError {
    tracing::warn!(%error, "store error during client authentication");
    ClientAuthError::Unavailable
}

/// Authenticates the client and returns its machine.
pub async fn authenticate(
    presented: &PresentedClient,
    store: &Store,
    pepper: &Pepper,
    rules: &AssertionRules,
    now: i64,
) -> Result<MachineRecord, ClientAuthError> {
    let methods = usize::from(presented.basic.is_some())
        + usize::from(presented.client_secret.is_some())
        + usize::from(presented.client_assertion.is_some());
    if methods > 1 {
        return Err(ClientAuthError::MultipleMethods);
    }

    if let Some(header) = &presented.basic {
        let (client_id, secret) = decode_basic(header)?;
        if presented
            .client_id
            .as_ref()
            .is_some_and(|id| *id != client_id)
        {
            return Err(ClientAuthError::Failed);
        }
        return check_secret(store, pepper, &client_id, &secret).await;
    }
    if let Some(secret) = &presented.client_secret {
        let client_id = presented
            .client_id
            .as_deref()
            .ok_or(ClientAuthError::Failed)?;
        return check_secret(store, pepper, client_id, secret.expose()).await;
    }
    if let Some(assertion) = &presented.client_assertion {
        if presented.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION_TYPE) {
            return Err(ClientAuthError::AssertionType);
        }
        return check_assertion(
            store,
            assertion.expose(),
            presented.client_id.as_deref(),
            rules,
            now,
        )
        .await;
    }
    Err(ClientAuthError::Missing)
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
fn decode_basic(header: &str) -> Result<(String, String), ClientAuthError> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or(ClientAuthError::MalformedBasic)?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| ClientAuthError::MalformedBasic)?;
    let text = String::from_utf8(decoded).map_err(|_| ClientAuthError::MalformedBasic)?;
    let (id, secret) = text
        .split_once(':')
        .ok_or(ClientAuthError::MalformedBasic)?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    Ok((id, secret))
}

fn form_decode(text: &str) -> Result<String, ClientAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={text}"))
        .map_err(|_| ClientAuthError::MalformedBasic)?;
    pairs
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .ok_or(ClientAuthError::MalformedBasic)
}

async fn check_secret(
    store: &Store,
    pepper: &Pepper,
    client_id: &str,
    secret: &str,
) -> Result<MachineRecord, ClientAuthError> {
    let machine = store
        .machine_by_client_id(client_id)
        .await
        .map_err(store_error)?;
    // Hash even for an unknown client, so timing does not tell which client ids exist.
    let stored = machine
        .as_ref()
        .and_then(|m| m.secret_hash.clone())
        .unwrap_or_default();
    let matches = pepper.matches(secret.as_bytes(), &stored);
    match machine {
        Some(machine) if matches && !stored.is_empty() => Ok(machine),
        _ => Err(ClientAuthError::Failed),
    }
}

async fn check_assertion(
    store: &Store,
    assertion: &str,
    claimed_client_id: Option<&str>,
    rules: &AssertionRules,
    now: i64,
) -> Result<MachineRecord, ClientAuthError> {
    let jws = CompactJws::parse(assertion)
        .map_err(|_| ClientAuthError::InvalidAssertion("not a compact JWS"))?;
    if !jws.algorithm.is_asymmetric() {
        return Err(ClientAuthError::InvalidAssertion(
            "algorithm must be asymmetric",
        ));
    }
    let claims = &jws.claims;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(ClientAuthError::InvalidAssertion("iss missing"))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(ClientAuthError::InvalidAssertion("sub missing"))?;
    if issuer != subject {
        return Err(ClientAuthError::InvalidAssertion(
            "iss and sub must both be the client id",
        ));
    }
    if claimed_client_id.is_some_and(|id| id != issuer) {
        return Err(ClientAuthError::InvalidAssertion(
            "client_id does not match the assertion",
        ));
    }
    let machine = store
        .machine_by_client_id(issuer)
        .await
        .map_err(store_error)?
        .ok_or(ClientAuthError::Failed)?;
    let jwks = machine.jwks.as_ref().ok_or(ClientAuthError::Failed)?;
    let (keys, _) = parse_key_set(jwks).map_err(|_| ClientAuthError::Failed)?;
    let key = select_key(&keys, jws.kid.as_deref(), jws.algorithm)
        .ok_or(ClientAuthError::InvalidAssertion("no registered key fits"))?;
    if !key.verify(jws.algorithm, jws.signing_input(), jws.signature()) {
        return Err(ClientAuthError::InvalidAssertion(
            "signature does not verify",
        ));
    }

    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => rules.audiences.contains(aud),
        Some(Value::Array(items)) => items.iter().any(|item| {
            item.as_str()
                .is_some_and(|aud| rules.audiences.iter().any(|a| a == aud))
        }),
        _ => false,
    };
    if !audience_ok {
        return Err(ClientAuthError::InvalidAssertion(
            "aud must be the token endpoint or the issuer",
        ));
    }
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(ClientAuthError::InvalidAssertion("exp missing"))?;
    if now >= expires_at + rules.leeway_seconds {
        return Err(ClientAuthError::InvalidAssertion("expired"));
    }
    if expires_at - now > rules.max_lifetime_seconds {
        return Err(ClientAuthError::InvalidAssertion(
            "exp is too far in the future",
        ));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now < nbf - rules.leeway_seconds {
            return Err(ClientAuthError::InvalidAssertion("not yet valid"));
        }
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + rules.leeway_seconds)
    {
        return Err(ClientAuthError::InvalidAssertion("iat is in the future"));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or(ClientAuthError::InvalidAssertion("jti missing"))?;
    if jti.is_empty() || jti.len() > 256 {
        return Err(ClientAuthError::InvalidAssertion(
            "jti must be 1 to 256 characters",
        ));
    }
    let first_use = store
        .record_assertion_jti(
            &machine.client_id,
            jti,
            expires_at + rules.leeway_seconds,
            now,
        )
        .await
        .map_err(store_error)?;
    if !first_use {
        return Err(ClientAuthError::InvalidAssertion("jti was already used"));
    }
    Ok(machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("cl%5Fabc:s%3Acret"));
        let (id, secret) = decode_basic(&header).unwrap();
        assert_eq!(id, "cl_abc");
        assert_eq!(secret, "s:cret");
        assert!(decode_basic("Bearer x").is_err());
        assert!(decode_basic("Basic !!!").is_err());
    }
}
