//! The `file_keys` adapter kind: legacy API keys from an export file, loaded once at start.
//!
//! Formats: `csv` (a header row names the fields), `jsonl` (one JSON object per line) and
//! `deck` (a Kong decK YAML dump, one record per `consumers[].keyauth_credentials[]` entry, with
//! the consumer under `consumer`). Field names in `columns` are dot-separated paths for `jsonl`
//! and `deck` (`consumer.username`) and header names for `csv`.
//!
//! With `hash = { scheme = "plaintext" }` the keys are hashed with SHA-256 while the file loads
//! and looked up by that digest, so the adapter keeps no plaintext key. Other schemes keep the
//! stored hash and need `lookup_field`, whose value is compared with the pattern's `lookup`
//! group (or its digest, with `lookup_hash`). Results are decided as in `sql_keys`: no matching
//! record is `unknown_credential`, then `revoked`, then `expired`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::config::{parse_settings, AdapterConfigError};
use super::hash::{HashInput, HashLimits, HashScheme};
use super::introspection::compile_pattern;
use super::mapping::claim_at;
use super::sql_keys::{
    hash_input_bytes, match_record, record_claims, ColumnNames, KeyFields, KeyRecord, LookupHash,
    LOOKUP_CAPTURE,
};
use super::{CheckItem, LegacyClaims, LegacyVerifier};
use crate::verify::Reason;

/// Largest key file accepted, in bytes.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// Format of a key export file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Jsonl,
    Deck,
}

/// Settings of a `file_keys` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKeysSettings {
    /// The export file, read once when the daemon starts.
    pub path: PathBuf,
    pub format: FileFormat,
    /// A regex that the whole key must match for this adapter to receive it. Named groups
    /// become claims, except `secret` and a group that covers the whole key.
    pub pattern: String,
    /// An example key that matches `pattern`, used at startup to detect overlapping patterns.
    pub sample: Option<String>,
    /// Fields to read; only `hash` is required. For `deck` the default is `hash = "key"`.
    pub columns: ColumnNames,
    /// Hash scheme of the keys in the export. Default plaintext.
    #[serde(default = "plaintext")]
    pub hash: HashScheme,
    /// The bytes the store hashed: `"whole_key"` (default) or `{ part = "<group>" }`.
    #[serde(default)]
    pub hash_input: HashInput,
    /// The field compared with the `lookup` group; required unless `hash` is plaintext.
    pub lookup_field: Option<String>,
    /// Compares a digest of the `lookup` group with `lookup_field` instead of its text.
    pub lookup_hash: Option<LookupHash>,
    #[serde(default)]
    pub hash_limits: HashLimits,
}

fn plaintext() -> HashScheme {
    HashScheme::Plaintext {}
}

/// Records of one export file, indexed for lookup.
enum KeyIndex {
    /// SHA-256 of each plaintext key to its record (whose `stored_hash` is empty).
    Digest(HashMap<[u8; 32], KeyRecord>),
    /// Lookup value to the records that carry it.
    Lookup(HashMap<String, Vec<KeyRecord>>),
}

/// Keys loaded from an export file.
pub struct FileKeysAdapter {
    name: String,
    path: PathBuf,
    pattern: Regex,
    sample: Option<String>,
    hash: HashScheme,
    hash_input: HashInput,
    lookup_hash: Option<LookupHash>,
    hash_limits: HashLimits,
    index: KeyIndex,
    count: usize,
}

