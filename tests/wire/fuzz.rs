//! Fuzz-style robustness test of the frame decoders: a deterministic PRNG throws random bytes,
//! truncations, bit flips, splices of huge length headers and deep nesting (built from every
//! §12 vector) at `decode_client` and `decode_server`. No input may panic, overflow the stack
//! or allocate out of proportion to its size; whatever decodes must re-encode and decode to the
//! same value.

use pie::wire::{decode_client, decode_server, encode_client, encode_server};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Records the largest single allocation made by the current thread (thread-local, so tests
/// running in parallel do not disturb each other).
struct LargestAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size)
        }
    });
}

unsafe impl GlobalAlloc for LargestAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: LargestAlloc = LargestAlloc;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Headers that declare far more data than any frame holds.
const HUGE: &[&[u8]] = &[
    &[0xdd, 0xff, 0xff, 0xff, 0xff],
    &[0xdf, 0xff, 0xff, 0xff, 0xff],
    &[0xc6, 0xff, 0xff, 0xff, 0xff],
    &[0xdb, 0xff, 0xff, 0xff, 0xff],
    &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0xdc, 0xff, 0xff],
    &[0xde, 0xff, 0xff],
    &[0xc5, 0xff, 0xff],
    &[0xda, 0xff, 0xff],
    &[0xdd, 0x00, 0x10, 0x00, 0x00],
];

const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xca,
    0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

/// Decode `frame` both ways; check no panic, bounded allocation, and round-trip stability.
/// Returns how many of the two decoders accepted it.
fn exercise(frame: &[u8]) -> usize {
    let mut accepted = 0;
    LARGEST.with(|l| l.set(0));
    let client = std::panic::catch_unwind(|| decode_client(frame));
    let server = std::panic::catch_unwind(|| decode_server(frame));
    let largest = LARGEST.with(|l| l.get());
    // serde buffers at most one ~32-byte value per input byte (and preallocates no more than
    // declared lengths, which `scan` caps at the frame size): 64 bytes per input byte is ample.
    assert!(
        largest <= 64 * frame.len() + 4096,
        "decoding a {}-byte frame made a {largest}-byte allocation: {}",
        frame.len(),
        crate::support::hex(&frame[..frame.len().min(64)])
    );
    let Ok(client) = client else {
        panic!("decode_client panicked on {}", crate::support::hex(frame));
    };
    let Ok(server) = server else {
        panic!("decode_server panicked on {}", crate::support::hex(frame));
    };
    if let Ok(msg) = client {
        accepted += 1;
        let bytes = encode_client(&msg);
        let again = decode_client(&bytes).expect("canonical encoding decodes");
        assert_eq!(
            again,
            msg,
            "client round trip of {}",
            crate::support::hex(frame)
        );
        assert_eq!(encode_client(&again), bytes);
    }
    if let Ok(msg) = server {
        accepted += 1;
        let bytes = encode_server(&msg);
        let again = decode_server(&bytes).expect("canonical encoding decodes");
        assert_eq!(
            again,
            msg,
            "server round trip of {}",
            crate::support::hex(frame)
        );
        assert_eq!(encode_server(&again), bytes);
    }
    accepted
}

#[test]
fn known_nasty_inputs() {
    let mut cases: Vec<Vec<u8>> = HUGE.iter().map(|h| h.to_vec()).collect();
    cases.push(vec![0x91; 100_000]);
    cases.push([0xdd, 0, 0, 0, 1].repeat(50_000));
    cases.push([0x81, 0xa1, b'a'].repeat(100_000));
    cases.push([0x81, 0x91].repeat(100_000));
    // A ping whose extra key holds a deep or huge value.
    let ping_prefix: &[u8] = b"\x83\xa4type\xa4ping\xa7corr_id\x01\xa1x";
    for tail in [
        vec![0x91; 100_000],
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff, 0x01],
        vec![0xc6, 0xff, 0xff, 0xff, 0xff],
    ] {
        let mut frame = ping_prefix.to_vec();
        frame.extend(tail);
        cases.push(frame);
    }
    for case in &cases {
        assert_eq!(
            exercise(case),
            0,
            "accepted: {}",
            crate::support::hex(&case[..16])
        );
    }
}

