//! Builds every example in examples-c/ and examples-cpp/ (with the plain `cc` line of the
//! README, and once through examples-c/CMakeLists.txt) against the libpie cargo built for this
//! test run, and runs each against an in-process simulator, checking what it prints: the
//! January-2026 simulator and, for the C examples, the Pie 0.5 one too (the examples detect the
//! protocol themselves; on 0.5 they use `compat-openai` and the inferlets of tests/inferlets05).
//!
//! Like tests/capi/programs.rs: `PIE_C_TEST_WRAPPER="valgrind ..."` runs every example under a wrapper,
//! `PIE_C_TEST_ASAN=1` builds them with AddressSanitizer (scripts/test-all.sh does both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::support::{
    completion, lib_dir_in, profile_dir, require_tool, root, run_ok, run_with_limit,
};
use pie_sim::{script_program, SimConfig, Simulator};

const LIMIT: Duration = Duration::from_secs(60);

/// Time allowed for one run of an example (valgrind is slow).
fn run_limit() -> Duration {
    if wrapper().is_empty() {
        LIMIT
    } else {
        Duration::from_secs(600)
    }
}

fn wrapper() -> String {
    std::env::var("PIE_C_TEST_WRAPPER").unwrap_or_default()
}

fn asan_flags(cmd: &mut Command) {
    if std::env::var_os("PIE_C_TEST_ASAN").is_some() {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]);
    }
}

/// A command running the example `exe`, under PIE_C_TEST_WRAPPER if set, told where the Pie 0.5
/// test inferlets are.
fn example(exe: &Path) -> Command {
    let wrapper = wrapper();
    let mut parts = wrapper.split_whitespace();
    let mut cmd = match parts.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(parts).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // The program's RUNPATH decides which libpie it loads, not cargo's LD_LIBRARY_PATH (which
    // would find target/<profile>/libpie.so.0.2, the library of the last `cargo build`).
    cmd.env_remove("LD_LIBRARY_PATH")
        .env("PIE_INFERLETS05", root().join("tests/inferlets05"));
    cmd
}

struct Fixture {
    dir: PathBuf,
    lib: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = crate::scratch::per_process_dir(&profile_dir(), "ship-examples");
        let lib = lib_dir_in(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        Fixture { dir, lib }
    })
}

/// The README's build line: `cc -I include examples-c/X.c -L LIBDIR -lpie -Wl,-rpath,LIBDIR`,
/// with warnings as errors. Once per example: tests running in parallel share the executable
/// (compiling it again while another test runs it would fail with "text file busy").
fn build_c(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(name.to_string())
        .or_insert_with(|| compile_c(name))
        .clone()
}

fn compile_c(name: &str) -> PathBuf {
    let fx = fixture();
    let exe = fx.dir.join("bin").join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(cc);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(root().join("include"))
        .arg(root().join(format!("examples-c/{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&fx.lib)
        .arg("-lpie")
        .arg(format!("-Wl,-rpath,{}", fx.lib.display()));
    asan_flags(&mut cmd);
    run_ok(&mut cmd, LIMIT, &format!("compiling examples-c/{name}.c"));
    exe
}

fn build_cpp() -> PathBuf {
    let fx = fixture();
    let exe = fx.dir.join("bin").join("quickstart-cpp");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let mut cmd = Command::new(cxx);
    cmd.args([
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pthread",
        "-I",
    ])
    .arg(root().join("include"))
    .arg("-I")
    .arg(root().join("examples-cpp"))
    .arg(root().join("examples-cpp/quickstart.cpp"))
    .arg("-o")
    .arg(&exe)
    .arg("-L")
    .arg(&fx.lib)
    .arg("-lpie")
    .arg(format!("-Wl,-rpath,{}", fx.lib.display()));
    asan_flags(&mut cmd);
    run_ok(&mut cmd, LIMIT, "compiling examples-cpp/quickstart.cpp");
    exe
}

fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("simulator starts")
}

/// The Pie 0.5 simulator (`pie-sim --protocol 0.5`), with the real server's defects.
fn sim05() -> pie_sim::v05::Simulator {
    pie_sim::v05::Simulator::start(pie_sim::v05::Config::default()).expect("0.5 simulator starts")
}

/// What the examples print for a `compat-openai` completion of `prompt` (16 tokens).
fn completion05(prompt: &str) -> String {
    pie_sim::v05::completion_tokens(prompt, 16).concat()
}

/// Runs an example; returns (stdout, stderr), asserting it exited 0.
fn run_example(exe: &Path, args: &[&str]) -> (String, String) {
    let mut cmd = example(exe);
    cmd.args(args);
    let out = run_with_limit(&mut cmd, run_limit(), &exe.display().to_string());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        exe.display(),
        out.status
    );
    (stdout, stderr)
}

#[test]
fn quickstart_streams_the_completion() {
    let exe = build_c("quickstart");
    let sim = sim();
    let prompt = "Why is the sky blue?";
    let (stdout, stderr) = run_example(&exe, &[&sim.url(), prompt]);
    let want = completion(prompt);
    assert_eq!(stdout, format!("{want}\n"), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("completed: {want}\n")), "{stderr}");
    assert!(stderr.contains("launched instance "), "{stderr}");
}

