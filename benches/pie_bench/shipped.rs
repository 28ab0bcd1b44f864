//! The C API as it ships: `benches/c/ping_driver.c`, compiled against `include/pie.h` and linked
//! with the `libpie.so` that `make` builds (crate types cdylib + staticlib only: what `make
//! install` installs). This benchmark binary links the library's Rust build instead (an rlib
//! among the crate types), in which fat LTO must keep every Rust symbol visible and so inlines
//! less: the same code runs measurably slower there. `scripts/bench.sh` builds the driver and
//! names it in `PIE_BENCH_SHIPPED_DRIVER`.
//!
//! The driver is a child process taking one command per line, so its rounds interleave with
//! the other clients' rounds like every variant here.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The environment variable naming the driver binary.
pub const DRIVER_ENV: &str = "PIE_BENCH_SHIPPED_DRIVER";

pub struct ShippedC {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
}

/// One round of pings in flight, as the driver measured it (its own process only).
pub struct InFlightRound {
    pub wall: Duration,
    pub cpu: Duration,
    pub context_switches: u64,
}

impl ShippedC {
    /// Starts the driver against `url`; `None` if `PIE_BENCH_SHIPPED_DRIVER` is not set.
    pub fn start(url: &str) -> Result<Option<ShippedC>, String> {
        let Some(path) = std::env::var_os(DRIVER_ENV) else {
            return Ok(None);
        };
        let mut child = Command::new(&path)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.to_string_lossy()))?;
        let commands = child.stdin.take().ok_or("driver without stdin")?;
        let answers = BufReader::new(child.stdout.take().ok_or("driver without stdout")?);
        Ok(Some(ShippedC {
            child,
            commands,
            answers,
        }))
    }

    /// Sends `command`; the answer's words after the echoed command name.
    fn ask(&mut self, command: &str, count: usize) -> Result<Vec<u64>, String> {
        writeln!(self.commands, "{command} {count}")
            .and_then(|_| self.commands.flush())
            .map_err(|e| format!("ping_driver: {e}"))?;
        let mut line = String::new();
        self.answers
            .read_line(&mut line)
            .map_err(|e| format!("ping_driver: {e}"))?;
        let mut words = line.split_whitespace();
        match words.next() {
            Some(answer) if answer == command => words
                .map(|w| {
                    w.parse::<u64>()
                        .map_err(|e| format!("ping_driver: {e}: {line}"))
                })
                .collect(),
            Some("error") => Err(format!("ping_driver: {}", line.trim_end())),
            _ => Err(format!("ping_driver: unexpected answer {line:?}")),
        }
    }

    /// `batches` batches of 64 pie_client_ping_async, each waited for and freed.
    pub fn in_flight(&mut self, batches: usize) -> Result<InFlightRound, String> {
        match self.ask("inflight", batches)?[..] {
            [wall, cpu, context_switches] => Ok(InFlightRound {
                wall: Duration::from_nanos(wall),
                cpu: Duration::from_nanos(cpu),
                context_switches,
            }),
            _ => Err("ping_driver: malformed inflight answer".into()),
        }
    }

    /// `n` blocking pie_client_ping, one after another: each one's round trip.
    pub fn pings(&mut self, n: usize) -> Result<Vec<Duration>, String> {
        let took = self.ask("ping", n)?;
        if took.len() != n {
            return Err(format!(
                "ping_driver: {} latencies for {n} pings",
                took.len()
            ));
        }
        Ok(took.into_iter().map(Duration::from_nanos).collect())
    }
}

impl Drop for ShippedC {
    fn drop(&mut self) {
        // End of input ends the driver; it frees its client and exits.
        let _ = self.commands.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
