//! `dose-overlap diff`: not built yet (see the open issues).

/// Arguments of `dose-overlap diff`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`dose-overlap diff` is not built yet")
}
