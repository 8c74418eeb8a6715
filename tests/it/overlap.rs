//! Tests of `overlap` (filled in by its issue).
