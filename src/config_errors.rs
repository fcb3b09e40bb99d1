//! One-line errors for settings: a TOML parse error becomes
//! `FILE:LINE:COLUMN: unknown key 'enhanced.scan_max_sourcs'; did you mean 'scan_max_sources'?`
//! instead of toml's five-line excerpt and 27 listed keys, and a setting that fails
//! validation is named as the user wrote it: the flag (`--max-flows`) when it came from
//! the command line, else the key with its place in the config file.

use crate::config::FileSettings;
use crate::error_text::{closest, plain_expectation};
use std::path::Path;

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The `[table]` (or `[[table]]`) header in force at `offset`, if any.
fn table_at(text: &str, offset: usize) -> Option<String> {
    text[..offset.min(text.len())].lines().rev().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix('[')?.split(']').next()?;
        let inner = inner.trim_start_matches('[').trim();
        (!inner.is_empty()).then(|| inner.to_string())
    })
}

/// The key written at the start of the line holding `offset` (`key = value`).
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// Names between backticks in serde's "expected one of `a`, `b`" list.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every key the config file accepts in table `table` ("" = top level), found by asking
/// the deserializer itself, so keys other helpers add are known without a list here.
fn keys_of(table: &str) -> Vec<String> {
    let probe = if table.is_empty() {
        "flowsentry_probe_key = 0\n".to_string()
    } else {
        format!("[{table}]\nflowsentry_probe_key = 0\n")
    };
    match toml::from_str::<FileSettings>(&probe) {
        Err(e) => {
            let msg = e.message().to_string();
            match msg.split_once("expected") {
                Some((_, list)) if msg.starts_with("unknown field") => backticked(list),
                _ => Vec::new(),
            }
        }
        Ok(_) => Vec::new(),
    }
}

/// "did you mean" for an unknown key: the closest key of the same table, else the
/// closest key of another table (written `table.key`).
fn suggest_key(table: &str, key: &str, same_table: &[String]) -> String {
    if let Some(c) = closest(key, same_table.iter().map(String::as_str)) {
        return format!("; did you mean '{c}'?");
    }
    let mut elsewhere = Vec::new();
    for t in std::iter::once(String::new()).chain(keys_of("")) {
        if t == table {
            continue;
        }
        for k in keys_of(&t) {
            let full = if t.is_empty() { k.clone() } else { format!("{t}.{k}") };
            elsewhere.push((k, full));
        }
    }
    match closest(key, elsewhere.iter().map(|(k, _)| k.as_str())) {
        Some(c) => {
            let full = &elsewhere.iter().find(|(k, _)| k == c).expect("candidate").1;
            match full.split_once('.') {
                Some((t, k)) => format!("; did you mean '{k}' under [{t}]?"),
                None => format!("; did you mean '{full}' (at the top, before any [table])?"),
            }
        }
        None => String::new(),
    }
}

/// A TOML parse error as one line: `FILE:LINE:COL: what` with the key and a suggestion.
pub fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let offset = e.span().map(|s| s.start).unwrap_or(0);
    let (line, col) = line_col(text, offset);
    let table = table_at(text, offset).unwrap_or_default();
    let dotted = |key: &str| if table.is_empty() { key.to_string() } else { format!("{table}.{key}") };
    let msg = e.message().trim();
    let what = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        let expected = backticked(rest.split_once("expected").map(|(_, l)| l).unwrap_or_default());
        format!("unknown key '{}'{}", dotted(key), suggest_key(&table, key, &expected))
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") || msg.starts_with("invalid length") {
        let value_text = plain_expectation(msg);
        match key_on_line(text, offset) {
            Some(key) => format!("{}: {value_text}", dotted(&key)),
            None => value_text,
        }
    } else if let Some(rest) = msg.strip_prefix("duplicate key `") {
        let key = rest.split('`').next().unwrap_or_default();
        format!("key '{}' is given twice", dotted(key))
    } else {
        // Syntax errors: toml's message can span lines; keep it on one.
        msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ").replace('`', "'")
    };
    format!("{}:{line}:{col}: {what}", path.display())
}

