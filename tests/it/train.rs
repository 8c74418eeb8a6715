//! Tests of `train` (filled in by its issue).
