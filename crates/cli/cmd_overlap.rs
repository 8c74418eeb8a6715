//! `dose-overlap overlap`: not built yet (see the open issues).

/// Arguments of `dose-overlap overlap`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args, _progress: &crate::progress::Progress) -> anyhow::Result<u8> {
    anyhow::bail!("`dose-overlap overlap` is not built yet")
}
