//! Fuzzes JWK and JWKS parsing, the input that legacy issuers and machine registrations supply.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok((keys, _refused)) = authbridge::jose::jwk::parse_key_set(&value) {
            for key in &keys {
                let _ = authbridge::jose::jwk::select_key(&keys, key.kid.as_deref(), authbridge::jose::Algorithm::RS256);
            }
        }
    }
});
