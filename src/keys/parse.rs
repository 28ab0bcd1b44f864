//! Format detection and decoding of private keys.
//!
//! Every format funnels into three constructors (`rsa_from_parts`, `ec_from_scalar`,
//! `ed25519_from_seed`) so the algorithm checks (RSA size, public/private consistency) are
//! applied the same way whatever the container was.

use super::{key_err, Secret, RSA_MAX_BITS, RSA_MIN_BITS};
use crate::error::Result;
use pkcs8::der;
use pkcs8::ObjectIdentifier;
use zeroize::Zeroizing;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const OID_X448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.111");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

const SUPPORTED: &str = "supported: Ed25519, RSA (2048-8192 bits), ECDSA P-256 and P-384";
const MSG_NEED_PASSPHRASE: &str = "key is encrypted, passphrase required";
// Key-derivation costs are read from the key file itself, so a hostile file could make loading
// run for hours or allocate gigabytes. The limits are far above what the tools use by default
// (ssh-keygen: 16 bcrypt rounds; OpenSSL: 2048 PBKDF2 iterations, scrypt N = 16384, r = 8).
const MAX_BCRYPT_ROUNDS: u32 = 2048;
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// scrypt needs about 128 · r · (N + p) bytes: at most 256 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
const MSG_WRONG_PASSPHRASE: &str = "wrong passphrase (could not decrypt the key)";

#[derive(Clone, Copy)]
enum Curve {
    P256,
    P384,
}

pub(crate) fn parse(data: &[u8], passphrase: Option<&str>) -> Result<(Secret, String)> {
    let text = std::str::from_utf8(data).map_err(|e| {
        key_err(format!(
            "not a text key file: invalid UTF-8 at byte {} (expected a PEM or OpenSSH private \
             key; binary DER keys are not supported)",
            e.valid_up_to()
        ))
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(key_err("key data is empty"));
    }
    if let Some(kind) = openssh_public_line(trimmed) {
        return Err(key_err(format!(
            "this is an OpenSSH public key ({kind}), not a private key; give the private key \
             file (e.g. id_ed25519, not id_ed25519.pub)"
        )));
    }
    if trimmed.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        return Err(key_err(
            "this is an RFC 4716 (SSH2) public key, not a private key",
        ));
    }
    if trimmed.starts_with("PuTTY-User-Key-File-") {
        return Err(key_err(
            "PuTTY .ppk keys are not supported; export the key in OpenSSH format with puttygen \
             (Conversions > Export OpenSSH key)",
        ));
    }

    let (label, block) = find_pem_block(text)?;
    if block.contains("Proc-Type:") {
        // Legacy OpenSSL encryption (MD5-based key derivation); deliberately not implemented.
        if block.contains("ENCRYPTED") {
            return Err(key_err(format!(
                "unsupported legacy encrypted PEM key ({label} with Proc-Type: 4,ENCRYPTED); \
                 convert it with `ssh-keygen -p -f <file>` (rewrites it as an OpenSSH key) or to \
                 encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
            )));
        }
        return Err(key_err(format!("unsupported PEM headers in {label} block")));
    }

    match label {
        "OPENSSH PRIVATE KEY" => openssh(block, passphrase),
        "PRIVATE KEY" => {
            let doc = pem_document(block, label)?;
            Ok((pkcs8_plain(doc.as_bytes())?, String::new()))
        }
        "ENCRYPTED PRIVATE KEY" => {
            let doc = pem_document(block, label)?;
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| {
                key_err(format!(
                    "corrupt or unsupported encrypted PKCS#8 key ({e}); supported: PBES2 \
                     (PBKDF2 or scrypt) with AES-CBC; re-encrypt with `openssl pkcs8 -topk8 \
                     -v2 aes-256-cbc`"
                ))
            })?;
            let Some(pass) = passphrase else {
                return Err(key_err(MSG_NEED_PASSPHRASE));
            };
            check_pkcs8_kdf_cost(&info.encryption_algorithm)?;
            let plain = info.decrypt(pass).map_err(|e| match e {
                // pkcs5 reports a CBC padding failure as `EncryptFailed` even when decrypting.
                pkcs8::Error::EncryptedPrivateKey(
                    pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
                ) => key_err(MSG_WRONG_PASSPHRASE),
                // A wrong passphrase passes the CBC padding check about 1 time in 256, and
                // `decrypt` then fails to read the garbage as DER.
                pkcs8::Error::Asn1(_) => key_err(MSG_WRONG_PASSPHRASE),
                pkcs8::Error::EncryptedPrivateKey(
                    pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. }
                    | pkcs8::pkcs5::Error::NoPbes1CryptSupport
                    | pkcs8::pkcs5::Error::AlgorithmParametersInvalid { .. },
                ) => key_err(format!(
                    "unsupported PKCS#8 encryption ({e}); re-encrypt with `openssl pkcs8 -topk8 \
                     -v2 aes-256-cbc`"
                )),
                other => key_err(format!("cannot decrypt PKCS#8 key: {other}")),
            })?;
            // Garbage that happens to be DER (after a wrong passphrase passed the padding
            // check) is no private key either.
            match pkcs8::PrivateKeyInfo::try_from(plain.as_bytes()) {
                Ok(_) => Ok((pkcs8_plain(plain.as_bytes())?, String::new())),
                Err(_) => Err(key_err(MSG_WRONG_PASSPHRASE)),
            }
        }
        "RSA PRIVATE KEY" => {
            let doc = pem_document(block, label)?;
            Ok((pkcs1(doc.as_bytes())?, String::new()))
        }
        "EC PRIVATE KEY" => {
            let doc = pem_document(block, label)?;
            let key = sec1::EcPrivateKey::try_from(doc.as_bytes())
                .map_err(|e| key_err(format!("corrupt SEC1 EC private key: {e}")))?;
            let Some(curve_oid) = key.parameters.and_then(|p| p.named_curve()) else {
                return Err(key_err(
                    "SEC1 EC private key without a named curve; convert it to PKCS#8 with \
                     `openssl pkcs8 -topk8 -nocrypt`",
                ));
            };
            let curve = curve_from_oid(curve_oid)?;
            Ok((
                ec_from_scalar(curve, key.private_key, key.public_key)?,
                String::new(),
            ))
        }
        "DSA PRIVATE KEY" => Err(key_err(format!("DSA keys are not supported ({SUPPORTED})"))),
        other => Err(key_err(format!(
            "unsupported PEM block '{other}' ({SUPPORTED})"
        ))),
    }
}

