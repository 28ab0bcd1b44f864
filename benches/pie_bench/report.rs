//! Results: measurements, statistics and the PASS/MISS targets, printed as Markdown tables.

use std::time::Duration;

pub struct Row {
    pub section: &'static str,
    pub name: String,
    pub value: String,
    pub note: String,
}

pub struct Check {
    pub target: String,
    pub measured: String,
    pub pass: bool,
    /// Stable targets (allocation counts, memory, ratios far from their threshold on any
    /// machine) fail `scripts/bench.sh --check`; noisy ones (throughput and latency ratios on a
    /// shared machine) are only reported.
    pub stable: bool,
}

/// A figure quoted from the specification (PROTOCOL.md §16, measured against the real
/// January-2026 server), never measured by this run: printed in its own table.
pub struct Reference {
    pub section: &'static str,
    pub name: String,
    pub value: String,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub references: Vec<Reference>,
    pub failures: Vec<String>,
    /// Appended to the name of every row and target while set (e.g. the ping section's
    /// placement of server and clients).
    pub name_suffix: String,
}

impl Report {
    pub fn row(
        &mut self,
        section: &'static str,
        name: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) {
        let r = Row {
            section,
            name: name.into() + &self.name_suffix,
            value: value.into(),
            note: note.into(),
        };
        // Progress while the run goes on (the full table comes at the end).
        eprintln!(
            "  {:<11} {:<58} {:>16}  {}",
            r.section, r.name, r.value, r.note
        );
        self.rows.push(r);
    }

    /// A target whose result is steady from run to run: a MISS fails `--check`.
    pub fn check(&mut self, target: impl Into<String>, measured: impl Into<String>, pass: bool) {
        self.push_check(target.into(), measured.into(), pass, true);
    }

    /// A target that depends on timing on a shared machine: reported, never enforced.
    pub fn check_noisy(
        &mut self,
        target: impl Into<String>,
        measured: impl Into<String>,
        pass: bool,
    ) {
        self.push_check(target.into(), measured.into(), pass, false);
    }

    fn push_check(&mut self, target: String, measured: String, pass: bool, stable: bool) {
        let c = Check {
            target: target + &self.name_suffix,
            measured,
            pass,
            stable,
        };
        eprintln!(
            "  {}  {} ({}){}",
            if c.pass { "PASS" } else { "MISS" },
            c.target,
            c.measured,
            if c.stable { "" } else { " [noisy]" }
        );
        self.checks.push(c);
    }

    pub fn reference(
        &mut self,
        section: &'static str,
        name: impl Into<String>,
        value: impl Into<String>,
    ) {
        self.references.push(Reference {
            section,
            name: name.into(),
            value: value.into(),
        });
    }

    /// Stable targets missed (what `scripts/bench.sh --check` fails on).
    pub fn stable_misses(&self) -> usize {
        self.checks.iter().filter(|c| c.stable && !c.pass).count()
    }

    pub fn fail(&mut self, what: &str, err: impl std::fmt::Display) {
        let msg = format!("{what}: {err}");
        eprintln!("  ERROR {msg}");
        self.failures.push(msg);
    }

    pub fn print(&self) {
        println!("| Section | Measurement | Value | Compared with / notes |");
        println!("| --- | --- | ---: | --- |");
        for r in &self.rows {
            println!("| {} | {} | {} | {} |", r.section, r.name, r.value, r.note);
        }
        println!();
        println!("| Target | Kind | Measured | Result |");
        println!("| --- | --- | --- | --- |");
        for c in &self.checks {
            println!(
                "| {} | {} | {} | {} |",
                c.target,
                if c.stable { "stable" } else { "noisy" },
                c.measured,
                if c.pass { "PASS" } else { "**MISS**" }
            );
        }
        if !self.references.is_empty() {
            println!();
            println!(
                "Reference figures quoted from PROTOCOL.md §16 (a real January-2026 server, 2 cores, \
                 loopback, a minimal client unless stated). Not measured by this run and not \
                 comparable with the simulator rows above; for orientation only."
            );
            println!();
            println!("| Section | Reference | Value |");
            println!("| --- | --- | ---: |");
            for r in &self.references {
                println!("| {} | {} | {} |", r.section, r.name, r.value);
            }
        }
        if !self.failures.is_empty() {
            println!();
            println!("Errors (measurements that could not be taken):");
            for f in &self.failures {
                println!("- {f}");
            }
        }
        let missed = self.checks.iter().filter(|c| !c.pass).count();
        println!();
        println!(
            "{} targets: {} PASS, {} MISS ({} of them stable); {} errors",
            self.checks.len(),
            self.checks.len() - missed,
            missed,
            self.stable_misses(),
            self.failures.len()
        );
    }
}

/// Latency summary of a set of samples.
#[derive(Clone, Copy, Debug)]
pub struct Lat {
    pub n: usize,
    pub median: Duration,
    pub p99: Duration,
}

impl Lat {
    pub fn of(mut v: Vec<Duration>) -> Lat {
        v.sort();
        let n = v.len();
        if n == 0 {
            return Lat {
                n,
                median: Duration::ZERO,
                p99: Duration::ZERO,
            };
        }
        let p99_index = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
        Lat {
            n,
            median: if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2
            },
            p99: v[p99_index],
        }
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Human-readable rate with thousands separators.
pub fn per_sec(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}
