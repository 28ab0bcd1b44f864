//! Linker settings for the shared library: the SONAME (`libpie.so.MAJOR`, or `libpie.so.0.MINOR`
//! while the major version is 0, where semantic versioning lets every minor release break the
//! ABI) and a version script exporting only the `pie_` C API, so no Rust
//! or dependency symbol leaks into the dynamic symbol table.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" && os != "android" && !os.ends_with("bsd") {
        return;
    }
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpie.so.{abi}");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out.join("pie.map");
    fs::write(&script, "{\n  global:\n    pie_*;\n  local:\n    *;\n};\n")
        .expect("write version script");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
}
