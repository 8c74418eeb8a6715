//! `cargo xtask`: see the library for the tasks.

// Counts every allocation so that `cargo xtask fuzz` measures each case's peak memory.
#[global_allocator]
static ALLOCATOR: xtask::fuzz::alloc::Counting = xtask::fuzz::alloc::Counting;

fn main() -> std::process::ExitCode {
    match xtask::run(std::env::args().skip(1).collect()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
