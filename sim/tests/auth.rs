//! Authentication (§5): auth off, internal token, challenge/response with every key type.
mod common;

use common::*;
use pie_sim::wire::{ClientMessage, ServerMessage};
use pie_sim::{base64, SimConfig, Simulator};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE_LINE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w test";

fn auth_sim(users: Vec<(&str, Vec<String>)>) -> Simulator {
    Simulator::start(SimConfig {
        auth_enabled: true,
        users: users.into_iter().map(|(u, k)| (u.to_string(), k)).collect(),
        internal_token: Some("tok".into()),
        bad_token_delay: Duration::from_millis(50)..Duration::from_millis(60),
        ..SimConfig::default()
    })
    .expect("start")
}

/// Identify as `user`, sign the challenge with `sign`, return the signature reply.
async fn login_with(
    sim: &Simulator,
    user: &str,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> (Raw, ServerMessage) {
    let mut c = Raw::connect(sim).await;
    let r = c
        .request(&ClientMessage::Identification {
            corr_id: 1,
            username: user.into(),
        })
        .await;
    let ServerMessage::Response {
        corr_id: 1,
        successful: true,
        result,
    } = r
    else {
        panic!("no challenge: {r:?}");
    };
    assert_eq!(result.len(), 64);
    let challenge = base64::decode(result.as_bytes()).unwrap();
    assert_eq!(challenge.len(), 48);
    let sig = base64::encode(&sign(&challenge));
    let r = c
        .request(&ClientMessage::Signature {
            corr_id: 2,
            signature: sig,
        })
        .await;
    (c, r)
}

fn ed25519_line(key: &ed25519_dalek::SigningKey) -> String {
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], key.verifying_key().as_bytes()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!("ssh-ed25519 {} x", base64::encode(&blob))
}

#[tokio::test]
async fn auth_disabled_and_already_authenticated() {
    let sim = sim();
    let mut c = Raw::login(&sim, "bob").await;
    for msg in [
        ClientMessage::Identification {
            corr_id: 5,
            username: "eve".into(),
        },
        ClientMessage::Signature {
            corr_id: 5,
            signature: "!!".into(),
        },
        ClientMessage::InternalAuthenticate {
            corr_id: 5,
            token: "wrong".into(),
        },
    ] {
        assert_eq!(
            c.request(&msg).await,
            response(5, true, "Already authenticated")
        );
    }
    // The user name did not change.
    let h = c.install(&pie_sim::script_program("forever")).await;
    let id = c.launch(&h, &[], true).await;
    let list = c.list().await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].username, "bob");
}

#[tokio::test]
async fn first_message_must_authenticate() {
    let sim = sim();
    for msg in [
        ClientMessage::Ping { corr_id: 1 },
        ClientMessage::ListInstances { corr_id: 1 },
        ClientMessage::Signature {
            corr_id: 1,
            signature: "AAAA".into(),
        },
    ] {
        let mut c = Raw::connect(&sim).await;
        // Undecodable and text frames do not count as the first message.
        c.send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            vec![0xc1].into(),
        ))
        .await;
        c.send_raw(tokio_tungstenite::tungstenite::Message::Text("hi".into()))
            .await;
        c.send(&msg).await;
        c.expect_close_without_code().await;
    }
}

#[tokio::test]
async fn internal_token() {
    let sim = auth_sim(vec![]);
    let mut c = Raw::internal(&sim).await;
    c.ping().await;
    let mut c = Raw::connect(&sim).await;
    let t0 = Instant::now();
    let r = c
        .request(&ClientMessage::InternalAuthenticate {
            corr_id: 3,
            token: "tok2".into(),
        })
        .await;
    assert_eq!(r, response(3, false, "Invalid token"));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    c.expect_closed().await;
}

#[tokio::test]
async fn default_bad_token_delay_is_at_least_one_second() {
    let sim = sim();
    assert_eq!(sim.internal_token().len(), 64);
    assert!(sim
        .internal_token()
        .chars()
        .all(|c| c.is_ascii_alphanumeric()));
    let mut c = Raw::connect(&sim).await;
    let t0 = Instant::now();
    let r = c
        .request(&ClientMessage::InternalAuthenticate {
            corr_id: 3,
            token: "nope".into(),
        })
        .await;
    assert_eq!(r, response(3, false, "Invalid token"));
    let dt = t0.elapsed();
    assert!(
        dt >= Duration::from_millis(1000) && dt < Duration::from_millis(3500),
        "{dt:?}"
    );
}

