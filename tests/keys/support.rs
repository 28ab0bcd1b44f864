//! Shared helpers of the key tests: generating keys with the real `ssh-keygen` / `openssl`
//! tools, and a signature verifier written directly against the RustCrypto verifying APIs
//! (independent of `pie::keys`' signing code).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The 48-byte challenge signed in the tests (distinct from §12.3's so a mix-up shows).
pub const CHALLENGE: [u8; 48] = {
    let mut c = [0u8; 48];
    let mut i = 0;
    while i < 48 {
        c[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    c
};

/// Run a tool; panics with a clear message if it is missing or fails.
pub fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): these tests need the `ssh-keygen` and `openssl` \
             command-line tools (Debian/Ubuntu: apt-get install openssh-client openssl)"
            )
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().expect("temp dir"))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    pub fn p(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read generated file")
    }
    pub fn read_path(&self, path: &str) -> Vec<u8> {
        std::fs::read(path).expect("read generated file")
    }
    pub fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.path(name), data).expect("write file");
        self.p(name)
    }

    /// `ssh-keygen -t <kind> [-b bits] -N <pass>`; returns the private key path.
    pub fn ssh_keygen(&self, name: &str, kind: &str, bits: Option<u32>, pass: &str) -> String {
        let path = self.p(name);
        let bits_s = bits.map(|b| b.to_string());
        let mut args = vec!["-q", "-t", kind, "-N", pass, "-C", "test@keys", "-f", &path];
        if let Some(b) = &bits_s {
            args.extend(["-b", b.as_str()]);
        }
        run("ssh-keygen", &args);
        path
    }

    /// `openssl genpkey` with the given algorithm options; PKCS#8 PEM.
    pub fn genpkey(&self, name: &str, algorithm: &str, opts: &[&str]) -> String {
        let path = self.p(name);
        let mut args = vec!["genpkey", "-algorithm", algorithm, "-out", &path];
        for o in opts {
            args.extend(["-pkeyopt", o]);
        }
        run("openssl", &args);
        path
    }

    /// `openssl pkey -pubout`: the SubjectPublicKeyInfo PEM of a private key file.
    pub fn spki_pem(&self, private: &str) -> String {
        String::from_utf8(run("openssl", &["pkey", "-in", private, "-pubout"])).unwrap()
    }
}

/// A public key held by the verifier.
pub enum Pub {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

/// Parse an OpenSSH public key line (the `.pub` file ssh-keygen wrote).
pub fn pub_from_openssh(line: &str) -> Pub {
    use ssh_key::public::{EcdsaPublicKey, KeyData};
    let key = ssh_key::PublicKey::from_openssh(line.trim()).expect("parse .pub");
    match key.key_data() {
        KeyData::Ed25519(k) => Pub::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&k.0).unwrap()),
        KeyData::Rsa(k) => Pub::Rsa(
            rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(k.n.as_positive_bytes().unwrap()),
                rsa::BigUint::from_bytes_be(k.e.as_positive_bytes().unwrap()),
            )
            .unwrap(),
        ),
        KeyData::Ecdsa(EcdsaPublicKey::NistP256(p)) => {
            Pub::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(p.as_bytes()).unwrap())
        }
        KeyData::Ecdsa(EcdsaPublicKey::NistP384(p)) => {
            Pub::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(p.as_bytes()).unwrap())
        }
        other => panic!("unexpected public key type {:?}", other.algorithm()),
    }
}

/// Parse a `BEGIN PUBLIC KEY` PEM (openssl output).
pub fn pub_from_spki(pem: &str) -> Pub {
    use p256::pkcs8::DecodePublicKey;
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(pem) {
        return Pub::Rsa(k);
    }
    if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
        return Pub::P256(k.into());
    }
    if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
        return Pub::P384(k.into());
    }
    // Ed25519 SPKI (RFC 8410) is a fixed 12-byte prefix followed by the 32-byte key.
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("SPKI base64");
    let prefix = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    assert!(
        der.len() == 44 && der[..12] == prefix,
        "unrecognised SPKI: {pem}"
    );
    Pub::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(der[12..].try_into().unwrap()).unwrap())
}

/// Verify `sig` over `msg` exactly as §5.4 prescribes; returns false on any mismatch.
pub fn verify(key: &Pub, msg: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    match key {
        Pub::Ed25519(k) => {
            sig.len() == 64
                && k.verify_strict(msg, &ed25519_dalek::Signature::from_slice(sig).unwrap())
                    .is_ok()
        }
        Pub::Rsa(k) => {
            use rsa::traits::PublicKeyParts;
            let Ok(s) = rsa::pkcs1v15::Signature::try_from(sig) else {
                return false;
            };
            sig.len() == k.size()
                && rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(k.clone())
                    .verify(msg, &s)
                    .is_ok()
        }
        // `from_der` insists on ASN.1 DER, so a fixed-width r||s signature fails here.
        Pub::P256(k) => match p256::ecdsa::Signature::from_der(sig) {
            Ok(s) => k.verify(msg, &s).is_ok(),
            Err(_) => false,
        },
        Pub::P384(k) => match p384::ecdsa::Signature::from_der(sig) {
            Ok(s) => k.verify(msg, &s).is_ok(),
            Err(_) => false,
        },
    }
}

/// Sign the test challenge with `key` and check it against `public`, including that a
/// different message does not verify (so the verifier itself is not vacuous).
pub fn assert_signs(key: &pie::PrivateKey, public: &Pub) {
    let sig = key.sign(&CHALLENGE).expect("sign");
    assert!(
        verify(public, &CHALLENGE, &sig),
        "signature does not verify ({key:?})"
    );
    let mut other = CHALLENGE;
    other[0] ^= 1;
    assert!(
        !verify(public, &other, &sig),
        "signature verifies a different message"
    );
    let mut bad = sig.clone();
    let last = bad.len() - 1;
    bad[last / 2] ^= 0x40;
    assert!(
        !verify(public, &CHALLENGE, &bad),
        "corrupted signature verifies"
    );
}
