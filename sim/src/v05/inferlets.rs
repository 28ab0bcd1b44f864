//! The simulated inferlets: the six test inferlets of `pie05/inferlets/` (chosen by the
//! manifest's package name; the uploaded source is stored and hashed but not run) and the
//! built-in `compat-openai`. Each reproduces what its Python source (or the built-in) does on
//! the real server, event for event (PROTOCOL-0.5.md §5.4, §6).

use super::codec;
use super::faults::Faults;
use super::processes::Proc;
use super::programs::{Language, Target};
use super::pyjson::Value;
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Names of the simulated test inferlets (manifest `[package] name`).
pub const SIMULATED: [&str; 6] = [
    "echo-args",
    "chat-echo",
    "fail",
    "stream-lines",
    "sleeper",
    "file-echo",
];

/// What a process does, chosen at launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    EchoArgs,
    ChatEcho,
    Fail,
    StreamLines,
    Sleeper,
    FileEcho,
    CompatOpenai,
    /// A program the simulator cannot run: the process ends with this `error` value.
    Cannot(String),
}

pub fn behaviour_for(target: &Target) -> Behaviour {
    match target {
        Target::Builtin(name) if name == "compat-openai" => Behaviour::CompatOpenai,
        Target::Builtin(name) => Behaviour::Cannot(format!(
            "RuntimeError: pie-sim does not simulate the built-in {name} (only compat-openai)"
        )),
        Target::Installed(p) => match (p.language, p.name.as_str()) {
            (Some(Language::Python), "echo-args") => Behaviour::EchoArgs,
            (Some(Language::Python), "chat-echo") => Behaviour::ChatEcho,
            (Some(Language::Python), "fail") => Behaviour::Fail,
            (Some(Language::Python), "stream-lines") => Behaviour::StreamLines,
            (Some(Language::Python), "sleeper") => Behaviour::Sleeper,
            (Some(Language::Python), "file-echo") => Behaviour::FileEcho,
            _ => Behaviour::Cannot(format!(
                "RuntimeError: pie-sim cannot run {}: it simulates only the python inferlets \
                 named {}",
                p.ident(),
                SIMULATED.join(", ")
            )),
        },
    }
}

/// What a running inferlet can do (the `inferlet.session` API and stdout/stderr).
struct Ctx {
    shared: Arc<Shared>,
    proc: Arc<Proc>,
    signals: mpsc::UnboundedReceiver<String>,
}

impl Ctx {
    async fn event(&self, event: &str, value: &str) {
        self.proc
            .emit(codec::process_event(&self.proc.id_text, event, value))
            .await;
    }

    async fn write_stdout(&self, text: &str) {
        self.event("stdout", text).await;
    }

    /// Python `print(*parts)`: one stdout event per write (§9.9), or one per call.
    async fn print(&self, parts: &[String]) {
        if Faults::on(&self.shared.faults.print_per_write) {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    self.write_stdout(" ").await;
                }
                self.write_stdout(part).await;
            }
            self.write_stdout("\n").await;
        } else {
            self.write_stdout(&format!("{}\n", parts.join(" "))).await;
        }
    }

    /// `session.send(x)`: strings verbatim, anything else as JSON.
    async fn send(&self, value: &Value) {
        let text = match value {
            Value::Str(s) => s.clone(),
            other => other.dumps(false),
        };
        self.event("message", &text).await;
    }

    async fn send_file(&self, data: &[u8], name: Option<&str>) {
        for frame in codec::file_frames(&self.proc.id_text, data, name) {
            self.proc.emit(frame).await;
        }
    }

    async fn receive(&mut self) -> Option<String> {
        self.signals.recv().await
    }
}

/// Run a process to its end and send its terminal event (unless it is ended from outside
/// first, which aborts this task).
pub async fn run(
    shared: Arc<Shared>,
    proc: Arc<Proc>,
    signals: mpsc::UnboundedReceiver<String>,
    behaviour: Behaviour,
) {
    // Starting an inferlet takes a moment on the real server (≈ 0.5 s); files sent before it
    // waits in receive_file() are lost (§9.12), signals are queued.
    tokio::time::sleep(shared.startup_delay).await;
    let mut ctx = Ctx {
        shared: shared.clone(),
        proc: proc.clone(),
        signals,
    };
    let outcome = match &behaviour {
        Behaviour::CompatOpenai => compat_openai(&ctx).await,
        Behaviour::Cannot(text) => Err(text.clone()),
        python => match kwargs(&proc.program, &proc.input) {
            Err(e) => Err(e),
            Ok(kw) => run_python(&mut ctx, python, kw).await,
        },
    };
    match outcome {
        Ok(value) => shared.processes.end(&proc, "return", &value),
        Err(value) => shared.processes.end(&proc, "error", &value),
    }
}

/// `call = "kwargs"`: the input must be a JSON object; text that is not JSON at all becomes
/// `{"input": text}` (§5.4).
fn kwargs(ident: &str, input: &str) -> Result<Vec<(String, Value)>, String> {
    match Value::parse(input) {
        Some(Value::Dict(items)) => Ok(items),
        Some(_) => Err(format!(
            "{ident} takes keyword arguments, so its input must be a JSON object"
        )),
        None => Ok(vec![("input".into(), Value::Str(input.to_owned()))]),
    }
}

