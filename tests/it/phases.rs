//! Tests of `phases` (filled in by its issue).