/// Builds a `file_keys` adapter and loads its file. A file that cannot be read or parsed stops
/// the start, naming the adapter, the file and the line or record.
pub fn build(name: &str, settings: &Value) -> Result<Arc<dyn LegacyVerifier>, AdapterConfigError> {
    let settings: FileKeysSettings = parse_settings(name, settings)?;
    let error = |message: String| AdapterConfigError::adapter(name, message);
    let pattern = compile_pattern(name, &settings.pattern, settings.sample.as_deref())?;
    let has_group = |group: &str| pattern.capture_names().flatten().any(|n| n == group);
    if let HashInput::Part(part) = &settings.hash_input {
        if !has_group(part) {
            return Err(error(format!(
                "`hash_input` names the part {part:?}, but `pattern` has no group of that name"
            )));
        }
    }
    let is_plaintext = settings.hash == HashScheme::Plaintext {};
    if !is_plaintext {
        if settings.lookup_field.is_none() {
            return Err(error(
                "`lookup_field` is required unless `hash` is plaintext".to_owned(),
            ));
        }
        if !has_group(LOOKUP_CAPTURE) {
            return Err(error(
                "`pattern` needs a named group `lookup` to find the record".to_owned(),
            ));
        }
    }

    let objects = read_objects(&settings.path, settings.format)
        .map_err(|message| error(format!("key file {}: {message}", settings.path.display())))?;
    let count = objects.len();
    let index = index_objects(objects, &settings)
        .map_err(|message| error(format!("key file {}: {message}", settings.path.display())))?;
    tracing::info!(adapter.name = %name, path = %settings.path.display(), keys = count, "legacy key file loaded");
    Ok(Arc::new(FileKeysAdapter {
        name: name.to_owned(),
        path: settings.path,
        pattern,
        sample: settings.sample,
        hash: settings.hash,
        hash_input: settings.hash_input,
        lookup_hash: settings.lookup_hash,
        hash_limits: settings.hash_limits,
        index,
        count,
    }))
}

/// Reads every record of the file as a JSON object.
fn read_objects(path: &PathBuf, format: FileFormat) -> Result<Vec<Map<String, Value>>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot be read: {e}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("cannot be read as UTF-8 text: {e}"))?,
    );
    match format {
        FileFormat::Csv => read_csv(&text),
        FileFormat::Jsonl => read_jsonl(&text),
        FileFormat::Deck => read_deck(&text),
    }
}

fn read_csv(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("invalid CSV header: {e}"))?
        .clone();
    let mut objects = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let object: Map<String, Value> = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
                    .collect();
                objects.push(object);
            }
            Err(e) => return Err(format!("invalid CSV: {e}")),
        }
    }
    // NOTE: the csv reader's internal buffers are freed without being overwritten.
    record.clear();
    Ok(objects)
}

fn read_jsonl(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let mut objects = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => objects.push(object),
            Ok(_) => return Err(format!("line {} is not a JSON object", number + 1)),
            // The parser's message quotes no input, only the position.
            Err(e) => return Err(format!("line {} is not valid JSON: {e}", number + 1)),
        }
    }
    Ok(objects)
}

/// Flattens a decK dump to one object per key-auth credential, with its consumer under
/// `consumer`.
fn read_deck(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let document: Value =
        serde_yaml::from_str(text).map_err(|e| format!("invalid decK YAML: {e}"))?;
    let consumers = match document.get("consumers") {
        Some(Value::Array(consumers)) => consumers.clone(),
        Some(_) => return Err("`consumers` is not a list".to_owned()),
        None => Vec::new(),
    };
    let mut objects = Vec::new();
    for (position, consumer) in consumers.into_iter().enumerate() {
        let Value::Object(mut consumer) = consumer else {
            return Err(format!("consumers[{position}] is not a mapping"));
        };
        let credentials = match consumer.remove("keyauth_credentials") {
            Some(Value::Array(credentials)) => credentials,
            Some(_) => {
                return Err(format!(
                    "consumers[{position}].keyauth_credentials is not a list"
                ))
            }
            None => Vec::new(),
        };
        for (item, credential) in credentials.into_iter().enumerate() {
            let Value::Object(mut credential) = credential else {
                return Err(format!(
                    "consumers[{position}].keyauth_credentials[{item}] is not a mapping"
                ));
            };
            credential.insert("consumer".to_owned(), Value::Object(consumer.clone()));
            objects.push(credential);
        }
    }
    Ok(objects)
}

fn field(object: &Map<String, Value>, path: &Option<String>) -> Option<Value> {
    path.as_deref()
        .and_then(|path| claim_at(object, path))
        .filter(|value| !value.is_null())
        .cloned()
}