#[test]
fn random_and_mutated_frames() {
    let vectors = crate::support::all_vector_bytes();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let started = std::time::Instant::now();
    let iterations = 200_000;
    let mut accepted = 0usize;
    for i in 0..iterations {
        let base = &vectors[rng.below(vectors.len())];
        let frame: Vec<u8> = match i % 8 {
            // Random bytes, usually starting with a container marker so they reach serde.
            0 => {
                let len = rng.below(48);
                let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if !f.is_empty() && rng.below(4) != 0 {
                    f[0] = [0x82, 0x83, 0x86, 0x92, 0x93, 0xde, 0xdc][rng.below(7)];
                }
                f
            }
            // Truncation.
            1 => base[..rng.below(base.len() + 1)].to_vec(),
            // 1–4 bit flips.
            2 => {
                let mut f = base.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(f.len());
                    f[at] ^= 1 << rng.below(8);
                }
                f
            }
            // Interesting byte values.
            3 => {
                let mut f = base.clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(f.len());
                    f[at] = INTERESTING[rng.below(INTERESTING.len())];
                }
                f
            }
            // A huge length header spliced in (replacing or inserted).
            4 => {
                let mut f = base.clone();
                let at = rng.below(f.len());
                let h = HUGE[rng.below(HUGE.len())];
                if rng.below(2) == 0 {
                    let end = (at + h.len()).min(f.len());
                    f.splice(at..end, h.iter().copied());
                } else {
                    f.splice(at..at, h.iter().copied());
                }
                f
            }
            // Deep nesting spliced in.
            5 => {
                let mut f = base.clone();
                let at = rng.below(f.len());
                let max = if rng.below(50) == 0 { 5000 } else { 40 };
                let depth = 1 + rng.below(max);
                let unit: &[u8] =
                    [&[0x91u8][..], &[0x81, 0xa1, b'k'], &[0xdc, 0x00, 0x01]][rng.below(3)];
                let nest = unit.repeat(depth);
                f.splice(at..at, nest);
                f
            }
            // Crossover of two vectors, plus trailing junk.
            6 => {
                let other = &vectors[rng.below(vectors.len())];
                let mut f = base[..rng.below(base.len() + 1)].to_vec();
                f.extend(&other[rng.below(other.len())..]);
                f
            }
            // Byte deletion / duplication.
            _ => {
                let mut f = base.clone();
                let at = rng.below(f.len());
                if rng.below(2) == 0 {
                    f.remove(at);
                } else {
                    let b = f[at];
                    f.insert(at, b);
                }
                f
            }
        };
        accepted += exercise(&frame);
    }
    // Some mutations (inside strings and chunk data) still decode; most do not. Both must
    // happen, or the generator is broken.
    assert!(accepted > 1_000, "only {accepted} mutated frames decoded");
    assert!(accepted < iterations, "everything decoded: {accepted}");
    eprintln!(
        "{iterations} frames, {accepted} decodes accepted, {:?}",
        started.elapsed()
    );
}

