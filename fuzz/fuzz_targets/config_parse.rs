//! Fuzzes configuration parsing: the TOML file, then each `[[adapters]]` entry with its preset
//! and mapping, which the daemon checks at start-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = authbridge::config::Config::from_toml(text) {
            for (index, entry) in config.adapters.0.iter().enumerate() {
                if let Ok(resolved) = authbridge::legacy::config::resolve(index, entry) {
                    let _ = authbridge::legacy::mapping::Mapping::compile(&resolved.common.mapping);
                }
            }
        }
    }
});
