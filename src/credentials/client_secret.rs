//! Client ids and secrets of machines that authenticate with `client_secret_basic` or
//! `client_secret_post`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::ids::random_lowercase_alphanumeric;
use crate::secret::SecretString;

/// A new client id: `cl_` and 20 lowercase letters and digits.
pub fn generate_client_id() -> String {
    format!("cl_{}", random_lowercase_alphanumeric(20))
}

/// A new client secret: 32 random bytes in base64url (256 bits).
pub fn generate_client_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::new(URL_SAFE_NO_PAD.encode(bytes))
}
