//! Tests of `generate` (filled in by its issue).
