//! Parsing `[[adapters]]` entries: the common keys, the preset (if any) merged under the
//! operator's keys, and the kind-specific keys, each checked for unknown names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mapping::MappingConfig;
use super::presets;

/// Migration phase of an adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The legacy source decides. Responses carry no deprecation headers and exchange is closed.
    Shadow,
    /// Legacy credentials are accepted and responses carry a `Deprecation` header.
    #[default]
    Dual,
    /// As `dual`, plus a `Sunset` header with the cutoff date.
    Sunset,
    /// Legacy credentials are rejected with `legacy_retired`.
    Enforce,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Shadow => "shadow",
            Phase::Dual => "dual",
            Phase::Sunset => "sunset",
            Phase::Enforce => "enforce",
        }
    }
}

/// An adapter entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdapterConfigError {
    #[error("adapters[{index}]: {message}")]
    Entry { index: usize, message: String },
    #[error("adapter {adapter:?}: {message}")]
    Adapter { adapter: String, message: String },
}

impl AdapterConfigError {
    pub fn adapter(adapter: &str, message: impl Into<String>) -> Self {
        Self::Adapter {
            adapter: adapter.to_owned(),
            message: message.into(),
        }
    }
}

/// The keys every adapter has, whatever its kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonConfig {
    /// Unique name: lowercase letters, digits and `-`.
    pub name: String,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub mapping: MappingConfig,
    #[serde(default)]
    pub exchange: ExchangeConfig,
}

/// Token exchange (RFC 8693) permissions of an adapter's credentials.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Turns token exchange off for this adapter. Default false.
    #[serde(default)]
    pub disabled: bool,
    /// Client ids that may exchange; empty lets any holder of the legacy credential exchange
    /// it without client authentication. Default empty.
    #[serde(default)]
    pub clients: Vec<String>,
}

const COMMON_KEYS: [&str; 4] = ["name", "phase", "mapping", "exchange"];

/// An adapter entry split into its common part and its kind-specific part, with the preset
/// applied.
#[derive(Clone, Debug)]
pub struct ResolvedAdapter {
    pub common: CommonConfig,
    pub kind: String,
    /// The kind-specific keys, `kind` removed, ready for that kind's own `Deserialize`.
    pub settings: Value,
    pub preset: Option<String>,
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Resolves one `[[adapters]]` table.
pub fn resolve(index: usize, entry: &Value) -> Result<ResolvedAdapter, AdapterConfigError> {
    let entry_error = |message: String| AdapterConfigError::Entry { index, message };
    let Value::Object(table) = entry else {
        return Err(entry_error("must be a table".to_owned()));
    };
    let name = table
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| entry_error("missing the string key `name`".to_owned()))?
        .to_owned();
    if !is_valid_name(&name) {
        return Err(entry_error(format!(
            "name {name:?} must be 1 to 64 lowercase letters, digits or '-'"
        )));
    }
    let adapter_error = |message: String| AdapterConfigError::adapter(&name, message);

    let mut operator = table.clone();
    let preset = match operator.remove("preset") {
        None => None,
        Some(Value::String(preset)) => Some(preset),
        Some(_) => return Err(adapter_error("`preset` must be a string".to_owned())),
    };
    let mut merged = match &preset {
        Some(preset) => presets::apply(preset, &mut operator).map_err(adapter_error)?,
        None => Map::new(),
    };
    deep_merge(&mut merged, operator);

    let mut common_table = Map::new();
    for key in COMMON_KEYS {
        if let Some(value) = merged.remove(key) {
            common_table.insert(key.to_owned(), value);
        }
    }
    let common: CommonConfig = serde_json::from_value(Value::Object(common_table))
        .map_err(|e| adapter_error(e.to_string()))?;
    let kind = match merged.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(adapter_error("`kind` must be a string".to_owned())),
        None => {
            return Err(adapter_error(
                "missing `kind` or `preset`: set kind to jwt, introspection, remote_verify, sql_keys or file_keys, or name a preset"
                    .to_owned(),
            ))
        }
    };
    Ok(ResolvedAdapter {
        common,
        kind,
        settings: Value::Object(merged),
        preset,
    })
}

/// Merges `overlay` into `base`; tables merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_merge(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Deserializes a kind's settings, naming the adapter in the error.
pub fn parse_settings<T: serde::de::DeserializeOwned>(
    adapter: &str,
    settings: &Value,
) -> Result<T, AdapterConfigError> {
    serde_json::from_value(settings.clone())
        .map_err(|e| AdapterConfigError::adapter(adapter, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_kind_is_explained() {
        let error = resolve(0, &json!({"name": "legacy"})).unwrap_err();
        assert!(error.to_string().contains("missing `kind`"), "{error}");
    }

    #[test]
    fn invalid_name_is_rejected() {
        let error = resolve(2, &json!({"name": "Legacy IdP", "kind": "jwt"})).unwrap_err();
        assert!(error.to_string().contains("adapters[2]"), "{error}");
    }

    #[test]
    fn unknown_common_key_is_named() {
        let error = resolve(0, &json!({"name": "a", "kind": "jwt", "phase": "later"})).unwrap_err();
        assert!(error.to_string().contains("later"), "{error}");
    }

    #[test]
    fn deep_merge_overrides_leaves() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "d": 3})
            .as_object()
            .cloned()
            .unwrap();
        deep_merge(
            &mut base,
            json!({"a": {"b": 9}, "e": 4}).as_object().cloned().unwrap(),
        );
        assert_eq!(
            Value::Object(base),
            json!({"a": {"b": 9, "c": 2}, "d": 3, "e": 4})
        );
    }
}
