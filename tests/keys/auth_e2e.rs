//! Issue 3's end-to-end matrix: every key type and file format a user is likely to have,
//! generated at test time by `ssh-keygen` and `openssl`, authenticates against the simulator
//! through the Rust client. The simulator verifies with the public key taken from the tool's
//! own output (the `.pub` file, or `openssl pkey -pubout`), never from libpie's key code.

use crate::support::{run, Dir};
use pie::{Client, PrivateKey};
use pie_sim::{SimConfig, Simulator};

/// The OpenSSH line for an Ed25519 SubjectPublicKeyInfo PEM (the server and the simulator only
/// take Ed25519 public keys in OpenSSH form, §5.5/Q24). Built by hand from the SPKI bytes so it
/// does not go through libpie.
fn ed25519_openssh_from_spki(pem: &str) -> String {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        der.len(),
        44,
        "Ed25519 SPKI is 12 bytes of prefix + 32 of key"
    );
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &der[12..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Start a simulator that knows `alice` by `public_key`, load the private key, authenticate,
/// and prove the session works.
fn authenticates(private_path: &str, passphrase: Option<&str>, public_key: String) {
    let config = SimConfig {
        auth_enabled: true,
        users: vec![("alice".into(), vec![public_key])],
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).expect("simulator starts");
    let key = PrivateKey::from_file(private_path, passphrase)
        .unwrap_or_else(|e| panic!("loading {private_path}: {e}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Client::connect(&sim.url()).await.unwrap();
        client
            .authenticate("alice", Some(&key))
            .await
            .unwrap_or_else(|e| panic!("{:?} key {private_path}: {e}", key.algorithm()));
        client.ping().await.unwrap();
        client.close().await.unwrap();
    });
}

fn openssh_pub(path: &str) -> String {
    std::fs::read_to_string(format!("{path}.pub")).unwrap()
}

#[test]
fn ssh_keygen_keys_with_and_without_passphrase() {
    let dir = Dir::new();
    let kinds: [(&str, Option<u32>); 4] = [
        ("ed25519", None),
        ("rsa", Some(2048)),
        ("ecdsa", Some(256)),
        ("ecdsa", Some(384)),
    ];
    for (kind, bits) in kinds {
        for pass in ["", "correct horse"] {
            let name = format!("{kind}{}{}", bits.unwrap_or(0), pass.len());
            let path = dir.ssh_keygen(&name, kind, bits, pass);
            let passphrase = (!pass.is_empty()).then_some(pass);
            authenticates(&path, passphrase, openssh_pub(&path));
        }
    }
}

#[test]
fn openssl_keys_in_every_pem_format() {
    let dir = Dir::new();
    // PKCS#8 (plain and encrypted) for every algorithm.
    let families: [(&str, &[&str]); 4] = [
        ("ed25519", &[]),
        ("RSA", &["rsa_keygen_bits:2048"]),
        ("EC", &["ec_paramgen_curve:P-256"]),
        ("EC", &["ec_paramgen_curve:P-384"]),
    ];
    for (i, (algorithm, opts)) in families.iter().enumerate() {
        let pkcs8 = dir.genpkey(&format!("k{i}.pem"), algorithm, opts);
        let spki = dir.spki_pem(&pkcs8);
        let public = if *algorithm == "ed25519" {
            ed25519_openssh_from_spki(&spki)
        } else {
            spki
        };
        authenticates(&pkcs8, None, public.clone());

        let encrypted = dir.p(&format!("k{i}.enc.pem"));
        run(
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                &pkcs8,
                "-out",
                &encrypted,
                "-passout",
                "pass:s3cret",
            ],
        );
        authenticates(&encrypted, Some("s3cret"), public);
    }

    // PKCS#1 RSA and SEC1 EC ("traditional" OpenSSL formats).
    let rsa = dir.genpkey("rsa.pem", "RSA", &["rsa_keygen_bits:2048"]);
    let pkcs1 = dir.p("rsa.pkcs1.pem");
    run(
        "openssl",
        &["rsa", "-in", &rsa, "-traditional", "-out", &pkcs1],
    );
    assert!(String::from_utf8(dir.read_path(&pkcs1))
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    authenticates(&pkcs1, None, dir.spki_pem(&rsa));

    for curve in ["P-256", "P-384"] {
        let ec = dir.genpkey(
            &format!("{curve}.pem"),
            "EC",
            &[&format!("ec_paramgen_curve:{curve}")],
        );
        let sec1 = dir.p(&format!("{curve}.sec1.pem"));
        run("openssl", &["ec", "-in", &ec, "-out", &sec1]);
        assert!(String::from_utf8(dir.read_path(&sec1))
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY"));
        authenticates(&sec1, None, dir.spki_pem(&ec));
    }
}
