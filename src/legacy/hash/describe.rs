//! Non-secret descriptions of stored hashes for error messages and `adapters check` output.

use std::fmt;

use super::{argon2_hash, bcrypt_hash, pbkdf2_hash, scrypt_hash, stored_tag};

/// The algorithm tag and cost of a stored hash. It never contains salt or digest bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashDescription {
    /// The tag as [`stored_tag`] shows it, for example `` `pbkdf2_sha256$` ``.
    pub tag: String,
    /// The cost parameters, when the tag is recognized and the value parses.
    pub cost: Option<HashCost>,
}

/// Cost parameters read from a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCost {
    Pbkdf2 {
        iterations: u32,
    },
    Bcrypt {
        cost: u32,
    },
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
    },
}

impl fmt::Display for HashDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)?;
        match self.cost {
            None => Ok(()),
            Some(HashCost::Pbkdf2 { iterations }) => write!(f, " (iterations {iterations})"),
            Some(HashCost::Bcrypt { cost }) => write!(f, " (cost {cost})"),
            Some(HashCost::Argon2 {
                memory_kib,
                iterations,
                parallelism,
            }) => write!(f, " (m={memory_kib} KiB, t={iterations}, p={parallelism})"),
            Some(HashCost::Scrypt { log_n, r, p }) => write!(f, " (N=2^{log_n}, r={r}, p={p})"),
        }
    }
}

/// Describes a stored hash by its tag and, for the slow schemes, its cost. Any stored value is
/// accepted: an unrecognized or malformed value gets a tag and no cost.
pub fn describe_stored(stored: &str) -> HashDescription {
    HashDescription {
        tag: stored_tag(stored),
        cost: read_cost(stored),
    }
}

fn read_cost(stored: &str) -> Option<HashCost> {
    const SCHEME: &str = "describe";
    let bcrypt_text = stored
        .strip_prefix("bcrypt_sha256$")
        .or_else(|| stored.strip_prefix("bcrypt$"))
        .unwrap_or(stored);
    if bcrypt_text.starts_with("$2") {
        let hash = bcrypt_hash::parse(SCHEME, bcrypt_text).ok()?;
        return Some(HashCost::Bcrypt { cost: hash.cost });
    }
    let argon2_text = stored.strip_prefix("argon2").unwrap_or(stored);
    if argon2_text.starts_with("$argon2") {
        let hash = argon2_hash::parse(SCHEME, argon2_text).ok()?;
        return Some(HashCost::Argon2 {
            memory_kib: hash.memory_kib,
            iterations: hash.iterations,
            parallelism: hash.parallelism,
        });
    }
    if stored.starts_with("scrypt$") || stored.starts_with("$scrypt$") {
        let hash = scrypt_hash::parse(SCHEME, stored).ok()?;
        return Some(HashCost::Scrypt {
            log_n: hash.log_n,
            r: hash.r,
            p: hash.p,
        });
    }
    if pbkdf2_hash::has_pbkdf2_tag(stored) {
        let hash = pbkdf2_hash::parse(SCHEME, stored).ok()?;
        return Some(HashCost::Pbkdf2 {
            iterations: hash.iterations,
        });
    }
    None
}
