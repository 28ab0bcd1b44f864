//! What simulated instances do: the script language of `pie-sim` sections and the built-in
//! inferlets (documented in sim/README.md).

use crate::codec::event_code;
use crate::instances::{Emission, Inbox, Instance, Instances};
use crate::programs;
use std::sync::Arc;
use std::time::Duration;

/// Names of the built-in behaviours (also served by the registry under namespace `std`).
pub const BUILTINS: &[&str] = &[
    "text-completion",
    "chat",
    "echo",
    "fail",
    "forever",
    "flood",
    "blob-echo",
    "oom",
    "busy",
    "unknown-event",
];

/// Text of the exception a real (non-simulated) component ends with in the simulator.
pub const CANNOT_RUN_WASM: &str =
    "Runtime error: Instantiation error: the simulator cannot run WebAssembly";

/// How a behaviour ends.
enum Outcome {
    /// A terminal event: (code, text).
    End(u32, String),
    /// Runs until terminated.
    Forever,
}

struct Runner {
    inst: Arc<Instance>,
    inbox: Inbox,
    instances: Arc<Instances>,
}

impl Runner {
    async fn out(&self, text: impl Into<String>) {
        self.inst.emit(Emission::Stdout(text.into())).await;
    }
    async fn err(&self, text: impl Into<String>) {
        self.inst.emit(Emission::Stderr(text.into())).await;
    }
    async fn message(&self, text: impl Into<String>) {
        self.inst.emit(Emission::Message(text.into())).await;
    }
    async fn recv(&mut self) -> Option<String> {
        self.inbox.messages.recv().await
    }
}

/// Run the program of `inst` to its end and report the terminal event.
pub async fn run(instances: Arc<Instances>, inst: Arc<Instance>, inbox: Inbox, program: &[u8]) {
    let args = inst.arguments.clone();
    let mut runner = Runner {
        inst: inst.clone(),
        inbox,
        instances: instances.clone(),
    };
    let outcome = match programs::script_of(program) {
        Some(script) => run_script(&mut runner, &script, &args).await,
        None => Outcome::End(event_code::EXCEPTION, CANNOT_RUN_WASM.to_string()),
    };
    match outcome {
        Outcome::End(code, text) => instances.finish(&inst, code, text),
        Outcome::Forever => std::future::pending::<()>().await,
    }
}

/// Expand `\n \t \r \\ \s` escapes and `$ARGS $# $1..$9 $$` substitutions.
fn expand(text: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('s') => out.push(' '),
                Some('\\') => out.push('\\'),
                Some('$') => out.push('$'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '$' => match chars.peek().copied() {
                Some('$') => {
                    chars.next();
                    out.push('$');
                }
                Some('#') => {
                    chars.next();
                    out.push_str(&args.len().to_string());
                }
                Some(d @ '1'..='9') => {
                    chars.next();
                    let i = d as usize - '1' as usize;
                    out.push_str(args.get(i).map(String::as_str).unwrap_or(""));
                }
                Some('A') if text_starts(&mut chars.clone(), "ARGS") => {
                    for _ in 0..4 {
                        chars.next();
                    }
                    out.push_str(&args.join(" "));
                }
                _ => out.push('$'),
            },
            _ => out.push(c),
        }
    }
    out
}

fn text_starts(chars: &mut impl Iterator<Item = char>, word: &str) -> bool {
    word.chars().all(|w| chars.next() == Some(w))
}

async fn run_script(r: &mut Runner, script: &str, args: &[String]) -> Outcome {
    for (lineno, line) in script.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let text = expand(rest, args);
        match cmd {
            "stdout" => r.out(text).await,
            "stderr" => r.err(text).await,
            "message" => r.message(text).await,
            "blob" => r.inst.emit(Emission::Blob(text.into_bytes())).await,
            "sleep" => match text.trim().parse::<u64>() {
                Ok(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Err(_) => return script_error(lineno, "sleep needs milliseconds"),
            },
            "recv" => match r.recv().await {
                Some(m) => r.out(m).await,
                None => return Outcome::Forever,
            },
            "recv-blob" => match r.inbox.blobs.recv().await {
                Some(b) => r.inst.emit(Emission::Blob(b)).await,
                None => return Outcome::Forever,
            },
            "event" => {
                let (code, msg) = text.split_once(' ').unwrap_or((&text, ""));
                match code.parse::<u32>() {
                    Ok(code) => r.inst.emit(Emission::Event(code, msg.to_string())).await,
                    Err(_) => return script_error(lineno, "event needs a numeric code"),
                }
            }
            "complete" => return Outcome::End(event_code::COMPLETED, text),
            "fail" => return Outcome::End(event_code::EXCEPTION, format!("Runtime error: {text}")),
            "exception" => return Outcome::End(event_code::EXCEPTION, text),
            "oom" => return oom(),
            "forever" => return Outcome::Forever,
            "busy" => {
                r.instances.mark_busy(&r.inst);
                return Outcome::Forever;
            }
            "behaviour" | "behavior" => return builtin(r, text.trim(), args).await,
            other => return script_error(lineno, &format!("unknown step '{other}'")),
        }
    }
    Outcome::End(event_code::COMPLETED, String::new())
}