/// A Python exception as the process's `error` value: `Type: message\nTraceback …`. (Only
/// the first line is taken from the real server; the traceback lines are the simulator's.)
fn exception(ident: &str, kind: &str, message: &str) -> String {
    format!(
        "{kind}: {message}\nTraceback (most recent call last):\n  File \"{ident}\", line 1, in main\n{kind}: {message}"
    )
}

/// Bind keyword arguments to `main(name=default, …)`; `Err`: the TypeError of the call.
fn bind(
    ident: &str,
    mut kw: Vec<(String, Value)>,
    params: &[(&str, Value)],
) -> Result<Vec<Value>, String> {
    if let Some((extra, _)) = kw.iter().find(|(k, _)| !params.iter().any(|(p, _)| p == k)) {
        return Err(exception(
            ident,
            "TypeError",
            &format!("main() got an unexpected keyword argument '{extra}'"),
        ));
    }
    Ok(params
        .iter()
        .map(
            |(name, default)| match kw.iter().position(|(k, _)| k == name) {
                Some(i) => kw.swap_remove(i).1,
                None => default.clone(),
            },
        )
        .collect())
}

fn not_an_integer(ident: &str, v: &Value) -> String {
    exception(
        ident,
        "TypeError",
        &format!(
            "'{}' object cannot be interpreted as an integer",
            v.type_name()
        ),
    )
}

async fn run_python(
    ctx: &mut Ctx,
    behaviour: &Behaviour,
    kw: Vec<(String, Value)>,
) -> Result<String, String> {
    let ident = ctx.proc.program.clone();
    let ident = ident.as_str();
    match behaviour {
        Behaviour::EchoArgs => {
            let kwargs = Value::Dict(kw);
            ctx.print(&["args:".into(), kwargs.dumps(true)]).await;
            ctx.send(&Value::Dict(vec![("args".into(), kwargs.clone())]))
                .await;
            Ok(kwargs.dumps(false))
        }
        Behaviour::ChatEcho => {
            let args = bind(ident, kw, &[("greeting", Value::Str("ready".into()))])?;
            ctx.send(&args[0]).await;
            let mut n: i128 = 0;
            loop {
                let Some(msg) = ctx.receive().await else {
                    // No sender left: the process is being torn down.
                    std::future::pending::<()>().await;
                    unreachable!();
                };
                if msg == "quit" {
                    return Ok(Value::Dict(vec![("echoed".into(), Value::Int(n))]).dumps(false));
                }
                n += 1;
                ctx.send(&Value::Str(format!("echo: {msg}"))).await;
            }
        }
        Behaviour::Fail => {
            let args = bind(ident, kw, &[("message", Value::Str("boom".into()))])?;
            ctx.print(&["about to fail".into()]).await;
            Err(exception(ident, "RuntimeError", &args[0].py_str()))
        }
        Behaviour::StreamLines => {
            let args = bind(
                ident,
                kw,
                &[("n", Value::Int(5)), ("delay_ms", Value::Int(0))],
            )?;
            let n = match &args[0] {
                Value::Int(i) => *i,
                Value::Bool(b) => i128::from(*b),
                other => return Err(not_an_integer(ident, other)),
            };
            let delay = &args[1];
            for i in 0..n.max(0) {
                ctx.write_stdout(&format!("line {i}\n")).await;
                if delay.truthy() {
                    let ms = delay.as_f64().ok_or_else(|| {
                        exception(
                            ident,
                            "TypeError",
                            &format!(
                                "unsupported operand type(s) for /: '{}' and 'int'",
                                delay.type_name()
                            ),
                        )
                    })?;
                    sleep_secs(ident, ms / 1000.0).await?;
                } else if i % 64 == 63 {
                    // Output dropped (detached) never waits: let other tasks run.
                    tokio::task::yield_now().await;
                }
            }
            Ok(args[0].dumps(false))
        }
        Behaviour::Sleeper => {
            let args = bind(ident, kw, &[("seconds", Value::Float(30.0))])?;
            ctx.print(&["sleeping".into(), args[0].py_str()]).await;
            let secs = args[0]
                .as_f64()
                .ok_or_else(|| not_an_integer(ident, &args[0]))?;
            sleep_secs(ident, secs).await?;
            Ok("slept".into())
        }
        Behaviour::FileEcho => {
            bind(ident, kw, &[])?;
            ctx.send(&Value::Str("send me a file".into())).await;
            let Some(data) = ctx.proc.receive_file().await else {
                std::future::pending::<()>().await;
                unreachable!();
            };
            ctx.send_file(&data, None).await;
            Ok(data.len().to_string())
        }
        Behaviour::CompatOpenai | Behaviour::Cannot(_) => unreachable!("not a python inferlet"),
    }
}