#[tokio::test]
async fn ed25519_vector_with_fixed_challenge() {
    let challenge: [u8; 48] = std::array::from_fn(|i| i as u8);
    let sim = Simulator::start(SimConfig {
        auth_enabled: true,
        users: vec![("alice".into(), vec![ALICE_LINE.into()])],
        fixed_challenge: Some(challenge),
        ..SimConfig::default()
    })
    .unwrap();
    let mut c = Raw::connect(&sim).await;
    let r = c
        .request(&ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into(),
        })
        .await;
    assert_eq!(
        r,
        response(
            0,
            true,
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
        )
    );
    let r = c.request(&ClientMessage::Signature { corr_id: 1, signature: "QAdQW1K8NRekM/rZnQiBmPjeZJBKJtDyZgcjCje2tgTFBij0BOjkJg/HNo67UZRY+tIJb3anhMgIITtBFOyADg==".into() }).await;
    assert_eq!(r, response(1, true, "Authenticated"));
    c.ping().await;
}

#[tokio::test]
async fn ed25519_random_challenge_and_failures() {
    let good = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
    let sim = auth_sim(vec![
        // Several keys per user: any may sign.
        ("alice", vec![ALICE_LINE.into(), ed25519_line(&good)]),
        ("nokeys", vec![]),
    ]);
    use ed25519_dalek::Signer;
    let (mut c, r) = login_with(&sim, "alice", |m| good.sign(m).to_bytes().to_vec()).await;
    assert_eq!(r, response(2, true, "Authenticated"));
    c.ping().await;

    let (mut c, r) = login_with(&sim, "alice", |m| other.sign(m).to_bytes().to_vec()).await;
    assert_eq!(r, response(2, false, "Signature verification failed"));
    c.expect_closed().await;

    // Signing the base64 text instead of the raw bytes fails.
    let (mut c, r) = login_with(&sim, "alice", |m| {
        good.sign(base64::encode(m).as_bytes()).to_bytes().to_vec()
    })
    .await;
    assert_eq!(r, response(2, false, "Signature verification failed"));
    c.expect_closed().await;

    let (mut c, r) = login_with(&sim, "nokeys", |m| good.sign(m).to_bytes().to_vec()).await;
    assert_eq!(r, response(2, false, "Signature verification failed"));
    c.expect_closed().await;

    let mut c = Raw::connect(&sim).await;
    let r = c
        .request(&ClientMessage::Identification {
            corr_id: 4,
            username: "mallory".into(),
        })
        .await;
    assert_eq!(r, response(4, false, "User 'mallory' is not authorized"));
    c.expect_close_without_code().await;
}

#[tokio::test]
async fn signature_encoding_errors() {
    let sim = auth_sim(vec![("alice", vec![ALICE_LINE.into()])]);
    for (sig, text) in [
        ("*".repeat(88), "Invalid symbol 42, offset 0."),
        ("AAE".to_string(), "Invalid padding"),
        ("AAAAA".to_string(), "Invalid input length: 5"),
        ("AA E=".to_string(), "Invalid symbol 32, offset 2."),
        ("-_8=".to_string(), "Invalid symbol 45, offset 0."),
        ("AAF=".to_string(), "Invalid last symbol 70, offset 2."),
    ] {
        let mut c = Raw::connect(&sim).await;
        c.request(&ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into(),
        })
        .await;
        let r = c
            .request(&ClientMessage::Signature {
                corr_id: 9,
                signature: sig,
            })
            .await;
        assert_eq!(
            r,
            response(9, false, &format!("Invalid signature encoding: {text}"))
        );
        c.expect_closed().await;
    }
    // Anything but a signature after the challenge closes without a reply.
    let mut c = Raw::connect(&sim).await;
    c.request(&ClientMessage::Identification {
        corr_id: 0,
        username: "alice".into(),
    })
    .await;
    c.send(&ClientMessage::Ping { corr_id: 1 }).await;
    c.expect_closed().await;
}

