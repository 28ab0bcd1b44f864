//! Every unsupported or broken key input gets a precise error (never a panic). Keys are made
//! with the real tools where such keys exist in the wild.

use crate::support::{run, Dir};
use pie::{ErrorKind, PrivateKey};

/// Load `data` and expect a `Key` error whose message contains every one of `needles`.
fn expect_err(data: &[u8], pass: Option<&str>, needles: &[&str]) -> pie::Error {
    let err = PrivateKey::from_bytes(data, pass).expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::Key, "{err}");
    for n in needles {
        assert!(
            err.message().contains(n),
            "error {:?} lacks {n:?}",
            err.message()
        );
    }
    err
}

fn expect_file_err(path: &str, pass: Option<&str>, needles: &[&str]) {
    let err = PrivateKey::from_file(path, pass).expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::Key, "{err}");
    assert!(err.message().contains(path), "error names the file: {err}");
    for n in needles {
        assert!(
            err.message().contains(n),
            "error {:?} lacks {n:?}",
            err.message()
        );
    }
}

#[test]
fn dsa_refused() {
    let dir = Dir::new();
    let ssh = dir.ssh_keygen("id_dsa", "dsa", None, "");
    expect_file_err(&ssh, None, &["DSA keys are not supported"]);
    // Encrypted: the algorithm is reported before asking for a passphrase.
    let ssh_enc = dir.ssh_keygen("id_dsa_enc", "dsa", None, "pw");
    expect_file_err(&ssh_enc, None, &["DSA keys are not supported"]);

    let params = dir.p("dsaparam.pem");
    run(
        "openssl",
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
            "-out",
            &params,
        ],
    );
    let pkcs8 = dir.p("dsa8.pem");
    run(
        "openssl",
        &["genpkey", "-paramfile", &params, "-out", &pkcs8],
    );
    expect_file_err(&pkcs8, None, &["DSA keys are not supported"]);
    let trad = dir.p("dsa_trad.pem");
    run("openssl", &["dsa", "-in", &pkcs8, "-out", &trad]);
    assert!(dir
        .read("dsa_trad.pem")
        .starts_with(b"-----BEGIN DSA PRIVATE KEY-----"));
    expect_file_err(&trad, None, &["DSA keys are not supported"]);
}

#[test]
fn ed448_refused() {
    let dir = Dir::new();
    let path = dir.genpkey("ed448.pem", "ed448", &[]);
    expect_file_err(&path, None, &["Ed448 keys are not supported"]);
    let enc = dir.p("ed448e.pem");
    run(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            &path,
            "-passout",
            "pass:pw",
            "-out",
            &enc,
        ],
    );
    expect_file_err(&enc, Some("pw"), &["Ed448 keys are not supported"]);
}

#[test]
fn x25519_refused() {
    let dir = Dir::new();
    let path = dir.genpkey("x.pem", "x25519", &[]);
    expect_file_err(&path, None, &["key agreement", "cannot sign"]);
}

#[test]
fn p521_refused() {
    let dir = Dir::new();
    let ssh = dir.ssh_keygen("id_ecdsa521", "ecdsa", Some(521), "");
    expect_file_err(&ssh, None, &["ECDSA P-521 keys are not supported"]);
    let ssh_enc = dir.ssh_keygen("id_ecdsa521e", "ecdsa", Some(521), "pw");
    expect_file_err(&ssh_enc, None, &["ECDSA P-521 keys are not supported"]);
    let pkcs8 = dir.genpkey("p521.pem", "EC", &["ec_paramgen_curve:P-521"]);
    expect_file_err(&pkcs8, None, &["ECDSA P-521 keys are not supported"]);
    let sec1 = dir.p("p521sec1.pem");
    run("openssl", &["ec", "-in", &pkcs8, "-out", &sec1]);
    expect_file_err(&sec1, None, &["ECDSA P-521 keys are not supported"]);
    let k1 = dir.genpkey("k1.pem", "EC", &["ec_paramgen_curve:secp256k1"]);
    expect_file_err(&k1, None, &["secp256k1 keys are not supported"]);
}

