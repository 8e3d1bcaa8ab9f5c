//! Presets: adapter settings for known legacy systems, kept as data in `adapters/*.toml` and
//! compiled into the binary. An operator names a preset and supplies only its parameters
//! (a domain, an audience) and what differs.
//!
//! A preset file has a `[preset]` table (`description`, `parameters`, `optional`) and an
//! `[adapter]` table whose string values may contain `${parameter}` placeholders.

use serde_json::{Map, Value};

/// Every preset by name, with its file.
const PRESETS: &[(&str, &str)] = &[
    ("auth0", include_str!("../../adapters/auth0.toml")),
    ("cognito", include_str!("../../adapters/cognito.toml")),
    (
        "drf-api-key",
        include_str!("../../adapters/drf-api-key.toml"),
    ),
    (
        "drf-authtoken",
        include_str!("../../adapters/drf-authtoken.toml"),
    ),
    ("entra-v1", include_str!("../../adapters/entra-v1.toml")),
    ("entra-v2", include_str!("../../adapters/entra-v2.toml")),
    ("firebase", include_str!("../../adapters/firebase.toml")),
    ("keycloak", include_str!("../../adapters/keycloak.toml")),
    ("knox", include_str!("../../adapters/knox.toml")),
    ("kong", include_str!("../../adapters/kong.toml")),
    ("oidc", include_str!("../../adapters/oidc.toml")),
    ("okta", include_str!("../../adapters/okta.toml")),
    ("sanctum", include_str!("../../adapters/sanctum.toml")),
    ("unkey", include_str!("../../adapters/unkey.toml")),
    ("userfront", include_str!("../../adapters/userfront.toml")),
];

/// Names of the built-in presets.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _)| *name).collect()
}

/// Returns the description line of a preset.
pub fn description(name: &str) -> Option<String> {
    let text = PRESETS.iter().find(|(n, _)| *n == name)?.1;
    let value: toml::Value = toml::from_str(text).ok()?;
    value
        .get("preset")?
        .get("description")?
        .as_str()
        .map(str::to_owned)
}

/// Takes the preset's parameters out of `operator` and returns the preset's adapter table with
/// them filled in. The caller merges the operator's remaining keys over it.
pub fn apply(name: &str, operator: &mut Map<String, Value>) -> Result<Map<String, Value>, String> {
    let text = PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| format!("unknown preset {name:?}: use one of {}", names().join(", ")))?;
    let document: Value = toml::from_str::<toml::Value>(text)
        .map_err(|e| format!("preset {name:?} is invalid: {e}"))
        .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))?;
    let header = document.get("preset").cloned().unwrap_or_default();
    let list = |key: &str| -> Vec<String> {
        header
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut values = Map::new();
    for (parameter, required) in list("parameters")
        .into_iter()
        .map(|p| (p, true))
        .chain(list("optional").into_iter().map(|p| (p, false)))
    {
        match operator.remove(&parameter) {
            Some(Value::String(value)) => {
                values.insert(parameter, Value::String(value));
            }
            Some(_) => {
                return Err(format!(
                    "preset {name:?} parameter `{parameter}` must be a string"
                ))
            }
            None if required => {
                return Err(format!("preset {name:?} needs the parameter `{parameter}`"))
            }
            None => {}
        }
    }

    let Some(Value::Object(mut adapter)) = document.get("adapter").cloned() else {
        return Err(format!("preset {name:?} has no [adapter] table"));
    };
    for value in adapter.values_mut() {
        substitute(value, &values);
    }
    // A placeholder of an optional parameter that was not given leaves an empty string; drop
    // such entries so the kind's defaults apply.
    drop_unfilled(&mut adapter);
    Ok(adapter)
}

fn substitute(value: &mut Value, parameters: &Map<String, Value>) {
    match value {
        Value::String(text) => {
            for (name, replacement) in parameters {
                if let Value::String(replacement) = replacement {
                    *text = text.replace(&format!("${{{name}}}"), replacement);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| substitute(item, parameters)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| substitute(item, parameters)),
        _ => {}
    }
}

fn drop_unfilled(map: &mut Map<String, Value>) {
    map.retain(|_, value| match value {
        Value::String(text) => !text.contains("${"),
        Value::Array(items) => {
            items.retain(|item| !item.as_str().is_some_and(|t| t.contains("${")));
            true
        }
        Value::Object(inner) => {
            drop_unfilled(inner);
            true
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_preset_parses() {
        for name in names() {
            let text = PRESETS.iter().find(|(n, _)| *n == name).unwrap().1;
            let value: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                value.get("adapter").is_some(),
                "{name} has an [adapter] table"
            );
            assert!(description(name).is_some(), "{name} has a description");
        }
    }

    #[test]
    fn missing_parameter_is_named() {
        let mut operator = Map::new();
        let error = apply("oidc", &mut operator).unwrap_err();
        assert!(error.contains("issuer"), "{error}");
    }

    #[test]
    fn parameters_are_substituted() {
        let mut operator = json!({"issuer": "https://idp.example", "audience": "api"})
            .as_object()
            .cloned()
            .unwrap();
        let adapter = apply("oidc", &mut operator).unwrap();
        assert_eq!(adapter["issuers"], json!(["https://idp.example"]));
        assert!(
            operator.is_empty(),
            "parameters are taken out of the operator table"
        );
    }

    #[test]
    fn unknown_preset_lists_known_ones() {
        let error = apply("nope", &mut Map::new()).unwrap_err();
        assert!(error.contains("oidc"), "{error}");
    }
}
