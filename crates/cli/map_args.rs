//! `--success-nrmse`, shared by `study`, `report` and `compare`.

/// How the dose x overlap maps are drawn.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct MapArgs {
    /// Test Fienup NRMSE at or below which a job is a success: the boundary drawn on the dose x
    /// overlap maps (and, for a study with replicates, on the maps of the means).
    #[arg(
        long,
        value_name = "X",
        default_value_t = reporting::map::DEFAULT_SUCCESS_NRMSE,
        value_parser = reporting::map::parse_success_nrmse
    )]
    pub success_nrmse: f64,
}

impl MapArgs {
    /// The settings the reporting crate takes.
    pub fn settings(&self) -> reporting::map::MapSettings {
        reporting::map::MapSettings {
            success_nrmse: self.success_nrmse,
        }
    }
}
