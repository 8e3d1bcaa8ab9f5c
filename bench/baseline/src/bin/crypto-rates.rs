//! Measures aws-lc-rs signature sign and verify operations per second on one thread, for the
//! algorithms the daemon signs with, and prints one JSON object:
//! `{"RS256": {"sign_per_second": N, "verify_per_second": N}, ...}`.
//!
//! The keys and calls match the daemon's: RSA 2048 with PKCS#1 v1.5 or PSS and SHA-256, ECDSA
//! P-256 with fixed-size signatures, and Ed25519. The message is a JWS signing input of a size
//! typical for an access token.
//!
//! Usage: `crypto-rates [SECONDS_PER_MEASUREMENT]` (default 2).

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
};

/// Calls `operation` in batches until `duration` has passed and returns operations per second.
fn rate(duration: Duration, mut operation: impl FnMut()) -> f64 {
    const BATCH: u64 = 16;
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        for _ in 0..BATCH {
            operation();
        }
        count += BATCH;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

struct Rates {
    algorithm: &'static str,
    sign: f64,
    verify: f64,
}

fn rsa(
    algorithm: &'static str,
    padding: &'static dyn signature::RsaEncoding,
    parameters: &'static signature::RsaParameters,
    message: &[u8],
    duration: Duration,
) -> Rates {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let random = SystemRandom::new();
    let mut output = vec![0u8; pair.public_modulus_len()];
    let sign = rate(duration, || {
        pair.sign(padding, &random, message, &mut output)
            .expect("RSA sign");
    });
    let public = ParsedPublicKey::new(parameters, pair.public_key().as_ref())
        .expect("RSA public key");
    let verify = rate(duration, || {
        public.verify_sig(message, &output).expect("RSA verify");
    });
    Rates { algorithm, sign, verify }
}

fn es256(message: &[u8], duration: Duration) -> Rates {
    let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
        .expect("P-256 key generation");
    let random = SystemRandom::new();
    let mut last = pair.sign(&random, message).expect("ES256 sign");
    let sign = rate(duration, || {
        last = pair.sign(&random, message).expect("ES256 sign");
    });
    let public = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
        .expect("P-256 public key");
    let verify = rate(duration, || {
        public.verify_sig(message, last.as_ref()).expect("ES256 verify");
    });
    Rates { algorithm: "ES256", sign, verify }
}

fn eddsa(message: &[u8], duration: Duration) -> Rates {
    let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
    let mut last = pair.sign(message);
    let sign = rate(duration, || {
        last = pair.sign(message);
    });
    let public = ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref())
        .expect("Ed25519 public key");
    let verify = rate(duration, || {
        public.verify_sig(message, last.as_ref()).expect("EdDSA verify");
    });
    Rates { algorithm: "EdDSA", sign, verify }
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("SECONDS_PER_MEASUREMENT must be a number"))
        .unwrap_or(2.0);
    let duration = Duration::from_secs_f64(seconds);
    // A JWS signing input (base64url header "." base64url claims) of about 400 bytes.
    let message = [b'e'; 400];

    let results = [
        rsa("RS256", &signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256, &message, duration),
        rsa("PS256", &signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256, &message, duration),
        es256(&message, duration),
        eddsa(&message, duration),
    ];
    let members: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "\"{}\": {{\"sign_per_second\": {:.0}, \"verify_per_second\": {:.0}}}",
                r.algorithm, r.sign, r.verify
            )
        })
        .collect();
    println!("{{{}}}", members.join(", "));
}
