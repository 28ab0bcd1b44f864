//! The reader's fast path for output/event frames (`wire::decode_event_frame`) against the full
//! decoder: it never panics, and whatever it accepts, the full decoder decodes to the same
//! message (so the fast path cannot route something the protocol decoder would read otherwise).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pie::wire::{decode_event_frame, decode_server, EventBody, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let Some(fast) = decode_event_frame(data) else {
        return;
    };
    let full = decode_server(data).expect("the full decoder accepts what the fast path accepts");
    match (fast.body, full) {
        (
            EventBody::Output(out),
            ServerMessage::StreamingOutput {
                instance_id,
                output,
            },
        ) => {
            assert_eq!(fast.instance_id, instance_id);
            assert_eq!(out, output);
        }
        (
            EventBody::Event { code, message },
            ServerMessage::InstanceEvent {
                instance_id,
                event,
                message: m,
            },
        ) => {
            assert_eq!(fast.instance_id, instance_id);
            assert_eq!((code, message), (event, m));
        }
        (body, full) => panic!("fast path {body:?} but full decoder {full:?}"),
    }
});
