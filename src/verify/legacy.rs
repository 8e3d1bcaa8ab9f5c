//! Verification of legacy credentials: the adapter checks authenticity, then the mapping turns
//! the legacy identity into tenant, machine, roles and mode, and the phase decides the result.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CredentialKind, Identity, Reason, Source, Verifier};
use crate::legacy::{Adapter, Phase};

impl Verifier {
    pub(super) async fn verify_legacy(
        &self,
        adapter: &Adapter,
        credential: &str,
        fingerprint: &str,
    ) -> Result<Identity, Reason> {
        let now = self.now();
        // An adapter enforced as a whole, without tenant overrides or exceptions, makes no call
        // to the legacy source at all.
        let adapter_wide =
            self.phases
                .in_force(&adapter.name, adapter.phase, None, &self.directory, now);
        if adapter_wide.phase == Phase::Enforce && !self.phases.has_tenant_rules(&adapter.name, now)
        {
            return Err(Reason::LegacyRetired);
        }
        // In `shadow` the live legacy source decides. In the later phases a `sql_keys` key
        // verifies from the imported copy, and a key not yet imported is imported lazily.
        // NOTE: the path is chosen by the adapter-wide phase, before the tenant is known, so a
        // tenant override back to `shadow` still verifies from the imported copy.
        let claims = match adapter.verifier.sql_keys() {
            Some(keys) if adapter_wide.phase != Phase::Shadow => {
                crate::legacy::imported::verify(&self.store, &self.pepper, keys, credential, now)
                    .await?
            }
            Some(keys) => {
                // In shadow the live source decides; the imported copy is checked beside it
                // and a different result is recorded as a disagreement.
                let live = adapter.verifier.verify(credential, now).await;
                if let Some(copy) = crate::legacy::imported::verify_copy_only(
                    &self.store,
                    &self.pepper,
                    keys,
                    credential,
                    now,
                )
                .await
                {
                    self.compare_shadow(adapter, fingerprint, &live, &copy)
                        .await;
                }
                live?
            }
            None => adapter.verifier.verify(credential, now).await?,
        };
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
        let in_force = self.phases.in_force(
            &adapter.name,
            adapter.phase,
            Some(&mapped.tenant_id),
            &self.directory,
            now,
        );
        if in_force.phase == Phase::Enforce
            && !self.phases.has_exception(
                &adapter.name,
                &mapped.tenant_id,
                fingerprint,
                &self.directory,
                now,
            )
        {
            return Err(Reason::LegacyRetired);
        }
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
            phase: Some(in_force),
            translated_from: None,
        })
    }

    /// Records a disagreement between the live legacy result and the daemon's own result.
    async fn compare_shadow(
        &self,
        adapter: &Adapter,
        fingerprint: &str,
        live: &Result<crate::legacy::LegacyClaims, Reason>,
        copy: &Result<crate::legacy::LegacyClaims, Reason>,
    ) {
        let reason_of = |result: &Result<crate::legacy::LegacyClaims, Reason>| match result {
            Ok(_) => Reason::Valid,
            Err(reason) => *reason,
        };
        let (legacy, bridge) = (reason_of(live), reason_of(copy));
        if legacy == bridge || legacy.is_unavailable() {
            return;
        }
        tracing::info!(adapter.name = %adapter.name, credential.fingerprint = %fingerprint, legacy = %legacy, bridge = %bridge, "shadow disagreement");
        let mut event = crate::audit::AuditEvent::new(
            crate::audit::Action::ShadowCompare,
            crate::audit::Outcome::Failure,
            "shadow_disagreement",
        )
        .with_fingerprint(fingerprint)
        .with_detail(serde_json::json!({"legacy": legacy.as_str(), "bridge": bridge.as_str()}));
        event.adapter = Some(adapter.name.clone());
        event.source = adapter.name.clone();
        if let Err(error) = self.audit.record(event).await {
            tracing::warn!(%error, adapter.name = %adapter.name, "recording a shadow disagreement failed");
        }
    }
}
