//! authbridge: a machine-to-machine authentication daemon that issues and verifies tenant-scoped
//! JWT access tokens and API keys, and bridges legacy credentials to them.
//!
//! The crate is laid out by concept: `config` and `cli` at the edge, `store` for persistence,
//! `signing` and `issue` for what the daemon hands out, `verify` for the one verification
//! pipeline, `jose` and `credentials` for the wire formats, and `http` for the HTTP API.

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod http;
pub mod ids;
pub mod issue;
pub mod jose;
pub mod legacy;
pub mod metrics;
pub mod progress;
pub mod secret;
pub mod server;
pub mod signing;
pub mod store;
pub mod tenancy;
pub mod verify;