/// Random well-formed messages of every type, with edge values (0, maximum integers, empty and
/// long strings crossing the str8/str16/str32 and bin8/bin16/bin32 boundaries), survive
/// encode → decode unchanged.
#[test]
fn random_messages_round_trip() {
    use pie::wire::StreamingOutput;
    use pie::wire::{ClientMessage as C, InstanceInfo, InstanceStatus, ServerMessage as S};
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let lengths = [0usize, 1, 31, 32, 255, 256, 65535, 65536];
    let text = |rng: &mut Rng| -> String {
        let len = if rng.below(8) == 0 {
            lengths[rng.below(lengths.len())]
        } else {
            rng.below(40)
        };
        // Mix ASCII and multi-byte characters.
        (0..len)
            .map(|_| ['a', 'Z', '0', ' ', 'é', '→', '🙂', '"'][rng.below(8)])
            .collect()
    };
    let bytes = |rng: &mut Rng| -> Vec<u8> {
        let len = if rng.below(8) == 0 {
            lengths[rng.below(lengths.len())]
        } else {
            rng.below(40)
        };
        (0..len).map(|_| rng.next() as u8).collect()
    };
    let u32v = |rng: &mut Rng| [0, 1, 127, 128, 255, 256, 65535, 65536, u32::MAX][rng.below(9)];
    let u64v = |rng: &mut Rng| {
        [
            0,
            1,
            70000,
            u64::from(u32::MAX) + 1,
            5_000_000_000,
            u64::MAX,
        ][rng.below(6)]
    };
    for _ in 0..1500 {
        let args: Vec<String> = (0..rng.below(20)).map(|_| text(&mut rng)).collect();
        let client = match rng.below(15) {
            0 => C::Identification {
                corr_id: u32v(&mut rng),
                username: text(&mut rng),
            },
            1 => C::Signature {
                corr_id: u32v(&mut rng),
                signature: text(&mut rng),
            },
            2 => C::Query {
                corr_id: u32v(&mut rng),
                subject: text(&mut rng),
                record: text(&mut rng),
            },
            3 => C::UploadProgram {
                corr_id: u32v(&mut rng),
                program_hash: text(&mut rng),
                chunk_index: u64v(&mut rng),
                total_chunks: u64v(&mut rng),
                chunk_data: bytes(&mut rng),
            },
            4 => C::LaunchInstance {
                corr_id: u32v(&mut rng),
                program_hash: text(&mut rng),
                arguments: args,
                detached: rng.below(2) == 0,
            },
            5 => C::LaunchInstanceFromRegistry {
                corr_id: u32v(&mut rng),
                inferlet: text(&mut rng),
                arguments: args,
                detached: rng.below(2) == 0,
            },
            6 => C::AttachInstance {
                corr_id: u32v(&mut rng),
                instance_id: text(&mut rng),
            },
            7 => C::LaunchServerInstance {
                corr_id: u32v(&mut rng),
                port: u32v(&mut rng),
                program_hash: text(&mut rng),
                arguments: args,
            },
            8 => C::SignalInstance {
                instance_id: text(&mut rng),
                message: text(&mut rng),
            },
            9 => C::UploadBlob {
                corr_id: u32v(&mut rng),
                instance_id: text(&mut rng),
                blob_hash: text(&mut rng),
                chunk_index: u64v(&mut rng),
                total_chunks: u64v(&mut rng),
                chunk_data: bytes(&mut rng),
            },
            10 => C::TerminateInstance {
                corr_id: u32v(&mut rng),
                instance_id: text(&mut rng),
            },
            11 => C::AttachRemoteService {
                corr_id: u32v(&mut rng),
                endpoint: text(&mut rng),
                service_type: text(&mut rng),
                service_name: text(&mut rng),
            },
            12 => C::InternalAuthenticate {
                corr_id: u32v(&mut rng),
                token: text(&mut rng),
            },
            13 => C::Ping {
                corr_id: u32v(&mut rng),
            },
            _ => C::ListInstances {
                corr_id: u32v(&mut rng),
            },
        };
        let frame = encode_client(&client);
        assert_eq!(decode_client(&frame).as_ref(), Ok(&client));
        // Every canonical frame is a fixmap (§2.1).
        assert!((0x82..=0x87).contains(&frame[0]), "{:02x}", frame[0]);

        let status = [
            InstanceStatus::Attached,
            InstanceStatus::Detached,
            InstanceStatus::Finished,
        ];
        let server = match rng.below(9) {
            0 => S::Response {
                corr_id: u32v(&mut rng),
                successful: rng.below(2) == 0,
                result: text(&mut rng),
            },
            1 => S::InstanceLaunchResult {
                corr_id: u32v(&mut rng),
                successful: true,
                message: text(&mut rng),
            },
            2 => S::InstanceAttachResult {
                corr_id: u32v(&mut rng),
                successful: false,
                message: text(&mut rng),
            },
            3 => S::InstanceEvent {
                instance_id: text(&mut rng),
                event: u32v(&mut rng),
                message: text(&mut rng),
            },
            4 => S::DownloadBlob {
                corr_id: 0,
                instance_id: text(&mut rng),
                blob_hash: text(&mut rng),
                chunk_index: u64v(&mut rng),
                total_chunks: u64v(&mut rng),
                chunk_data: bytes(&mut rng),
            },
            5 => S::ServerEvent {
                message: text(&mut rng),
            },
            6 => S::Challenge {
                corr_id: u32v(&mut rng),
                challenge: text(&mut rng),
            },
            7 => S::LiveInstances {
                corr_id: u32v(&mut rng),
                instances: (0..rng.below(4))
                    .map(|_| InstanceInfo {
                        id: text(&mut rng),
                        arguments: (0..rng.below(3)).map(|_| text(&mut rng)).collect(),
                        status: status[rng.below(3)],
                        username: text(&mut rng),
                        elapsed_secs: u64v(&mut rng),
                        kv_pages_used: u32v(&mut rng),
                    })
                    .collect(),
            },
            _ => S::StreamingOutput {
                instance_id: text(&mut rng),
                output: if rng.below(2) == 0 {
                    StreamingOutput::Stdout(text(&mut rng))
                } else {
                    StreamingOutput::Stderr(text(&mut rng))
                },
            },
        };
        let frame = encode_server(&server);
        assert_eq!(decode_server(&frame).as_ref(), Ok(&server));
    }
}
