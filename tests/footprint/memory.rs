//! Memory: uploads stream chunk by chunk: the extra memory during a 32 MiB upload stays at a few
//! chunks. Measured with a counting global allocator (the footprint crate's: its tests run one
//! at a time, so the counters see only the running test) against a fake server that discards
//! the chunks and answers the last one. And per-instance state is released: live memory does
//! not grow over thousands of sequential instances.

use futures_util::{SinkExt, StreamExt};
use pie::wire::{decode_client, encode_server, ClientMessage, ServerMessage};
use pie::Client;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[tokio::main(flavor = "current_thread")]
pub async fn upload_memory_stays_at_a_few_chunks() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Binary(data) = msg {
                if let Ok(ClientMessage::UploadProgram {
                    corr_id,
                    program_hash,
                    chunk_index,
                    total_chunks,
                    ..
                }) = decode_client(&data)
                {
                    if chunk_index + 1 == total_chunks {
                        let reply = encode_server(&ServerMessage::Response {
                            corr_id,
                            successful: true,
                            result: program_hash,
                        });
                        let _ = ws.send(Message::Binary(reply.into())).await;
                    }
                }
            }
        }
    });
    let c = Client::connect(&format!("ws://{addr}")).await.unwrap();
    let mut program = pie::wire::COMPONENT_PREAMBLE.to_vec();
    program.resize(32 << 20, 0x5a);
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let progress = move |_: u64, _: u64| {
        counter.fetch_add(1, Ordering::Relaxed);
    };
    let hash = c
        .upload_program_with_progress(&program, Some(&progress))
        .await
        .unwrap();
    assert_eq!(hash, pie::hash_blob(&program));
    assert_eq!(calls.load(Ordering::Relaxed), 128);
    let extra = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "peak extra memory during a 32 MiB upload: {} KiB",
        extra / 1024
    );
    // Client and fake server together; a queued upload would need > 32 MiB.
    assert!(extra < 6 << 20, "peak extra {extra} bytes");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub async fn memory_is_flat_over_sequential_instances() {
    let sim = pie_sim::Simulator::start(pie_sim::SimConfig::default()).unwrap();
    let c = Client::connect(&sim.url()).await.unwrap();
    c.authenticate("alice", None).await.unwrap();
    let h = c
        .upload_program(&pie_sim::script_program(
            "stdout $1\nmessage m\ncomplete $1",
        ))
        .await
        .unwrap();
    let run = |n: usize| {
        let c = c.clone();
        let h = h.clone();
        async move {
            for i in 0..n {
                let inst = c
                    .launch_instance(&h, vec![i.to_string()], false)
                    .await
                    .unwrap();
                loop {
                    if inst.recv().await.unwrap().is_terminal() {
                        break;
                    }
                }
            }
            c.ping().await.unwrap();
        }
    };
    // Warm up (allocator pools, hash map capacity on both sides), then measure.
    run(1000).await;
    let before = CURRENT.load(Ordering::Relaxed);
    run(5000).await;
    let after = CURRENT.load(Ordering::Relaxed);
    let growth = after as i64 - before as i64;
    println!("live memory growth over 5000 more instances: {growth} bytes");
    // Client and simulator together; per-instance leaks of even 100 bytes would show.
    assert!(growth < 256 << 10, "grew by {growth} bytes");
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances, d.blob_assemblies), (0, 0, 0));
}
