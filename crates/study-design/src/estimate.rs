//! What a study will need before it runs: Phase C's peak memory and the disk it and Phase D
//! write, from the sizes of the arrays `generate` holds and writes (an estimate: exact for the
//! large arrays, a margin for the rest). `design` prints it; `generate` and `study` refuse a
//! study whose memory exceeds what the machine has.

use crate::Study;

/// Bytes beyond the large arrays: the program, FFT plans, per-thread buffers, validation.
const OVERHEAD_BYTES: u128 = 64 << 20;

/// A study's estimated needs, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Peak memory of Phase C (`generate`), the phase that holds every dose at once.
    pub memory: u128,
    /// The memory that scales with positions x N² (the rest is the object and overhead).
    pub memory_per_positions: u128,
    /// The memory of the object (built-in or from the base NPZ).
    pub memory_object: u128,
    /// Bytes Phase C writes (all doses).
    pub disk_phase_c: u128,
    /// Bytes Phase D writes at most (every view keeping every position).
    pub disk_phase_d_max: u128,
}

/// The scene sizes an estimate needs, where they differ from the study's own (a base NPZ gives
/// its object and, when it has coordinates, its positions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SceneSize {
    /// Scan positions (default: `simulation.n_positions`).
    pub positions: Option<usize>,
    /// Object rows x columns (default: `simulation.object_size` squared).
    pub object: Option<(usize, usize)>,
}

impl Study {
    /// Phase C's memory and Phases C and D's disk for `doses` doses (the design's dose count
    /// when `None`), in 128-bit arithmetic: no study file can overflow it.
    pub fn estimate(&self, doses: Option<usize>, scene: SceneSize) -> Estimate {
        // Saturating 128-bit arithmetic: exact for any validated study, and no study file
        // (validated or not) can overflow it.
        let m = |a: u128, b: u128| a.saturating_mul(b);
        let d = doses.unwrap_or(self.design.dose_list.len()) as u128;
        let n = scene.positions.unwrap_or(self.simulation.n_positions) as u128;
        let (h, w) = scene
            .object
            .unwrap_or((self.simulation.object_size, self.simulation.object_size));
        let object_px = m(h as u128, w as u128);
        let pixels = m(
            u128::from(self.design.patch_size_pixels),
            u128::from(self.design.patch_size_pixels),
        );
        let per_position = m(pixels, n);
        // Held at once: Y (complex64) and every dose's diffraction (f32), plus, while a split
        // is written, its selected copies of diffraction and Y (at most all positions).
        let memory_per_positions = m(per_position, 20u128.saturating_add(m(4, d)))
            .saturating_add(m(n, m(8, d).saturating_add(64)));
        // Built-in object: a complex128 field, its FFT workspace and the complex64 result.
        let memory_object = m(object_px, 40);
        let memory = memory_per_positions
            .saturating_add(memory_object)
            .saturating_add(OVERHEAD_BYTES);
        // Per dose, two files holding diffraction and Y of their positions, and each the object
        // and probe, the coordinates and metadata.
        let per_dose = m(per_position, 12)
            .saturating_add(m(2, m(object_px, 8).saturating_add(m(pixels, 8))))
            .saturating_add(m(n, 40))
            .saturating_add(2 * 8192);
        let disk_phase_c = m(per_dose, d);
        let views = self.design.overlap_views.0.len() as u128;
        Estimate {
            memory,
            memory_per_positions,
            memory_object,
            disk_phase_c,
            disk_phase_d_max: m(disk_phase_c, views),
        }
    }
}

/// `1.5 GB`, `320 MB`, `12 kB` (decimal units, as `df -H` prints them).
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_study_estimate_matches_its_measured_size() {
        // README: the default study takes about 420 MB and writes about 0.35 GB of Phase C data.
        let e = Study::default().estimate(None, SceneSize::default());
        assert!(
            (300e6..700e6).contains(&(e.memory as f64)),
            "{}",
            human_bytes(e.memory)
        );
        assert!(
            (0.3e9..0.45e9).contains(&(e.disk_phase_c as f64)),
            "{}",
            human_bytes(e.disk_phase_c)
        );
    }

    #[test]
    fn huge_studies_do_not_overflow() {
        let mut study = Study::default();
        study.simulation.n_positions = usize::MAX;
        study.design.patch_size_pixels = u32::MAX;
        let e = study.estimate(Some(usize::MAX), SceneSize::default());
        assert_eq!(e.memory, u128::MAX);
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(999), "999 B");
    }
}
