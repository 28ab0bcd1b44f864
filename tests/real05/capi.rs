//! The C part: C programs in tests/real05/c compiled against include/pie.h and the libpie
//! cdylib of this test run, then run against the real server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// A compiled C program with its own copy of libpie (under its SONAME, libpie.so.0) in a
/// temporary directory that goes away with it.
pub struct Program {
    dir: tempfile::TempDir,
}

impl Program {
    /// Compiles tests/real05/c/<name>.c with warnings as errors.
    pub fn build(name: &str) -> Program {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(cdylib(), dir.path().join("libpie.so.0")).expect("copy the cdylib");
        std::os::unix::fs::symlink("libpie.so.0", dir.path().join("libpie.so")).unwrap();
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(dir.path().join("program"))
            .arg(root.join("tests/real05/c").join(format!("{name}.c")))
            .arg(format!("-I{}", root.join("include").display()))
            .arg(format!("-L{}", dir.path().display()))
            .arg(format!("-Wl,-rpath,{}", dir.path().display()))
            .arg("-lpie")
            .status()
            .expect("run the C compiler");
        assert!(status.success(), "compiling {name}.c failed");
        Program { dir }
    }

    /// Runs it with a time limit (then SIGTERM, SIGKILL 5 s later); returns (exit code, stdout,
    /// stderr).
    pub fn run(&self, args: &[&str], limit: Duration) -> (i32, String, String) {
        let output = Command::new("timeout")
            .arg("--kill-after=5")
            .arg(limit.as_secs().to_string())
            .arg(self.dir.path().join("program"))
            .args(args)
            .output()
            .expect("run the C program");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}
