//! Where the ping section runs the simulator and the clients.
//!
//! Left to the scheduler on a machine of two cores, the placement decides the ratios: the raw
//! client (one thread) and the simulator mostly end up on one core, where a round trip is two
//! local context switches (10–20 µs on the 2-core test machine), while a client with a network
//! thread gets spread over both cores, where every wake-up crosses to the other core (50–80 µs).
//! The raw ceiling and the library are then not measured alike. Pinned, the simulator has one
//! core and every client the other, which is also how a client meets a real server (another
//! machine, or other cores); `scripts/pie05/bench05.py` pins the real 0.5 server the same way.
//! The ping section runs pinned for its targets and again unpinned, for reference
//! (docs/BENCHMARKS.md, "Placement").

use std::mem;

/// A placement: the simulator's CPU and the clients' CPU, or none (the scheduler decides).
#[derive(Clone, Copy)]
pub struct Placement {
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
}

impl Placement {
    pub const UNPINNED: Placement = Placement {
        server_cpu: None,
        client_cpu: None,
    };

    /// The simulator on the first CPU this process may use, the clients on the second; `None`
    /// with fewer than two, or if this process may not set CPU affinities (a sandbox that
    /// forbids it): the section then runs unpinned only.
    pub fn separate_cores() -> Option<Placement> {
        let before = current_mask()?;
        let cpus = allowed_cpus()?;
        let [server, client, ..] = cpus[..] else {
            return None;
        };
        // Tried once on this thread (and undone) before anything depends on it.
        if let Err(e) = pin_this_thread(&one_cpu(client)).and_then(|()| pin_this_thread(&before)) {
            eprintln!("ping: cannot set CPU affinity ({e}); measuring unpinned only");
            let _ = pin_this_thread(&before);
            return None;
        }
        Some(Placement {
            server_cpu: Some(server),
            client_cpu: Some(client),
        })
    }

    /// Appended to the name of every row measured with this placement.
    pub fn tag(&self) -> String {
        match (self.server_cpu, self.client_cpu) {
            (Some(s), Some(c)) => format!(" [simulator on CPU {s}, clients on CPU {c}]"),
            _ => " [unpinned]".to_string(),
        }
    }

    /// Pins every thread of this process to the clients' CPU until the guard is dropped
    /// (threads started meanwhile inherit it, child processes too). Unpinned: does nothing.
    pub fn pin_clients(&self) -> Result<ClientPin, String> {
        let Some(cpu) = self.client_cpu else {
            return Ok(ClientPin { restore: None });
        };
        let previous = current_mask().ok_or("cannot read this process's CPU affinity")?;
        set_every_thread(&one_cpu(cpu))
            .map_err(|e| format!("cannot pin the benchmark to CPU {cpu}: {e}"))?;
        Ok(ClientPin {
            restore: Some(previous),
        })
    }
}

/// Restores every thread's CPU mask when dropped.
pub struct ClientPin {
    restore: Option<libc::cpu_set_t>,
}

impl Drop for ClientPin {
    fn drop(&mut self) {
        if let Some(mask) = self.restore.take() {
            // Best effort: a thread that cannot be restored stays pinned, which only slows
            // later sections down.
            let _ = set_every_thread(&mask);
        }
    }
}

/// A mask of one CPU.
pub fn one_cpu(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: CPU_SET writes a bit of `set`; `cpu` is below CPU_SETSIZE (it came from a mask).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set
}

/// Applies `mask` to the calling thread. Only a system call: safe to run between fork and exec.
pub fn pin_this_thread(mask: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: `mask` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), mask) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn current_mask() -> Option<libc::cpu_set_t> {
    // SAFETY: all zeroes is a valid cpu_set_t; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (rc == 0).then_some(set)
}

fn allowed_cpus() -> Option<Vec<usize>> {
    let set = current_mask()?;
    let size = libc::CPU_SETSIZE as usize;
    // SAFETY: CPU_ISSET reads a bit of `set`; every index is below CPU_SETSIZE.
    Some(
        (0..size)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect(),
    )
}

/// Applies `mask` to every thread of this process (/proc/self/task: the runtime's worker
/// threads exist before the section starts).
fn set_every_thread(mask: &libc::cpu_set_t) -> std::io::Result<()> {
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: `mask` is a valid cpu_set_t of the size passed.
        let rc = unsafe { libc::sched_setaffinity(tid, mem::size_of::<libc::cpu_set_t>(), mask) };
        // A thread that ended since the listing is gone, not a failure.
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
    }
    Ok(())
}
