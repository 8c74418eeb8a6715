//! The one integration-test binary: runs the built `dose-overlap` on real files.

// Shared helpers: running the CLI, snapshot settings, fixture trees.
mod common;
// `dose-overlap design`: defaults, study files, validation messages.
mod design;
// `dose-overlap validate` and DATA-001 interop with NumPy-written files.
mod validate;
// NumPy parity: validate's verdicts against numpy.load on the committed ZIP-level corpus.
mod parity;
// Regressions of issue 13 (hostile input): each test is named after what broke.
mod hostile;
// Regressions of issue 26 (hostile artifacts): a received run or study cannot make a command
// write, read or hang outside it.
mod hostile_artifacts;
// `cargo xtask fuzz --target artifacts` on a fixed number of cases, and a planted bug found.
mod fuzz_artifacts;
// `dose-overlap train`: job matrix, dry runs, child-process trainers, manifest, skip summary.
mod train;
// `dose-overlap generate`: Phase C trees.
mod generate;
// `dose-overlap overlap`: Phase D views and overlap reports.
mod overlap;
// `train --backend native`: real reconstructions, metrics, bundles.
mod native;
// PtychoPINN backends without TensorFlow: refusals, the real trainer's flags, scoring.
mod pinn;
// pty-chi methods: refusals, the adapter's invocation and facts, a real job with $PTYCHI_PYTHON.
mod ptychi;
// PtychoPINN's supervised baseline: refusals, the adapter's invocation and facts, a study.
mod supervised;
// `score` against scikit-image / NumPy fixtures, and its input errors.
mod score;
// `study`, `report`, `diff`, and the golden baseline.
mod study;
// The dose x overlap map: map.csv, heatmaps, the success boundary, difference maps.
mod map;
// The comparison phase: `study --backends`, `compare`, pictures, study folders, plot labels.
mod compare;
// Replicates: intervals and paired tests against SciPy, resume, verify, diff, report.
mod replicates;
// SLURM executor, `run-job` and `collect` (real cluster when DOSE_OVERLAP_SLURM is set).
mod slurm;
// The JSON Schemas of schemas/: goldens and real artifacts conform.
mod schemas;
// Sweeps of more doses than a report pictures: 8 doses pictured, every job tabled.
mod large;
// Resume, the root lock, verify, kills at random points, contained trainers.
mod resume;
