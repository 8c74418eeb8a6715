//! Tests of `design` (filled in by its issue).