#[test]
fn rsa_1024_refused_with_size() {
    let dir = Dir::new();
    let needle = "RSA key is 1024 bits; at least 2048 bits are required";
    let ssh = dir.ssh_keygen("id_rsa", "rsa", Some(1024), "");
    expect_file_err(&ssh, None, &[needle]);
    let ssh_enc = dir.ssh_keygen("id_rsa_enc", "rsa", Some(1024), "pw");
    expect_file_err(&ssh_enc, Some("pw"), &[needle]);
    let pkcs1 = dir.p("rsa1024.pem");
    run(
        "openssl",
        &["genrsa", "-traditional", "-out", &pkcs1, "1024"],
    );
    expect_file_err(&pkcs1, None, &[needle]);
    let pkcs8 = dir.genpkey("rsa1024_8.pem", "RSA", &["rsa_keygen_bits:1024"]);
    expect_file_err(&pkcs8, None, &[needle]);
}

/// DER for a PKCS#1 `RSAPrivateKey` with the given components (test-only encoder).
fn pkcs1_der(ints: &[Vec<u8>]) -> Vec<u8> {
    fn len(n: usize) -> Vec<u8> {
        match n {
            0..=127 => vec![n as u8],
            128..=255 => vec![0x81, n as u8],
            _ => vec![0x82, (n >> 8) as u8, n as u8],
        }
    }
    let mut body = vec![0x02, 0x01, 0x00]; // version 0
    for i in ints {
        let mut v = i.clone();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        body.push(0x02);
        body.extend(len(v.len()));
        body.extend(v);
    }
    let mut out = vec![0x30];
    out.extend(len(body.len()));
    out.extend(body);
    out
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// The size is checked before anything else, so a structurally valid but oversized modulus
/// gets the size error (generating a real 9000-bit key would take minutes).
#[test]
fn rsa_over_8192_bits_refused() {
    let mut n = vec![0xc5u8; 1125]; // 9000 bits, top bit set
    n[1124] |= 1;
    let small = vec![0x03u8; 8];
    let der = pkcs1_der(&[
        n,
        vec![1, 0, 1],
        small.clone(),
        small.clone(),
        small.clone(),
        small.clone(),
        small.clone(),
        small,
    ]);
    expect_err(
        &pem("RSA PRIVATE KEY", &der),
        None,
        &["RSA key is 9000 bits; the server accepts at most 8192 bits"],
    );
}

/// A well-formed PKCS#1 structure whose numbers are not an RSA key.
#[test]
fn inconsistent_rsa_components_refused() {
    let mut n = vec![0xc5u8; 256]; // 2048 bits
    n[255] |= 1;
    let small = vec![0x03u8; 8];
    let der = pkcs1_der(&[
        n,
        vec![1, 0, 1],
        small.clone(),
        small.clone(),
        small.clone(),
        small.clone(),
        small.clone(),
        small,
    ]);
    expect_err(
        &pem("RSA PRIVATE KEY", &der),
        None,
        &["corrupt RSA private key"],
    );
}

#[test]
fn legacy_encrypted_pem_refused() {
    let dir = Dir::new();
    let rsa = dir.genpkey("rsa.pem", "RSA", &["rsa_keygen_bits:2048"]);
    let legacy = dir.p("legacy_rsa.pem");
    run(
        "openssl",
        &[
            "rsa",
            "-in",
            &rsa,
            "-traditional",
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            &legacy,
        ],
    );
    let text = dir.read("legacy_rsa.pem");
    assert!(String::from_utf8_lossy(&text).contains("Proc-Type: 4,ENCRYPTED"));
    let needles = ["unsupported legacy encrypted PEM", "ssh-keygen -p", "pkcs8"];
    expect_file_err(&legacy, Some("pw"), &needles);
    expect_file_err(&legacy, None, &needles);

    let ec = dir.genpkey("ec.pem", "EC", &["ec_paramgen_curve:P-256"]);
    let legacy_ec = dir.p("legacy_ec.pem");
    run(
        "openssl",
        &[
            "ec", "-in", &ec, "-aes256", "-passout", "pass:pw", "-out", &legacy_ec,
        ],
    );
    expect_file_err(&legacy_ec, Some("pw"), &needles);
}

/// PBES1 (`-v1`) and 3DES-encrypted PKCS#8 are refused with a hint to re-encrypt.
#[test]
fn weak_pkcs8_encryption_refused() {
    let dir = Dir::new();
    let base = dir.genpkey("ec.pem", "EC", &["ec_paramgen_curve:P-256"]);
    for (name, opts) in [
        ("v1.pem", &["-v1", "PBE-SHA1-3DES"][..]),
        ("des3.pem", &["-v2", "des3"][..]),
    ] {
        let out = dir.p(name);
        let mut args = vec![
            "pkcs8", "-topk8", "-in", &base, "-passout", "pass:pw", "-out", &out,
        ];
        args.extend(opts);
        run("openssl", &args);
        expect_file_err(
            &out,
            Some("pw"),
            &[
                "unsupported encrypted PKCS#8 key",
                "openssl pkcs8 -topk8 -v2 aes-256-cbc",
            ],
        );
    }
}

#[test]
fn public_keys_refused() {
    let dir = Dir::new();
    for (kind, bits, tag) in [
        ("ed25519", None, "ssh-ed25519"),
        ("rsa", Some(2048), "ssh-rsa"),
        ("ecdsa", Some(256), "ecdsa-sha2-nistp256"),
    ] {
        let private = dir.ssh_keygen(&format!("id_{kind}"), kind, bits, "");
        let public = format!("{private}.pub");
        expect_file_err(
            &public,
            None,
            &[&format!(
                "this is an OpenSSH public key ({tag}), not a private key"
            )],
        );
    }
    let rsa = dir.genpkey("rsa.pem", "RSA", &["rsa_keygen_bits:2048"]);
    let spki = dir.spki_pem(&rsa);
    expect_err(
        spki.as_bytes(),
        None,
        &["this is a public key (PEM 'PUBLIC KEY')"],
    );
    let pkcs1_pub = run("openssl", &["rsa", "-in", &rsa, "-RSAPublicKey_out"]);
    expect_err(
        &pkcs1_pub,
        None,
        &["this is a public key (PEM 'RSA PUBLIC KEY')"],
    );
    let rfc4716 = run("ssh-keygen", &["-e", "-f", &dir.p("id_ed25519.pub")]);
    expect_err(
        &rfc4716,
        None,
        &["RFC 4716", "public key, not a private key"],
    );
}

#[test]
fn certificate_refused() {
    let dir = Dir::new();
    let key = dir.genpkey("k.pem", "EC", &["ec_paramgen_curve:P-256"]);
    let cert = run(
        "openssl",
        &[
            "req", "-x509", "-new", "-key", &key, "-subj", "/CN=test", "-days", "1",
        ],
    );
    expect_err(&cert, None, &["X.509 certificate, not a private key"]);
}

#[test]
fn empty_missing_and_binary_input() {
    expect_err(b"", None, &["key data is empty"]);
    expect_err(b" \n\t\r\n", None, &["key data is empty"]);

    let dir = Dir::new();
    let empty = dir.write("empty", b"");
    expect_file_err(&empty, None, &["key data is empty"]);

    let missing = dir.p("does-not-exist");
    let err = PrivateKey::from_file(&missing, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("cannot read key file"), "{err}");
    assert!(err.message().contains(&missing), "{err}");

    let err = PrivateKey::from_file(dir.p("").as_str(), None).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Io,
        "a directory is not a key file: {err}"
    );

    let big = dir.write("big", &vec![b'A'; (1 << 20) + 1]);
    expect_file_err(&big, None, &["is larger than 1024 KiB; not a private key"]);
    // A device that never ends is cut off at the same limit.
    expect_file_err("/dev/zero", None, &["is larger than 1024 KiB"]);

    expect_err(
        &[0x30, 0x82, 0xff, 0xfe, 0x00],
        None,
        &["not a text key file", "UTF-8"],
    );
    // A real DER key (binary) gets the same clear message.
    let pem = dir.genpkey("k.pem", "ed25519", &[]);
    let der = run("openssl", &["pkey", "-in", &pem, "-outform", "DER"]);
    expect_err(&der, None, &["not a text key file"]);
}

