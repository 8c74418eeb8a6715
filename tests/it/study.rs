//! Tests of `study` (filled in by its issue).
