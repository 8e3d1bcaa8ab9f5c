//! Declarative mapping from a verified legacy identity to tenant, machine, roles and mode.
//!
//! Each target is a rule: read a claim (a dot-separated path), optionally cut it with a regex
//! capture, optionally translate it through a lookup table, and fall back to a default. Roles
//! also come from scopes through `scope_roles`.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::credentials::Mode;
use crate::ids::TenantId;

/// One value rule as written in the configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueRuleConfig {
    /// Dot-separated path of the claim to read, such as `org_id` or `app_metadata.tenant`.
    pub claim: Option<String>,
    /// A regex the claim must match; with `capture`, only that named group is kept.
    pub regex: Option<String>,
    pub capture: Option<String>,
    /// Lookup table from the (captured) legacy value to the result.
    #[serde(default)]
    pub table: BTreeMap<String, String>,
    /// The result when the claim is missing, does not match, or is not in the table.
    pub default: Option<String>,
}

/// The roles rule as written in the configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRuleConfig {
    /// Claim holding roles: an array of strings or a space-separated string.
    pub claim: Option<String>,
    /// Translation of legacy role names; without a table, names pass through unchanged.
    #[serde(default)]
    pub table: BTreeMap<String, Vec<String>>,
    /// Roles granted for each scope found in `scope` or `scp`.
    #[serde(default)]
    pub scope_roles: BTreeMap<String, Vec<String>>,
    /// Roles every mapped identity gets.
    #[serde(default)]
    pub default: Vec<String>,
}

/// The `mapping` table of an adapter.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub tenant: Option<ValueRuleConfig>,
    pub machine: Option<ValueRuleConfig>,
    #[serde(default)]
    pub roles: RolesRuleConfig,
    pub mode: Option<ValueRuleConfig>,
}

#[derive(Clone, Debug)]
struct ValueRule {
    claim: Option<String>,
    regex: Option<(Regex, Option<String>)>,
    table: BTreeMap<String, String>,
    default: Option<String>,
}

/// A compiled mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    tenant: Option<ValueRule>,
    machine: Option<ValueRule>,
    roles: RolesRuleConfig,
    mode: Option<ValueRule>,
}

/// The identity a mapping produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedIdentity {
    pub tenant_id: TenantId,
    pub machine_id: Option<String>,
    pub roles: BTreeSet<String>,
    pub mode: Mode,
}

/// Why a verified legacy identity could not be mapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("no tenant rule matched the legacy identity")]
    NoTenant,
    #[error("mapped tenant {0:?} is not a tenant id")]
    InvalidTenant(String),
    #[error("mapped mode {0:?} is not live or test")]
    InvalidMode(String),
}

fn compile_rule(rule: &ValueRuleConfig, target: &str) -> Result<ValueRule, String> {
    let regex = match &rule.regex {
        None => {
            if rule.capture.is_some() {
                return Err(format!("mapping.{target}: `capture` needs `regex`"));
            }
            None
        }
        Some(pattern) => {
            let regex = Regex::new(pattern)
                .map_err(|e| format!("mapping.{target}.regex is invalid: {e}"))?;
            if let Some(capture) = &rule.capture {
                if !regex.capture_names().any(|n| n == Some(capture.as_str())) {
                    return Err(format!(
                        "mapping.{target}.regex has no capture group named {capture:?}"
                    ));
                }
            }
            Some((regex, rule.capture.clone()))
        }
    };
    if rule.claim.is_none() && rule.default.is_none() {
        return Err(format!("mapping.{target} needs `claim` or `default`"));
    }
    Ok(ValueRule {
        claim: rule.claim.clone(),
        regex,
        table: rule.table.clone(),
        default: rule.default.clone(),
    })
}

/// Reads a dot-separated path from the claims.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl ValueRule {
    fn evaluate(&self, claims: &Map<String, Value>) -> Option<String> {
        let found = self
            .claim
            .as_deref()
            .and_then(|path| claim_at(claims, path))
            .and_then(scalar_text);
        let cut = found.and_then(|text| match &self.regex {
            None => Some(text),
            Some((regex, capture)) => {
                let captures = regex.captures(&text)?;
                match capture {
                    Some(name) => captures.name(name).map(|m| m.as_str().to_owned()),
                    None => Some(text),
                }
            }
        });
        let translated = cut.and_then(|text| {
            if self.table.is_empty() {
                Some(text)
            } else {
                self.table.get(&text).cloned()
            }
        });
        translated.or_else(|| self.default.clone())
    }
}

impl Mapping {
    pub fn compile(config: &MappingConfig) -> Result<Self, String> {
        let compile = |rule: &Option<ValueRuleConfig>, target: &str| {
            rule.as_ref().map(|r| compile_rule(r, target)).transpose()
        };
        Ok(Self {
            tenant: compile(&config.tenant, "tenant")?,
            machine: compile(&config.machine, "machine")?,
            roles: config.roles.clone(),
            mode: compile(&config.mode, "mode")?,
        })
    }

