//! Verification of legacy credentials: the adapter checks authenticity, then the mapping turns
//! the legacy identity into tenant, machine, roles and mode, and the phase decides the answer.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CredentialKind, Identity, Reason, Source, Verifier};
use crate::legacy::{Adapter, Phase};

impl Verifier {
    pub(super) async fn verify_legacy(
        &self,
        adapter: &Adapter,
        credential: &str,
    ) -> Result<Identity, Reason> {
        // An enforced adapter makes no call to the legacy source at all.
        // TODO: phase exceptions (a tenant or a credential kept alive past enforcement).
        if adapter.phase == Phase::Enforce {
            return Err(Reason::LegacyRetired);
        }
        let claims = adapter.verifier.verify(credential, self.now()).await?;
        let mapped = adapter
            .mapping
            .apply(&claims.claims, claims.subject.as_deref())
            .map_err(|error| {
                tracing::info!(adapter.name = %adapter.name, %error, "legacy identity maps to no tenant");
                Reason::UnmappedIdentity
            })?;
        let client_id = ["client_id", "azp", "cid", "appid"]
            .iter()
            .find_map(|name| claims.claims.get(*name).and_then(Value::as_str))
            .map(str::to_owned);
        let roles: Vec<String> = mapped.roles.iter().cloned().collect();
        Ok(Identity {
            source: Source::Legacy(adapter.name.clone()),
            kind: CredentialKind::AccessToken,
            tenant_id: mapped.tenant_id.clone(),
            machine_id: mapped.machine_id,
            client_id,
            subject: claims.subject,
            mode: mapped.mode,
            grants: BTreeMap::from([(mapped.tenant_id, roles)]),
            roles: Default::default(),
            scope: claims.scope,
            audience: claims.audience,
            issuer: claims.issuer,
            jti: claims
                .claims
                .get("jti")
                .and_then(Value::as_str)
                .map(str::to_owned),
            issued_at: claims.issued_at,
            not_before: None,
            expires_at: claims.expires_at,
            key_id: None,
        })
    }
}
