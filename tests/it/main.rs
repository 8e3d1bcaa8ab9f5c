//! Integration tests of authbridge, in one binary to save link time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod audit_report;
mod bad_input;
mod cluster;
mod common;
mod daemon;
mod e2e;
mod exchange;
mod faults;
mod hardening;
mod import;
mod interop;
mod isolation;
mod jwt_cases;
mod legacy_jwt;
mod legacy_keys;
mod legacy_remote;
mod nginx;
mod overload;
mod progress;
mod proxy;
mod router;
mod scale_out;
mod store;