#[test]
fn garbage_refused() {
    let needle = "not a private key: expected an OpenSSH";
    expect_err(b"hello world", None, &[needle]);
    expect_err(b"ssh-ed25519", None, &[needle]);
    expect_err(&[b'A'; 5000], None, &[needle]);
    expect_err(
        b"-----BEGIN PRIVATE KEY-----\n!!!! not base64 !!!!\n-----END PRIVATE KEY-----\n",
        None,
        &["corrupt or truncated PRIVATE KEY PEM"],
    );
    expect_err(
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        None,
        &["corrupt or truncated OpenSSH private key"],
    );
    expect_err(
        b"-----BEGIN FOO PRIVATE KEY-----\nAAAA\n-----END FOO PRIVATE KEY-----\n",
        None,
        &["unsupported PEM block 'FOO PRIVATE KEY'"],
    );
    expect_err(
        b"-----BEGIN PRIVATE KEY",
        None,
        &["unterminated -----BEGIN line"],
    );
    expect_err(
        b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        None,
        &["PuTTY .ppk keys are not supported"],
    );
}

/// Cut the file at several points: before the END line (truncated block) and inside the body
/// with the END line kept (corrupt content).
#[test]
fn truncated_keys_refused() {
    let dir = Dir::new();
    let files = [
        (
            dir.ssh_keygen("id_ed25519", "ed25519", None, ""),
            "OPENSSH PRIVATE KEY",
        ),
        (
            dir.ssh_keygen("id_rsa", "rsa", Some(2048), ""),
            "OPENSSH PRIVATE KEY",
        ),
        (
            dir.genpkey("ec.pem", "EC", &["ec_paramgen_curve:P-384"]),
            "PRIVATE KEY",
        ),
    ];
    for (path, label) in files {
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        for cut in [text.len() / 4, text.len() / 2, text.len() - 30] {
            expect_err(
                &text.as_bytes()[..cut],
                None,
                &["truncated key", &format!("-----END {label}-----")],
            );
        }
        // Drop the second half of the base64 body but keep the END line.
        let lines: Vec<&str> = text.lines().collect();
        let body = lines.len() - 2;
        let mut kept: Vec<&str> = lines[..1 + body / 2].to_vec();
        kept.push(lines[lines.len() - 1]);
        let err = PrivateKey::from_bytes(kept.join("\n").as_bytes(), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Key);
        assert!(err.message().contains("corrupt"), "{err}");
    }
}

