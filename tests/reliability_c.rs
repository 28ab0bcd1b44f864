//! Runs the C reliability programs (tests/c/reliability_*.c) against the cdylib cargo built for
//! this test run, with the same approach as tests/c_api.rs: compile with the system C compiler,
//! run against an in-process simulator. Each program prints "ready" when the harness should
//! inject its fault, and a summary line when done.
//!
//! `PIE_C_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full"` runs them under a
//! wrapper; `PIE_C_TEST_ASAN=1` builds them with AddressSanitizer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pie_sim::{script_program, SimConfig, Simulator};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>: the test executable lives in target/<profile>/deps.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<exe>")
        .to_path_buf()
}

fn build(name: &str, dir: &Path) -> PathBuf {
    // deps/ holds the cdylib of this very build; the copy cargo uplifts to target/<profile>/ is
    // not refreshed for every `cargo test --test ...` run.
    let so = [
        profile_dir().join("deps/libpie.so"),
        profile_dir().join("libpie.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("libpie.so: cargo builds the cdylib for tests");
    std::fs::copy(&so, dir.join("libpie.so.0.2")).unwrap();
    let link = dir.join("libpie.so");
    if !link.exists() {
        std::os::unix::fs::symlink("libpie.so.0.2", &link).unwrap();
    }
    let out = dir.join(name);
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args([
        "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-pthread",
    ])
    .arg("-I")
    .arg(root().join("include"))
    .arg(root().join(format!("tests/c/{name}.c")))
    .arg("-o")
    .arg(&out)
    .arg("-L")
    .arg(dir)
    .arg(format!("-Wl,-rpath,{}", dir.display()))
    .arg("-lpie");
    if std::env::var_os("PIE_C_TEST_ASAN").is_some() {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    let output = cmd.output().expect("C compiler runs");
    assert!(
        output.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Runs the program; on its "ready" line calls `fault`; expects success and the summary.
fn run(name: &str, sim: &Simulator, env: &[(&str, String)], fault: impl FnOnce()) {
    let dir = tempfile::tempdir().unwrap();
    let exe = build(name, dir.path());
    let wrapper = std::env::var("PIE_C_TEST_WRAPPER").unwrap_or_default();
    let mut parts = wrapper.split_whitespace();
    let mut cmd = match parts.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(parts).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    // stderr is inherited: a wrapper's report could fill a pipe nobody reads while we read stdout.
    // cargo's LD_LIBRARY_PATH (target/<profile>, .../deps) would win over the program's
    // RUNPATH and could load some other build's libpie.so.0.2 lying there.
    cmd.env_remove("LD_LIBRARY_PATH")
        .env("PIE_TEST_URL", sim.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut fault = Some(fault);
    let mut summary = None;
    let limit = if wrapper.is_empty() { 60 } else { 600 };
    let start = Instant::now();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.trim() == "ready" {
            if let Some(f) = fault.take() {
                f();
            }
        } else if line.starts_with(&format!("{name}: ")) {
            summary = Some(line.trim().to_string());
        }
        assert!(
            start.elapsed() < Duration::from_secs(limit),
            "{name} too slow"
        );
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name} failed ({}), see its stderr above",
        out.status
    );
    let summary = summary.unwrap_or_else(|| panic!("{name} printed no summary"));
    assert!(summary.ends_with("checks passed"), "{summary}");
}

#[test]
fn c_server_killed_while_threads_block() {
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    let hash = sim.add_program(script_program("stdout started\nforever"));
    run("reliability_kill", &sim, &[("PIE_TEST_HASH", hash)], || {
        sim.kill_connections()
    });
}
