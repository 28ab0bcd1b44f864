//! Inputs that once crashed or hung libpie (found by the fuzz targets of fuzz/), kept as
//! regression tests. Each names the target and the artifact bytes.

use crate::support::*;
use pie::wire::{self, ServerMessage, StreamingOutput};
use pie::{ErrorKind, InstanceEvent};
use pie_sim::Garbage;

/// fuzz/client_frames artifact `crash-9e667a9b…`: a `streaming_output` whose instance id is
/// "E\x0e\0E" followed by two U+FFFD (the lossy decoding of bytes cd fe). Normalising the id
/// sliced the string at byte 9, inside a multi-byte character, and panicked the client's reader
/// task: no more replies or events, pending calls hung until their timeout.
const CLIENT_FRAMES_CRASH_1: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6f, 0x04, 0x29, 0x45, 0x0e, 0x00, 0x45, 0xcd,
    0xfe,
];

#[test]
fn client_frames_crash_1_non_ascii_instance_id() {
    // The id as the fuzz harness derived it from the artifact (op 0x6f = streaming_output,
    // id selector 4 = text of the remaining bytes).
    let tail = &CLIENT_FRAMES_CRASH_1[11..];
    let hostile_id = String::from_utf8_lossy(tail).into_owned();
    assert_eq!(hostile_id, "E\u{e}\0E\u{fffd}\u{fffd}");

    let sim = sim();
    let hash = program(&sim, "stdout a\nrecv\ncomplete done");
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        for id in [
            hostile_id.clone(),
            "urn:uu\u{20ac}id".to_string(),
            "\u{1F600}\u{1F600}\u{1F600}".to_string(),
        ] {
            for msg in [
                ServerMessage::StreamingOutput {
                    instance_id: id.clone(),
                    output: StreamingOutput::Stdout("x".into()),
                },
                ServerMessage::InstanceEvent {
                    instance_id: id.clone(),
                    event: 1,
                    message: "x".into(),
                },
                ServerMessage::DownloadBlob {
                    corr_id: 0,
                    instance_id: id.clone(),
                    blob_hash: wire::hash_blob(b"x"),
                    chunk_index: 0,
                    total_chunks: 1,
                    chunk_data: b"x".to_vec(),
                },
            ] {
                sim.inject(Garbage::Binary(wire::encode_server(&msg)));
            }
            // The same id on the API side (normalised in the caller's task).
            let e = c.attach_instance(&id).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Server, "{e}");
            c.ping().await.expect("the reader survived");
        }
        assert_eq!(
            inst.recv().await.unwrap(),
            InstanceEvent::Stdout("a".into())
        );
        inst.send("still here").await.unwrap();
        let evs = recv_until(&inst, prompt(), |e| e.is_terminal()).await;
        assert_eq!(
            evs,
            vec![
                InstanceEvent::Stdout("still here".into()),
                InstanceEvent::Completed("done".into())
            ]
        );
        assert_eq!(c.debug_counts().unrouted_events, 9);
    });
}

/// fuzz/key_from_bytes artifact `timeout-5c6f0957…` (selector byte 0x01 = passphrase
/// "pie-fuzz", then this text): the ed25519 seed key with its bcrypt round count mutated to
/// about a million. Loading ran the KDF for hours; now it is refused at once. Hostile key files
/// are as much input as hostile servers: the same applies to PBKDF2 iterations and to scrypt
/// parameters that would allocate terabytes and abort the process.
const KEY_FROM_BYTES_TIMEOUT_1: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABBgoWpRiZ\n\
S2RvhKc1Wf0tjKAEAAAQAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIMgXOe3zS2Txeqa2\n\
pOQM/KY2ncanzLM20HLsBhZucSV9AAAAkETpOy3ruWSgcb5wGepTV1KYi6b7/uaJM3Cxbz\n\
2Lsc1cpAIMmhn8xeOmXCDdc/r78SPxDQkXOULLMYl+5TyHwJILrEgJhRn33F60tEUl/J85\n\
jaRhhGfKRZlm9wGy4Z4ytqmsoy498+o24awljINJX1kmDtlcv4nmbX0C+0R0TudERQE0WB\n\
rYbCoHT66r9lfF4g==\n\
-----END OPENSSH PRIVATE KEY-----\n";

