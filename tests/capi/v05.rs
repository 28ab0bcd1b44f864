//! The Pie 0.5 C API: builds tests/c/test_v05.c against include/pie.h and the cdylib of this
//! test run, and runs it against the 0.5 simulator (`pie_sim::v05`, an independent codec).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cdylib cargo built for this test run (next to the test executable).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let here = deps.join("libpie.so");
    if here.exists() {
        return here;
    }
    deps.parent().expect("target/<profile>").join("libpie.so")
}

#[test]
fn c_v05_api_against_the_05_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path();
    std::fs::copy(cdylib(), bin.join("libpie.so.0.2")).unwrap();
    std::os::unix::fs::symlink("libpie.so.0.2", bin.join("libpie.so")).unwrap();
    let exe = bin.join("test_v05");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-pthread",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("tests/c"))
        .arg(root().join("tests/c/test_v05.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(bin)
        .arg(format!("-Wl,-rpath,{}", bin.display()))
        .arg("-lpie")
        .output()
        .expect("C compiler runs");
    assert!(
        out.status.success(),
        "compiling test_v05.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sim = pie_sim::v05::Simulator::start(pie_sim::v05::Config::default()).unwrap();
    // What a user types: host and port; libpie adds /v1/ws and detects the protocol.
    let url = sim.url().trim_end_matches("/v1/ws").to_string();
    // Not cargo's LD_LIBRARY_PATH: it would load target/<profile>/libpie.so.0.2 (see programs.rs).
    let mut child = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .env("PIE_TEST_URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("test_v05 did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "test_v05 failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("test_v05: ") && l.ends_with(" checks passed"))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let checks: u32 = line["test_v05: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checks > 40, "only {checks} checks ran");
    print!("{stdout}");
}
