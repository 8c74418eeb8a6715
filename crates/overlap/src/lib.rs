//! Phase D: dense and sparse overlap views by minimum-spacing selection
#![deny(missing_docs)]