/// If `text` looks like an OpenSSH one-line public key, its key type.
fn openssh_public_line(text: &str) -> Option<&str> {
    let first = text.split_whitespace().next()?;
    let known = first.starts_with("ssh-")
        || first.starts_with("ecdsa-sha2-")
        || first.starts_with("sk-ssh-")
        || first.starts_with("sk-ecdsa-");
    let second = text.split_whitespace().nth(1)?;
    (known && second.starts_with("AAAA")).then_some(first)
}

/// Locate the private-key PEM block: `(label, text from BEGIN line through END line)`.
/// Other blocks (e.g. the `EC PARAMETERS` block `openssl ecparam -genkey` puts first) are
/// skipped; public keys and certificates get an error naming them.
fn find_pem_block(text: &str) -> Result<(&str, &str)> {
    const BEGIN: &str = "-----BEGIN ";
    let mut other_labels = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find(BEGIN) {
        let start = pos + found;
        let label_start = start + BEGIN.len();
        let Some(label_len) = text[label_start..].find("-----") else {
            return Err(key_err("corrupt PEM: unterminated -----BEGIN line"));
        };
        let label = &text[label_start..label_start + label_len];
        if label.contains('\n') {
            return Err(key_err("corrupt PEM: unterminated -----BEGIN line"));
        }
        let after_begin = label_start + label_len + 5;
        if label.ends_with("PRIVATE KEY") {
            let end_marker = format!("-----END {label}-----");
            let Some(end) = text[after_begin..].find(&end_marker) else {
                return Err(key_err(format!(
                    "truncated key: the {label} block has no '{end_marker}' line"
                )));
            };
            let end = after_begin + end + end_marker.len();
            return Ok((label, &text[start..end]));
        }
        other_labels.push(label);
        pos = after_begin;
    }
    if let Some(public) = other_labels.iter().find(|l| l.ends_with("PUBLIC KEY")) {
        return Err(key_err(format!(
            "this is a public key (PEM '{public}'), not a private key"
        )));
    }
    if other_labels.contains(&"CERTIFICATE") {
        return Err(key_err("this is an X.509 certificate, not a private key"));
    }
    if let Some(label) = other_labels.first() {
        return Err(key_err(format!(
            "no private key found (PEM block '{label}' only)"
        )));
    }
    Err(key_err(
        "not a private key: expected an OpenSSH (-----BEGIN OPENSSH PRIVATE KEY-----) or PEM \
         (-----BEGIN ... PRIVATE KEY-----) key",
    ))
}

