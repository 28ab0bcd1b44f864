//! The simulated inferlet registry (§6.5): name parsing and lookup. Built-in behaviours are
//! served under namespace `std` for any version; extra entries come from the configuration.

use crate::behaviour::BUILTINS;
use crate::programs::script_program;
use std::collections::HashMap;

/// `[namespace/]name[@version]` → (namespace, name, version), exactly as the server splits it:
/// first `@` for the version (default `latest`), then first `/` for the namespace (default
/// `std`). Nothing is validated; empty parts stay empty.
pub fn parse_name(inferlet: &str) -> (String, String, String) {
    let (name_part, version) = match inferlet.split_once('@') {
        Some((n, v)) => (n, v.to_string()),
        None => (inferlet, "latest".to_string()),
    };
    let (ns, name) = match name_part.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => ("std".to_string(), name_part.to_string()),
    };
    (ns, name, version)
}

/// Extra registry entries: (namespace, name, version) → program bytes.
pub type RegistryMap = HashMap<(String, String, String), Vec<u8>>;

/// Fetch from the simulated registry. `Err` is the launch failure text.
pub fn fetch(extra: &RegistryMap, inferlet: &str) -> Result<Vec<u8>, String> {
    let (ns, name, version) = parse_name(inferlet);
    let key = (ns.clone(), name.clone(), version.clone());
    if let Some(bytes) = extra.get(&key) {
        if bytes.is_empty() {
            return Err(format!(
                "Registry returned empty data for {ns}/{name} @ {version}"
            ));
        }
        return Ok(bytes.clone());
    }
    if ns == "std" && BUILTINS.contains(&name.as_str()) {
        return Ok(script_program(&format!("behaviour {name}")));
    }
    Err(format!(
        "Registry returned error 404 Not Found for {ns}/{name} @ {version}: {{\"error\":\"inferlet not found\"}}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_parsing_of_protocol_6_5() {
        let p = |s: &str| parse_name(s);
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            p("std/text-completion@0.1.0"),
            t("std", "text-completion", "0.1.0")
        );
        assert_eq!(p("text-completion"), t("std", "text-completion", "latest"));
        assert_eq!(p("acme/foo"), t("acme", "foo", "latest"));
        assert_eq!(p("a/b/c@1@2"), t("a", "b/c", "1@2"));
        assert_eq!(p("@"), t("std", "", ""));
        assert_eq!(p(""), t("std", "", "latest"));
    }

    #[test]
    fn lookup() {
        let mut extra = RegistryMap::new();
        extra.insert(("acme".into(), "e".into(), "1".into()), vec![]);
        assert!(fetch(&extra, "echo").is_ok());
        assert!(fetch(&extra, "std/echo@9.9").is_ok());
        assert_eq!(
            fetch(&extra, "acme/e@1").unwrap_err(),
            "Registry returned empty data for acme/e @ 1"
        );
        assert!(fetch(&extra, "acme/echo")
            .unwrap_err()
            .starts_with("Registry returned error 404 Not Found for acme/echo @ latest: "));
    }
}