/// Where `path` (e.g. ["flow", "max_flows"]) is written in the file; a single name is
/// searched at the top level and in every table.
fn find_key(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let top = doc.get_ref();
    fn lookup<'a, 'i>(
        table: &'a toml::de::DeTable<'i>,
        name: &str,
    ) -> Option<(usize, &'a toml::Spanned<toml::de::DeValue<'i>>)> {
        table.iter().find(|(k, _)| k.get_ref().as_ref() == name).map(|(k, v)| (k.span().start, v))
    }
    match path {
        [name] => lookup(top, name).map(|(at, _)| at).or_else(|| {
            top.iter().find_map(|(_, v)| match v.get_ref() {
                toml::de::DeValue::Table(t) => lookup(t, name).map(|(at, _)| at),
                _ => None,
            })
        }),
        [table, name] => match lookup(top, table)?.1.get_ref() {
            toml::de::DeValue::Table(t) => lookup(t, name).map(|(at, _)| at),
            _ => None,
        },
        _ => None,
    }
}

/// Names the setting a validation error starts with as the user gave it: the flag if it
/// was on the command line (`--max-flows must be ...`), else the key and its place in
/// the config file (`FILE:3:1: flow.max_flows must be ...`).
pub fn locate(msg: &str, flags_given: &[String], config: Option<&Path>) -> String {
    let name_len = msg
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(msg.len());
    let name = &msg[..name_len];
    if name.is_empty() || !name.contains(|c: char| c.is_ascii_lowercase()) {
        return msg.to_string();
    }
    let rest = &msg[name_len..];
    let last = name.rsplit('.').next().unwrap_or(name);
    let flag = last.replace('_', "-");
    if flags_given.contains(&flag) {
        return format!("--{flag}{rest}");
    }
    if let Some(path) = config {
        if let Ok(text) = std::fs::read_to_string(path) {
            let parts: Vec<&str> = name.split('.').collect();
            if let Some(at) = find_key(&text, &parts) {
                let (line, col) = line_col(&text, at);
                let table = table_at(&text, at).unwrap_or_default();
                let dotted =
                    if table.is_empty() || name.contains('.') { name.to_string() } else { format!("{table}.{name}") };
                return format!("{}:{line}:{col}: {dotted}{rest}", path.display());
            }
        }
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> String {
        match toml::from_str::<FileSettings>(text) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => parse_error(Path::new("f.toml"), text, &e),
        }
    }

    #[test]
    fn unknown_keys_are_located_and_the_closest_key_suggested() {
        let e = parse("rules = \"all\"\n[enhanced]\nscan_max_sourcs = 5\n");
        assert_eq!(e, "f.toml:3:1: unknown key 'enhanced.scan_max_sourcs'; did you mean 'scan_max_sources'?");
        let e = parse("home_nett = []\n");
        assert_eq!(e, "f.toml:1:1: unknown key 'home_nett'; did you mean 'home_net'?");
        let e = parse("interface = \"eth1\"\n");
        assert_eq!(e, "f.toml:1:1: unknown key 'interface'; did you mean 'interface' under [capture]?");
        let e = parse("[flow]\nzzzzzz = 1\n");
        assert_eq!(e, "f.toml:2:1: unknown key 'flow.zzzzzz'");
    }

    #[test]
    fn type_errors_name_the_key_in_words() {
        let e = parse("[flow]\nmax_flows = \"many\"\n");
        assert!(
            e.starts_with("f.toml:2:13: flow.max_flows: invalid type: string \"many\", expected a whole number"),
            "{e}"
        );
        assert!(!e.contains("usize"), "{e}");
        let e = parse("[capture]\npromisc = \"yes\"\n");
        assert!(e.contains("capture.promisc") && e.contains("true or false"), "{e}");
    }

    #[test]
    fn syntax_errors_are_one_line() {
        let e = parse("[flow\nmax_flows = 1\n");
        assert!(e.starts_with("f.toml:1:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn validation_errors_name_the_flag_or_the_key_place() {
        let dir = std::env::temp_dir().join(format!("flowsentry-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "rules = \"all\"\n\n[flow]\n  max_flows = 0\n").unwrap();
        let msg = "max_flows must be between 1 and 50000000, got 0";
        assert_eq!(locate(msg, &["max-flows".into()], Some(&f)), "--max-flows must be between 1 and 50000000, got 0");
        assert_eq!(
            locate(msg, &[], Some(&f)),
            format!("{}:4:3: flow.max_flows must be between 1 and 50000000, got 0", f.display())
        );
        assert_eq!(locate(msg, &[], None), msg);
        std::fs::remove_dir_all(&dir).ok();
    }
}