fn pem_document(block: &str, label: &str) -> Result<der::SecretDocument> {
    let (_, doc) = der::SecretDocument::from_pem(block)
        .map_err(|e| key_err(format!("corrupt or truncated {label} PEM: {e}")))?;
    Ok(doc)
}

fn curve_from_oid(oid: ObjectIdentifier) -> Result<Curve> {
    match oid {
        OID_P256 => Ok(Curve::P256),
        OID_P384 => Ok(Curve::P384),
        OID_P521 => Err(key_err(format!(
            "ECDSA P-521 keys are not supported by the server ({SUPPORTED})"
        ))),
        OID_SECP256K1 => Err(key_err(format!(
            "ECDSA secp256k1 keys are not supported ({SUPPORTED})"
        ))),
        other => Err(key_err(format!(
            "unsupported elliptic curve (OID {other}; {SUPPORTED})"
        ))),
    }
}

/// Unencrypted PKCS#8 `PrivateKeyInfo` DER.
fn pkcs8_plain(der_bytes: &[u8]) -> Result<Secret> {
    let info = pkcs8::PrivateKeyInfo::try_from(der_bytes)
        .map_err(|e| key_err(format!("corrupt PKCS#8 private key: {e}")))?;
    match info.algorithm.oid {
        OID_RSA => pkcs1(info.private_key),
        OID_EC => {
            let curve_oid = info
                .algorithm
                .parameters_oid()
                .map_err(|_| key_err("corrupt PKCS#8 EC key: missing named-curve parameters"))?;
            let curve = curve_from_oid(curve_oid)?;
            let key = sec1::EcPrivateKey::try_from(info.private_key)
                .map_err(|e| key_err(format!("corrupt PKCS#8 EC private key: {e}")))?;
            if let Some(inner) = key.parameters.and_then(|p| p.named_curve()) {
                if inner != curve_oid {
                    return Err(key_err(
                        "corrupt PKCS#8 EC key: inner and outer curve parameters differ",
                    ));
                }
            }
            // A v2 PKCS#8 may carry the public key outside the SEC1 structure.
            let public = key.public_key.or(info.public_key);
            ec_from_scalar(curve, key.private_key, public)
        }
        OID_ED25519 => {
            // CurvePrivateKey ::= OCTET STRING (RFC 8410), nested inside privateKey.
            let seed = match info.private_key {
                [0x04, 0x20, seed @ ..] if seed.len() == 32 => seed,
                _ => {
                    return Err(key_err(
                        "corrupt PKCS#8 Ed25519 key: bad private key length",
                    ))
                }
            };
            ed25519_from_seed(seed, info.public_key)
        }
        OID_ED448 => Err(key_err(format!(
            "Ed448 keys are not supported ({SUPPORTED})"
        ))),
        OID_DSA => Err(key_err(format!("DSA keys are not supported ({SUPPORTED})"))),
        OID_X25519 | OID_X448 => Err(key_err(
            "X25519/X448 keys are for key agreement and cannot sign",
        )),
        OID_RSA_PSS => Err(key_err(
            "RSA-PSS-restricted keys are not supported; the server verifies RSA PKCS#1 v1.5 \
             signatures (use a plain rsaEncryption key)",
        )),
        other => Err(key_err(format!(
            "unsupported private key algorithm (OID {other}; {SUPPORTED})"
        ))),
    }
}

/// PKCS#1 `RSAPrivateKey` DER.
fn pkcs1(der_bytes: &[u8]) -> Result<Secret> {
    let key = rsa::pkcs1::RsaPrivateKey::try_from(der_bytes)
        .map_err(|e| key_err(format!("corrupt RSA private key: {e}")))?;
    if key.other_prime_infos.is_some() {
        return Err(key_err("multi-prime RSA keys are not supported"));
    }
    rsa_from_parts(
        key.modulus.as_bytes(),
        key.public_exponent.as_bytes(),
        key.private_exponent.as_bytes(),
        key.prime1.as_bytes(),
        key.prime2.as_bytes(),
    )
}

fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

