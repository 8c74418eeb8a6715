//! DATA-001: reading, writing and validating NPZ archives safely
#![deny(missing_docs)]
