//! Command-line mistakes as one line (`flowsentry: error: unknown flag '--recrods' for
//! replay; did you mean '--records'?`) instead of clap's multi-line error with usage and
//! tips. Help and version requests are printed as clap renders them.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// What to do with a clap error: print help/version text and exit 0, or fail with a line.
pub enum Usage {
    Print(String),
    Error(String),
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        ContextValue::Number(n) => Some(n.to_string()),
        ContextValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `--rules <RULES>` -> `--rules`.
fn flag_name(arg: &str) -> &str {
    arg.split([' ', '=']).next().unwrap_or(arg)
}

/// The subcommand the user typed (for "see flowsentry replay --help").
fn subcommand(args: &[String]) -> Option<&str> {
    args.iter().skip(1).map(String::as_str).find(|a| ["replay", "live", "completions", "man"].contains(a))
}

/// Turns a clap error into help text to print or one error line (without the
/// `flowsentry: error:` prefix, which the logger adds).
pub fn explain(e: &clap::Error, args: &[String]) -> Usage {
    let sub = subcommand(args);
    let help = match sub {
        Some(s) => format!("flowsentry {s} --help"),
        None => "flowsentry --help".to_string(),
    };
    let invalid_arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let suggestion = |kind| context(e, kind).map(|s| format!("; did you mean '{s}'?")).unwrap_or_default();
    let line = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => return Usage::Print(e.render().to_string()),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given: flowsentry replay -r FILE, or flowsentry live -i IFACE (flowsentry --help lists them all)"
                .to_string()
        }
        ErrorKind::InvalidSubcommand => {
            let what = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            format!(
                "unknown command '{what}'{} (commands: replay, live, completions, man)",
                suggestion(ContextKind::SuggestedSubcommand)
            )
        }
        ErrorKind::UnknownArgument if invalid_arg.starts_with('-') => {
            let r#for = sub.map(|s| format!(" for {s}")).unwrap_or_default();
            let mut hint = suggestion(ContextKind::SuggestedArg);
            if hint.is_empty() && sub.is_none() {
                hint = "; flags go after the command (flowsentry replay -r FILE ...)".into();
            }
            format!("unknown flag '{}'{}{hint} ({help} lists the flags)", flag_name(&invalid_arg), r#for)
        }
        ErrorKind::UnknownArgument => {
            format!("unexpected argument '{invalid_arg}' ({help} lists what is accepted)")
        }
        ErrorKind::InvalidValue => {
            let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
            let flag = flag_name(&invalid_arg);
            if value.is_empty() {
                format!("{flag} needs a value")
            } else {
                let valid = context(e, ContextKind::ValidValue).map(|v| format!(": one of {v}")).unwrap_or_default();
                format!("invalid value '{value}' for {flag}{valid}{}", suggestion(ContextKind::SuggestedValue))
            }
        }
        ErrorKind::ValueValidation => {
            let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_else(|| format!("'{value}' is not valid"));
            format!("{}: {why}", flag_name(&invalid_arg))
        }
        ErrorKind::ArgumentConflict => {
            let prior = context(e, ContextKind::PriorArg).unwrap_or_default();
            format!("{} cannot be used with {}", flag_name(&invalid_arg), flag_name(&prior))
        }
        ErrorKind::MissingRequiredArgument => format!("missing {invalid_arg} ({help})"),
        ErrorKind::NoEquals | ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("{}: wrong number of values ({help})", flag_name(&invalid_arg))
        }
        _ => {
            // Anything else: clap's own first line, without its "error: " tag.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad usage").trim();
            format!("{} ({help})", first.strip_prefix("error: ").unwrap_or(first))
        }
    };
    Usage::Error(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let e = crate::discover::command(false).try_get_matches_from(&args).expect_err("should fail");
        match explain(&e, &args) {
            Usage::Error(l) => l,
            Usage::Print(p) => panic!("printed {p}"),
        }
    }

    #[test]
    fn mistakes_are_one_line_with_a_suggestion() {
        assert_eq!(
            line(&["flowsentry", "replay", "--recrods", "x", "a.pcap"]),
            "unknown flag '--recrods' for replay; did you mean '--records'? (flowsentry replay --help lists the flags)"
        );
        assert_eq!(
            line(&["flowsentry", "replya", "a.pcap"]),
            "unknown command 'replya'; did you mean 'replay'? (commands: replay, live, completions, man)"
        );
        assert_eq!(
            line(&["flowsentry", "replay", "--rules", "sentinal", "a.pcap"]),
            "invalid value 'sentinal' for --rules: one of all, sentinel, enhanced; did you mean 'sentinel'?"
        );
        assert_eq!(
            line(&["flowsentry", "replay", "--max-flows", "lots", "a.pcap"]),
            "--max-flows: 'lots' is not a whole number in range"
        );
        assert_eq!(
            line(&["flowsentry", "replay", "--udp-timeout", "soon", "a"]),
            "--udp-timeout: 'soon' is not a number of seconds"
        );
        assert!(line(&["flowsentry"]).starts_with("no command given"));
        assert_eq!(line(&["flowsentry", "live", "-i", "eth0", "--records"]), "--records needs a value");
        for l in [line(&["flowsentry", "live", "-x"]), line(&["flowsentry", "replay", "--bogus"])] {
            assert!(!l.contains('\n') && !l.contains("usize") && !l.contains("Usage"), "{l}");
        }
    }
}
