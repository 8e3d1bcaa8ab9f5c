//! Fuzzes native API key recognition and parsing, which run before any store lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let native = authbridge::credentials::api_key::has_native_prefix("ab", text);
        if let Ok(parts) = authbridge::credentials::api_key::parse("ab", text) {
            // Only text with the native prefix can parse as a native key.
            assert!(native);
            assert!(authbridge::credentials::is_valid_role(&parts.role));
        }
    }
});
