//! `pie-sim --protocol 0.5 [options]`: the command line of the 0.5 simulator (parsed here,
//! run by main.rs).

use super::{Config, FAULT_NAMES, SIMULATED};
use std::io::Write;
use std::time::Duration;

pub const USAGE: &str = "usage: pie-sim --protocol 0.5 [options]   (a pie-server 0.5.2 stand-in)
options:
  --listen ADDR              default 127.0.0.1:8080 (port 0: any free port)
  --fault NAME[=on|off]      switch a defect of the real server (repeatable); NAME is one of
                             engine-wedge (default off), detached-empty-id, silent-replace,
                             unchecked-chunk-order, silent-fire-and-forget,
                             silent-early-bad-frames, turn-done, shared-process-view,
                             print-per-write, drop-early-files, owner-only-signals (default on)
  --correct                  switch every defect off (a correct server)
  --startup-delay-ms N       launch -> inferlet code runs (default 50)
  --token-delay-ms N         per compat-openai token (default 20)
  --home DIR                 the server's $HOME shown in 'not installed' replies
  --install MANIFEST=FILE    install a program at start (TOML manifest, artifact file)
  --verbose                  print the server's log lines to stderr
simulated inferlets (by manifest name): ";

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn millis(v: &str) -> Result<Duration, String> {
    v.parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("bad milliseconds '{v}'"))
}

/// Parse the arguments (all of `pie-sim`'s, `--protocol 0.5` included) into a config; `None`
/// after printing the help.
pub fn parse(args: &[String]) -> Result<Option<Config>, String> {
    let mut config = Config {
        listen: "127.0.0.1:8080"
            .parse()
            .map_err(|_| "bad default address")?,
        ..Config::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                // Not println!: a closed pipe (`| head`) must not panic.
                let _ = writeln!(std::io::stdout(), "{USAGE}{}", SIMULATED.join(", "));
                return Ok(None);
            }
            "--protocol" => {
                let v = value()?;
                if v != "0.5" {
                    return Err(format!("this is the 0.5 command line, not '{v}'"));
                }
            }
            "--listen" => {
                let v = value()?;
                config.listen = v.parse().map_err(|_| format!("bad address '{v}'"))?;
            }
            "--fault" => {
                let v = value()?;
                if !config.faults.apply_arg(&v) {
                    return Err(format!(
                        "unknown fault '{v}' (have: {}; NAME=off switches one off)",
                        FAULT_NAMES.join(", ")
                    ));
                }
            }
            "--correct" => {
                for name in FAULT_NAMES {
                    config.faults.set_by_name(name, false);
                }
            }
            "--startup-delay-ms" => config.startup_delay = millis(&value()?)?,
            "--token-delay-ms" => config.token_delay = millis(&value()?)?,
            "--home" => config.home = value()?,
            "--install" => {
                let v = value()?;
                let (manifest, artifact) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--install wants MANIFEST=FILE, got '{v}'"))?;
                let manifest = String::from_utf8(read(manifest)?)
                    .map_err(|_| format!("{manifest}: not UTF-8"))?;
                config.programs.push((read(artifact)?, manifest));
            }
            "--verbose" => config.verbose = true,
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v05::Faults;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_faults_and_delays() {
        let c = parse(&args(&[
            "--protocol",
            "0.5",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "engine-wedge",
            "--fault",
            "turn-done=off",
            "--startup-delay-ms",
            "7",
        ]))
        .unwrap()
        .unwrap();
        assert!(Faults::on(&c.faults.engine_wedge));
        assert!(!Faults::on(&c.faults.turn_done));
        assert_eq!(c.startup_delay, Duration::from_millis(7));
        assert!(parse(&args(&["--fault", "nope"])).is_err());
        assert!(parse(&args(&["--protocol", "2026"])).is_err());
    }
}
