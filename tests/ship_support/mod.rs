//! Helpers shared by tests/examples.rs and tests/packaging.rs: where cargo put libpie, running a
//! program with a time limit, and the simulator's expected completions.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>: the test executable lives in target/<profile>/deps.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<exe>")
        .to_path_buf()
}

/// A library cargo built for this test run: target/<profile>/deps/NAME, next to the test
/// executable; cargo copies it up to target/<profile>/ only for `cargo build`, so that copy may
/// be stale.
pub fn built_lib(name: &str) -> PathBuf {
    let here = profile_dir().join("deps").join(name);
    if here.exists() {
        here
    } else {
        profile_dir().join(name)
    }
}

/// A directory with the libraries cargo built for this test run under the names a linker and
/// the dynamic loader look for: libpie.so (link time), libpie.so.0.2 (the SONAME), libpie.a.
/// Symlinks, so nothing is copied and the target directory is left alone.
pub fn lib_dir_in(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).expect("create lib dir");
    let so = built_lib("libpie.so");
    assert!(
        so.exists(),
        "{} not found: cargo builds the cdylib for the tests",
        so.display()
    );
    std::os::unix::fs::symlink(&so, lib.join("libpie.so.0.2")).expect("symlink libpie.so.0.2");
    std::os::unix::fs::symlink("libpie.so.0.2", lib.join("libpie.so")).expect("symlink libpie.so");
    let a = built_lib("libpie.a");
    if a.exists() {
        std::os::unix::fs::symlink(&a, lib.join("libpie.a")).expect("symlink libpie.a");
    }
    lib
}

/// Runs `cmd`, failing the test if it takes longer than `limit` (the child is then killed).
/// Output is read on helper threads, so a chatty child cannot fill a pipe and hang.
pub fn run_with_limit(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let timed_out = rx.recv_timeout(limit).is_err();
    if timed_out {
        // SAFETY: plain kill(2) of the child we started; it is not reaped yet (the waiter
        // thread is still blocked in wait), so the pid cannot have been reused.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    let status = waiter.join().unwrap().expect("wait for child");
    let output = Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    };
    assert!(
        !timed_out,
        "{what} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command, limit: Duration, what: &str) -> String {
    let out = run_with_limit(cmd, limit, what);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text the simulator's `text-completion` produces for `prompt` (default 24 tokens).
pub fn completion(prompt: &str) -> String {
    pie_sim::completion_tokens(prompt, 24).concat()
}

/// Fails with a clear message when a tool CI installs (scripts/install-deps.sh) is missing.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; run scripts/install-deps.sh (CI does) to get it"
    );
}