fn assert_refused_quickly(pem: &[u8], pass: Option<&str>, needle: &str) {
    let start = std::time::Instant::now();
    let e = pie::PrivateKey::from_bytes(pem, pass).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Key, "{e}");
    assert!(e.message().contains(needle), "{e}");
    assert!(
        start.elapsed() < slack(std::time::Duration::from_secs(1)),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn key_from_bytes_timeout_1_huge_bcrypt_rounds() {
    assert_refused_quickly(
        KEY_FROM_BYTES_TIMEOUT_1.as_bytes(),
        Some("pie-fuzz"),
        "bcrypt cost",
    );
    // Without a passphrase nothing is derived: the usual "passphrase required".
    let e = pie::PrivateKey::from_bytes(KEY_FROM_BYTES_TIMEOUT_1.as_bytes(), None).unwrap_err();
    assert!(e.message().contains("passphrase required"), "{e}");
}

/// An encrypted PKCS#8 key (made with a cheap KDF, then its parameters replaced) asking for
/// 2^32-1 PBKDF2 iterations or 2^30 × r = 8 scrypt memory (128 GiB).
#[test]
fn pkcs8_kdf_cost_limits() {
    use pkcs8::der::{Decode, Encode};
    use pkcs8::pkcs5::pbes2::{Kdf, ScryptParams};
    use pkcs8::pkcs5::EncryptionScheme;

    let seed = [9u8; 32];
    let plain = pkcs8::PrivateKeyInfo::new(
        pkcs8::AlgorithmIdentifierRef {
            oid: pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112"),
            parameters: None,
        },
        &{
            let mut os = vec![0x04, 0x20];
            os.extend_from_slice(&seed);
            os
        },
    )
    .to_der()
    .unwrap();
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(1, &[1u8; 16], &[2u8; 16])
            .unwrap();
    let doc = pkcs8::PrivateKeyInfo::from_der(&plain)
        .unwrap()
        .encrypt_with_params(params, "pw")
        .unwrap();
    // Sanity: as made, the key loads.
    let pem_of = |der: &[u8]| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem + "-----END ENCRYPTED PRIVATE KEY-----\n"
    };
    pie::PrivateKey::from_bytes(pem_of(doc.as_bytes()).as_bytes(), Some("pw"))
        .expect("cheap key loads");

    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
    let EncryptionScheme::Pbes2(p2) = info.encryption_algorithm else {
        panic!("PBES2")
    };
    let Kdf::Pbkdf2(pbkdf2) = p2.kdf.clone() else {
        panic!("PBKDF2")
    };

    let mut costly = p2.clone();
    costly.kdf = Kdf::Pbkdf2(pkcs8::pkcs5::pbes2::Pbkdf2Params {
        iteration_count: u32::MAX,
        ..pbkdf2
    });
    let der = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: EncryptionScheme::Pbes2(costly),
        encrypted_data: info.encrypted_data,
    }
    .to_der()
    .unwrap();
    assert_refused_quickly(pem_of(&der).as_bytes(), Some("pw"), "PBKDF2 cost");

    let mut huge = p2.clone();
    huge.kdf = Kdf::Scrypt(ScryptParams {
        salt: &[3u8; 16],
        cost_parameter: 1 << 30,
        block_size: 8,
        parallelization: 1,
        key_length: None,
    });
    let der = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: EncryptionScheme::Pbes2(huge),
        encrypted_data: info.encrypted_data,
    }
    .to_der()
    .unwrap();
    assert_refused_quickly(pem_of(&der).as_bytes(), Some("pw"), "scrypt cost");
}
