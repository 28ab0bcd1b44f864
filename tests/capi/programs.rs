//! Builds the C programs in tests/c against include/pie.h and the cdylib cargo built for this
//! test run, and runs each against an in-process simulator.
//!
//! `PIE_C_TEST_WRAPPER="valgrind --error-exitcode=99 ..."` runs every program under a wrapper;
//! `PIE_C_TEST_ASAN=1` builds them with AddressSanitizer.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pie_sim::{script_program, SimConfig, Simulator};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cdylib cargo built for this test run: target/<profile>/deps/libpie.so, next to the test
/// executable (cargo only copies it up to target/<profile>/ for `cargo build`, so that copy may
/// be stale).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let here = deps.join("libpie.so");
    if here.exists() {
        return here;
    }
    deps.parent().expect("target/<profile>").join("libpie.so")
}

/// Everything the C programs need, prepared once per test binary run.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
    fn programs_dir(&self) -> PathBuf {
        self.dir.join("programs")
    }
    fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
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
        // In the target directory, one per process (a static is never dropped: see scratch.rs).
        let deps = cdylib().parent().expect("deps directory").to_path_buf();
        let dir = crate::scratch::per_process_dir(&deps, "c-tests");
        let fx = Fixture { dir };
        std::fs::create_dir_all(fx.bin_dir()).unwrap();
        std::fs::create_dir_all(fx.programs_dir()).unwrap();

        // The library under its SONAME, plus the link-time name.
        let so = cdylib();
        assert!(
            so.exists(),
            "{} not found: cargo builds the cdylib for tests",
            so.display()
        );
        std::fs::copy(&so, fx.bin_dir().join("libpie.so.0.2")).unwrap();
        std::os::unix::fs::symlink("libpie.so.0.2", fx.bin_dir().join("libpie.so")).unwrap();

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
        // 1 MiB of comment: a program of several upload chunks.
        let big = format!("# {}\ncomplete big", "x".repeat(1 << 20));
        std::fs::write(fx.programs_dir().join("big.wasm"), script_program(&big)).unwrap();
        let mut flood = String::new();
        for i in 0..200 {
            flood.push_str(&format!("stdout line {i:04} of the flood\n"));
        }
        flood.push_str("complete flooded");
        std::fs::write(fx.programs_dir().join("flood.wasm"), script_program(&flood)).unwrap();

        // An OpenSSH Ed25519 key pair from a fixed seed (no ssh-keygen needed on CI).
        let key =
            ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]));
        let private = key
            .to_openssh(ssh_key::LineEnding::LF)
            .expect("encode private key");
        std::fs::write(fx.key_path(), private.as_bytes()).unwrap();
        let encrypted = key
            .encrypt(&mut rand::thread_rng(), "secret")
            .expect("encrypt key")
            .to_openssh(ssh_key::LineEnding::LF)
            .expect("encode encrypted key");
        std::fs::write(fx.dir.join("id_ed25519_enc"), encrypted.as_bytes()).unwrap();
        let public = key.public_key().to_openssh().expect("encode public key");
        std::fs::write(fx.key_path().with_extension("pub"), public).unwrap();
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
    let cfg = SimConfig {
        auth_enabled: true,
        users: vec![("carol".into(), vec![pubkey.to_string()])],
        ..SimConfig::default()
    };
    Simulator::start(cfg).expect("auth simulator starts")
}

/// Runs one C program against fresh simulators; asserts success and its summary line.
fn run(name: &str) {
    run_with(name, |_| {});
}

/// Like [`run`]; `on_ready` runs (with the simulator) when the program prints a "READY" line,
/// after which the program's stdin receives "GO".
fn run_with(name: &str, on_ready: impl FnOnce(&Simulator)) {
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
    // cargo's LD_LIBRARY_PATH (target/<profile>, .../deps) would win over the program's
    // RUNPATH, and target/<profile>/libpie.so.0.2 (made by the quick start and the binding
    // stages) points at the library of the last `cargo build`, not of this test run.
    cmd.env_remove("LD_LIBRARY_PATH")
        .env("PIE_TEST_URL", sim.url())
        .env("PIE_TEST_AUTH_URL", auth.url())
        .env("PIE_TEST_TOKEN", sim.internal_token())
        .env("PIE_TEST_USER", "carol")
        .env("PIE_TEST_KEY", fx.key_path())
        .env("PIE_TEST_KEY_ENCRYPTED", fx.dir.join("id_ed25519_enc"))
        .env("PIE_TEST_PROGRAMS", fx.programs_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));

    // Stdout is read on a thread so the READY line can be seen while the program runs.
    let out = child.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = line_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let limit = Duration::from_secs(if wrapper.is_empty() { 120 } else { 900 });
    let start = Instant::now();
    let mut on_ready = Some(on_ready);
    let status = loop {
        while let Ok(line) = line_rx.try_recv() {
            if line == "READY" {
                if let Some(f) = on_ready.take() {
                    f(&sim);
                    if let Some(stdin) = child.stdin.as_mut() {
                        let _ = stdin.write_all(b"GO\n");
                        let _ = stdin.flush();
                    }
                }
            }
        }
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader.join().expect("stdout reader");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "{name} failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}"
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
    // Visible with --nocapture: the programs' own lines (summary, measurements).
    print!("{stdout}");
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
fn c_log_callback() {
    run("test_log");
}

#[test]
fn c_misuse() {
    run("test_misuse");
}

#[test]
fn c_server_drops_connection() {
    run_with("test_disconnect", |sim| sim.kill_connections());
}

#[test]
fn c_silent_server_times_out() {
    run_with("test_timeout", |sim| sim.faults().set_silence(true));
}

#[test]
fn c_threads_and_shutdown() {
    run("test_threads");
}

/// Only `pie_` symbols leave the shared library, and it carries the soname.
#[test]
fn shared_library_exports_only_pie_symbols() {
    let so = cdylib();
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
    assert!(String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libpie.so.0.2]"));
}
