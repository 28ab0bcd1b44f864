//! `make install` into a temporary prefix (reusing the library cargo built for this test run,
//! through PIE_LIB_DIR, so CI never builds a release just for this), then: the installed
//! layout and SONAME, the exported symbols, and consumers built the three documented ways —
//! pkg-config (shared and static), CMake `find_package(pie)` (pie::pie and pie::pie_static)
//! and the clang module map — each run against the simulator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{
    completion, lib_dir_in, profile_dir, require_tool, root, run_ok, run_with_limit,
};
use pie_sim::{SimConfig, Simulator};

const LIMIT: Duration = Duration::from_secs(300);
const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Install {
    dir: PathBuf,
}

impl Install {
    fn prefix(&self) -> PathBuf {
        self.dir.join("prefix")
    }
    fn lib(&self) -> PathBuf {
        self.prefix().join("lib")
    }
    fn work(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

fn install() -> &'static Install {
    static I: OnceLock<Install> = OnceLock::new();
    I.get_or_init(|| {
        require_tool("make");
        let dir = crate::scratch::per_process_dir(&profile_dir(), "ship-install");
        let inst = Install { dir };
        // The libraries of this test run, by the names `make install` expects.
        let lib = lib_dir_in(&inst.work("built"));
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(root())
            .arg("install")
            .arg(format!("PREFIX={}", inst.prefix().display()))
            .arg(format!("PIE_LIB_DIR={}", lib.display()));
        run_ok(&mut make, LIMIT, "make install");
        inst
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    require_tool("pkg-config");
    let mut cmd = Command::new("pkg-config");
    cmd.args(args)
        .arg("pie")
        .env("PKG_CONFIG_PATH", install().lib().join("pkgconfig"));
    run_ok(&mut cmd, LIMIT, &format!("pkg-config {args:?}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Runs the installed-against quick start and checks the streamed completion.
fn run_quickstart(exe: &Path) {
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    let mut cmd = Command::new(exe);
    // The installed library, found through the program's RUNPATH (not cargo's LD_LIBRARY_PATH).
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd.arg(sim.url()).arg("installed");
    let out = run_ok(
        &mut cmd,
        Duration::from_secs(60),
        &exe.display().to_string(),
    );
    assert_eq!(out, format!("{}\n", completion("installed")));
}

fn readelf_dynamic(file: &Path) -> String {
    let mut cmd = Command::new("readelf");
    cmd.arg("-d").arg(file);
    run_ok(&mut cmd, LIMIT, "readelf -d")
}

#[test]
fn installed_layout_and_soname() {
    let inst = install();
    let lib = inst.lib();
    let real = lib.join(format!("libpie.so.{VERSION}"));
    assert!(real.is_file() && !real.is_symlink(), "{}", real.display());
    assert_eq!(
        std::fs::read_link(lib.join("libpie.so.0.2")).unwrap(),
        PathBuf::from(format!("libpie.so.{VERSION}"))
    );
    assert_eq!(
        std::fs::read_link(lib.join("libpie.so")).unwrap(),
        PathBuf::from("libpie.so.0.2")
    );
    assert!(lib.join("libpie.a").is_file());
    assert!(readelf_dynamic(&real).contains("Library soname: [libpie.so.0.2]"));

    let header = inst.prefix().join("include/pie/pie.h");
    assert_eq!(
        std::fs::read(&header).unwrap(),
        std::fs::read(root().join("include/pie.h")).unwrap()
    );
    let modulemap =
        std::fs::read_to_string(inst.prefix().join("include/pie/module.modulemap")).unwrap();
    assert!(modulemap.contains("module CPie") && modulemap.contains("header \"pie.h\""));
    for f in ["pieConfig.cmake", "pieConfigVersion.cmake"] {
        let text = std::fs::read_to_string(lib.join("cmake/pie").join(f)).unwrap();
        assert!(!text.contains('@'), "{f} has unsubstituted @VARS@");
    }
    let pc = std::fs::read_to_string(lib.join("pkgconfig/pie.pc")).unwrap();
    assert!(!pc.contains('@'), "pie.pc has unsubstituted @VARS@");
}

/// What ships is stripped; its debug info is split off beside it (`libpie.so.X.Y.Z.debug`), and
/// the library names that file in its `.gnu_debuglink` so debuggers find it.
#[test]
fn installed_library_is_stripped_with_its_debug_info_beside_it() {
    require_tool("readelf");
    let lib = install().lib();
    let so = lib.join(format!("libpie.so.{VERSION}"));
    let debug = lib.join(format!("libpie.so.{VERSION}.debug"));
    let sections = |file: &Path| {
        let mut cmd = Command::new("readelf");
        cmd.args(["-S", "-W"]).arg(file);
        run_ok(&mut cmd, LIMIT, "readelf -S")
    };
    let shipped = sections(&so);
    for gone in [".debug_info", ".debug_line", ".symtab"] {
        assert!(
            !shipped.contains(gone),
            "installed library still has {gone}"
        );
    }
    let mut link = Command::new("readelf");
    link.args(["-p", ".gnu_debuglink"]).arg(&so);
    let link = run_ok(&mut link, LIMIT, "readelf -p .gnu_debuglink");
    assert!(
        link.contains(&format!("libpie.so.{VERSION}.debug")),
        "debuglink: {link}"
    );
    let split = sections(&debug);
    assert!(
        split.contains(".debug_info") && split.contains(".symtab"),
        "the .debug file lacks the debug info"
    );
}

/// The installed .so exports exactly the functions the header declares, all `pie_`-prefixed.
#[test]
fn installed_library_exports_only_the_header_functions() {
    require_tool("nm");
    let so = install().lib().join(format!("libpie.so.{VERSION}"));
    let mut nm = Command::new("nm");
    nm.args(["-D", "--defined-only"]).arg(&so);
    let text = run_ok(&mut nm, LIMIT, "nm -D");
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_string)
        .collect();
    let foreign: Vec<&String> = exported.iter().filter(|n| !n.starts_with("pie_")).collect();
    assert!(foreign.is_empty(), "non-pie symbols exported: {foreign:?}");

    // Every function prototype in the header (a line with `pie_name(` outside comments).
    let header = std::fs::read_to_string(root().join("include/pie.h")).unwrap();
    let mut declared = std::collections::BTreeSet::new();
    let mut in_comment = false;
    for line in header.lines() {
        let t = line.trim();
        if t.starts_with("/*") {
            in_comment = !t.contains("*/");
            continue;
        }
        if in_comment {
            in_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with('#') || t.starts_with("typedef") {
            continue;
        }
        if let Some(pos) = t.find("pie_") {
            let name: String = t[pos..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if t[pos + name.len()..].starts_with('(') {
                declared.insert(name);
            }
        }
    }
    assert!(declared.len() > 50, "parsed only {declared:?}");
    let missing: Vec<&String> = declared.difference(&exported).collect();
    assert!(missing.is_empty(), "declared but not exported: {missing:?}");
    let extra: Vec<&String> = exported.difference(&declared).collect();
    assert!(
        extra.is_empty(),
        "exported but not in the header: {extra:?}"
    );
}

#[test]
fn pkg_config_shared_build_runs() {
    let inst = install();
    assert_eq!(pkg_config(&["--modversion"]), vec![VERSION.to_string()]);
    let flags = pkg_config(&["--cflags", "--libs"]);
    assert!(flags.contains(&"-lpie".to_string()), "{flags:?}");
    let exe = inst.work("pkgconfig").join("quickstart");
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(root().join("examples-c/quickstart.c"))
        .args(&flags)
        .arg(format!("-Wl,-rpath,{}", inst.lib().display()))
        .arg("-o")
        .arg(&exe);
    run_ok(&mut cc, LIMIT, "cc with pkg-config flags");
    assert!(readelf_dynamic(&exe).contains("Shared library: [libpie.so.0.2]"));
    run_quickstart(&exe);
}

#[test]
fn pkg_config_static_build_runs() {
    let inst = install();
    // `pkg-config --static` adds Libs.private; -l:libpie.a picks the archive over the .so.
    let flags: Vec<String> = pkg_config(&["--static", "--cflags", "--libs"])
        .into_iter()
        .map(|f| {
            if f == "-lpie" {
                "-l:libpie.a".into()
            } else {
                f
            }
        })
        .collect();
    let exe = inst.work("pkgconfig-static").join("quickstart");
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(root().join("examples-c/quickstart.c"))
        .args(&flags)
        .arg("-o")
        .arg(&exe);
    run_ok(&mut cc, LIMIT, "static cc with pkg-config flags");
    assert!(!readelf_dynamic(&exe).contains("libpie"));
    run_quickstart(&exe);
}

fn cmake_build(name: &str, source: &Path, extra: &[String]) -> PathBuf {
    require_tool("cmake");
    let inst = install();
    let build = inst.work(name);
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(source)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", inst.prefix().display()))
        .args(extra);
    run_ok(&mut configure, LIMIT, "cmake configure");
    let mut make = Command::new("cmake");
    make.arg("--build").arg(&build);
    run_ok(&mut make, LIMIT, "cmake --build");
    build
}

/// examples-c/CMakeLists.txt without PIE_LIB_DIR uses find_package(pie 0.2): every example
/// builds against the installed pie::pie.
#[test]
fn cmake_find_package_shared() {
    let build = cmake_build("cmake-shared", &root().join("examples-c"), &[]);
    let exe = build.join("quickstart");
    assert!(readelf_dynamic(&exe).contains("Shared library: [libpie.so.0.2]"));
    assert!(build.join("quickstart-cpp").exists());
    run_quickstart(&exe);
}

/// A minimal consumer of pie::pie_static, and the version check of pieConfigVersion.cmake.
#[test]
fn cmake_find_package_static_and_version_check() {
    let inst = install();
    let src = inst.work("cmake-static-src");
    std::fs::write(
        src.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\n\
             find_package(pie {major}.{minor} REQUIRED)\n\
             add_executable(quickstart {})\n\
             target_link_libraries(quickstart PRIVATE pie::pie_static)\n",
            root().join("examples-c/quickstart.c").display(),
            major = env!("CARGO_PKG_VERSION_MAJOR"),
            minor = env!("CARGO_PKG_VERSION_MINOR"),
        ),
    )
    .unwrap();
    let build = cmake_build("cmake-static", &src, &[]);
    let exe = build.join("quickstart");
    assert!(!readelf_dynamic(&exe).contains("libpie"));
    run_quickstart(&exe);

    // The next minor version (pre-1.0) or the next major is not compatible with this one.
    let v = |s: &str| s.parse::<u32>().unwrap();
    let (major, minor) = (
        v(env!("CARGO_PKG_VERSION_MAJOR")),
        v(env!("CARGO_PKG_VERSION_MINOR")),
    );
    for wanted in [format!("{major}.{}", minor + 1), format!("{}.0", major + 1)] {
        let src = inst.work(&format!("cmake-version-{wanted}"));
        std::fs::write(
            src.join("CMakeLists.txt"),
            format!(
                "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\n\
                 find_package(pie {wanted} REQUIRED)\n"
            ),
        )
        .unwrap();
        let mut configure = Command::new("cmake");
        configure
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(src.join("build"))
            .arg(format!("-DCMAKE_PREFIX_PATH={}", inst.prefix().display()));
        let out = run_with_limit(&mut configure, LIMIT, "cmake configure");
        assert!(
            !out.status.success(),
            "find_package(pie {wanted}) accepted version {VERSION}"
        );
    }
}

/// The module map: clang imports module CPie from <prefix>/include/pie.
#[test]
fn clang_module_map_imports_cpie() {
    require_tool("clang");
    let inst = install();
    let work = inst.work("modules");
    let src = work.join("main.c");
    std::fs::write(
        &src,
        "#pragma clang module import CPie\n#include <stdio.h>\n\
         int main(void) { printf(\"%s %d\\n\", pie_version(), PIE_VERSION_NUMBER); return 0; }\n",
    )
    .unwrap();
    let exe = work.join("main");
    let mut clang = Command::new("clang");
    clang
        .args(["-fmodules", "-Werror"])
        .arg(format!(
            "-fmodules-cache-path={}",
            work.join("cache").display()
        ))
        .arg("-I")
        .arg(inst.prefix().join("include/pie"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(inst.lib())
        .arg("-lpie")
        .arg(format!("-Wl,-rpath,{}", inst.lib().display()));
    run_ok(&mut clang, LIMIT, "clang -fmodules");
    let mut run = Command::new(&exe);
    run.env_remove("LD_LIBRARY_PATH");
    let out = run_ok(&mut run, LIMIT, "module map program");
    let n: Vec<u32> = VERSION.split('.').map(|p| p.parse().unwrap()).collect();
    let number = n[0] * 10000 + n[1] * 100 + n[2];
    assert_eq!(out, format!("{VERSION} {number}\n"));
}
