//! `cargo xtask`: see the library for the tasks.

fn main() -> std::process::ExitCode {
    match xtask::run(std::env::args().skip(1).collect()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
