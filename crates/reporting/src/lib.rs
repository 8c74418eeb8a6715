//! Training manifest, skip summary, reports, plots and run diffs
#![deny(missing_docs)]
