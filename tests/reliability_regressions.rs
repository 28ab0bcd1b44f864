//! Inputs that once crashed or hung libpie (found by the fuzz targets of fuzz/), kept as
//! regression tests. Each names the target and the artifact bytes.

mod reliability_common;

use pie::wire::{self, ServerMessage, StreamingOutput};
use pie::{ErrorKind, InstanceEvent};
use pie_sim::Garbage;
use reliability_common::*;

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
        let evs = recv_until(&inst, PROMPT, |e| e.is_terminal()).await;
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
