//! `dose-overlap collect`: not built yet (see the open issues).

/// Arguments of `dose-overlap collect`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`dose-overlap collect` is not built yet")
}
