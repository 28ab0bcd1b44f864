//! The program store and the simulated program format.
//!
//! A simulated program is a WebAssembly component preamble followed by custom sections
//! (id 0, LEB128 size, LEB128 name length, name, payload). The section named `pie-sim` holds the
//! script the instance runs (see `behaviour.rs` and sim/README.md). Other sections are skipped,
//! so programs derived by appending custom sections (as the conformance suite does) still run.

use crate::codec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Name of the custom section holding the script.
pub const SCRIPT_SECTION: &str = "pie-sim";

/// Programs known to the simulator, by hash. They persist for the simulator's lifetime.
#[derive(Default)]
pub struct ProgramStore {
    map: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl ProgramStore {
    /// Exact, case-sensitive lookup (§6.2).
    pub fn get(&self, hash: &str) -> Option<Arc<Vec<u8>>> {
        self.map.lock().unwrap().get(hash).cloned()
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.map.lock().unwrap().contains_key(hash)
    }

    /// Stores `bytes` under its blake3 hash (a duplicate is a no-op) and returns the hash.
    pub fn insert(&self, bytes: Vec<u8>) -> String {
        let hash = codec::hash_blob(&bytes);
        self.map
            .lock()
            .unwrap()
            .entry(hash.clone())
            .or_insert_with(|| Arc::new(bytes));
        hash
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the simulator accepts `bytes` as a program: the real server compiles a component;
/// the simulator only requires the component preamble (suggested by PROTOCOL.md §6.3).
pub fn is_valid_program(bytes: &[u8]) -> bool {
    codec::is_component(bytes)
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    let mut result: usize = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        result |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(result);
        }
    }
    None
}

/// One WebAssembly custom section with this name and payload.
pub fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 10);
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = vec![0u8];
    leb128(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// A simulated program running `script` (see sim/README.md for the script language).
pub fn script_program(script: &str) -> Vec<u8> {
    let mut out = codec::COMPONENT_PREAMBLE.to_vec();
    out.extend_from_slice(&custom_section(SCRIPT_SECTION, script.as_bytes()));
    out
}

/// The custom sections `(name, payload)` of a component, in order. Parsing stops at the first
/// malformed section; non-custom sections are skipped.
pub fn custom_sections(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    if !codec::is_component(bytes) {
        return out;
    }
    let mut pos = codec::COMPONENT_PREAMBLE.len();
    while pos < bytes.len() {
        let id = bytes[pos];
        pos += 1;
        let Some(size) = read_leb128(bytes, &mut pos) else {
            break;
        };
        let Some(end) = pos.checked_add(size).filter(|&e| e <= bytes.len()) else {
            break;
        };
        if id == 0 {
            let mut p = pos;
            if let Some(name_len) = read_leb128(bytes, &mut p) {
                if let Some(name_end) = p.checked_add(name_len).filter(|&e| e <= end) {
                    out.push((&bytes[p..name_end], &bytes[name_end..end]));
                }
            }
        }
        pos = end;
    }
    out
}

/// The script of a simulated program: the payload of its first `pie-sim` section, if any.
pub fn script_of(bytes: &[u8]) -> Option<String> {
    custom_sections(bytes)
        .into_iter()
        .find(|(name, _)| *name == SCRIPT_SECTION.as_bytes())
        .map(|(_, payload)| String::from_utf8_lossy(payload).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_survives_appended_sections() {
        let mut p = script_program("stdout hi\ncomplete done");
        assert!(is_valid_program(&p));
        p.extend_from_slice(&custom_section("pie-conformance", &[7u8; 300]));
        assert_eq!(script_of(&p).unwrap(), "stdout hi\ncomplete done");
        // A section ahead of it is skipped as well.
        let mut q = codec::COMPONENT_PREAMBLE.to_vec();
        q.extend_from_slice(&custom_section("other", b"x"));
        q.extend_from_slice(&p[8..]);
        assert_eq!(script_of(&q).unwrap(), "stdout hi\ncomplete done");
    }

    #[test]
    fn malformed_sections_do_not_panic() {
        let mut p = codec::COMPONENT_PREAMBLE.to_vec();
        p.extend_from_slice(&[
            0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ]);
        assert!(script_of(&p).is_none());
        assert!(script_of(&[0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0, 5, 9]).is_none());
        assert!(script_of(b"").is_none());
    }

    #[test]
    fn store_is_exact() {
        let store = ProgramStore::default();
        let h = store.insert(b"abc".to_vec());
        assert_eq!(
            h,
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert!(store.contains(&h));
        assert!(!store.contains(&h.to_uppercase()));
        store.insert(b"abc".to_vec());
        assert_eq!(store.len(), 1);
    }
}
