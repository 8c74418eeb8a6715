//! `dose-overlap train`: not built yet (see the open issues).

/// Arguments of `dose-overlap train`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args, _progress: &crate::progress::Progress) -> anyhow::Result<u8> {
    anyhow::bail!("`dose-overlap train` is not built yet")
}
