//! Loading the master key from configuration, a file, or a generated development key.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use crate::config::Config;
use crate::secret::SecretBytes;

/// Where the master key came from, so the daemon can warn about a development key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Configuration,
    File(PathBuf),
    GeneratedDevelopmentKey(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("security.master_key is not 32 bytes of base64: generate one with `openssl rand -base64 32`")]
    InvalidConfigured,
    #[error("master key file {path} is not 32 bytes of base64: generate one with `openssl rand -base64 32`")]
    InvalidFile { path: PathBuf },
    #[error("cannot read master key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write development master key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

const DEVELOPMENT_KEY_FILE: &str = "master.key";

fn decode(text: &str) -> Option<SecretBytes> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    (bytes.len() == 32).then(|| SecretBytes::new(bytes))
}

/// Loads the master key: `security.master_key` first, then `security.master_key_file`, then the
/// development key in the data directory, generated on first use.
pub fn load_master_key(config: &Config) -> Result<(SecretBytes, MasterKeySource), MasterKeyError> {
    if let Some(text) = &config.security.master_key {
        let key = decode(text).ok_or(MasterKeyError::InvalidConfigured)?;
        return Ok((key, MasterKeySource::Configuration));
    }
    if let Some(path) = &config.security.master_key_file {
        let key = read_key_file(path)?;
        return Ok((key, MasterKeySource::File(path.clone())));
    }
    let path = config.database.data_dir.join(DEVELOPMENT_KEY_FILE);
    if path.exists() {
        let key = read_key_file(&path)?;
        return Ok((key, MasterKeySource::GeneratedDevelopmentKey(path)));
    }
    let mut bytes = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    write_private_file(&path, STANDARD.encode(&bytes).as_bytes())?;
    Ok((
        SecretBytes::new(bytes),
        MasterKeySource::GeneratedDevelopmentKey(path),
    ))
}

fn read_key_file(path: &Path) -> Result<SecretBytes, MasterKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| MasterKeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    decode(&text).ok_or_else(|| MasterKeyError::InvalidFile {
        path: path.to_owned(),
    })
}

fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), MasterKeyError> {
    use std::io::Write;
    let error = |source| MasterKeyError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_key_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.database.data_dir = dir.path().to_owned();
        let (first, source) = load_master_key(&config).unwrap();
        assert!(matches!(
            source,
            MasterKeySource::GeneratedDevelopmentKey(_)
        ));
        let (second, _) = load_master_key(&config).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn short_configured_key_is_rejected() {
        let mut config = Config::default();
        config.security.master_key = Some(STANDARD.encode([1u8; 16]));
        assert!(matches!(
            load_master_key(&config),
            Err(MasterKeyError::InvalidConfigured)
        ));
    }
}