/// Build an RSA key from big-endian components; checks the size before the (costly) checks.
fn rsa_from_parts(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Result<Secret> {
    let bits = bit_length(n);
    if bits < RSA_MIN_BITS {
        return Err(key_err(format!(
            "RSA key is {bits} bits; at least {RSA_MIN_BITS} bits are required"
        )));
    }
    if bits > RSA_MAX_BITS {
        return Err(key_err(format!(
            "RSA key is {bits} bits; the server accepts at most {RSA_MAX_BITS} bits"
        )));
    }
    use rsa::BigUint;
    let key = rsa::RsaPrivateKey::from_components(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        BigUint::from_bytes_be(d),
        vec![BigUint::from_bytes_be(p), BigUint::from_bytes_be(q)],
    )
    .map_err(|e| key_err(format!("corrupt RSA private key: {e}")))?;
    Ok(Secret::Rsa(key))
}

/// Build an ECDSA key from the raw scalar; when the file also holds the public point, it must
/// match (catches corruption that would otherwise only show up as a failed login).
fn ec_from_scalar(curve: Curve, scalar: &[u8], public: Option<&[u8]>) -> Result<Secret> {
    let bad = |what: &str| key_err(format!("corrupt ECDSA key: {what}"));
    match curve {
        Curve::P256 => {
            let key = p256::ecdsa::SigningKey::from_slice(scalar)
                .map_err(|_| bad("invalid P-256 private scalar"))?;
            if let Some(public) = public {
                let stated = p256::ecdsa::VerifyingKey::from_sec1_bytes(public)
                    .map_err(|_| bad("invalid public point"))?;
                if &stated != key.verifying_key() {
                    return Err(bad("public key does not match private key"));
                }
            }
            Ok(Secret::EcdsaP256(key))
        }
        Curve::P384 => {
            let key = p384::ecdsa::SigningKey::from_slice(scalar)
                .map_err(|_| bad("invalid P-384 private scalar"))?;
            if let Some(public) = public {
                let stated = p384::ecdsa::VerifyingKey::from_sec1_bytes(public)
                    .map_err(|_| bad("invalid public point"))?;
                if &stated != key.verifying_key() {
                    return Err(bad("public key does not match private key"));
                }
            }
            Ok(Secret::EcdsaP384(key))
        }
    }
}

fn ed25519_from_seed(seed: &[u8], public: Option<&[u8]>) -> Result<Secret> {
    let mut buf = Zeroizing::new([0u8; 32]);
    if seed.len() != 32 {
        return Err(key_err("corrupt Ed25519 key: the seed is not 32 bytes"));
    }
    buf.copy_from_slice(seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&buf);
    if let Some(public) = public {
        if public != key.verifying_key().as_bytes() {
            return Err(key_err(
                "corrupt Ed25519 key: public key does not match private key",
            ));
        }
    }
    Ok(Secret::Ed25519(key))
}

/// Refuses PKCS#8 encryption parameters whose key derivation would cost more than the limits.
fn check_pkcs8_kdf_cost(scheme: &pkcs8::pkcs5::EncryptionScheme<'_>) -> Result<()> {
    let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(()); // PBES1 is refused by decrypt() with its own message
    };
    if let Some(p) = params.kdf.pbkdf2() {
        if p.iteration_count > MAX_PBKDF2_ITERATIONS {
            return Err(key_err(format!(
                "the key's PBKDF2 cost ({} iterations) is above libpie's limit of \
                 {MAX_PBKDF2_ITERATIONS}; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                p.iteration_count
            )));
        }
    }
    if let Some(p) = params.kdf.scrypt() {
        // scrypt's working memory: 128 · r · N bytes for V plus 128 · r · p for B.
        let memory = 128u64
            .saturating_mul(u64::from(p.block_size))
            .saturating_mul(
                p.cost_parameter
                    .saturating_add(u64::from(p.parallelization)),
            );
        if memory > MAX_SCRYPT_MEMORY {
            return Err(key_err(format!(
                "the key's scrypt cost (N = {}, r = {}, p = {}) needs more than libpie's limit of \
                 {} MiB; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                p.cost_parameter,
                p.block_size,
                p.parallelization,
                MAX_SCRYPT_MEMORY >> 20
            )));
        }
    }
    Ok(())
}

/// SSH wire format: a u32 big-endian length, then that many bytes.
fn ssh_field<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let value = buf.get(4..4usize.checked_add(len)?)?;
    *buf = &buf[4 + len..];
    Some(value)
}