/// Python `time.sleep(secs)`.
async fn sleep_secs(ident: &str, secs: f64) -> Result<(), String> {
    if secs < 0.0 {
        return Err(exception(
            ident,
            "ValueError",
            "sleep length must be non-negative",
        ));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => tokio::time::sleep(d).await,
        Err(_) => std::future::pending::<()>().await,
    }
    Ok(())
}

/// Deterministic "tokens" for a prompt (the random-weight model's output is garbage anyway).
pub fn completion_tokens(prompt: &str, count: usize) -> Vec<String> {
    const WORDS: [&str; 16] = [
        "the", "pie", "is", "warm", "and", "a", "token", "flows", "from", "model", "to", "you",
        "with", "care", "every", "time",
    ];
    let mut state = blake3::hash(prompt.as_bytes()).as_bytes()[..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!(" {}", WORDS[(state % WORDS.len() as u64) as usize])
        })
        .collect()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The built-in `compat-openai` over /v1/ws: input `{"prompt", "max_tokens", "stream"}`;
/// streamed: one `message` `{"data":<text_completion chunk>}` per token, then
/// `{"data":"[DONE]"}`, then `return ""`.
async fn compat_openai(ctx: &Ctx) -> Result<String, String> {
    let input = Value::parse(&ctx.proc.input);
    let Some(Value::Dict(_)) = input else {
        // Not observed on the real server; the simulator's own wording.
        return Err("compat-openai: the input must be a JSON object".into());
    };
    let input = input.unwrap_or(Value::Null);
    let prompt = match input.get("prompt") {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::List(items)) => items.iter().map(Value::py_str).collect(),
        _ => match input.get("messages") {
            Some(Value::List(msgs)) => msgs
                .iter()
                .filter_map(|m| m.get("content").map(Value::py_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        },
    };
    let max_tokens = match input.get("max_tokens") {
        Some(Value::Int(n)) if *n >= 0 => (*n).min(4096) as usize,
        _ => 16,
    };
    let stream = input.get("stream").is_some_and(Value::truthy);
    let shared = &ctx.shared;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id = format!("cmpl-{}", ctx.proc.id.simple());
    let chunk = |text: &str, finish: Option<&str>| {
        format!(
            r#"{{"id":{},"object":"text_completion","created":{created},"model":"default","choices":[{{"index":0,"text":{},"logprobs":null,"finish_reason":{}}}]"#,
            json_str(&id),
            json_str(text),
            finish.map_or("null".to_string(), json_str)
        )
    };
    let prompt_tokens = prompt.split_whitespace().count().max(1) as u64;
    shared.stats.kv_pages_used.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .total_tokens_processed
        .fetch_add(prompt_tokens, Ordering::Relaxed);
    struct Release<'a>(&'a Shared);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.stats.kv_pages_used.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _release = Release(shared);
    let tokens = completion_tokens(&prompt, max_tokens);
    for (i, token) in tokens.iter().enumerate() {
        tokio::time::sleep(shared.token_delay).await;
        if i == 1 && Faults::on(&shared.faults.engine_wedge) {
            // §9.1: the engine stalls; the process never ends (until terminated).
            std::future::pending::<()>().await;
        }
        shared.stats.total_batches.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .total_tokens_processed
            .fetch_add(1, Ordering::Relaxed);
        if stream {
            let finish = (i + 1 == tokens.len()).then_some("length");
            ctx.event(
                "message",
                &format!(r#"{{"data":{}}}}}"#, chunk(token, finish)),
            )
            .await;
        }
    }
    if stream {
        ctx.event("message", r#"{"data":"[DONE]"}"#).await;
    } else {
        let text: String = tokens.concat();
        let n = tokens.len() as u64;
        let whole = format!(
            r#"{},"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":{n},"total_tokens":{}}}}}"#,
            chunk(&text, Some("length")),
            prompt_tokens + n
        );
        ctx.event("message", &format!(r#"{{"data":{whole}}}"#))
            .await;
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwargs_rules() {
        assert_eq!(
            kwargs("echo-args@0.1.0", "[1,2]").unwrap_err(),
            "echo-args@0.1.0 takes keyword arguments, so its input must be a JSON object"
        );
        assert_eq!(
            kwargs("x@1.0.0", "hello").unwrap(),
            vec![("input".to_string(), Value::Str("hello".into()))]
        );
        assert_eq!(kwargs("x@1.0.0", "{}").unwrap(), vec![]);
    }

    #[test]
    fn bind_reports_unexpected_keywords() {
        let kw = vec![("zzz".to_string(), Value::Int(1))];
        let e = bind("sleeper@0.1.0", kw, &[("seconds", Value::Float(30.0))]).unwrap_err();
        assert!(
            e.starts_with("TypeError: main() got an unexpected keyword argument 'zzz'\nTraceback")
        );
        let args = bind("s", vec![], &[("seconds", Value::Float(30.0))]).unwrap();
        assert_eq!(args, vec![Value::Float(30.0)]);
    }

    #[test]
    fn tokens_are_deterministic() {
        assert_eq!(completion_tokens("Hello", 3), completion_tokens("Hello", 3));
        assert_eq!(completion_tokens("Hello", 3).len(), 3);
    }
}
