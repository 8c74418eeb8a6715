//! Project automation (`cargo xtask ...`): baseline runs and golden comparison.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("usage: cargo xtask baseline [--check | --bless] (not built yet)")
}
