//! Verification of the daemon's own access tokens (RFC 9068) against the in-memory keyring and
//! revocation list: no database read.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{CredentialKind, Identity, Reason, Source, Verifier};
use crate::credentials::Mode;
use crate::ids::TenantId;
use crate::jose::{CompactJws, JwsError};

/// Media types accepted in `typ` (RFC 9068 section 4), compared case-insensitively.
const ACCESS_TOKEN_TYPES: [&str; 2] = ["at+jwt", "application/at+jwt"];

impl Verifier {
    pub(super) fn verify_native_jwt(&self, token: &str) -> Result<Identity, Reason> {
        let jws = CompactJws::parse(token).map_err(|error| match error {
            JwsError::UnsupportedAlgorithm(_) | JwsError::EmptySignature => {
                Reason::InvalidSignature
            }
            _ => Reason::Malformed,
        })?;
        // Only asymmetric algorithms are ever used by the daemon: an HS256 token signed with a
        // public key as the HMAC secret is refused here, before any key lookup.
        if !jws.algorithm.is_asymmetric() {
            return Err(Reason::InvalidSignature);
        }

        let key = match &jws.kid {
            Some(kid) => self.keyring.key(kid).ok_or(Reason::UnknownKey)?,
            None => {
                let mut fitting = self
                    .keyring
                    .published()
                    .into_iter()
                    .filter(|k| k.verifying_key().accepts(jws.algorithm));
                let first = fitting.next().ok_or(Reason::UnknownKey)?;
                if fitting.next().is_some() {
                    return Err(Reason::UnknownKey);
                }
                first
            }
        };
        if !key.verifying_key().accepts(jws.algorithm) {
            return Err(Reason::InvalidSignature);
        }
        if !key
            .verifying_key()
            .verify(jws.algorithm, jws.signing_input(), jws.signature())
        {
            return Err(Reason::InvalidSignature);
        }

        let typ_ok = jws.typ.as_deref().is_some_and(|typ| {
            ACCESS_TOKEN_TYPES
                .iter()
                .any(|t| t.eq_ignore_ascii_case(typ))
        });
        if !typ_ok {
            return Err(Reason::WrongTokenType);
        }

        let claims = &jws.claims;
        let now = self.now();
        let leeway = self.settings.leeway_seconds;
        let expires_at = required_time(claims, "exp")?;
        let not_before = optional_time(claims, "nbf")?;
        let issued_at = optional_time(claims, "iat")?;
        if now >= expires_at + leeway {
            return Err(Reason::Expired);
        }
        if not_before.is_some_and(|nbf| now < nbf - leeway) {
            return Err(Reason::NotYetValid);
        }
        if issued_at.is_some_and(|iat| iat > now + leeway) {
            return Err(Reason::NotYetValid);
        }
        let audience = audience(claims)?;

        let jti = string_claim(claims, "jti")?.ok_or(Reason::Malformed)?;
        if self.revocations.contains(&jti) {
            return Err(Reason::Revoked);
        }
        let tenant_id = string_claim(claims, "tenantId")?
            .and_then(|t| TenantId::parse(&t).ok())
            .ok_or(Reason::Malformed)?;
        let mode = string_claim(claims, "mode")?
            .and_then(|m| Mode::parse(&m))
            .ok_or(Reason::Malformed)?;
        // A native machine id, or the mapped legacy machine of an exchanged token.
        let machine_id = string_claim(claims, "machineId")?;
        if machine_id.as_deref().is_some_and(|m| {
            self.revocations
                .contains(&super::machine_revocation_marker(m))
        }) {
            return Err(Reason::Revoked);
        }

        Ok(Identity {
            source: Source::Native,
            kind: CredentialKind::AccessToken,
            tenant_id,
            machine_id,
            client_id: string_claim(claims, "client_id")?,
            subject: string_claim(claims, "sub")?,
            mode,
            grants: authorization(claims)?,
            roles: Default::default(),
            scope: string_claim(claims, "scope")?,
            audience,
            issuer: string_claim(claims, "iss")?,
            jti: Some(jti),
            issued_at,
            not_before,
            expires_at: Some(expires_at),
            key_id: None,
            phase: None,
            translated_from: origin_adapter(claims),
        })
    }
}

fn required_time(claims: &Map<String, Value>, name: &str) -> Result<i64, Reason> {
    optional_time(claims, name)?.ok_or(Reason::Malformed)
}

/// Reads a NumericDate (RFC 7519 section 2). Fractions are truncated toward the past.
fn optional_time(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(Reason::Malformed),
        Some(_) => Err(Reason::Malformed),
    }
}

/// Reads `origin.adapter`, which token exchange sets on the tokens it mints. It only labels the
/// audit event, so a token without it, or with a non-string value, is still accepted.
fn origin_adapter(claims: &Map<String, Value>) -> Option<String> {
    claims
        .get("origin")?
        .get("adapter")?
        .as_str()
        .map(str::to_owned)
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Reason::Malformed),
    }
}

/// `aud` as a string or a non-empty array of strings (RFC 7519 section 4.1.3). An access token
/// without an audience is refused (RFC 9068 section 2.2).
pub fn audience(claims: &Map<String, Value>) -> Result<Vec<String>, Reason> {
    match claims.get("aud") {
        Some(Value::String(single)) if !single.is_empty() => Ok(vec![single.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(text) if !text.is_empty() => Ok(text.clone()),
                _ => Err(Reason::Malformed),
            })
            .collect(),
        _ => Err(Reason::WrongAudience),
    }
}

fn authorization(claims: &Map<String, Value>) -> Result<BTreeMap<TenantId, Vec<String>>, Reason> {
    let Some(value) = claims.get("authorization") else {
        return Ok(BTreeMap::new());
    };
    let object = value.as_object().ok_or(Reason::Malformed)?;
    let mut grants = BTreeMap::new();
    for (tenant, entry) in object {
        let tenant = TenantId::parse(tenant).map_err(|_| Reason::Malformed)?;
        let roles = entry
            .get("roles")
            .and_then(Value::as_array)
            .ok_or(Reason::Malformed)?
            .iter()
            .map(|role| role.as_str().map(str::to_owned).ok_or(Reason::Malformed))
            .collect::<Result<Vec<_>, _>>()?;
        grants.insert(tenant, roles);
    }
    Ok(grants)
}
