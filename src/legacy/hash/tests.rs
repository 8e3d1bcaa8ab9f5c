//! Tests against genuine vectors from `tests/fixtures/hashes/vectors.json`, written by
//! `tools/fixtures/make_hash_vectors.py` with Django, passlib, bcrypt, argon2-cffi and
//! djangorestframework-api-key, plus the error cases.

use std::time::Instant;

use serde::Deserialize;

use super::*;

const VECTORS_JSON: &str = include_str!("../../../tests/fixtures/hashes/vectors.json");

#[derive(Deserialize)]
struct Vector {
    scheme: HashScheme,
    secret: String,
    stored: String,
    expected: bool,
    source: String,
    #[serde(default)]
    slow: bool,
}

fn load_vectors() -> Vec<Vector> {
    serde_json::from_str(VECTORS_JSON).expect("vectors.json parses")
}

fn scheme(json: &str) -> HashScheme {
    serde_json::from_str(json).expect("scheme parses")
}

fn check(scheme_json: &str, key: &str, stored: &str) -> Result<bool, HashError> {
    verify(
        &scheme(scheme_json),
        key.as_bytes(),
        stored,
        &HashLimits::default(),
    )
}

fn assert_invalid_format(
    result: Result<bool, HashError>,
    expected_scheme: &str,
    secret_part: &str,
) {
    let error = result.expect_err("expected a format error");
    let HashError::InvalidFormat { scheme, .. } = &error else {
        panic!("expected InvalidFormat, got {error:?}");
    };
    assert_eq!(*scheme, expected_scheme);
    let message = error.to_string();
    assert!(message.contains(expected_scheme), "message: {message}");
    assert!(
        !message.contains(secret_part),
        "message leaks the stored value: {message}"
    );
}