fn script_error(lineno: usize, what: &str) -> Outcome {
    Outcome::End(
        event_code::EXCEPTION,
        format!("Runtime error: pie-sim script line {}: {what}", lineno + 1),
    )
}

fn oom() -> Outcome {
    Outcome::End(
        event_code::SERVER_ERROR,
        "Terminated by OOM killer for an older instance".into(),
    )
}

/// Value of `--name VALUE` in the arguments.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn opt_num(args: &[String], name: &str, default: u64) -> u64 {
    opt(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "answers",
    "with",
    "a",
    "deterministic",
    "stream",
    "of",
    "tokens",
    "that",
    "looks",
    "like",
    "language",
    "simulated",
    "text",
    "for",
    "testing",
    "clients",
    "and",
    "their",
    "event",
    "queues",
    "under",
    "realistic",
    "framing",
    "in",
    "small",
    "pieces",
    "sometimes",
    "split",
    "across",
    "frames",
];

/// The deterministic completion of `prompt`: `max_tokens` tokens, each a word with a leading
/// space (an FNV-1a hash of the prompt seeds a small LCG).
pub fn completion_tokens(prompt: &str, max_tokens: usize) -> Vec<String> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prompt.bytes() {
        state = (state ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (0..max_tokens)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            format!(" {}", WORDS[(state >> 33) as usize % WORDS.len()])
        })
        .collect()
}

async fn builtin(r: &mut Runner, name: &str, args: &[String]) -> Outcome {
    match name {
        "text-completion" => {
            let prompt = opt(args, "--prompt").unwrap_or("");
            let max = opt_num(args, "--max-tokens", 24) as usize;
            let delay = Duration::from_millis(opt_num(args, "--delay-ms", 1));
            let tokens = completion_tokens(prompt, max);
            for (i, tok) in tokens.iter().enumerate() {
                if i % 5 == 3 && tok.len() >= 3 {
                    // Like a real tokenizer/writer, some tokens arrive in two frames (§16).
                    let cut = tok.len() / 2;
                    r.out(&tok[..cut]).await;
                    r.out(&tok[cut..]).await;
                } else {
                    r.out(tok.as_str()).await;
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            r.out("\n").await;
            Outcome::End(event_code::COMPLETED, tokens.concat())
        }
        "chat" => loop {
            match r.recv().await {
                Some(m) if m == "bye" => return Outcome::End(event_code::COMPLETED, "bye".into()),
                Some(m) => r.message(format!("you said: {m}")).await,
                None => return Outcome::Forever,
            }
        },
        "echo" => {
            for a in args {
                r.out(format!("{a}\n")).await;
            }
            r.err(format!("echo: {} arguments\n", args.len())).await;
            let joined = args.join(" ");
            r.message(joined.clone()).await;
            Outcome::End(event_code::COMPLETED, format!("echo: {joined}"))
        }
        "fail" => Outcome::End(event_code::EXCEPTION, "Runtime error: \"boom\"".into()),
        "forever" => {
            let interval = Duration::from_millis(opt_num(args, "--interval-ms", 200).max(1));
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(interval).await;
                n += 1;
                r.out(format!("tick {n}\n")).await;
            }
        }
        "flood" => {
            let count = opt_num(args, "--count", 1000);
            for i in 0..count {
                r.out(format!("{i}\n")).await;
            }
            Outcome::End(event_code::COMPLETED, count.to_string())
        }
        "blob-echo" => {
            let limit = opt(args, "--count").and_then(|v| v.parse::<u64>().ok());
            let mut echoed: u64 = 0;
            loop {
                if limit.is_some_and(|l| echoed >= l) {
                    return Outcome::End(event_code::COMPLETED, format!("echoed {echoed} blobs"));
                }
                tokio::select! {
                    blob = r.inbox.blobs.recv() => match blob {
                        Some(b) => {
                            r.inst.emit(Emission::Blob(b)).await;
                            echoed += 1;
                        }
                        None => return Outcome::Forever,
                    },
                    msg = r.inbox.messages.recv() => match msg {
                        Some(m) if m == "bye" => {
                            return Outcome::End(event_code::COMPLETED, format!("echoed {echoed} blobs"));
                        }
                        Some(_) => {}
                        None => return Outcome::Forever,
                    },
                }
            }
        }
        "oom" => oom(),
        "busy" => {
            r.instances.mark_busy(&r.inst);
            Outcome::Forever
        }
        "unknown-event" => {
            r.out("about to send event code 9\n").await;
            Outcome::End(9, "simulated unknown event".into())
        }
        other => Outcome::End(
            event_code::EXCEPTION,
            format!("Runtime error: pie-sim has no built-in behaviour '{other}'"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let args = vec!["a".to_string(), "b c".to_string()];
        assert_eq!(expand(r"x\ny\\z\s", &args), "x\ny\\z ");
        assert_eq!(
            expand("$1-$2-$3 [$ARGS] $# $$ $A", &args),
            "a-b c- [a b c] 2 $ $A"
        );
    }

    #[test]
    fn completion_is_deterministic() {
        let a = completion_tokens("hi", 10);
        assert_eq!(a, completion_tokens("hi", 10));
        assert_ne!(a, completion_tokens("ho", 10));
        assert!(a.iter().all(|t| t.starts_with(' ')));
    }
}
