//! Checks of caller input that the 0.5 server would otherwise reject late, vaguely or not at
//! all. Each returns the reason as text; the client turns it into an `InvalidArgument` error
//! that names the parameter.

/// A version as the server requires it: `major.minor.patch`, three decimal numbers (§5.2).
pub fn check_version(version: &str) -> Result<(), String> {
    let parts: Vec<&str> = version.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{version}' is not a version of the form major.minor.patch (e.g. 0.1.0)"
        ))
    }
}

/// A program name as manifests allow it: `[a-zA-Z0-9][a-zA-Z0-9_-]*` (§5.3).
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a program name (letters, digits, '_' and '-', starting with a \
             letter or digit)"
        ))
    }
}

/// `name` or `name@major.minor.patch`, as `launch_process` takes it (§5.4).
pub fn check_inferlet(inferlet: &str) -> Result<(), String> {
    match inferlet.split_once('@') {
        None => check_name(inferlet),
        Some((name, version)) => {
            check_name(name)?;
            check_version(version)
        }
    }
}

/// The text must be one JSON value (the launch `input`, §5.4).
pub fn check_json(text: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| format!("not valid JSON ({e})"))
}

/// A process id in the server's form (lowercase, hyphenated) from the usual spellings of a
/// UUID: hyphenated or not, any case, `urn:uuid:` prefix or braces. `None` if it is not one.
pub fn normalize_uuid(id: &str) -> Option<String> {
    let t = id.trim();
    let t = match t.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("urn:uuid:") => &t[9..],
        _ => t,
    };
    let t = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(t);
    let hex: String = match t.len() {
        36 => {
            let b = t.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            t.chars().filter(|c| *c != '-').collect()
        }
        32 => t.to_owned(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}
