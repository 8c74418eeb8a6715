//! Tests of `native` (filled in by its issue).
