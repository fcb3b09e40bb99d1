//! Wording shared by every error message: operating-system errors without Rust's
//! "(os error 2)", serde/clap expectations without Rust type names (`usize`, `f64`),
//! and "did you mean ...?" suggestions for a mistyped name.

use std::io;

/// The reason of an I/O error as a person would say it ("no such file or directory").
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    // "No such file or directory (os error 2)" -> "no such file or directory".
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(|c| c.is_lowercase()) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input_l = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input_l, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "; did you mean 'x'?" for the closest candidate, or nothing.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(input, candidates).map(|c| format!("; did you mean '{c}'?")).unwrap_or_default()
}

/// Rewrites a serde expectation ("expected usize", "expected a sequence") in words.
pub fn plain_expectation(msg: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("usize", "a whole number"),
        ("u64", "a whole number"),
        ("u32", "a whole number"),
        ("u16", "a whole number"),
        ("u8", "a whole number"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("isize", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
        ("a boolean", "true or false"),
        ("bool", "true or false"),
        ("a sequence", "a list"),
        ("a map", "a table"),
        ("a string", "a string"),
    ];
    let mut out = msg.to_string();
    if let Some(i) = out.find("expected ") {
        let (head, tail) = out.split_at(i + "expected ".len());
        let mut tail = tail.to_string();
        if let Some(rest) = tail.strip_prefix("struct ") {
            let name_end = rest.find(|c: char| !c.is_alphanumeric()).unwrap_or(rest.len());
            tail = format!("a table{}", &rest[name_end..]);
        }
        for (rust, words) in WORDS {
            if let Some(rest) = tail.strip_prefix(rust) {
                if rest.is_empty() || !rest.starts_with(|c: char| c.is_alphanumeric()) {
                    tail = format!("{words}{rest}");
                    break;
                }
            }
        }
        out = format!("{head}{tail}");
    }
    // serde's "invalid type: string \"x\"" / "invalid value: integer `-1`" read fine once
    // the expectation is in words; drop the Rust-flavoured backticks.
    out.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_lose_the_os_error_number() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&e), "no such file or directory");
        let e = io::Error::from_raw_os_error(13);
        assert_eq!(io_reason(&e), "permission denied");
    }

    #[test]
    fn suggestions_pick_the_closest_plausible_name() {
        assert_eq!(closest("scan_max_sourcs", ["scan_max_sources", "beacon_max_series"]), Some("scan_max_sources"));
        assert_eq!(closest("home_nett", ["home_net", "records"]), Some("home_net"));
        assert_eq!(closest("zzz", ["home_net", "records"]), None);
        assert_eq!(did_you_mean("sentinal", ["all", "sentinel", "enhanced"]), "; did you mean 'sentinel'?");
    }

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            plain_expectation("invalid type: string \"x\", expected usize"),
            "invalid type: string \"x\", expected a whole number"
        );
        assert_eq!(
            plain_expectation("invalid value: integer `-1`, expected u64"),
            "invalid value: integer '-1', expected a whole number"
        );
        assert_eq!(
            plain_expectation("invalid type: integer `3`, expected a sequence"),
            "invalid type: integer '3', expected a list"
        );
        assert_eq!(
            plain_expectation("invalid type: string \"x\", expected f64"),
            "invalid type: string \"x\", expected a number"
        );
        assert_eq!(
            plain_expectation("invalid type: integer `1`, expected struct CaptureSettings"),
            "invalid type: integer '1', expected a table"
        );
        assert_eq!(
            plain_expectation("invalid type: string \"y\", expected a boolean"),
            "invalid type: string \"y\", expected true or false"
        );
    }
}