#[test]
fn corrupted_openssh_key_refused() {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let wrap = |blob: &[u8]| {
        let b64 = engine.encode(blob);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    };
    let dir = Dir::new();
    dir.ssh_keygen("id", "ed25519", None, "");
    let text = String::from_utf8(dir.read("id")).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut blob = engine.decode(body).unwrap();
    // The re-encoded original loads, so the failure below is due to the flipped bit alone.
    PrivateKey::from_bytes(wrap(&blob).as_bytes(), None).unwrap();
    // Flip a bit in the last byte of the 64-byte private field (the copy of the public key),
    // which sits just before the comment: the key no longer matches its public half.
    let comment_at = blob
        .windows(9)
        .rposition(|w| w == b"test@keys")
        .expect("comment present");
    blob[comment_at - 5] ^= 1;
    expect_err(
        wrap(&blob).as_bytes(),
        None,
        &["corrupt OpenSSH private key: the private key does not match its public key"],
    );
}

/// Deterministic mutations of real key files never panic (every outcome is Ok or a Key
/// error). No passphrase is given, so no key derivation runs and the loop stays fast.
#[test]
fn mutated_keys_never_panic() {
    let dir = Dir::new();
    let mut samples = vec![
        dir.read_path(&dir.ssh_keygen("a", "ed25519", None, "")),
        dir.read_path(&dir.ssh_keygen("b", "ecdsa", Some(256), "")),
        dir.read_path(&dir.ssh_keygen("c", "ed25519", None, "pw")),
        dir.read_path(&dir.genpkey("d.pem", "EC", &["ec_paramgen_curve:P-384"])),
        dir.read_path(&dir.genpkey("e.pem", "ed25519", &[])),
    ];
    let ec = dir.genpkey("f.pem", "EC", &["ec_paramgen_curve:P-256"]);
    samples.push(run("openssl", &["ec", "-in", &ec]));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut accepted = 0;
    for i in 0..3000 {
        let mut data = samples[i % samples.len()].clone();
        match next() % 3 {
            0 => {
                let at = (next() as usize) % data.len();
                data[at] ^= 1 << (next() % 8);
            }
            1 => {
                let at = (next() as usize) % data.len();
                data[at] = b"ABCDEFGHabcdefgh0123+/=\n-"[(next() % 25) as usize];
            }
            _ => {
                let at = (next() as usize) % data.len();
                data.truncate(at);
            }
        }
        match PrivateKey::from_bytes(&data, None) {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Key, "{e}"),
        }
    }
    // Some mutations (e.g. in the comment or the PEM whitespace) are harmless; most are not.
    assert!(accepted < 3000, "mutations were not applied");
}

