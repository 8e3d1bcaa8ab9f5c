//! Argon2 PHC strings (`$argon2id$`, `$argon2i$`, `$argon2d$`) through the `argon2` crate.

use argon2::{Algorithm, Argon2, Params, Version};
use password_hash::PasswordHash;
use subtle::ConstantTimeEq;

use super::{HashError, HashLimits};

/// Parameters, salt and expected output of an Argon2 PHC string.
pub(super) struct Argon2Hash {
    pub(super) algorithm: Algorithm,
    pub(super) version: Version,
    pub(super) memory_kib: u32,
    pub(super) iterations: u32,
    pub(super) parallelism: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

pub(super) fn parse(scheme: &'static str, stored: &str) -> Result<Argon2Hash, HashError> {
    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let phc = PasswordHash::new(stored)
        .map_err(|_| invalid("expected a PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`"))?;
    let algorithm = Algorithm::try_from(phc.algorithm)
        .map_err(|_| invalid("expected the algorithm `argon2id`, `argon2i` or `argon2d`"))?;
    // Hashes of Argon2 version 0x10 may lack `v=`. The reference implementation, and so
    // argon2-cffi 25.1 (checked by the fixture generator), reads that as 0x10, whereas the
    // `argon2` crate would assume 0x13.
    let version = Version::try_from(phc.version.unwrap_or(0x10))
        .map_err(|_| invalid("expected version 16 or 19"))?;
    let params = Params::try_from(&phc)
        .map_err(|_| invalid("expected the parameters m, t and p within Argon2's ranges"))?;
    let (Some(salt), Some(output)) = (phc.salt, phc.hash) else {
        return Err(invalid("expected both a salt and a hash"));
    };
    let mut salt_buffer = [0u8; password_hash::Salt::MAX_LENGTH];
    let salt = salt
        .decode_b64(&mut salt_buffer)
        .map_err(|_| invalid("expected an unpadded base64 salt"))?
        .to_vec();
    Ok(Argon2Hash {
        algorithm,
        version,
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
        salt,
        expected: output.as_bytes().to_vec(),
    })
}

pub(super) fn verify(
    scheme: &'static str,
    key: &[u8],
    stored: &str,
    limits: &HashLimits,
) -> Result<bool, HashError> {
    let hash = parse(scheme, stored)?;
    HashError::check_cost(
        scheme,
        "Argon2 memory (KiB)",
        hash.memory_kib.into(),
        limits.max_argon2_memory_kib.into(),
        "max_argon2_memory_kib",
    )?;
    HashError::check_cost(
        scheme,
        "Argon2 iterations",
        hash.iterations.into(),
        limits.max_argon2_iterations.into(),
        "max_argon2_iterations",
    )?;

    let invalid = |reason| HashError::invalid(scheme, reason, stored);
    let params = Params::new(
        hash.memory_kib,
        hash.iterations,
        hash.parallelism,
        Some(hash.expected.len()),
    )
    .map_err(|_| invalid("expected Argon2 parameters and hash length within Argon2's ranges"))?;
    let mut computed = vec![0u8; hash.expected.len()];
    Argon2::new(hash.algorithm, hash.version, params)
        .hash_password_into(key, &hash.salt, &mut computed)
        .map_err(|_| {
            invalid("Argon2 rejected the salt length (at least 8 bytes) or the key length")
        })?;
    Ok(computed.ct_eq(&hash.expected).into())
}
