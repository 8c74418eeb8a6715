//! The `[simulation]` table of a study file: how Phase C makes its data.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Phase C settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// Number of scan positions (train and test together).
    pub n_positions: usize,
    /// Side of the built-in square object, in pixels.
    pub object_size: usize,
    /// A base NPZ with `objectGuess` and `probeGuess`; relative to the study file's folder.
    pub base_npz: Option<PathBuf>,
    /// Write deflated NPZ members (smaller, slower) instead of stored ones.
    pub compress: bool,
}

impl Simulation {
    /// The default study: sized to run end to end in minutes and stay well under 1 GB.
    pub fn default_study() -> Self {
        Simulation {
            n_positions: 600,
            object_size: 464,
            base_npz: None,
            compress: false,
        }
    }

    /// A tiny study for tests and goldens (seconds, a few MB).
    pub fn tiny() -> Self {
        Simulation {
            n_positions: 300,
            object_size: 112,
            base_npz: None,
            compress: false,
        }
    }

    /// Every problem with these settings for patch size `n`.
    pub fn validate(&self, n: u32) -> Vec<String> {
        let mut problems = Vec::new();
        if self.n_positions < 2 {
            problems.push(format!(
                "simulation.n_positions={} must be at least 2 (one train and one test position)",
                self.n_positions
            ));
        }
        if self.base_npz.is_none() && self.object_size <= n as usize {
            problems.push(format!(
                "simulation.object_size={} must exceed patch_size_pixels={n} so that patches fit",
                self.object_size
            ));
        }
        problems
    }
}