/// Reads the decrypted private section of an ECDSA `openssh-key-v1` key: two check integers,
/// key type, curve, public point, scalar (an mpint: possibly shorter than the field size, or
/// with a leading zero), comment. `None` when it is not a P-256/P-384 key.
fn openssh_ecdsa_section(section: &[u8]) -> Result<Option<(Secret, String)>> {
    let corrupt = || key_err("corrupt or truncated OpenSSH private key");
    let mut rest = section;
    let check1 = rest.get(..4).ok_or_else(corrupt)?;
    let check2 = rest.get(4..8).ok_or_else(corrupt)?;
    if check1 != check2 {
        return Err(key_err(MSG_WRONG_PASSPHRASE));
    }
    rest = &rest[8..];
    let (curve, size) = match ssh_field(&mut rest).ok_or_else(corrupt)? {
        b"ecdsa-sha2-nistp256" => (Curve::P256, 32),
        b"ecdsa-sha2-nistp384" => (Curve::P384, 48),
        _ => return Ok(None),
    };
    ssh_field(&mut rest).ok_or_else(corrupt)?; // curve name
    let public = ssh_field(&mut rest).ok_or_else(corrupt)?;
    let scalar = ssh_field(&mut rest).ok_or_else(corrupt)?;
    let scalar = &scalar[scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len())..];
    if scalar.len() > size {
        return Err(corrupt());
    }
    let mut padded = Zeroizing::new(vec![0u8; size]);
    padded[size - scalar.len()..].copy_from_slice(scalar);
    let comment = ssh_field(&mut rest).ok_or_else(corrupt)?;
    let secret = ec_from_scalar(curve, &padded, Some(public))?;
    Ok(Some((
        secret,
        String::from_utf8_lossy(comment).into_owned(),
    )))
}

/// An unencrypted ECDSA OpenSSH key read without ssh-key (see `openssh`); `None` if the block
/// is not one.
fn openssh_plain_ecdsa(block: &str) -> Result<Option<(Secret, String)>> {
    use base64::Engine;
    let body: String = block
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(body) else {
        return Ok(None);
    };
    let raw = Zeroizing::new(raw);
    let parse = || -> Option<&[u8]> {
        let mut rest = raw.strip_prefix(b"openssh-key-v1\0")?;
        if ssh_field(&mut rest)? != b"none" {
            return None; // encrypted: handled after decryption
        }
        ssh_field(&mut rest)?; // kdf name
        ssh_field(&mut rest)?; // kdf options
        rest = rest.get(4..)?; // number of keys
        ssh_field(&mut rest)?; // public key
        ssh_field(&mut rest)
    };
    match parse() {
        Some(section) => openssh_ecdsa_section(section),
        None => Ok(None),
    }
}

/// Decrypts an encrypted OpenSSH key with ssh-key's KDF and cipher, then reads it with
/// `openssh_ecdsa_section`. `None` when that is not possible (an authenticated cipher, whose
/// tag ssh-key does not expose, or not an ECDSA key).
fn openssh_encrypted_ecdsa(
    key: &ssh_key::PrivateKey,
    pass: &str,
) -> Result<Option<(Secret, String)>> {
    let Some(ciphertext) = key.key_data().encrypted() else {
        return Ok(None);
    };
    let Ok((cipher_key, iv)) = key.kdf().derive_key_and_iv(key.cipher(), pass) else {
        return Ok(None);
    };
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    if key
        .cipher()
        .decrypt(&cipher_key, &iv, &mut plain, None)
        .is_err()
    {
        return Ok(None);
    }
    openssh_ecdsa_section(&plain)
}

/// The key type named in an `openssh-key-v1` block's public half (readable without the
/// passphrase), or `None` when the block is not well-formed enough to tell.
fn openssh_key_type(block: &str) -> Option<String> {
    use base64::Engine;
    let body: String = block
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let mut rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    for _ in 0..3 {
        ssh_field(&mut rest)?; // cipher name, kdf name, kdf options
    }
    rest = rest.get(4..)?; // number of keys
    let mut public = ssh_field(&mut rest)?;
    let name = ssh_field(&mut public)?;
    String::from_utf8(name.to_vec()).ok()
}

