//! Public keys of authorized users and signature verification (PROTOCOL.md §5.4, §5.5).
//!
//! Accepted key texts: OpenSSH one-line keys (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`,
//! `ecdsa-sha2-nistp384`), PEM `PUBLIC KEY` (SubjectPublicKeyInfo) for RSA / EC P-256 / EC
//! P-384, and PEM `RSA PUBLIC KEY` (PKCS#1). Like the real server, an Ed25519 key is only
//! accepted in OpenSSH form (Q24), RSA moduli must have 2048–8192 bits, and ECDSA signatures
//! must be ASN.1 DER. This is deliberately independent of the client's signing code.

use crate::base64;
use rsa::pkcs1v15;
use rsa::signature::Verifier;
use rsa::BigUint;
use spki::der::Decode;
use spki::ObjectIdentifier;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A parsed public key of an authorized user.
#[derive(Clone, Debug)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parse an OpenSSH or PEM public key (see the module comment). The error text says why a
    /// key is refused.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        if text.starts_with("-----BEGIN ") {
            return parse_pem(text);
        }
        parse_openssh(text)
    }

    /// A short name of the algorithm, for logs.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ssh-ed25519",
            PublicKey::Rsa(_) => "ssh-rsa",
            PublicKey::P256(_) => "ecdsa-sha2-nistp256",
            PublicKey::P384(_) => "ecdsa-sha2-nistp384",
        }
    }

    /// Whether `signature` is a valid signature of `message` under this key, with the fixed
    /// scheme of §5.4 for the key type.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(key) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => key.verify(message, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::Rsa(key) => {
                let verifier = pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone());
                match pkcs1v15::Signature::try_from(signature) {
                    Ok(sig) => verifier.verify(message, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            PublicKey::P256(key) => match p256::ecdsa::DerSignature::from_bytes(signature) {
                Ok(sig) => key.verify(message, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::P384(key) => match p384::ecdsa::DerSignature::from_bytes(signature) {
                Ok(sig) => key.verify(message, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

fn rsa_key(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
    let key = rsa::RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        8192,
    )
    .map_err(|e| format!("invalid RSA key: {e}"))?;
    let bits = rsa::traits::PublicKeyParts::n(&key).bits();
    if bits < 2048 {
        return Err(format!(
            "RSA key of {bits} bits is below the 2048-bit minimum"
        ));
    }
    Ok(PublicKey::Rsa(key))
}

/// Reads the SSH wire format: length-prefixed strings.
struct SshReader<'a>(&'a [u8]);

impl<'a> SshReader<'a> {
    fn string(&mut self) -> Result<&'a [u8], String> {
        if self.0.len() < 4 {
            return Err("truncated key blob".into());
        }
        let len = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < len {
            return Err("truncated key blob".into());
        }
        let (s, tail) = rest.split_at(len);
        self.0 = tail;
        Ok(s)
    }
}

fn parse_openssh(text: &str) -> Result<PublicKey, String> {
    let mut parts = text.split_whitespace();
    let kind = parts.next().ok_or("empty key")?;
    let b64 = parts.next().ok_or("missing key data")?;
    let blob = base64::decode(b64.as_bytes()).map_err(|e| format!("bad key data: {e}"))?;
    let mut r = SshReader(&blob);
    let inner_kind = r.string()?;
    if inner_kind != kind.as_bytes() {
        return Err("key type does not match the key data".into());
    }
    match kind {
        "ssh-ed25519" => {
            let raw: [u8; 32] = r
                .string()?
                .try_into()
                .map_err(|_| "Ed25519 key is not 32 bytes")?;
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map(PublicKey::Ed25519)
                .map_err(|e| format!("invalid Ed25519 key: {e}"))
        }
        "ssh-rsa" => {
            let e = r.string()?;
            let n = r.string()?;
            rsa_key(n, e)
        }
        "ecdsa-sha2-nistp256" => {
            if r.string()? != b"nistp256" {
                return Err("curve name does not match".into());
            }
            p256::ecdsa::VerifyingKey::from_sec1_bytes(r.string()?)
                .map(PublicKey::P256)
                .map_err(|e| format!("invalid P-256 key: {e}"))
        }
        "ecdsa-sha2-nistp384" => {
            if r.string()? != b"nistp384" {
                return Err("curve name does not match".into());
            }
            p384::ecdsa::VerifyingKey::from_sec1_bytes(r.string()?)
                .map(PublicKey::P384)
                .map_err(|e| format!("invalid P-384 key: {e}"))
        }
        other => Err(format!("unsupported key type {other}")),
    }
}

fn parse_pem(text: &str) -> Result<PublicKey, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let begin = lines.next().unwrap_or_default();
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or("malformed PEM header")?;
    let end = format!("-----END {label}-----");
    let mut b64 = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        b64.push_str(line);
    }
    if !ended {
        return Err("missing PEM end line".into());
    }
    let der = base64::decode(b64.as_bytes()).map_err(|e| format!("bad PEM data: {e}"))?;
    match label {
        "RSA PUBLIC KEY" => {
            let key = rsa::pkcs1::RsaPublicKey::from_der(&der)
                .map_err(|e| format!("invalid PKCS#1 key: {e}"))?;
            rsa_key(key.modulus.as_bytes(), key.public_exponent.as_bytes())
        }
        "PUBLIC KEY" => {
            let spki = spki::SubjectPublicKeyInfoRef::from_der(&der)
                .map_err(|e| format!("invalid SubjectPublicKeyInfo: {e}"))?;
            let bits = spki.subject_public_key.raw_bytes();
            if spki.algorithm.oid == OID_RSA {
                let key = rsa::pkcs1::RsaPublicKey::from_der(bits)
                    .map_err(|e| format!("invalid RSA key: {e}"))?;
                return rsa_key(key.modulus.as_bytes(), key.public_exponent.as_bytes());
            }
            if spki.algorithm.oid != OID_EC {
                // Includes Ed25519 in SPKI form, which the real server refuses (Q24).
                return Err(format!("unsupported key algorithm {}", spki.algorithm.oid));
            }
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|e| format!("EC key without curve: {e}"))?;
            if curve == OID_P256 {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .map(PublicKey::P256)
                    .map_err(|e| format!("invalid P-256 key: {e}"))
            } else if curve == OID_P384 {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .map(PublicKey::P384)
                    .map_err(|e| format!("invalid P-384 key: {e}"))
            } else {
                Err(format!("unsupported curve {curve}"))
            }
        }
        other => Err(format!("unsupported PEM type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w test";
    const SIG: &str =
        "QAdQW1K8NRekM/rZnQiBmPjeZJBKJtDyZgcjCje2tgTFBij0BOjkJg/HNo67UZRY+tIJb3anhMgIITtBFOyADg==";

    #[test]
    fn ed25519_vector_of_protocol_12_3() {
        let key = PublicKey::parse(ALICE).unwrap();
        let challenge: Vec<u8> = (0u8..48).collect();
        let sig = base64::decode(SIG.as_bytes()).unwrap();
        assert!(key.verify(&challenge, &sig));
        // Signing the base64 text instead of the raw bytes must not verify.
        let text = base64::encode(&challenge);
        assert!(!key.verify(text.as_bytes(), &sig));
        assert!(!key.verify(&challenge, &sig[..63]));
    }

    #[test]
    fn refuses_garbage_and_unknown_types() {
        assert!(PublicKey::parse("").is_err());
        assert!(PublicKey::parse("ssh-dss AAAA").is_err());
        assert!(PublicKey::parse("ssh-ed25519 !!!!").is_err());
        assert!(PublicKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
        // Type in the line does not match the blob.
        assert!(PublicKey::parse(&ALICE.replace("ssh-ed25519 ", "ssh-rsa ")).is_err());
    }
}
