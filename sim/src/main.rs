//! `pie-sim`: run the simulator, or build simulated programs.
//!
//! ```text
//! pie-sim [--listen ADDR] [--internal-token T] [--auth-user NAME --auth-key PUBKEY_FILE]...
//!         [--bad-token-delay-ms MIN-MAX] [--fault NAME]... [--program FILE]...
//!         [--registry NS/NAME@VERSION=FILE]... [--tls-cert PEM --tls-key PEM]
//! pie-sim make-program 'STEP' ['STEP'...] > program.wasm   (one script line per argument)
//! pie-sim make-program --builtin NAME > program.wasm
//! ```

use pie_sim::{script_program, SimConfig, Simulator, BUILTINS};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  pie-sim [options]                 run the simulator
  pie-sim make-program 'STEP'...    write a simulated program to stdout (one script line per
                                    argument; see sim/README.md)
  pie-sim make-program --builtin NAME
options:
  --listen ADDR                 default 127.0.0.1:8080 (port 0: any free port)
  --internal-token T            default: random 64 alphanumeric characters (printed)
  --auth-user NAME --auth-key F authorize NAME with the public key in file F (repeatable;
                                enables authentication)
  --auth                        enable authentication even without users
  --bad-token-delay-ms MIN-MAX  delay before 'Invalid token' (default 1000-3000)
  --program FILE                preload a program (repeatable)
  --registry NS/NAME@VER=FILE   add a registry entry (repeatable)
  --tls-cert PEM --tls-key PEM  serve wss://
  --fault NAME                  q1 | q6 | silence | unknown-event-code | wedge-launches |
                                drop-after-frames=N (repeatable)
  --protocol 2026-01|0.5        the protocol to speak (default 2026-01, the January-2026
                                server); `pie-sim --protocol 0.5 --help` for the 0.5 options
built-in behaviours: ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("make-program") {
        make_program(&args[1..])
    } else if let Some(protocol) = protocol_arg(&args) {
        // `--protocol 0.5`: the Pie 0.5 simulator (its own command line, sim/src/v05/cli.rs).
        match protocol.as_str() {
            "0.5" => run_05(&args),
            "2026-01" | "january" => run(&strip_protocol(&args)),
            other => Err(format!("unknown protocol '{other}' (have: 2026-01, 0.5)")),
        }
    } else {
        run(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pie-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--protocol 0.5`: the Pie 0.5 simulator (its options: sim/src/v05/cli.rs). The first
/// stdout line is `listening on ws://HOST:PORT/v1/ws`.
fn run_05(args: &[String]) -> Result<(), String> {
    let Some(config) = pie_sim::v05::cli::parse(args)? else {
        return Ok(()); // --help
    };
    let mut sim =
        pie_sim::v05::Simulator::start(config).map_err(|e| format!("cannot start: {e}"))?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", sim.url());
    let _ = out.flush();
    wait_for_signal()?;
    sim.stop();
    Ok(())
}

/// The value of `--protocol`, if given.
fn protocol_arg(args: &[String]) -> Option<String> {
    let at = args.iter().position(|a| a == "--protocol")?;
    Some(args.get(at + 1).cloned().unwrap_or_default())
}

fn strip_protocol(args: &[String]) -> Vec<String> {
    let at = args.iter().position(|a| a == "--protocol");
    args.iter()
        .enumerate()
        .filter(|(i, _)| at.map_or(true, |p| *i != p && *i != p + 1))
        .map(|(_, a)| a.clone())
        .collect()
}

fn make_program(args: &[String]) -> Result<(), String> {
    let script = match args {
        [flag, name] if flag == "--builtin" => {
            if !BUILTINS.contains(&name.as_str()) {
                return Err(format!(
                    "unknown built-in '{name}' (have: {})",
                    BUILTINS.join(", ")
                ));
            }
            format!("behaviour {name}")
        }
        [] => return Err(format!("{USAGE}{}", BUILTINS.join(", "))),
        // Several arguments are several lines (handy from a shell).
        lines => lines.join("\n"),
    };
    std::io::stdout()
        .write_all(&script_program(&script))
        .map_err(|e| e.to_string())
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let mut config = SimConfig {
        listen: "127.0.0.1:8080"
            .parse()
            .map_err(|_| "bad default address")?,
        ..SimConfig::default()
    };
    let mut pending_user: Option<String> = None;
    let (mut cert, mut key) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}{}", BUILTINS.join(", "));
                return Ok(());
            }
            "--listen" => {
                let v = value()?;
                config.listen = v.parse().map_err(|_| format!("bad address '{v}'"))?;
            }
            "--internal-token" => config.internal_token = Some(value()?),
            "--auth" => config.auth_enabled = true,
            "--auth-user" => pending_user = Some(value()?),
            "--auth-key" => {
                let user = pending_user
                    .clone()
                    .ok_or("--auth-key must follow --auth-user")?;
                let path = value()?;
                let text = String::from_utf8(read(&path)?)
                    .map_err(|_| format!("{path}: not a text file"))?;
                config.auth_enabled = true;
                config.users.push((user, vec![text]));
            }
            "--bad-token-delay-ms" => {
                let v = value()?;
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                let lo: u64 = lo.parse().map_err(|_| format!("bad delay '{v}'"))?;
                let hi: u64 = hi.parse().map_err(|_| format!("bad delay '{v}'"))?;
                if hi < lo {
                    return Err(format!("bad delay '{v}'"));
                }
                config.bad_token_delay = Duration::from_millis(lo)..Duration::from_millis(hi);
            }
            "--program" => config.programs.push(read(&value()?)?),
            "--registry" => {
                let v = value()?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or_else(|| format!("bad registry entry '{v}'"))?;
                let key = pie_sim::parse_name(name);
                config.registry.insert(key, read(path)?);
            }
            "--tls-cert" => cert = Some(read(&value()?)?),
            "--tls-key" => key = Some(read(&value()?)?),
            "--fault" => {
                let v = value()?;
                if !config.faults.enable_by_name(&v) {
                    return Err(format!("unknown fault '{v}'"));
                }
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => config.tls = Some((c, k)),
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    let token_given = config.internal_token.is_some();
    let mut sim = Simulator::start(config).map_err(|e| format!("cannot start: {e}"))?;
    let mut out = std::io::stdout();
    // Scripts read the port from this first line.
    let _ = writeln!(out, "listening on {}", sim.url());
    if !token_given {
        let _ = writeln!(out, "internal token {}", sim.internal_token());
    }
    let _ = out.flush();
    wait_for_signal()?;
    sim.stop();
    Ok(())
}

fn wait_for_signal() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })
}