/// OpenSSH `openssh-key-v1` private key, possibly bcrypt-encrypted.
fn openssh(block: &str, passphrase: Option<&str>) -> Result<(Secret, String)> {
    use ssh_key::{Algorithm, EcdsaCurve};
    // ssh-key's own parser can fail on some P-521 keys (a scalar one byte shorter than usual)
    // before it reports the algorithm, so read the key type from the unencrypted header first.
    if openssh_key_type(block).as_deref() == Some("ecdsa-sha2-nistp521") {
        return Err(key_err(format!(
            "ECDSA P-521 keys are not supported by the server ({SUPPORTED})"
        )));
    }
    // OpenSSH writes an ECDSA scalar whose top byte is zero (1 key in 256) one byte short, which
    // ssh-key refuses: read such unencrypted keys with our own parser.
    let parsed = ssh_key::PrivateKey::from_openssh(block);
    if parsed.is_err() {
        if let Some(found) = openssh_plain_ecdsa(block)? {
            return Ok(found);
        }
    }
    let key = parsed.map_err(|e| match e {
        // Raised when the decoded private half does not produce the stored public half.
        ssh_key::Error::Crypto | ssh_key::Error::PublicKey => {
            key_err("corrupt OpenSSH private key: the private key does not match its public key")
        }
        ssh_key::Error::AlgorithmUnknown => key_err(format!(
            "unsupported OpenSSH key type (unknown algorithm; {SUPPORTED})"
        )),
        other => key_err(format!("corrupt or truncated OpenSSH private key: {other}")),
    })?;
    // Check the algorithm (readable without the passphrase) first, so an unsupported key is
    // reported as such rather than as needing a passphrase.
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Rsa { .. }
        | Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256 | EcdsaCurve::NistP384,
        } => {}
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        } => {
            return Err(key_err(format!(
                "ECDSA P-521 keys are not supported by the server ({SUPPORTED})"
            )))
        }
        Algorithm::Dsa => return Err(key_err(format!("DSA keys are not supported ({SUPPORTED})"))),
        Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256 => {
            return Err(key_err(
                "FIDO security-key (sk-*) keys are not supported: the server does not verify \
                 their signatures",
            ))
        }
        other => {
            return Err(key_err(format!(
                "unsupported OpenSSH key type {other} ({SUPPORTED})"
            )))
        }
    }
    let key = if key.is_encrypted() {
        let Some(pass) = passphrase else {
            return Err(key_err(MSG_NEED_PASSPHRASE));
        };
        if let ssh_key::Kdf::Bcrypt { rounds, .. } = key.kdf() {
            if *rounds > MAX_BCRYPT_ROUNDS {
                return Err(key_err(format!(
                    "the key's bcrypt cost ({rounds} rounds) is above libpie's limit of \
                     {MAX_BCRYPT_ROUNDS}; re-encrypt it with `ssh-keygen -p -a 100 -f KEYFILE`"
                )));
            }
        }
        match key.decrypt(pass) {
            Ok(key) => key,
            // Checkint mismatch (CTR/CBC) or authentication failure (GCM/ChaCha20-Poly1305).
            Err(ssh_key::Error::Crypto) => return Err(key_err(MSG_WRONG_PASSPHRASE)),
            // The short-scalar case above, inside an encrypted key.
            Err(other) => match openssh_encrypted_ecdsa(&key, pass)? {
                Some(found) => return Ok(found),
                None => return Err(key_err(format!("cannot decrypt OpenSSH key: {other}"))),
            },
        }
    } else {
        key
    };
    let comment = key.comment().to_string();
    let secret = match key.key_data() {
        ssh_key::private::KeypairData::Ed25519(kp) => {
            let seed = Zeroizing::new(kp.private.to_bytes());
            ed25519_from_seed(&seed[..], Some(kp.public.as_ref()))?
        }
        ssh_key::private::KeypairData::Rsa(kp) => {
            let part = |m: &ssh_key::Mpint| {
                m.as_positive_bytes()
                    .map(|b| b.to_vec())
                    .ok_or_else(|| key_err("corrupt OpenSSH RSA key: negative component"))
            };
            let d = Zeroizing::new(part(&kp.private.d)?);
            let p = Zeroizing::new(part(&kp.private.p)?);
            let q = Zeroizing::new(part(&kp.private.q)?);
            rsa_from_parts(&part(&kp.public.n)?, &part(&kp.public.e)?, &d, &p, &q)?
        }
        ssh_key::private::KeypairData::Ecdsa(ssh_key::private::EcdsaKeypair::NistP256 {
            public,
            private,
        }) => ec_from_scalar(Curve::P256, private.as_slice(), Some(public.as_bytes()))?,
        ssh_key::private::KeypairData::Ecdsa(ssh_key::private::EcdsaKeypair::NistP384 {
            public,
            private,
        }) => ec_from_scalar(Curve::P384, private.as_slice(), Some(public.as_bytes()))?,
        _ => {
            return Err(key_err(format!(
                "unsupported OpenSSH key type {} ({SUPPORTED})",
                key.algorithm()
            )))
        }
    };
    Ok((secret, comment))
}
