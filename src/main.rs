//! The `flowsentry` binary: all the work is in [`flowsentry::app::run`]; this only maps
//! a startup error to a message and exit code 2.
#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match flowsentry::app::run() {
        Ok(code) => code,
        Err(e) => {
            flowsentry::log::error(&e);
            ExitCode::from(2)
        }
    }
}