fn index_objects(
    objects: Vec<Map<String, Value>>,
    settings: &FileKeysSettings,
) -> Result<KeyIndex, String> {
    let columns = &settings.columns;
    let is_plaintext = settings.hash == HashScheme::Plaintext {};
    let mut digests = HashMap::new();
    let mut lookups: HashMap<String, Vec<KeyRecord>> = HashMap::new();
    for (position, mut object) in objects.into_iter().enumerate() {
        let fields = KeyFields {
            hash: field(&object, &Some(columns.hash.clone())),
            revoked: field(&object, &columns.revoked),
            expires: field(&object, &columns.expires),
            owner: field(&object, &columns.owner),
            scopes: field(&object, &columns.scopes),
            tenant: field(&object, &columns.tenant),
            key_id: field(&object, &columns.key_id),
        };
        let lookup = field(&object, &settings.lookup_field);
        scrub(&mut object, &columns.hash);
        let mut record = fields
            .into_record()
            .map_err(|problem| format!("record {}: {problem}", position + 1))?;
        if is_plaintext {
            let digest: [u8; 32] = Sha256::digest(record.stored_hash.as_bytes()).into();
            record.stored_hash.zeroize();
            if digests.insert(digest, record).is_some() {
                return Err(format!(
                    "record {} repeats a key of an earlier record",
                    position + 1
                ));
            }
        } else {
            let lookup = match lookup {
                Some(Value::String(text)) => text,
                Some(Value::Number(number)) => number.to_string(),
                _ => {
                    return Err(format!(
                        "record {} has no text in the lookup field",
                        position + 1
                    ))
                }
            };
            lookups.entry(lookup).or_default().push(record);
        }
    }
    Ok(if is_plaintext {
        KeyIndex::Digest(digests)
    } else {
        KeyIndex::Lookup(lookups)
    })
}

/// Overwrites the text of the key field in a parsed record before the record is dropped.
fn scrub(object: &mut Map<String, Value>, path: &str) {
    let mut current = object;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(value) = current.get_mut(part) else {
            return;
        };
        if parts.peek().is_none() {
            if let Value::String(text) = value {
                text.zeroize();
            }
            return;
        }
        let Value::Object(inner) = value else {
            return;
        };
        current = inner;
    }
}

#[async_trait::async_trait]
impl LegacyVerifier for FileKeysAdapter {
    async fn verify(&self, credential: &str, now: i64) -> Result<LegacyClaims, Reason> {
        let Some(captures) = self.pattern.captures(credential) else {
            return Err(Reason::Malformed);
        };
        let input = hash_input_bytes(&self.pattern, credential, &captures, &self.hash_input).map_err(|problem| {
            tracing::error!(adapter.name = %self.name, %problem, "hash input cannot be selected");
            Reason::LegacyUnavailable
        })?;
        let record = match &self.index {
            KeyIndex::Digest(digests) => {
                let digest: [u8; 32] = Sha256::digest(input.as_slice()).into();
                // The map finds the entry by the digest; the final comparison is constant-time.
                digests
                    .get_key_value(&digest)
                    .filter(|(stored, _)| bool::from(stored.ct_eq(&digest)))
                    .map(|(_, record)| record.clone())
            }
            KeyIndex::Lookup(lookups) => {
                let lookup = captures
                    .name(LOOKUP_CAPTURE)
                    .map(|m| m.as_str())
                    .unwrap_or_default();
                let value = match &self.lookup_hash {
                    Some(lookup_hash) => lookup_hash.digest(lookup),
                    None => lookup.to_owned(),
                };
                let candidates = lookups.get(&value).cloned().unwrap_or_default();
                match_record(&self.name, &self.hash, &self.hash_limits, input, candidates).await?
            }
        };
        let record = record.ok_or(Reason::UnknownCredential)?;
        record_claims(&self.pattern, credential, record, now)
    }

    async fn check(&self, _now: i64) -> Vec<CheckItem> {
        vec![CheckItem::ok(format!(
            "{} keys loaded from {}",
            self.count,
            self.path.display()
        ))]
    }

    fn pattern(&self) -> Option<&Regex> {
        Some(&self.pattern)
    }

    fn sample(&self) -> Option<&str> {
        self.sample.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deck_credentials_carry_their_consumer() {
        let text = "_format_version: \"3.0\"\nconsumers:\n- username: alice\n  keyauth_credentials:\n  - key: abc\n    id: k1\n";
        let objects = read_deck(text).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["key"], Value::from("abc"));
        assert_eq!(
            claim_at(&objects[0], "consumer.username"),
            Some(&Value::from("alice"))
        );
    }

    #[test]
    fn scrub_clears_nested_key() {
        let mut object = serde_json::json!({"a": {"key": "secret"}})
            .as_object()
            .cloned()
            .unwrap();
        scrub(&mut object, "a.key");
        assert_eq!(object["a"]["key"], Value::from(""));
    }
}
