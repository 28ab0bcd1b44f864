//! SSH private keys for user authentication (PROTOCOL.md §5.4).
//!
//! Loading accepts the formats users actually have lying around: OpenSSH private keys
//! (optionally bcrypt-encrypted), PKCS#8 (optionally PBES2-encrypted), PKCS#1 RSA and SEC1 EC.
//! Algorithms: Ed25519, RSA (2048–8192 bits), ECDSA P-256 and P-384 — exactly what the server
//! can verify. Everything else is refused with an error that names the problem.
//!
//! Zeroization: the parsed secret lives in `ed25519_dalek::SigningKey`, `rsa::RsaPrivateKey` or
//! `ecdsa::SigningKey<P256|P384>`, all of which wipe their secret scalars/primes on drop
//! (`ZeroizeOnDrop`). Intermediate copies made while loading are wiped too: the file contents
//! (`Zeroizing<Vec<u8>>`), decoded DER documents (`der::SecretDocument`), decrypted OpenSSH
//! keys (`ssh_key::PrivateKey` wipes its key pairs) and raw seed/scalar buffers (`Zeroizing`).
//! The caller's own buffers and passphrase strings are the caller's business.

mod parse;

use crate::error::{Error, ErrorKind, Result};
use std::fmt;

/// The algorithm of a loaded private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Ed25519,
    Rsa { bits: usize },
    EcdsaP256,
    EcdsaP384,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// The secret itself. Each variant's type zeroizes its secret on drop.
pub(crate) enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(rsa::RsaPrivateKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
}

/// A private key usable for the server's challenge–response authentication.
///
/// `Send + Sync`; the key material is zeroized on drop; `Debug` shows only the algorithm and
/// the comment, never secret data.
pub struct PrivateKey {
    secret: Secret,
    /// Comment from an OpenSSH key file (empty for PEM formats, which have none).
    comment: String,
}

/// Smallest and largest RSA modulus the server accepts (§5.4).
pub(crate) const RSA_MIN_BITS: usize = 2048;
pub(crate) const RSA_MAX_BITS: usize = 8192;

/// Largest key file read. An 8192-bit RSA key in OpenSSH format is under 7 KB.
const MAX_KEY_FILE: usize = 1 << 20;

pub(crate) fn key_err(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Key, message)
}

