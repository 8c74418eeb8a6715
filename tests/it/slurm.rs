//! Tests of `slurm` (filled in by its issue).
