//! wss:// against the simulator's TLS listener with a self-signed certificate that the test
//! trusts explicitly (and a client that does not trust it).

use crate::support::*;
use pie::{Client, ClientConfig, ErrorKind, InstanceEvent};

fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        ck.cert.pem().into_bytes(),
        ck.key_pair.serialize_pem().into_bytes(),
    )
}

#[tokio::test]
async fn wss_with_a_trusted_self_signed_certificate() {
    let (cert, key) = self_signed();
    let sim = sim_with(|c| c.tls = Some((cert.clone(), key)));
    assert!(sim.url().starts_with("wss://"));
    let url = format!("wss://localhost:{}", sim.addr().port());

    let config = ClientConfig {
        extra_root_certs_pem: vec![cert],
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&url, config).await.unwrap();
    c.authenticate("alice", None).await.unwrap();
    c.ping().await.unwrap();
    let h = upload_script(&c, "stdout secure\nblob b\ncomplete ok").await;
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("secure".into()),
            InstanceEvent::Blob(b"b".to_vec()),
            InstanceEvent::Completed("ok".into())
        ]
    );
    c.close().await.unwrap();

    // Not trusted: the handshake fails.
    let e = err(Client::connect(&url).await);
    assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
    assert!(e.message().contains("TLS"), "{e}");
    // Plain ws:// to a TLS port fails too, rather than hanging.
    let e = err(Client::connect(&format!("ws://localhost:{}", sim.addr().port())).await);
    assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
}

#[tokio::test]
async fn bad_extra_root_certificates_are_invalid_arguments() {
    let config = ClientConfig {
        extra_root_certs_pem: vec![b"not a pem".to_vec()],
        ..ClientConfig::default()
    };
    let e = err(Client::connect_with("wss://localhost:1", config).await);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}