#[test]
fn hostile_key_derivation_cost_refused() {
    // The bcrypt cost is read from the file; an absurd one must be refused before any work.
    // A real encrypted key with its cost field raised to 2049 (asking ssh-keygen for 2049
    // rounds costs it tens of seconds; the refusal must not depend on the rest of the file).
    let dir = Dir::new();
    let cheap = dir.p("id_cheap");
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-a", "16", "-N", "pw", "-f", &cheap],
    );
    let path = dir.write(
        "id_costly",
        &with_bcrypt_rounds(&dir.read_path(&cheap), 2049),
    );
    let started = std::time::Instant::now();
    expect_file_err(
        &path,
        Some("pw"),
        &[
            "bcrypt cost (2049 rounds)",
            "limit of 2048",
            "ssh-keygen -p",
        ],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Just under the limit still loads.
    let ok = dir.p("id_ok");
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-a", "64", "-N", "pw", "-f", &ok],
    );
    PrivateKey::from_file(&ok, Some("pw")).expect("64 rounds load");
}

/// An OpenSSH private key file with the bcrypt rounds of its KDF options replaced. Layout
/// (PROTOCOL.key of OpenSSH): "openssh-key-v1\0", string cipher, string kdfname "bcrypt",
/// string kdfoptions = (string salt, uint32 rounds), ...
fn with_bcrypt_rounds(pem: &[u8], rounds: u32) -> Vec<u8> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(pem).expect("PEM text");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut bin = engine.decode(body).expect("base64 body");
    let magic = b"openssh-key-v1\0";
    assert!(bin.starts_with(magic), "not an OpenSSH key");
    let string_at = |bin: &[u8], at: usize| -> (usize, usize) {
        let len = u32::from_be_bytes(bin[at..at + 4].try_into().unwrap()) as usize;
        (at + 4, at + 4 + len)
    };
    let (_, cipher_end) = string_at(&bin, magic.len());
    let (kdf_start, kdf_end) = string_at(&bin, cipher_end);
    assert_eq!(&bin[kdf_start..kdf_end], b"bcrypt");
    let (options_start, _) = string_at(&bin, kdf_end);
    let (_, salt_end) = string_at(&bin, options_start);
    bin[salt_end..salt_end + 4].copy_from_slice(&rounds.to_be_bytes());
    let encoded = engine.encode(&bin);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    out.into_bytes()
}
