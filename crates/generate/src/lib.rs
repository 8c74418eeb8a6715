//! Phase C: deterministic simulated diffraction datasets per dose
#![deny(missing_docs)]
