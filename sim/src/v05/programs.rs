//! Installed programs (PROTOCOL-0.5.md §5.2–§5.4): artifact + TOML manifest, keyed by
//! `name@version`, plus the built-in compat programs.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The built-in programs every 0.5.2 server has (`check_program` → `"true"`).
pub const BUILTIN_PROGRAMS: [&str; 3] = ["compat-openai", "compat-anthropic", "compat-gemini"];
pub const BUILTIN_VERSION: &str = "0.1.0";

/// `major.minor.patch`, compared numerically (for "latest installed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.');
        let mut next = || -> Option<u64> {
            let p = parts.next()?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let v = Version(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[derive(Debug, Deserialize)]
struct ManifestToml {
    package: PackageToml,
    runtime: Option<RuntimeToml>,
}

#[derive(Debug, Deserialize)]
struct PackageToml {
    name: String,
    version: String,
}

#[derive(Debug, Deserialize)]
struct RuntimeToml {
    language: Language,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Javascript,
}

/// What an installed program is.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub version: Version,
    /// `None`: a WebAssembly component.
    pub language: Option<Language>,
    pub manifest: String,
    pub hash: String,
    pub artifact: Arc<Vec<u8>>,
}

impl Program {
    pub fn ident(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Check a manifest and artifact as the server does after the last chunk (hash already
/// checked). `Err` is the reply text.
pub fn build(manifest: &str, artifact: Vec<u8>, hash: String) -> Result<Program, String> {
    let parsed: ManifestToml = toml::from_str(manifest)
        .map_err(|e| format!("Invalid manifest: Failed to parse manifest TOML: {e}"))?;
    let version = Version::parse(&parsed.package.version).ok_or_else(|| {
        // Not observed on the real server; the simulator's own wording.
        format!(
            "Invalid manifest: version '{}' is not 'major.minor.patch'",
            parsed.package.version
        )
    })?;
    if !valid_name(&parsed.package.name) {
        // Not observed on the real server; the simulator's own wording.
        return Err(format!(
            "Invalid manifest: package name '{}' must match [a-zA-Z0-9][a-zA-Z0-9_-]*",
            parsed.package.name
        ));
    }
    let language = parsed.runtime.map(|r| r.language);
    if language.is_none() && !artifact.starts_with(b"\0asm") {
        return Err("Failed to compile WASM: failed to parse WebAssembly module".into());
    }
    Ok(Program {
        name: parsed.package.name,
        version,
        language,
        manifest: manifest.to_owned(),
        hash,
        artifact: Arc::new(artifact),
    })
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// How a launch names its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Exact(String, Version),
    Latest(String),
}

/// Parse `name@major.minor.patch` or a bare `name`. `Err` is the reply text.
pub fn parse_ident(ident: &str) -> Result<Wanted, String> {
    let invalid =
        || format!("Invalid program identifier '{ident}': expected 'name@major.minor.patch'");
    match ident.split_once('@') {
        Some((name, version)) => {
            let v = Version::parse(version).ok_or_else(invalid)?;
            if name.is_empty() {
                return Err(invalid());
            }
            Ok(Wanted::Exact(name.to_owned(), v))
        }
        None if ident.is_empty() => Err(invalid()),
        None => Ok(Wanted::Latest(ident.to_owned())),
    }
}

/// A resolved launch target.
#[derive(Debug, Clone)]
pub enum Target {
    Installed(Program),
    Builtin(String),
}

impl Target {
    pub fn ident(&self) -> String {
        match self {
            Target::Installed(p) => p.ident(),
            Target::Builtin(name) => format!("{name}@{BUILTIN_VERSION}"),
        }
    }
}

fn builtin_version() -> Version {
    Version::parse(BUILTIN_VERSION).expect("valid built-in version")
}

#[derive(Default)]
pub struct ProgramStore {
    by_name: Mutex<BTreeMap<String, BTreeMap<Version, Program>>>,
}

impl ProgramStore {
    /// Whether `name@version` exists (installed or built in).
    pub fn exists(&self, name: &str, version: Version) -> bool {
        (BUILTIN_PROGRAMS.contains(&name) && version == builtin_version())
            || self
                .by_name
                .lock()
                .unwrap()
                .get(name)
                .is_some_and(|m| m.contains_key(&version))
    }

    /// Install; returns whether an older copy of the same `name@version` was replaced.
    pub fn install(&self, program: Program) -> bool {
        self.by_name
            .lock()
            .unwrap()
            .entry(program.name.clone())
            .or_default()
            .insert(program.version, program)
            .is_some()
    }

    pub fn resolve(&self, wanted: &Wanted) -> Option<Target> {
        let store = self.by_name.lock().unwrap();
        let (name, version) = match wanted {
            Wanted::Exact(n, v) => (n, Some(*v)),
            Wanted::Latest(n) => (n, None),
        };
        let installed = store.get(name).and_then(|m| match version {
            Some(v) => m.get(&v).cloned(),
            None => m.values().next_back().cloned(),
        });
        if let Some(p) = installed {
            return Some(Target::Installed(p));
        }
        let builtin = BUILTIN_PROGRAMS.contains(&name.as_str())
            && version.map_or(true, |v| v == builtin_version());
        builtin.then(|| Target::Builtin(name.clone()))
    }

    /// `name@version` of every installed program (not the built-ins).
    pub fn list(&self) -> Vec<String> {
        let store = self.by_name.lock().unwrap();
        store
            .values()
            .flat_map(|m| m.values().map(Program::ident))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[package]\nname = \"echo-args\"\nversion = \"0.1.0\"\n\n[runtime]\nlanguage = \"python\"\nentry = \"main\"\ncall = \"kwargs\"\n";

    #[test]
    fn manifest_errors_use_the_server_texts() {
        let e = build("not toml [", b"x".to_vec(), String::new()).unwrap_err();
        assert!(
            e.starts_with("Invalid manifest: Failed to parse manifest TOML:"),
            "{e}"
        );
        let e = build(&MANIFEST.replace("python", "cobol"), vec![], String::new()).unwrap_err();
        assert!(
            e.contains("unknown variant `cobol`, expected `python` or `javascript`"),
            "{e}"
        );
        let wasm = MANIFEST.replace("[runtime]\nlanguage = \"python\"\n", "[runtime2]\n");
        assert_eq!(
            build(&wasm, b"print(1)".to_vec(), String::new()).unwrap_err(),
            "Failed to compile WASM: failed to parse WebAssembly module"
        );
        assert!(build(&wasm, b"\0asm\x0d\0\x01\0".to_vec(), String::new()).is_ok());
        let p = build(MANIFEST, b"src".to_vec(), "h".into()).unwrap();
        assert_eq!(p.ident(), "echo-args@0.1.0");
        assert_eq!(p.language, Some(Language::Python));
    }

    #[test]
    fn identifiers() {
        assert_eq!(
            parse_ident("compat-openai@").unwrap_err(),
            "Invalid program identifier 'compat-openai@': expected 'name@major.minor.patch'"
        );
        assert_eq!(
            parse_ident("a@1.2.3"),
            Ok(Wanted::Exact("a".into(), Version(1, 2, 3)))
        );
        assert_eq!(parse_ident("a"), Ok(Wanted::Latest("a".into())));
        assert!(parse_ident("a@1.2").is_err());
        assert!(parse_ident("a@1.2.x").is_err());
    }

    #[test]
    fn latest_version_wins() {
        let store = ProgramStore::default();
        for v in ["0.2.0", "0.10.0", "0.9.9"] {
            let m = MANIFEST.replace("0.1.0", v);
            store.install(build(&m, vec![], String::new()).unwrap());
        }
        let t = store.resolve(&Wanted::Latest("echo-args".into())).unwrap();
        assert_eq!(t.ident(), "echo-args@0.10.0");
        assert_eq!(
            store
                .resolve(&Wanted::Latest("compat-openai".into()))
                .unwrap()
                .ident(),
            "compat-openai@0.1.0"
        );
        assert!(store.resolve(&Wanted::Latest("nope".into())).is_none());
    }
}
