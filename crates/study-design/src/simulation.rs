//! The `[simulation]` table of a study file: how Phase C makes its data.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Most scan positions in one study (each is N² pixels of diffraction and Y per dose).
pub const MAX_POSITIONS: usize = 10_000_000;

/// Largest built-in object side, in pixels.
pub const MAX_OBJECT_SIZE: usize = 32_768;

/// Jitter of the hexagonal scan: each position moves by up to this fraction of the lattice
/// step in x and in y (seeded), so that no two rows are exactly collinear and selection ties
/// are broken by the data, not by floating-point rounding. Small on purpose: a spacing
/// threshold a few per cent below a lattice distance must still keep the whole sub-lattice
/// (Phase D's floor asks for nearly a perfect packing).
pub const HEX_JITTER: f64 = 0.02;

/// How Phase C lays out its scan positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanPattern {
    /// Uniformly random positions (the fly64 study's: its sparse levels keep too few).
    #[default]
    Random,
    /// A hexagonal lattice with [`HEX_JITTER`]: minimum-spacing selection on it keeps near
    /// sub-lattices, so sparse levels hold enough positions at the same field of view.
    Hex,
}

impl ScanPattern {
    /// The name a study file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanPattern::Random => "random",
            ScanPattern::Hex => "hex",
        }
    }

    fn is_random(&self) -> bool {
        *self == ScanPattern::Random
    }
}

/// Phase C settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// Number of scan positions (train and test together). Ignored when the base NPZ has its
    /// own `xcoords`/`ycoords`.
    pub n_positions: usize,
    /// Side of the built-in square object, in pixels.
    pub object_size: usize,
    /// A base NPZ with `objectGuess` and `probeGuess`; relative to the study file's folder.
    pub base_npz: Option<PathBuf>,
    /// Write deflated NPZ members (smaller, slower) instead of stored ones.
    pub compress: bool,
    /// Diameter of the built-in probe's defocused disc as a fraction of the patch size N
    /// (the window then oversamples the probe by 1 / probe_diameter).
    pub probe_diameter: f64,
    /// Peak-to-peak phase of the built-in object's smooth background, in radians (sharp
    /// features add up to about 0.6 rad either way).
    pub object_phase_range: f64,
    /// Layout of the scan positions; written only when not the default `random`, so that a
    /// study without it reads (and hashes) as before.
    #[serde(default, skip_serializing_if = "ScanPattern::is_random")]
    pub scan_pattern: ScanPattern,
}

impl Simulation {
    /// The default study: the fly64 geometry (object 464 px, N = 128) with 600 positions, so
    /// that the whole study runs in minutes on 2 cores and writes about 0.35 GB of Phase C
    /// data. With seed 42 each split keeps 32-33 dense positions (accepted) and 6-7 sparse
    /// ones (rejected, OVERSAMPLING-001), as in the original runs.
    pub fn default_study() -> Self {
        Simulation {
            n_positions: 600,
            object_size: 464,
            base_npz: None,
            compress: false,
            probe_diameter: 0.6,
            object_phase_range: 3.0,
            scan_pattern: ScanPattern::Random,
        }
    }

    /// A tiny study for tests and goldens (N = 32; well under a second, about 8 MB): the fly64
    /// geometry scaled down, with the same outcome (dense 25 per split, sparse 6: rejected).
    pub fn tiny() -> Self {
        Simulation {
            n_positions: 200,
            object_size: 112,
            base_npz: None,
            compress: false,
            probe_diameter: 0.6,
            object_phase_range: 3.0,
            scan_pattern: ScanPattern::Random,
        }
    }

    /// The `pinn-small` study (N = 64): the fly64 geometry at half the default's scale, with
    /// enough positions that PtychoPINN's grouping has a few hundred positions to draw from.
    pub fn pinn_small() -> Self {
        Simulation {
            n_positions: 320,
            object_size: 232,
            base_npz: None,
            compress: false,
            probe_diameter: 0.6,
            object_phase_range: 3.0,
            scan_pattern: ScanPattern::Random,
        }
    }

    /// The `pinn-1k` study (N = 64): 2,200 positions on a 640 px object, so that each split
    /// holds more than 1,024 patterns (1,077 train and 1,123 test with seed 42).
    pub fn pinn_1k() -> Self {
        Simulation {
            n_positions: 2200,
            object_size: 640,
            ..Simulation::pinn_small()
        }
    }

    /// The `fly64-full` study (N = 128): the default study's geometry (464 px object) with the
    /// original's position count, 10,304 per dose (its 5,088 train + 5,216 test), about 2 GB of
    /// Phase C data per dose.
    pub fn fly64_full() -> Self {
        Simulation {
            n_positions: 10_304,
            ..Simulation::default_study()
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
        if self.n_positions > MAX_POSITIONS {
            problems.push(format!(
                "simulation.n_positions={} is above {MAX_POSITIONS}",
                self.n_positions
            ));
        }
        if self.object_size > MAX_OBJECT_SIZE {
            problems.push(format!(
                "simulation.object_size={} is above {MAX_OBJECT_SIZE} px",
                self.object_size
            ));
        }
        if self.base_npz.is_none() && self.object_size <= n as usize {
            problems.push(format!(
                "simulation.object_size={} must exceed patch_size_pixels={n} so that patches fit",
                self.object_size
            ));
        }
        if !(self.probe_diameter > 0.0 && self.probe_diameter <= 1.0) {
            problems.push(format!(
                "simulation.probe_diameter={} must be in (0, 1] (a fraction of patch_size_pixels)",
                self.probe_diameter
            ));
        }
        if !(self.object_phase_range >= 0.0 && self.object_phase_range <= 100.0) {
            problems.push(format!(
                "simulation.object_phase_range={} must be between 0 and 100 radians",
                self.object_phase_range
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_bad_values_are_named() {
        assert!(Simulation::default_study().validate(128).is_empty());
        assert!(Simulation::tiny().validate(32).is_empty());
        assert!(Simulation::pinn_small().validate(64).is_empty());
        let bad = Simulation {
            probe_diameter: 1.5,
            object_phase_range: f64::NAN,
            ..Simulation::tiny()
        };
        assert_eq!(
            bad.validate(32),
            [
                "simulation.probe_diameter=1.5 must be in (0, 1] (a fraction of patch_size_pixels)",
                "simulation.object_phase_range=NaN must be between 0 and 100 radians",
            ]
        );
    }
}
