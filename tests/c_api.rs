//! Builds the C programs in tests/c against include/pie.h and the cdylib cargo built for this
//! test run, and runs each against an in-process simulator.
//!
//! `PIE_C_TEST_WRAPPER="valgrind --error-exitcode=99 ..."` runs every program under a wrapper;
//! `PIE_C_TEST_ASAN=1` builds them with AddressSanitizer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
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

/// Everything the C programs need, prepared once per test binary run.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn programs_dir(&self) -> PathBuf {
        self.dir.path().join("programs")
    }
    fn key_path(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }
}

/// Scripted programs the C tests launch (see sim/README.md for the language).
const PROGRAMS: &[(&str, &str)] = &[
    (
        "kinds.wasm",
        "message hello\nstdout out-text\nstderr err-text\nblob blob-bytes\ncomplete done",
    ),
    ("args.wasm", "stdout $ARGS\ncomplete $#"),
    ("forever.wasm", "stdout started\nforever"),
    ("echo.wasm", "stdout ready\nrecv\nforever"),
    ("blob.wasm", "recv-blob\nrecv\ncomplete got"),
    ("fail.wasm", "fail boom"),
    ("oom.wasm", "oom"),
    ("oor.wasm", "event 5 out of resources\nforever"),
    ("unknown.wasm", "event 9 mystery\nforever"),
    ("slow.wasm", "sleep 300\nstdout late\ncomplete slow"),
];

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let fx = Fixture { dir };
        std::fs::create_dir_all(fx.bin_dir()).unwrap();
        std::fs::create_dir_all(fx.programs_dir()).unwrap();

        // The library under its SONAME, plus the link-time name.
        let so = profile_dir().join("libpie.so");
        assert!(
            so.exists(),
            "{} not found: cargo builds the cdylib for tests",
            so.display()
        );
        std::fs::copy(&so, fx.bin_dir().join("libpie.so.0")).unwrap();
        std::os::unix::fs::symlink("libpie.so.0", fx.bin_dir().join("libpie.so")).unwrap();

        for (name, script) in PROGRAMS {
            std::fs::write(fx.programs_dir().join(name), script_program(script)).unwrap();
        }
        let mut ticker = String::new();
        for _ in 0..250 {
            ticker.push_str("stdout tick\nsleep 20\n");
        }
        std::fs::write(
            fx.programs_dir().join("ticker.wasm"),
            script_program(&ticker),
        )
        .unwrap();
        let mut flood = String::new();
        for i in 0..200 {
            flood.push_str(&format!("stdout line {i:04} of the flood\n"));
        }
        flood.push_str("complete flooded");
        std::fs::write(fx.programs_dir().join("flood.wasm"), script_program(&flood)).unwrap();

        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "c-test", "-f"])
            .arg(fx.key_path())
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success(), "ssh-keygen failed");
        fx
    })
}

/// Compiles tests/c/<name>.c (once per name).
fn build(name: &str) -> PathBuf {
    let fx = fixture();
    let out = fx.bin_dir().join(name);
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args([
        "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-pthread",
    ])
    .arg("-I")
    .arg(root().join("include"))
    .arg("-I")
    .arg(root().join("tests/c"))
    .arg(root().join(format!("tests/c/{name}.c")))
    .arg("-o")
    .arg(&out)
    .arg("-L")
    .arg(fx.bin_dir())
    .arg(format!("-Wl,-rpath,{}", fx.bin_dir().display()))
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

fn auth_sim(pubkey: &str) -> Simulator {
    let mut cfg = SimConfig::default();
    cfg.auth_enabled = true;
    cfg.users = vec![("carol".into(), vec![pubkey.to_string()])];
    Simulator::start(cfg).expect("auth simulator starts")
}

/// Runs one C program against fresh simulators; asserts success and its summary line.
fn run(name: &str) {
    let exe = build(name);
    let fx = fixture();
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    let pubkey = std::fs::read_to_string(fx.key_path().with_extension("pub")).unwrap();
    let auth = auth_sim(pubkey.trim());

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
    cmd.env("PIE_TEST_URL", sim.url())
        .env("PIE_TEST_AUTH_URL", auth.url())
        .env("PIE_TEST_TOKEN", sim.internal_token())
        .env("PIE_TEST_USER", "carol")
        .env("PIE_TEST_KEY", fx.key_path())
        .env("PIE_TEST_PROGRAMS", fx.programs_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let limit = if wrapper.is_empty() { 120 } else { 900 };
    let output = wait_with_limit(child, Duration::from_secs(limit), name);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let summary = format!("{name}: ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&summary) && l.ends_with(" checks passed"))
        .unwrap_or_else(|| panic!("{name} printed no summary:\n{stdout}\n{stderr}"));
    let checks: u32 = line[summary.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checks > 10, "{name} ran only {checks} checks");
}

fn wait_with_limit(
    mut child: std::process::Child,
    limit: Duration,
    name: &str,
) -> std::process::Output {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait for child") {
            Some(_) => return child.wait_with_output().expect("collect output"),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{name} did not finish within {limit:?}:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn c_client_functions() {
    run("test_client");
}

#[test]
fn c_event_kinds_and_polling() {
    run("test_events");
}

#[test]
fn c_callbacks() {
    run("test_callbacks");
}

#[test]
fn c_async_operations() {
    run("test_async");
}

#[test]
fn c_event_fd() {
    run("test_fd");
}

#[test]
fn c_misuse() {
    run("test_misuse");
}

#[test]
fn c_threads_and_shutdown() {
    run("test_threads");
}

/// Only `pie_` symbols leave the shared library, and it carries the soname.
#[test]
fn shared_library_exports_only_pie_symbols() {
    let so = profile_dir().join("libpie.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("nm runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(names.contains(&"pie_client_connect"), "{names:?}");
    let foreign: Vec<&&str> = names.iter().filter(|n| !n.starts_with("pie_")).collect();
    assert!(foreign.is_empty(), "non-pie symbols exported: {foreign:?}");
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&so)
        .output()
        .expect("readelf runs");
    assert!(String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libpie.so.0]"));
}
