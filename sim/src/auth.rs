//! Authentication configuration and checks (§5).

use crate::base64;
use crate::pubkey::PublicKey;
use rand::{Rng, RngCore};
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

pub const TEXT_AUTHENTICATED: &str = "Authenticated";
pub const TEXT_ALREADY: &str = "Already authenticated";
pub const TEXT_INVALID_TOKEN: &str = "Invalid token";
pub const TEXT_VERIFICATION_FAILED: &str = "Signature verification failed";

pub struct Auth {
    pub enabled: bool,
    pub users: HashMap<String, Vec<PublicKey>>,
    pub internal_token: String,
    pub bad_token_delay: Range<Duration>,
    pub fixed_challenge: Option<[u8; 48]>,
}

/// A random 64-character token over `[0-9a-zA-Z]`, like the server's (§5.3).
pub fn random_token() -> String {
    const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    (0..64)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

impl Auth {
    pub fn new_challenge(&self) -> [u8; 48] {
        if let Some(c) = self.fixed_challenge {
            return c;
        }
        let mut c = [0u8; 48];
        rand::thread_rng().fill_bytes(&mut c);
        c
    }

    /// How long to wait before rejecting a bad internal token (1–3 s on the real server).
    pub fn bad_token_delay(&self) -> Duration {
        let r = &self.bad_token_delay;
        if r.end <= r.start {
            return r.start;
        }
        rand::thread_rng().gen_range(r.clone())
    }

    /// §5.2 steps 1–2 for `username`. `Err` is the failure `result` text.
    pub fn check_signature(
        &self,
        username: &str,
        challenge: &[u8],
        signature: &str,
    ) -> Result<(), String> {
        let sig = base64::decode(signature.as_bytes())
            .map_err(|e| format!("Invalid signature encoding: {e}"))?;
        let keys = self.users.get(username).map(Vec::as_slice).unwrap_or(&[]);
        if keys.iter().any(|k| k.verify(challenge, &sig)) {
            Ok(())
        } else {
            Err(TEXT_VERIFICATION_FAILED.to_string())
        }
    }
}