#[test]
fn genuine_vectors_all_match() {
    let vectors = load_vectors();
    let mut failures = Vec::new();
    let mut checked = 0;
    for vector in vectors.iter().filter(|vector| !vector.slow) {
        let result = verify(
            &vector.scheme,
            vector.secret.as_bytes(),
            &vector.stored,
            &HashLimits::default(),
        );
        checked += 1;
        if result != Ok(vector.expected) {
            failures.push(format!(
                "{} [{}] {}: expected {}, got {result:?}",
                vector.source,
                vector.scheme.name(),
                vector.stored,
                vector.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 200, "only {checked} vectors checked");
}

#[test]
fn genuine_vectors_cover_every_scheme() {
    let vectors = load_vectors();
    for name in [
        "plaintext",
        "sha256",
        "sha512",
        "hmac_sha256",
        "bcrypt",
        "argon2",
        "scrypt",
        "pbkdf2",
        "django",
    ] {
        let positives = vectors
            .iter()
            .filter(|vector| vector.scheme.name() == name && vector.expected)
            .count();
        let negatives = vectors
            .iter()
            .filter(|vector| vector.scheme.name() == name && !vector.expected)
            .count();
        assert!(positives > 0, "no positive vector for {name}");
        assert!(negatives > 0, "no negative vector for {name}");
    }
    for tag in [
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "argon2$argon2id$",
        "bcrypt_sha256$$2b$",
        "bcrypt$$2b$",
        "scrypt$",
        "sha1$",
        "sha1$$",
        "md5$",
        "md5$$",
        "sha512$$",
        "$pbkdf2-sha256$",
        "$pbkdf2-sha512$",
        "$pbkdf2$",
        "$scrypt$",
        "$2a$",
        "$2b$",
        "$2y$",
        "$argon2id$",
        "$argon2i$",
        "$argon2d$",
    ] {
        assert!(
            vectors.iter().any(|vector| vector.stored.starts_with(tag)),
            "no vector starts with {tag}"
        );
    }
}

// Django 5.2 default of 1,000,000 iterations: about 0.2 s in a debug build (dependencies at
// opt-level 1, the 2-core development machine), so it runs with the other tests.
#[test]
fn django_default_iterations_vector() {
    let vectors = load_vectors();
    let slow: Vec<&Vector> = vectors.iter().filter(|vector| vector.slow).collect();
    assert_eq!(slow.len(), 1);
    let vector = slow[0];
    let started = Instant::now();
    let result = verify(
        &vector.scheme,
        vector.secret.as_bytes(),
        &vector.stored,
        &HashLimits::default(),
    );
    eprintln!("{}: {:?}", vector.source, started.elapsed());
    assert_eq!(result, Ok(true), "{}", vector.source);
}

#[test]
fn bcrypt_truncates_at_72_bytes() {
    let vectors = load_vectors();
    let long: Vec<&Vector> = vectors
        .iter()
        .filter(|vector| vector.scheme == HashScheme::Bcrypt {} && vector.secret.len() > 72)
        .collect();
    assert_eq!(long.len(), 2);
    assert_ne!(long[0].secret, long[1].secret);
    assert_eq!(long[0].secret[..72], long[1].secret[..72]);
    for vector in long {
        let result = verify(
            &vector.scheme,
            vector.secret.as_bytes(),
            &vector.stored,
            &HashLimits::default(),
        );
        assert_eq!(result, Ok(true));
    }
}

#[test]
fn sha256_malformed_stored_value() {
    let key = "secret";
    assert_invalid_format(
        check(r#"{"scheme":"sha256"}"#, key, "zz11"),
        "sha256",
        "zz11",
    );
    let short_hex = "ab".repeat(31);
    assert_invalid_format(
        check(r#"{"scheme":"sha256"}"#, key, &short_hex),
        "sha256",
        &short_hex,
    );
    let base64 = "K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=";
    assert_invalid_format(
        check(r#"{"scheme":"sha256","encoding":"base64url"}"#, key, base64),
        "sha256",
        base64,
    );
    assert_invalid_format(
        check(r#"{"scheme":"sha512","encoding":"base64"}"#, key, base64),
        "sha512",
        base64,
    );
}

#[test]
fn pbkdf2_malformed_stored_value() {
    let scheme = r#"{"scheme":"pbkdf2"}"#;
    let cases = [
        "pbkdf2_sha256$abc$salt$hHjxoZG0s00Od3My81lwbi97liI/1dcy2IoHKGOM4k4=",
        "pbkdf2_sha256$01000$salt$hHjxoZG0s00Od3My81lwbi97liI/1dcy2IoHKGOM4k4=",
        "pbkdf2_sha256$1000$salt$hHjxoZG0s00Od3My81lwbi97liI/1dcy2IoHKGOM4k4",
        "pbkdf2_sha256$1000$salt",
        "pbkdf2_sha1$1000$salt$hHjxoZG0s00Od3My81lwbi97liI/1dcy2IoHKGOM4k4=",
        "$pbkdf2-sha256$1000$c2FsdA$hHjxoZG0s00Od3My81lwbi97liI/1dcy2IoHKGOM4k4=",
        "argon2$argon2id$v=19$m=256,t=1,p=2$c2FsdHNhbHQ$qaIYfcS42kbGgtWrTM4ZkH/F5vkWuc3fp6Mi/Va6eZU",
    ];
    for stored in cases {
        assert_invalid_format(check(scheme, "secret", stored), "pbkdf2", "hHjxoZG0s00");
    }
}

#[test]
fn slow_schemes_malformed_stored_value() {
    let bcrypt_2x = "$2x$04$o6bi5HzVgU.TiAJlVzSEkebdmKO.S2wWq9hlJiwSy5Gfs8TYzlqrG";
    assert_invalid_format(
        check(r#"{"scheme":"bcrypt"}"#, "x", bcrypt_2x),
        "bcrypt",
        "o6bi5H",
    );
    let bcrypt_short = "$2b$04$o6bi5HzVgU.TiAJlVzSEkebdmKO.S2wWq9hlJiwSy5Gfs8TYzlqr";
    assert_invalid_format(
        check(r#"{"scheme":"bcrypt"}"#, "x", bcrypt_short),
        "bcrypt",
        "o6bi5H",
    );
    let bcrypt_cost_3 = "$2b$03$o6bi5HzVgU.TiAJlVzSEkebdmKO.S2wWq9hlJiwSy5Gfs8TYzlqrG";
    assert_invalid_format(
        check(r#"{"scheme":"bcrypt"}"#, "x", bcrypt_cost_3),
        "bcrypt",
        "o6bi5H",
    );

    let argon2_no_hash = "$argon2id$v=19$m=256,t=1,p=2$c2FsdHNhbHQ";
    assert_invalid_format(
        check(r#"{"scheme":"argon2"}"#, "x", argon2_no_hash),
        "argon2",
        "c2FsdHNh",
    );
    let argon2_unknown = "$argon2x$v=19$m=256,t=1,p=2$c2FsdHNhbHQ$qaIYfcS42kbGgtWrTM4ZkH";
    assert_invalid_format(
        check(r#"{"scheme":"argon2"}"#, "x", argon2_unknown),
        "argon2",
        "c2FsdHNh",
    );

    let scrypt_n = "scrypt$1000$salt$8$1$RyaDIInYdKrzwCf6nWK8UYqLtiEigji8LRc/MStNSVDtL7puys39y1rVf/YnhAvjz3tMR8TbjnbsRS7nYNtImg==";
    assert_invalid_format(
        check(r#"{"scheme":"scrypt"}"#, "x", scrypt_n),
        "scrypt",
        "RyaDIInY",
    );
    let scrypt_order = "$scrypt$r=8,ln=10,p=1$c2FsdA$RyaDIInYdKrzwCf6nWK8UYqLtiEigji8LRc/MStNSVA";
    assert_invalid_format(
        check(r#"{"scheme":"scrypt"}"#, "x", scrypt_order),
        "scrypt",
        "RyaDIInY",
    );
}

#[test]
fn django_malformed_stored_value() {
    let scheme = r#"{"scheme":"django"}"#;
    let upper_sha512 = format!("sha512$${}", "AB".repeat(64));
    assert_invalid_format(check(scheme, "x", &upper_sha512), "django", "ABAB");
    let short_md5 = "md5$salt$0123456789abcdef";
    assert_invalid_format(check(scheme, "x", short_md5), "django", "0123456789");
    let bcrypt_inner_broken = "bcrypt$$2b$04$tooShort";
    assert_invalid_format(
        check(scheme, "x", bcrypt_inner_broken),
        "django",
        "tooShort",
    );
}

#[test]
fn django_unknown_tag_is_error() {
    let stored = "crypt$$abN/qM.L/H8EQ";
    let error = check(r#"{"scheme":"django"}"#, "x", stored).expect_err("unknown tag");
    assert_eq!(
        error,
        HashError::UnsupportedDjangoAlgorithm {
            tag: "`crypt$`".to_owned()
        }
    );
    let message = error.to_string();
    assert!(message.contains("`crypt$`"), "message: {message}");
    assert!(!message.contains("abN/qM"), "message: {message}");

    let untagged = "not a django hash";
    let error = check(r#"{"scheme":"django"}"#, "x", untagged).expect_err("no tag");
    assert!(matches!(
        error,
        HashError::UnsupportedDjangoAlgorithm { .. }
    ));
    assert!(!error.to_string().contains(untagged));
}

#[test]
fn django_unusable_password_is_false() {
    let stored = "!Xu2dgi3vKcQ9o3V4QG8tuU3iwWB6rY5hsqY0Dqbp";
    assert_eq!(check(r#"{"scheme":"django"}"#, "x", stored), Ok(false));
}

#[test]
fn pbkdf2_iterations_over_maximum() {
    let limits = HashLimits {
        max_pbkdf2_iterations: 999,
        ..HashLimits::default()
    };
    let vectors = load_vectors();
    for tag in ["pbkdf2_sha256$1000$", "$pbkdf2-sha512$1000$"] {
        let vector = vectors
            .iter()
            .find(|vector| vector.stored.starts_with(tag))
            .expect("vector with tag");
        let error = verify(
            &vector.scheme,
            vector.secret.as_bytes(),
            &vector.stored,
            &limits,
        )
        .expect_err("cost error");
        assert_eq!(
            error,
            HashError::CostTooHigh {
                scheme: vector.scheme.name(),
                parameter: "PBKDF2 iterations",
                value: 1000,
                max: 999,
                setting: "max_pbkdf2_iterations",
            }
        );
        assert!(error.to_string().contains("max_pbkdf2_iterations"));
    }
}

#[test]
fn slow_schemes_cost_over_maximum() {
    let vectors = load_vectors();
    let find = |prefix: &str| {
        vectors
            .iter()
            .find(|vector| vector.stored.starts_with(prefix))
            .expect("vector with prefix")
    };
    let cases = [
        (
            "$2b$04$",
            HashLimits {
                max_bcrypt_cost: 3,
                ..HashLimits::default()
            },
            "max_bcrypt_cost",
        ),
        (
            "bcrypt_sha256$",
            HashLimits {
                max_bcrypt_cost: 3,
                ..HashLimits::default()
            },
            "max_bcrypt_cost",
        ),
        (
            "$argon2id$",
            HashLimits {
                max_argon2_memory_kib: 127,
                ..HashLimits::default()
            },
            "max_argon2_memory_kib",
        ),
        (
            "argon2$",
            HashLimits {
                max_argon2_iterations: 0,
                ..HashLimits::default()
            },
            "max_argon2_iterations",
        ),
        (
            "scrypt$1024$",
            HashLimits {
                max_scrypt_memory_kib: 1023,
                ..HashLimits::default()
            },
            "max_scrypt_memory_kib",
        ),
        (
            "$scrypt$ln=9,r=4,p=3$",
            HashLimits {
                max_scrypt_parallelism: 2,
                ..HashLimits::default()
            },
            "max_scrypt_parallelism",
        ),
    ];
    for (prefix, limits, setting) in cases {
        let vector = find(prefix);
        let result = verify(
            &vector.scheme,
            vector.secret.as_bytes(),
            &vector.stored,
            &limits,
        );
        match result {
            Err(HashError::CostTooHigh {
                setting: reported, ..
            }) => {
                assert_eq!(reported, setting, "{prefix}")
            }
            other => panic!("{prefix}: expected CostTooHigh, got {other:?}"),
        }
    }
}

#[test]
fn plaintext_compares_whole_value() {
    let scheme = r#"{"scheme":"plaintext"}"#;
    assert_eq!(check(scheme, "abc", "abc"), Ok(true));
    assert_eq!(check(scheme, "abc", "abcd"), Ok(false));
    assert_eq!(check(scheme, "abcd", "abc"), Ok(false));
    assert_eq!(check(scheme, "", ""), Ok(true));
}

#[test]
fn scheme_config_deserializes() {
    assert_eq!(
        scheme(r#"{"scheme":"sha256"}"#),
        HashScheme::Sha256 {
            encoding: DigestEncoding::Hex
        }
    );
    assert_eq!(
        scheme(r#"{"scheme":"sha512","encoding":"base64url"}"#),
        HashScheme::Sha512 {
            encoding: DigestEncoding::Base64url
        }
    );
    assert_eq!(scheme(r#"{"scheme":"django"}"#), HashScheme::Django {});
    let hmac = scheme(r#"{"scheme":"hmac_sha256","pepper":"cGVwcGVy","encoding":"base64"}"#);
    let HashScheme::HmacSha256 { pepper, encoding } = &hmac else {
        panic!("expected hmac_sha256, got {hmac:?}");
    };
    assert_eq!(pepper.expose(), b"pepper");
    assert_eq!(*encoding, DigestEncoding::Base64);
    assert!(!format!("{hmac:?}").contains("cGVwcGVy"));
    assert!(!serde_json::to_string(&hmac)
        .expect("serializes")
        .contains("cGVwcGVy"));

    let unknown_field = serde_json::from_str::<HashScheme>(r#"{"scheme":"bcrypt","cost":12}"#);
    assert!(unknown_field.is_err());
    let unknown_scheme = serde_json::from_str::<HashScheme>(r#"{"scheme":"md4"}"#);
    assert!(unknown_scheme.is_err());
    let empty_pepper =
        serde_json::from_str::<HashScheme>(r#"{"scheme":"hmac_sha256","pepper":""}"#);
    assert!(empty_pepper.is_err());

    let limits: HashLimits =
        serde_json::from_str(r#"{"max_pbkdf2_iterations":5}"#).expect("limits");
    assert_eq!(limits.max_pbkdf2_iterations, 5);
    assert_eq!(
        limits.max_bcrypt_cost,
        HashLimits::default().max_bcrypt_cost
    );
}

#[test]
fn hash_input_selects_part() {
    let key = b"12|abcdef";
    let parts: [(&str, &[u8]); 2] = [("id", b"12"), ("secret", b"abcdef")];
    assert_eq!(HashInput::WholeKey.select(key, &parts), Ok(&key[..]));
    let secret = HashInput::Part("secret".to_owned());
    assert_eq!(secret.select(key, &parts), Ok(&b"abcdef"[..]));
    let missing = HashInput::Part("prefix".to_owned());
    assert_eq!(
        missing.select(key, &parts),
        Err(HashError::MissingInputPart {
            part: "prefix".to_owned()
        })
    );
    let configured: HashInput = serde_json::from_str(r#"{"part":"secret"}"#).expect("input");
    assert_eq!(configured, secret);
    let whole: HashInput = serde_json::from_str(r#""whole_key""#).expect("input");
    assert_eq!(whole, HashInput::WholeKey);
}

#[test]
fn describe_shows_tag_and_cost() {
    let cases = [
        (
            "pbkdf2_sha256$1000000$defaultIterSalt1234567$j6127SMnohimZsq4X4/2+QmLWMbd2d47EMNy3oLjyuY=",
            "`pbkdf2_sha256$` (iterations 1000000)",
        ),
        (
            "$pbkdf2-sha512$1000$bc157/1/b83ZG0Po/d8bAw$vqgTKP9gS1JxtO13IrikvaykIuD46d0pIpKkzOYiYCLsxEk13GWNiSgY0GP5jpgOztzi2UvpKa1Cd7QNXkXRUg",
            "`$pbkdf2-sha512$` (iterations 1000)",
        ),
        ("bcrypt_sha256$$2b$12$o6bi5HzVgU.TiAJlVzSEkebdmKO.S2wWq9hlJiwSy5Gfs8TYzlqrG", "`bcrypt_sha256$` (cost 12)"),
        ("$2y$10$o6bi5HzVgU.TiAJlVzSEkebdmKO.S2wWq9hlJiwSy5Gfs8TYzlqrG", "`$2y$` (cost 10)"),
        (
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$qaIYfcS42kbGgtWrTM4ZkH/F5vkWuc3fp6Mi/Va6eZU",
            "`argon2$` (m=102400 KiB, t=2, p=8)",
        ),
        (
            "$scrypt$ln=10,r=8,p=1$6d17D2Gs9X6PUUrpfS+F0A$n9jhnJ7cHoCQHQnrAk+yVC/4s5IBEwhBSwgPqkVQSqA",
            "`$scrypt$` (N=2^10, r=8, p=1)",
        ),
        ("sha512$$abcdef", "`sha512$`"),
        ("pbkdf2_sha256$1000$salt$not base64", "`pbkdf2_sha256$`"),
        ("0123456789abcdef0123456789abcdef", "no algorithm tag (32 characters)"),
    ];
    for (stored, expected) in cases {
        assert_eq!(describe_stored(stored).to_string(), expected, "{stored}");
    }
}
