//! Staff passwords: Argon2id in the PHC string form (algorithm, parameters and salt travel
//! with the hash, so parameters can rise later without a migration). Hashing is slow on
//! purpose: callers run it on the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's first Argon2id setting: 19 MiB, 2 passes, 1 lane (about 30 ms here). A sign-in
/// is rate limited, so this bounds an attacker who has a copy of the store, not one online.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 256;

fn argon() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password is refused, in words for the person choosing it.
pub fn check_new(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err("Choose a password of at least 12 characters.");
    }
    if n > MAX_CHARS {
        return Err("Choose a password of at most 256 characters.");
    }
    Ok(())
}

/// The PHC string for `password` under a fresh random salt.
pub fn hash(password: &str) -> String {
    let salt: [u8; 16] = upgate_gateway::sys::random().expect("system random works");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    argon()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id hashes any password")
        .to_string()
}

/// Whether `password` matches `phc`. A malformed stored hash matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    // The parameters come from the stored string; `argon()` only supplies the algorithm.
    PasswordHash::new(phc).is_ok_and(|parsed| argon().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of nothing anyone knows: checked against when the email is unknown, so an
/// unknown address costs the same time as a wrong password and timing tells no one which
/// addresses have accounts.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&hex::encode(upgate_gateway::sys::random::<16>().expect("random"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&phc, "correct horse battery"));
        assert!(!verify(&phc, "correct horse battery "));
        assert!(!verify("not a hash", "correct horse battery"));
        assert_ne!(phc, hash("correct horse battery"), "salts differ");
    }

    #[test]
    fn new_passwords_have_a_length_range() {
        assert!(check_new("short").is_err());
        assert!(check_new("twelve chars").is_ok());
        assert!(check_new(&"x".repeat(257)).is_err());
    }
}
