//! Key material of the daemon itself: the master key that encrypts secrets at rest, and the
//! pepper that keyed hashes of API keys and client secrets use.

pub mod at_rest;
pub mod master_key;
pub mod pepper;

pub use at_rest::Sealer;
pub use master_key::{load_master_key, MasterKeyError, MasterKeySource};
pub use pepper::Pepper;
