//! Switches for the defects of pie-server 0.5.2 (PROTOCOL-0.5.md §9). Unlike the January-2026
//! faults, the defects the real server always shows are ON by default, so a client is tested
//! against what users really get; switching one off gives the correct behaviour instead. Only
//! the occasional engine wedge (§9.1) is off by default.

use std::sync::atomic::{AtomicBool, Ordering};

/// Live defect switches, shared by every connection of a 0.5 simulator (lock-free).
#[derive(Debug)]
pub struct Faults {
    /// §9.1 (default off): compat-openai generation stalls after its first chunk and never
    /// ends (until terminated); the control plane keeps answering.
    pub engine_wedge: AtomicBool,
    /// §9.2 (default on): a detached launch answers `""`. Off: it answers the process id.
    pub detached_empty_id: AtomicBool,
    /// §9.3 (default on): re-uploading an installed `name@version` replaces it even without
    /// `force_overwrite`. Off: `ok:false` unless `force_overwrite`.
    pub silent_replace: AtomicBool,
    /// §9.4 (default on): upload chunks are concatenated in arrival order (a wrong order shows
    /// up as a hash mismatch). Off: an out-of-order chunk fails the upload at once.
    pub unchecked_chunk_order: AtomicBool,
    /// §9.5 (default on): a failed `signal_process` / `transfer_file` is only logged. Off: the
    /// sender gets a text `error` frame with the log line.
    pub silent_fire_and_forget: AtomicBool,
    /// §9.6 (default on): bad frames before the first valid frame get no error frame. Off:
    /// they get the same `bad client frame` text error as later ones.
    pub silent_early_bad_frames: AtomicBool,
    /// §9.7 (default on): `{"type":"turn_done"}` after handled frames (not after
    /// `attach_process`, a failed launch or a detached launch). Off: never sent.
    pub turn_done: AtomicBool,
    /// §9.8 (default on): `list_processes` shows every connection's processes with username
    /// `internal`, and any connection may attach to or terminate any process. Off: only the
    /// processes launched under the same `x-pie-identity` are visible (listed with it as the
    /// username); others are `Process not found`.
    pub shared_process_view: AtomicBool,
    /// §9.9 (default on): Python `print(a, b)` is one stdout event per write (`a`, ` `, `b`,
    /// `\n`). Off: one event per `print` call.
    pub print_per_write: AtomicBool,
    /// §9.12 (default on): a file that arrives while the inferlet is not waiting in
    /// `receive_file()` is dropped. Off: it is queued for the next `receive_file()`.
    pub drop_early_files: AtomicBool,
    /// §5.8 (default on): only the connection the process is attached to can signal it. Off:
    /// any connection can.
    pub owner_only_signals: AtomicBool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            engine_wedge: AtomicBool::new(false),
            detached_empty_id: AtomicBool::new(true),
            silent_replace: AtomicBool::new(true),
            unchecked_chunk_order: AtomicBool::new(true),
            silent_fire_and_forget: AtomicBool::new(true),
            silent_early_bad_frames: AtomicBool::new(true),
            turn_done: AtomicBool::new(true),
            shared_process_view: AtomicBool::new(true),
            print_per_write: AtomicBool::new(true),
            drop_early_files: AtomicBool::new(true),
            owner_only_signals: AtomicBool::new(true),
        }
    }
}

/// Command-line names, in the order of sim/README.md.
pub const FAULT_NAMES: [&str; 11] = [
    "engine-wedge",
    "detached-empty-id",
    "silent-replace",
    "unchecked-chunk-order",
    "silent-fire-and-forget",
    "silent-early-bad-frames",
    "turn-done",
    "shared-process-view",
    "print-per-write",
    "drop-early-files",
    "owner-only-signals",
];

impl Faults {
    /// Every defect of the real server off: the simulator behaves like a correct server.
    pub fn all_off() -> Faults {
        let f = Faults::default();
        for name in FAULT_NAMES {
            f.set_by_name(name, false);
        }
        f
    }

    pub(crate) fn on(flag: &AtomicBool) -> bool {
        flag.load(Ordering::Relaxed)
    }

    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }

    fn flag(&self, name: &str) -> Option<&AtomicBool> {
        Some(match name {
            "engine-wedge" => &self.engine_wedge,
            "detached-empty-id" => &self.detached_empty_id,
            "silent-replace" => &self.silent_replace,
            "unchecked-chunk-order" => &self.unchecked_chunk_order,
            "silent-fire-and-forget" => &self.silent_fire_and_forget,
            "silent-early-bad-frames" => &self.silent_early_bad_frames,
            "turn-done" => &self.turn_done,
            "shared-process-view" => &self.shared_process_view,
            "print-per-write" => &self.print_per_write,
            "drop-early-files" => &self.drop_early_files,
            "owner-only-signals" => &self.owner_only_signals,
            _ => return None,
        })
    }

    /// Switch a defect by its command-line name. Returns false for an unknown name.
    pub fn set_by_name(&self, name: &str, on: bool) -> bool {
        match self.flag(name) {
            Some(flag) => {
                Faults::set(flag, on);
                true
            }
            None => false,
        }
    }

    /// `NAME`, `NAME=on` or `NAME=off` (the `--fault` argument). False if not understood.
    pub fn apply_arg(&self, arg: &str) -> bool {
        let (name, on) = match arg.split_once('=') {
            Some((n, "on")) => (n, true),
            Some((n, "off")) => (n, false),
            Some(_) => return false,
            None => (arg, true),
        };
        self.set_by_name(name, on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_switch_their_flags() {
        let f = Faults::default();
        assert!(!Faults::on(&f.engine_wedge));
        assert!(f.apply_arg("engine-wedge"));
        assert!(Faults::on(&f.engine_wedge));
        assert!(f.apply_arg("turn-done=off"));
        assert!(!Faults::on(&f.turn_done));
        assert!(!f.apply_arg("turn-done=maybe"));
        assert!(!f.apply_arg("nope"));
        let off = Faults::all_off();
        for name in FAULT_NAMES {
            assert!(!Faults::on(off.flag(name).unwrap()), "{name}");
        }
    }
}
