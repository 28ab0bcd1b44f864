//! include/pie.h must be exactly what cbindgen generates from src/ffi (run with
//! PIE_BLESS_HEADER=1 to rewrite it), and it must compile cleanly as C11 and as C++17.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let config =
        cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        // Only the C layer: other modules' Rust constants must not leak into the header.
        .with_src(root().join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_current() {
    let path = root().join("include/pie.h");
    let fresh = generate();
    // Blessing rewrites the header, so it is refused under CI: there the committed header is
    // what is checked, whatever the environment says.
    if std::env::var_os("PIE_BLESS_HEADER").is_some() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PIE_BLESS_HEADER is set under CI=true: CI checks the committed header, never \
             rewrites it"
        );
        std::fs::write(&path, &fresh).expect("write include/pie.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "include/pie.h is stale (first difference at line {}); regenerate it with \
             PIE_BLESS_HEADER=1 cargo test --test ship header_current",
            line + 1
        );
    }
}

#[test]
fn header_declares_the_version_of_the_crate() {
    let header = std::fs::read_to_string(root().join("include/pie.h")).unwrap();
    let expect = |name: &str, value: u32| {
        let line = format!("#define {name} {value}");
        assert!(header.contains(&line), "header lacks `{line}`");
    };
    let v = |s: &str| s.parse::<u32>().unwrap();
    let (major, minor, patch) = (
        v(env!("CARGO_PKG_VERSION_MAJOR")),
        v(env!("CARGO_PKG_VERSION_MINOR")),
        v(env!("CARGO_PKG_VERSION_PATCH")),
    );
    expect("PIE_VERSION_MAJOR", major);
    expect("PIE_VERSION_MINOR", minor);
    expect("PIE_VERSION_PATCH", patch);
    expect("PIE_VERSION_NUMBER", major * 10000 + minor * 100 + patch);
}

fn compile(compiler: &str, std: &str, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join(format!("use_header.{ext}"));
    // Include twice (guard), use a few declarations so unused-type warnings cannot hide errors.
    std::fs::write(
        &src,
        "#include \"pie.h\"\n#include \"pie.h\"\n\
         int main(void) {\n\
           PieStatus s = PIE_STATUS_OK;\n\
           PieEventKind k = PIE_EVENT_KIND_STDOUT;\n\
           PieInstanceStatus i = PIE_INSTANCE_STATUS_FINISHED;\n\
           PieEventCallback cb = 0; (void)cb;\n\
           return (int)s + (int)k + (int)i - 9 + (PIE_VERSION_NUMBER < 0) + (pie_version() == 0);\n\
         }\n",
    )
    .unwrap();
    let output = Command::new(compiler)
        .args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(root().join("include"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {std} rejects include/pie.h:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn header_compiles_as_c11() {
    compile("cc", "-std=c11", "c");
}

#[test]
fn header_compiles_as_cxx17() {
    compile("c++", "-std=c++17", "cpp");
}
