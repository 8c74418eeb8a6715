//! Phase E: runs one training job through a backend (dry run, PtychoPINN trainer, native)
#![deny(missing_docs)]
