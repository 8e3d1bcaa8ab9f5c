//! Fuzzes the untrusted first steps of verifying a JWT: reading the unverified `iss` that picks
//! the verifier, and the strict compact JWS parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = authbridge::jose::peek_issuer(text);
        if let Ok(jws) = authbridge::jose::CompactJws::parse(text) {
            // A parsed token always has a non-empty signature and an object header.
            assert!(!jws.signature().is_empty());
            let _ = jws.unverified_issuer();
        }
    }
});
