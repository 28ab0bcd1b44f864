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
    in_reading_order(&String::from_utf8(out).expect("header is UTF-8"))
}

/// cbindgen writes every type before every function. The header is the users' manual, so each
/// enum, callback typedef and constant is moved to just before the first function that names
/// it (in its prototype or its documentation): PieStatus opens the error functions,
/// PieEventKind the event functions, and so on. The opaque handle typedefs stay together at
/// the top, where every prototype can use them. Items are the blank-line separated blocks
/// cbindgen writes.
fn in_reading_order(header: &str) -> String {
    // Blocks end at a blank line outside a comment (doc comments have blank lines of their own).
    let mut blocks: Vec<String> = vec![String::new()];
    let mut in_comment = false;
    let (body, newline) = match header.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (header, ""),
    };
    for line in body.split('\n') {
        let last = blocks.last_mut().expect("never empty");
        if line.is_empty() && !in_comment {
            blocks.push(String::new());
            continue;
        }
        if !last.is_empty() {
            last.push('\n');
        }
        last.push_str(line);
        if line.trim_start().starts_with("/*") {
            in_comment = true;
        }
        if line.contains("*/") {
            in_comment = false;
        }
    }
    let code = |block: &str| -> String {
        match block.find(" */\n") {
            Some(end) if block.starts_with("/*") => block[end + 4..].to_string(),
            _ => block.to_string(),
        }
    };
    let movable_name = |block: &str| -> Option<String> {
        let code = code(block);
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(rest) = code.strip_prefix("typedef enum ") {
            return Some(ident(rest));
        }
        if let Some(at) = code.strip_prefix("typedef void (*") {
            return Some(ident(at));
        }
        let name = ident(code.strip_prefix("#define ")?);
        (!name.starts_with("PIE_VERSION_") && name != "PIE_H").then_some(name)
    };
    let names = |block: &str, name: &str| -> bool {
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        block.match_indices(name).any(|(at, _)| {
            !block[..at].ends_with(is_ident) && !block[at + name.len()..].starts_with(is_ident)
        })
    };
    // Functions: the prototypes inside the `extern "C"` block.
    let functions_start = blocks
        .iter()
        .position(|b| b.contains("extern \"C\" {"))
        .expect("cbindgen's extern \"C\" block");
    let is_function = |j: usize, block: &str| {
        let code = code(block);
        j > functions_start && code.trim_end().ends_with(");") && !code.starts_with("typedef")
    };
    let movable: Vec<(usize, String)> = blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| movable_name(b).map(|n| (i, n)))
        .collect();
    // Where each movable block goes: before the first function naming it, or before any block
    // that goes earlier and names it (a callback typedef using an enum).
    let mut target: Vec<Option<usize>> = movable
        .iter()
        .map(|(_, name)| {
            (0..blocks.len()).find(|&j| is_function(j, &blocks[j]) && names(&blocks[j], name))
        })
        .collect();
    loop {
        let mut changed = false;
        for a in 0..movable.len() {
            for b in 0..movable.len() {
                if a != b && names(&blocks[movable[b].0], &movable[a].1) {
                    if let Some(tb) = target[b] {
                        if target[a].map_or(true, |ta| tb < ta) {
                            target[a] = Some(tb);
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut before: Vec<Vec<String>> = vec![Vec::new(); blocks.len()];
    let mut moved = vec![false; blocks.len()];
    for (k, (i, _)) in movable.iter().enumerate() {
        if let Some(j) = target[k] {
            before[j].push(blocks[*i].clone());
            moved[*i] = true;
        }
    }
    let mut ordered = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.drain(..).enumerate() {
        ordered.append(&mut before[j]);
        if !moved[j] {
            ordered.push(block);
        }
    }
    ordered.join("\n\n") + newline
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