#[test]
fn quickstart_authenticates_with_a_key_and_reports_failures() {
    let exe = build_c("quickstart");
    let fx = fixture();
    let key = fx.dir.join("id_quickstart");
    let mut keygen = Command::new("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "quickstart", "-f"])
        .arg(&key);
    run_ok(&mut keygen, LIMIT, "ssh-keygen");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let cfg = SimConfig {
        auth_enabled: true,
        users: vec![("alice".into(), vec![public.trim().to_string()])],
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).expect("auth simulator starts");

    let mut ok = example(&exe);
    ok.arg(sim.url())
        .arg("hello")
        .env("PIE_USER", "alice")
        .env("PIE_KEY", &key);
    let out = run_ok(&mut ok, run_limit(), "quickstart with a key");
    assert_eq!(out, format!("{}\n", completion("hello")));

    // Unknown user: the authentication error and a non-zero exit.
    let mut refused = example(&exe);
    refused
        .arg(sim.url())
        .env("PIE_USER", "mallory")
        .env("PIE_KEY", &key);
    let out = run_with_limit(&mut refused, run_limit(), "quickstart as an unknown user");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("authenticate failed: PIE_STATUS_AUTH"),
        "{stderr}"
    );

    // Nothing listening: a connection error.
    let addr = sim.addr();
    drop(sim);
    let mut nobody = example(&exe);
    nobody.arg(format!("ws://{addr}"));
    let out = run_with_limit(&mut nobody, run_limit(), "quickstart without a server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("connect failed: PIE_STATUS_"), "{stderr}");
}

#[test]
fn chat_sends_and_receives() {
    let exe = build_c("chat");
    let sim = sim();
    let (stdout, _) = run_example(&exe, &[&sim.url(), "first", "second message"]);
    assert_eq!(
        stdout,
        "> first\n< you said: first\n> second message\n< you said: second message\n\
         chat completed: bye\n"
    );
}

#[test]
fn upload_hashes_uploads_with_progress_and_launches() {
    let exe = build_c("upload");
    let sim = sim();
    // A comment of 600 KB makes the program span three upload chunks of 256 KiB.
    let mut script = String::from("stdout hello $1\\n\nmessage $#\n");
    script.push_str(&format!("# {}\n", "x".repeat(600_000)));
    script.push_str("complete done");
    let program = script_program(&script);
    let path = fixture().dir.join("hello.wasm");
    std::fs::write(&path, &program).unwrap();
    let hash = blake3::hash(&program).to_hex().to_string();
    let path_str = path.to_str().unwrap();

    let (stdout, _) = run_example(&exe, &[&sim.url(), path_str, "world"]);
    assert!(
        stdout.starts_with(&format!(
            "program {path_str}: {} bytes, hash {hash}\n",
            program.len()
        )),
        "{stdout}"
    );
    let progress: Vec<(u64, u64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("uploading {path_str}: ")))
        .map(|l| {
            let (sent, total) = l.trim_end_matches(" bytes").split_once('/').unwrap();
            (sent.parse().unwrap(), total.parse().unwrap())
        })
        .collect();
    // One report per chunk handed to the socket; libpie may skip reports that race with the
    // server's reply, so only their consistency is checked.
    let total = program.len() as u64;
    assert!(
        progress
            .iter()
            .all(|&(sent, t)| t == total && sent <= total),
        "{stdout}"
    );
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "{stdout}");
    assert!(
        stdout.ends_with("uploaded\nhello world\nmessage: 1\ncompleted: done\n"),
        "{stdout}"
    );
    assert!(sim.program_exists(&hash));

    // Second run: the server has it, nothing is uploaded.
    let (stdout, _) = run_example(&exe, &[&sim.url(), path_str, "again"]);
    assert!(
        stdout.contains("the server already has it\nhello again\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("uploading"), "{stdout}");

    // A file that is not a component: libpie refuses it before sending (the real server would
    // drop the connection), and the example exits with the message.
    let bad = fixture().dir.join("bad.wasm");
    std::fs::write(&bad, b"not a component").unwrap();
    let mut cmd = example(&exe);
    cmd.arg(sim.url()).arg(&bad);
    let out = run_with_limit(&mut cmd, run_limit(), "upload of a bad program");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("upload failed: PIE_STATUS_INVALID_ARGUMENT: not a WebAssembly component"),
        "{stderr}"
    );
}

