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