impl PrivateKey {
    /// Load a private key from a file. A leading `~/` is replaced by `$HOME/`.
    /// `passphrase` is needed only for encrypted keys; it is ignored for unencrypted ones.
    pub fn from_file(path: &str, passphrase: Option<&str>) -> Result<PrivateKey> {
        use std::io::Read;
        let expanded = expand_home(path)?;
        let io_err = |e: std::io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("cannot read key file '{}': {e}", expanded.display()),
            )
        };
        // Allocated once at full size so the buffer never moves (a reallocation would leave an
        // unwiped copy of the key behind), and bounded so `/dev/zero` cannot exhaust memory.
        let mut data = zeroize::Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE + 1));
        std::fs::File::open(&expanded)
            .and_then(|f| f.take(MAX_KEY_FILE as u64 + 1).read_to_end(&mut data))
            .map_err(io_err)?;
        if data.len() > MAX_KEY_FILE {
            return Err(key_err(format!(
                "key file '{}' is larger than {} KiB; not a private key",
                expanded.display(),
                MAX_KEY_FILE / 1024
            )));
        }
        Self::from_bytes(&data, passphrase).map_err(|e| {
            Error::new(
                e.kind(),
                format!("key file '{}': {}", expanded.display(), e.message()),
            )
        })
    }

    /// Load a private key from its text (PEM or OpenSSH format).
    pub fn from_bytes(data: &[u8], passphrase: Option<&str>) -> Result<PrivateKey> {
        let (secret, comment) = parse::parse(data, passphrase)?;
        Ok(PrivateKey { secret, comment })
    }

    /// The key's algorithm (and for RSA its modulus size).
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.secret {
            Secret::Ed25519(_) => KeyAlgorithm::Ed25519,
            Secret::Rsa(k) => KeyAlgorithm::Rsa {
                bits: rsa::traits::PublicKeyParts::size(k) * 8,
            },
            Secret::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Secret::EcdsaP384(_) => KeyAlgorithm::EcdsaP384,
        }
    }

    /// The comment stored in an OpenSSH key file (empty when the format has none).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The signature bytes §5.4 wants for `message` (the 48 raw challenge bytes):
    /// Ed25519 pure (64 bytes); RSA PKCS#1 v1.5 with SHA-256 (modulus-length bytes);
    /// ECDSA P-256/SHA-256 and P-384/SHA-384 as ASN.1 DER.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.secret {
            Secret::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(message).to_bytes().to_vec())
            }
            Secret::Rsa(k) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(message);
                // With an RNG the rsa crate blinds the private operation, which hides timing.
                k.sign_with_rng(
                    &mut rand::rngs::OsRng,
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &digest,
                )
                .map_err(|e| key_err(format!("RSA signing failed: {e}")))
            }
            Secret::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| key_err(format!("ECDSA P-256 signing failed: {e}")))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Secret::EcdsaP384(k) => {
                use p384::ecdsa::signature::Signer;
                let sig: p384::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| key_err(format!("ECDSA P-384 signing failed: {e}")))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The OpenSSH one-line public key (`ssh-ed25519 AAAA... comment`), the form the server's
    /// `authorized_users.toml` takes (§5.5). The comment is appended when the key has one.
    pub fn public_key_openssh(&self) -> Result<String> {
        use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
        let data = match &self.secret {
            Secret::Ed25519(k) => KeyData::Ed25519(Ed25519PublicKey::from(&k.verifying_key())),
            Secret::Rsa(k) => KeyData::Rsa(
                RsaPublicKey::try_from(&k.to_public_key())
                    .map_err(|e| key_err(format!("cannot encode RSA public key: {e}")))?,
            ),
            Secret::EcdsaP256(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k.verifying_key())),
            Secret::EcdsaP384(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k.verifying_key())),
        };
        ssh_key::PublicKey::new(data, self.comment.clone())
            .to_openssh()
            .map_err(|e| key_err(format!("cannot encode public key: {e}")))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

/// Expand a leading `~/` (or a lone `~`) to `$HOME`.
fn expand_home(path: &str) -> Result<std::path::PathBuf> {
    let rest = if path == "~" {
        Some("")
    } else {
        path.strip_prefix("~/")
    };
    match rest {
        None => Ok(path.into()),
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => Ok(std::path::Path::new(&home).join(rest)),
            _ => Err(Error::new(
                ErrorKind::Io,
                format!("cannot expand '~' in key path '{path}': HOME is not set"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn thread_safety_and_zeroization_bounds() {
        assert_send_sync::<PrivateKey>();
        // Every variant of `Secret` wipes itself on drop; checked by the type system.
        assert_zeroize_on_drop::<ed25519_dalek::SigningKey>();
        assert_zeroize_on_drop::<rsa::RsaPrivateKey>();
        assert_zeroize_on_drop::<p256::ecdsa::SigningKey>();
        assert_zeroize_on_drop::<p384::ecdsa::SigningKey>();
    }

    #[test]
    fn home_expansion() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_home("~/.ssh/id").unwrap(),
            std::path::Path::new(&home).join(".ssh/id")
        );
        assert_eq!(
            expand_home("/a/~/b").unwrap(),
            std::path::Path::new("/a/~/b")
        );
        assert_eq!(
            expand_home("~user/x").unwrap(),
            std::path::Path::new("~user/x")
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let seed = [7u8; 32];
        let key = PrivateKey {
            secret: Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
            comment: "c".into(),
        };
        let s = format!("{key:?}");
        assert_eq!(s, "PrivateKey { algorithm: Ed25519, comment: \"c\", .. }");
    }
}