#[test]
fn detached_launch_is_listed_and_replayed_on_attach() {
    let exe = build_c("detached");
    let sim = sim();
    let (stdout, _) = run_example(&exe, &[&sim.url()]);
    let want = completion("a detached story");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("launched ") && lines[0].ends_with(" detached=1"));
    assert_eq!(lines[1], "recv on the detached handle: PIE_STATUS_DETACHED");
    assert!(
        stdout.contains(", 2 arguments, launched by detached-example\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(": finished, 2 arguments"),
        "the instance was never listed as finished:\n{stdout}"
    );
    assert!(
        stdout.ends_with(&format!("replayed output: {want}\ncompleted: {want}\n")),
        "{stdout}"
    );
    // Attaching a finished instance consumes it.
    assert_eq!(sim.instance_count(), 0);
}

#[test]
fn callbacks_deliver_events_in_order_then_end() {
    let exe = build_c("callbacks");
    let sim = sim();
    let (stdout, _) = run_example(&exe, &[&sim.url(), "plum", "apple pie"]);
    assert_eq!(
        stdout,
        "stdout: plum\nstdout: apple pie\nstderr: echo: 2 arguments\nmessage: plum apple pie\n\
         completed: echo: plum apple pie\nstream ended: PIE_STATUS_STREAM_ENDED\n5 events\n\
         connection ended: PIE_STATUS_CLIENT_CLOSED (the client was closed)\n"
    );
}