    /// Maps verified claims; `subject` is the machine when no machine rule is set.
    pub fn apply(
        &self,
        claims: &Map<String, Value>,
        subject: Option<&str>,
    ) -> Result<MappedIdentity, MappingError> {
        let tenant_text = self
            .tenant
            .as_ref()
            .and_then(|rule| rule.evaluate(claims))
            .ok_or(MappingError::NoTenant)?;
        let tenant_id = TenantId::parse(&tenant_text)
            .map_err(|_| MappingError::InvalidTenant(tenant_text.clone()))?;
        let machine_id = match &self.machine {
            Some(rule) => rule.evaluate(claims),
            None => subject.map(str::to_owned),
        };
        let mode = match self.mode.as_ref().and_then(|rule| rule.evaluate(claims)) {
            None => Mode::Live,
            Some(text) => Mode::parse(&text).ok_or(MappingError::InvalidMode(text))?,
        };
        Ok(MappedIdentity {
            tenant_id,
            machine_id,
            roles: self.roles(claims),
            mode,
        })
    }

    fn roles(&self, claims: &Map<String, Value>) -> BTreeSet<String> {
        let mut roles: BTreeSet<String> = self.roles.default.iter().cloned().collect();
        if let Some(path) = &self.roles.claim {
            for legacy in string_list(claim_at(claims, path)) {
                if self.roles.table.is_empty() {
                    roles.insert(legacy);
                } else if let Some(mapped) = self.roles.table.get(&legacy) {
                    roles.extend(mapped.iter().cloned());
                }
            }
        }
        if !self.roles.scope_roles.is_empty() {
            let scopes = string_list(claims.get("scope"))
                .into_iter()
                .chain(string_list(claims.get("scp")));
            for scope in scopes {
                if let Some(mapped) = self.roles.scope_roles.get(&scope) {
                    roles.extend(mapped.iter().cloned());
                }
            }
        }
        roles
    }
}

/// A claim as a list of strings: an array of strings, or a space-separated string.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(config: Value) -> Mapping {
        Mapping::compile(&serde_json::from_value(config).unwrap()).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn tenant_from_claim_path() {
        let m = mapping(json!({"tenant": {"claim": "app.tenant"}}));
        let mapped = m
            .apply(&claims(json!({"app": {"tenant": "abcd1234"}})), Some("svc"))
            .unwrap();
        assert_eq!(mapped.tenant_id.as_str(), "abcd1234");
        assert_eq!(mapped.machine_id.as_deref(), Some("svc"));
        assert_eq!(mapped.mode, Mode::Live);
    }

    #[test]
    fn tenant_through_regex_and_table() {
        let m = mapping(json!({"tenant": {
            "claim": "iss",
            "regex": "^https://login\\.example/(?P<tid>[^/]+)/v2\\.0$",
            "capture": "tid",
            "table": {"contoso": "abcd1234"}
        }}));
        let mapped = m
            .apply(
                &claims(json!({"iss": "https://login.example/contoso/v2.0"})),
                None,
            )
            .unwrap();
        assert_eq!(mapped.tenant_id.as_str(), "abcd1234");
        let unmapped = m.apply(
            &claims(json!({"iss": "https://login.example/fabrikam/v2.0"})),
            None,
        );
        assert_eq!(unmapped, Err(MappingError::NoTenant));
    }

    #[test]
    fn default_tenant_applies_when_claim_missing() {
        let m = mapping(json!({"tenant": {"claim": "org", "default": "zzzz9999"}}));
        let mapped = m.apply(&claims(json!({})), None).unwrap();
        assert_eq!(mapped.tenant_id.as_str(), "zzzz9999");
    }

    #[test]
    fn invalid_tenant_value_is_reported() {
        let m = mapping(json!({"tenant": {"claim": "org"}}));
        let error = m
            .apply(&claims(json!({"org": "Not A Tenant"})), None)
            .unwrap_err();
        assert_eq!(
            error,
            MappingError::InvalidTenant("Not A Tenant".to_owned())
        );
    }

    #[test]
    fn roles_from_claim_table_and_scopes() {
        let m = mapping(json!({
            "tenant": {"default": "abcd1234"},
            "roles": {"claim": "groups", "table": {"ops": ["admin"]}, "scope_roles": {"read:all": ["reader"]}, "default": ["legacy"]}
        }));
        let mapped = m
            .apply(
                &claims(json!({"groups": ["ops", "ignored"], "scope": "read:all write"})),
                None,
            )
            .unwrap();
        let roles: Vec<&str> = mapped.roles.iter().map(String::as_str).collect();
        assert_eq!(roles, vec!["admin", "legacy", "reader"]);
    }

    #[test]
    fn capture_without_regex_is_a_config_error() {
        let config: MappingConfig =
            serde_json::from_value(json!({"tenant": {"claim": "a", "capture": "x"}})).unwrap();
        assert!(Mapping::compile(&config).is_err());
        let config: MappingConfig = serde_json::from_value(
            json!({"tenant": {"claim": "a", "regex": "(?P<y>.*)", "capture": "x"}}),
        )
        .unwrap();
        assert!(Mapping::compile(&config).is_err());
    }
}
