//! Phase C: deterministic simulated diffraction datasets per dose.
//!
//! From an object O and a probe P (built in, or from a base NPZ), scan positions, bilinear
//! patches, the orthonormal-FFT forward model with fftshift, one intensity scale per dose,
//! exact seeded Poisson counts and normalised amplitudes; the positions are split along y and
//! written as `<root>/dose_<int>/patched_{train,test}.npz` (DATA-001). Every random draw is a
//! pure function of the design's seed, the dose and the position, so output bytes do not
//! depend on the thread count.
#![deny(missing_docs)]

pub mod detmath;
pub mod fft;
pub mod forward;
pub mod phase_c;
pub mod poisson;
pub mod prefetch;
pub mod rng;
pub mod scene;
pub mod split;

pub use fft::FftPath;
pub use forward::{
    DoseData, Inputs, SimulateError, Simulated, extract_patch, simulate, simulate_into,
};
pub use phase_c::{
    DoseSummary, Event, GENERATOR, GenerateError, GenerateOptions, Scene, Summary, build_scene,
    generate,
};
pub use scene::{builtin_object, builtin_probe, hex_positions, scan_layout, scan_positions};
pub use split::{Split, split_positions};