#[test]
fn strict_base64_matches_the_base64_crate() {
    use ::base64::Engine;
    let alphabet = b"AB+/=a9 -_\n";
    let mut state: u64 = 0x1234_5678;
    for _ in 0..20000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (state >> 60) as usize;
        let input: Vec<u8> = (0..len)
            .map(|i| alphabet[((state >> (i * 3 % 56)) as usize + i) % alphabet.len()])
            .collect();
        let ours = base64::decode(&input).map_err(|e| e.to_string());
        let theirs = ::base64::engine::general_purpose::STANDARD
            .decode(&input)
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "input {:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn bad_user_keys_refuse_to_start() {
    // Ed25519 in SubjectPublicKeyInfo form is refused, like the real server (Q24).
    let mut der = hex("302a300506032b6570032100");
    der.extend_from_slice(&[9u8; 32]);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::encode(&der)
    );
    for key in [pem, "ssh-ed25519 AAAA".to_string(), "nonsense".to_string()] {
        let r = Simulator::start(SimConfig {
            auth_enabled: true,
            users: vec![("u".into(), vec![key])],
            ..SimConfig::default()
        });
        assert!(r.is_err());
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---- keys generated by ssh-keygen -------------------------------------------------------------

fn keygen(dir: &Path, name: &str, args: &[&str]) -> Option<PathBuf> {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-m", "PEM", "-C", "test", "-f"])
        .arg(&path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(path)
}

fn export(pubfile: &Path, format: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-e", "-m", format, "-f"])
        .arg(pubfile)
        .output()
        .expect("ssh-keygen -e");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pie-sim-test-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::time::SystemTime;
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The ssh-keygen tests need the real tool: without it they fail (a skip would pass unseen).
fn require_ssh_keygen() {
    let found = Command::new("ssh-keygen").arg("-?").output().is_ok();
    assert!(
        found,
        "ssh-keygen is required by the key tests (scripts/install-deps.sh installs openssh-client)"
    );
}

#[tokio::test]
async fn rsa_keys_from_ssh_keygen() {
    require_ssh_keygen();
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let dir = tempdir("rsa");
    let path = keygen(&dir, "rsa", &["-t", "rsa", "-b", "2048"]).expect("rsa key");
    let pubfile = path.with_extension("pub");
    let openssh = std::fs::read_to_string(&pubfile).unwrap();
    let spki = export(&pubfile, "PKCS8");
    let pkcs1 = export(&pubfile, "PEM");
    assert!(spki.contains("BEGIN PUBLIC KEY") && pkcs1.contains("BEGIN RSA PUBLIC KEY"));
    let private =
        rsa::RsaPrivateKey::from_pkcs1_pem(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
    for (user, key) in [("a", openssh), ("b", spki), ("c", pkcs1)] {
        let sim = auth_sim(vec![(user, vec![key])]);
        let (mut c, r) = login_with(&sim, user, |m| signer.sign(m).to_vec()).await;
        assert_eq!(
            r,
            response(2, true, "Authenticated"),
            "key form of user {user}"
        );
        c.ping().await;
        // SHA-512 instead of SHA-256 does not verify.
        let (mut c, r) = login_with(&sim, user, |m| {
            let k = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(
                rsa::RsaPrivateKey::from_pkcs1_pem(&std::fs::read_to_string(&path).unwrap())
                    .unwrap(),
            );
            k.sign(m).to_vec()
        })
        .await;
        assert_eq!(r, response(2, false, "Signature verification failed"));
        c.expect_closed().await;
    }
    // Keys below 2048 bits are refused when the simulator starts.
    let small = keygen(&dir, "small", &["-t", "rsa", "-b", "1024"]).expect("1024-bit rsa key");
    let line = std::fs::read_to_string(small.with_extension("pub")).unwrap();
    assert!(Simulator::start(SimConfig {
        auth_enabled: true,
        users: vec![("u".into(), vec![line])],
        ..SimConfig::default()
    })
    .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ecdsa_keys_from_ssh_keygen() {
    require_ssh_keygen();
    use p256::ecdsa::signature::Signer;
    let dir = tempdir("ecdsa");
    let p256_path = keygen(&dir, "p256", &["-t", "ecdsa", "-b", "256"]).expect("p256 key");
    let p384_path = keygen(&dir, "p384", &["-t", "ecdsa", "-b", "384"]).expect("p384 key");
    let k256 = p256::ecdsa::SigningKey::from(
        p256::SecretKey::from_sec1_pem(&std::fs::read_to_string(&p256_path).unwrap()).unwrap(),
    );
    let k384 = p384::ecdsa::SigningKey::from(
        p384::SecretKey::from_sec1_pem(&std::fs::read_to_string(&p384_path).unwrap()).unwrap(),
    );
    let sign256 = |m: &[u8]| -> p256::ecdsa::Signature { k256.sign(m) };
    let sign384 = |m: &[u8]| -> p384::ecdsa::Signature { k384.sign(m) };
    for (path, is256) in [(&p256_path, true), (&p384_path, false)] {
        let pubfile = path.with_extension("pub");
        let openssh = std::fs::read_to_string(&pubfile).unwrap();
        let spki = export(&pubfile, "PKCS8");
        for key in [openssh, spki] {
            let sim = auth_sim(vec![("e", vec![key])]);
            let der = |m: &[u8]| {
                if is256 {
                    sign256(m).to_der().as_bytes().to_vec()
                } else {
                    sign384(m).to_der().as_bytes().to_vec()
                }
            };
            let (mut c, r) = login_with(&sim, "e", der).await;
            assert_eq!(r, response(2, true, "Authenticated"));
            c.ping().await;
            // Fixed-width r||s is rejected: only ASN.1 DER is accepted.
            let raw = |m: &[u8]| {
                if is256 {
                    sign256(m).to_bytes().to_vec()
                } else {
                    sign384(m).to_bytes().to_vec()
                }
            };
            let (mut c, r) = login_with(&sim, "e", raw).await;
            assert_eq!(r, response(2, false, "Signature verification failed"));
            c.expect_closed().await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