#[test]
fn event_loop_runs_two_completions_without_blocking() {
    let exe = build_c("event_loop");
    let sim = sim();
    let (stdout, _) = run_example(&exe, &[&sim.url()]);
    let first = completion("first prompt");
    let second = completion("second prompt");
    assert!(
        stdout.starts_with(&format!(
            "[first prompt] {first}\n[second prompt] {second}\ndone in "
        )),
        "{stdout}"
    );
    // The fd woke the loop at least once per completion. Not under a wrapper (valgrind): the
    // host is then so slow that both streams have ended before it takes the instances out of
    // their launch operations, and it drains them without waiting on the fd. The unwrapped
    // run of the test stage checks the wake-ups; the wrapped one checks memory.
    let woken: u32 = stdout
        .rsplit_once('(')
        .and_then(|(_, w)| w.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("woken count");
    assert!(woken >= 2 || !wrapper().is_empty(), "{stdout}");
}

#[test]
fn cpp_wrapper_example() {
    let exe = build_cpp();
    let sim = sim();
    let (stdout, _) = run_example(&exe, &[&sim.url(), "C++ prompt"]);
    let want = completion("C++ prompt");
    assert!(
        stdout.starts_with(&format!(
            "{want}\ncompleted: {want}\nchat: you said: hello from C++\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("instance "), "{stdout}");
    // The server's refusal, with its text (the wrapper's exception carries the message).
    assert!(
        stdout
            .contains("expected failure: status 6: PIE_STATUS_SERVER: Registry returned error 404"),
        "{stdout}"
    );
}

/// examples-c/CMakeLists.txt builds every example (C and C++) against the source tree; the
/// CMake-built quick start runs.
#[test]
fn cmake_builds_the_examples() {
    require_tool("cmake");
    let fx = fixture();
    let build = fx.dir.join("cmake-build");
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(root().join("examples-c"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DPIE_LIB_DIR={}", fx.lib.display()));
    run_ok(&mut configure, Duration::from_secs(120), "cmake configure");
    let mut make = Command::new("cmake");
    make.arg("--build").arg(&build);
    run_ok(&mut make, Duration::from_secs(300), "cmake --build");
    for exe in [
        "quickstart",
        "chat",
        "upload",
        "detached",
        "callbacks",
        "event_loop",
        "quickstart-cpp",
    ] {
        assert!(build.join(exe).exists(), "CMake did not build {exe}");
    }
    let sim = sim();
    let (stdout, _) = run_example(&build.join("quickstart"), &[&sim.url(), "cmake"]);
    assert_eq!(stdout, format!("{}\n", completion("cmake")));
}

#[test]
fn quickstart_on_pie05_streams_compat_openai_chunks() {
    let exe = build_c("quickstart");
    let sim = sim05();
    let prompt = "Why is the \"sky\" blue?\n";
    let (stdout, stderr) = run_example(&exe, &[&sim.url(), prompt]);
    assert_eq!(
        stdout,
        format!("{}\n", completion05(prompt)),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("launched instance "), "{stderr}");
    assert!(stderr.contains("completed: "), "{stderr}");
    // A plain ws://host:port URL works too: libpie adds the /v1/ws path itself.
    let (stdout, _) = run_example(&exe, &[&format!("ws://{}", sim.addr()), "plain"]);
    assert_eq!(stdout, format!("{}\n", completion05("plain")));
}

#[test]
fn chat_on_pie05_installs_chat_echo() {
    let exe = build_c("chat");
    let sim = sim05();
    let (stdout, stderr) = run_example(&exe, &[&sim.url(), "first", "second message"]);
    assert_eq!(
        stdout,
        "> first\n< echo: first\n> second message\n< echo: second message\n\
         chat completed: {\"echoed\": 2}\n",
        "stderr:\n{stderr}"
    );
    assert!(sim.installed().iter().any(|p| p.starts_with("chat-echo@")));
}

#[test]
fn upload_on_pie05_installs_and_echoes_a_file() {
    let exe = build_c("upload");
    let sim = sim05();
    let artifact = root().join("tests/inferlets05/file_echo.py");
    let path = artifact.to_str().unwrap();
    let len = std::fs::metadata(&artifact).unwrap().len();
    let (stdout, stderr) = run_example(&exe, &[&sim.url(), path]);
    assert!(
        stdout.contains(&format!(
            "uploading {path}: {len}/{len} bytes\ninstalled file-echo\n"
        )),
        "{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.ends_with(&format!(
            "message: send me a file\nsent {path} as a file\n\
             blob: {len} bytes, the file sent\ncompleted: {len}\n"
        )),
        "{stdout}\nstderr:\n{stderr}"
    );

    // A program without a manifest beside it: a clear message and a non-zero exit.
    let lonely = fixture().dir.join("lonely.py");
    std::fs::write(&lonely, "print(1)\n").unwrap();
    let mut cmd = example(&exe);
    cmd.arg(sim.url()).arg(&lonely);
    let out = run_with_limit(&mut cmd, run_limit(), "upload without a manifest");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no manifest with a name at "), "{stderr}");
}

#[test]
fn detached_on_pie05_lists_attaches_and_completes() {
    let exe = build_c("detached");
    let sim = sim05();
    let (stdout, stderr) = run_example(&exe, &[&sim.url()]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("launched ") && lines[0].ends_with(" detached=1"),
        "{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(lines[1], "recv on the detached handle: PIE_STATUS_DETACHED");
    assert!(stdout.contains(": detached, "), "{stdout}");
    assert!(
        stdout.ends_with("replayed output: completed: slept\n"),
        "{stdout}"
    );
    assert_eq!(sim.process_count(), 0);
}

#[test]
fn callbacks_on_pie05_deliver_echo_args_events() {
    let exe = build_c("callbacks");
    let sim = sim05();
    let (stdout, stderr) = run_example(&exe, &[&sim.url(), "plum", "apple \"pie\""]);
    let args = r#"{"words": ["plum", "apple \"pie\""]}"#;
    // print("args:", ...) is four stdout events on 0.5.2 (one per write).
    assert_eq!(
        stdout,
        format!(
            "stdout: args:stdout:  stdout: {args}stdout: \nmessage: {{\"args\": {args}}}\n\
             completed: {args}\nstream ended: PIE_STATUS_STREAM_ENDED\n6 events\n\
             connection ended: PIE_STATUS_CLIENT_CLOSED (the client was closed)\n"
        ),
        "stderr:\n{stderr}"
    );
}

#[test]
fn event_loop_on_pie05_runs_two_compat_openai_streams() {
    let exe = build_c("event_loop");
    let sim = sim05();
    let (stdout, stderr) = run_example(&exe, &[&sim.url()]);
    assert!(
        stdout.starts_with(&format!(
            "[first prompt] {}\n[second prompt] {}\ndone in ",
            completion05("first prompt"),
            completion05("second prompt")
        )),
        "{stdout}\nstderr:\n{stderr}"
    );
}
