//! Fuzzes the whole verification pipeline on credentials that cannot be valid: classification
//! (size and shape checks, native key prefix and checksum, unverified `iss` routing, legacy
//! recognition patterns), then the chosen verifier. A daemon with a legacy HS256 issuer and a
//! legacy key file runs on a SQLite store in a temporary directory.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use authbridge::app::App;
use authbridge::clock::SystemClock;
use authbridge::config::Config;
use authbridge::verify::{Reason, Requirements};
use libfuzzer_sys::fuzz_target;

struct Daemon {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    _dir: tempfile::TempDir,
}

fn config(dir: &Path) -> Config {
    let keys = dir.join("keys.csv");
    // The stored digest is the SHA-256 of `test`, which the recognition pattern below never
    // matches, so no input can verify against the file.
    std::fs::write(
        &keys,
        "id,prefix,hash\nk1,abcdefgh,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
    )
    .expect("write the legacy key file");
    let toml = format!(
        r#"
[server]
issuer = "https://authbridge.fuzz.invalid"

[[adapters]]
name = "legacy-jwt"
kind = "jwt"
issuers = ["https://legacy.fuzz.invalid/"]
audiences = ["legacy-api"]
algorithms = ["HS256"]
hmac_secret = "fuzz-secret-0123456789abcdef0123456789"

[adapters.mapping]
tenant = {{ default = "abcd1234" }}

[[adapters]]
name = "legacy-keys"
kind = "file_keys"
path = "{keys}"
format = "csv"
pattern = '^lk_(?P<lookup>[a-z]{{8}})_(?P<secret>[A-Za-z0-9]{{16}})$'
columns = {{ hash = "hash", key_id = "id" }}
hash = {{ scheme = "sha256", encoding = "hex" }}
lookup_field = "prefix"

[adapters.mapping]
tenant = {{ default = "abcd1234" }}
"#,
        keys = keys.display()
    );
    let mut config = Config::from_toml(&toml).expect("fuzz configuration");
    config.database.data_dir = dir.join("data");
    config
}

fn daemon() -> &'static Daemon {
    static DAEMON: OnceLock<Daemon> = OnceLock::new();
    DAEMON.get_or_init(|| {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let app = runtime
            .block_on(App::open(config(dir.path()), Arc::new(SystemClock)))
            .expect("open the fuzz daemon");
        Daemon {
            runtime,
            app,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let daemon = daemon();
    let credential = String::from_utf8_lossy(data);
    let decision = daemon.runtime.block_on(
        daemon
            .app
            .verifier
            .verify(&credential, &Requirements::default()),
    );
    assert_ne!(decision.reason, Reason::Valid, "a fuzzed credential verified");
    assert!(decision.fingerprint.starts_with("sha256:"));
});
