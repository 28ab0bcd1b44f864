//! Scratch directories for fixtures held in statics (tests/ship and tests/capi). A static is
//! never dropped, so a `tempfile::TempDir` in one is never removed: every test run used to leave
//! its directory (hundreds of MiB with the installed package) in /tmp. These live next to the
//! build instead, one per test process, and each run removes those of processes that are gone.

use std::path::{Path, PathBuf};

/// `PARENT/PREFIX-PID`, created empty for this process. Directories `PREFIX-N` whose process N
/// no longer runs (left by earlier runs) are removed first; a running process's is left alone.
pub fn per_process_dir(parent: &Path, prefix: &str) -> PathBuf {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'));
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok()) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = parent.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}
