//! The simulator in its own process (so client and server do not share a runtime).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Sim {
    child: Child,
    pub url: String,
}

/// `PIE_SIM` if set, else `pie-sim` next to the bench binary's directory
/// (target/release/deps/pie_bench-* -> target/release/pie-sim).
pub fn sim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PIE_SIM") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let release = exe.parent().and_then(|d| d.parent()).unwrap_or(&exe);
    release.join("pie-sim")
}

impl Sim {
    pub fn start() -> Result<Sim, String> {
        Sim::start_on(None)
    }

    /// Started on `cpu` only (every thread of the simulator), or where the scheduler puts it.
    pub fn start_on(cpu: Option<usize>) -> Result<Sim, String> {
        let bin = sim_binary();
        let mut command = Command::new(&bin);
        if let Some(cpu) = cpu {
            let mask = crate::placement::one_cpu(cpu);
            // SAFETY: runs between fork and exec; it only makes a system call.
            unsafe {
                command.pre_exec(move || crate::placement::pin_this_thread(&mask));
            }
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({e}); build it with `cargo build --release -p pie-sim` \
                     or set PIE_SIM",
                    bin.display()
                )
            })?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let url = match read {
            Ok(n) if n > 0 => line
                .trim()
                .strip_prefix("listening on ")
                .map(str::to_string)
                .ok_or_else(|| format!("unexpected first line from pie-sim: {line:?}")),
            _ => Err("pie-sim exited before printing its address".to_string()),
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        // Keep draining stdout (the internal token line) so the simulator never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Ok(Sim { child, url })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
