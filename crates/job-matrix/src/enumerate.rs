//! Enumerating the matrix: paths, existence checks, strict and non-strict missing views.

use crate::overlap_report::{OVERLAP_REPORT, ReportLookup, read_report};
use crate::{
    BASELINE, BASELINE_GRIDSIZE, JobMatrix, LOG_FILE, MatrixError, Roots, SkipEvent, TrainingJob,
};
use std::fmt;
use std::path::{Path, PathBuf};
use study_design::Design;

/// One piece of missing training data.
#[derive(Clone, Debug, PartialEq)]
pub enum MissingData {
    /// A Phase C file (always an error).
    PhaseC {
        /// Its dose.
        dose: f64,
        /// The file that does not exist.
        path: PathBuf,
    },
    /// A Phase D view with a split missing (an error in strict mode).
    View {
        /// Its dose.
        dose: f64,
        /// The view (`sparse`).
        view: String,
        /// The files that do not exist.
        missing: Vec<PathBuf>,
        /// What Phase D's overlap report says about the view, if anything.
        phase_d: Option<String>,
    },
}

impl fmt::Display for MissingData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingData::PhaseC { dose, path } => write!(
                f,
                "Phase C data for dose {dose} is missing: {} not found \
                 (run `dose-overlap generate`, or check --phase-c-root)",
                path.display()
            ),
            MissingData::View {
                dose,
                view,
                missing,
                phase_d,
            } => {
                let files: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "Phase D view `{view}` for dose {dose} is missing: {} not found \
                     (strict mode; without --strict the view is skipped and recorded)",
                    files.join(" and ")
                )?;
                if let Some(note) = phase_d {
                    write!(f, ". {note}")?;
                }
                Ok(())
            }
        }
    }
}

/// Python's spelling of a boolean, as the original skip reason printed it.
fn py_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

fn check_root(which: &'static str, path: &Path, hint: &'static str) -> Result<(), MatrixError> {
    let problem = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "is not a folder",
        Err(_) => "does not exist",
    };
    Err(MatrixError::Root {
        which,
        path: path.to_path_buf(),
        problem,
        hint,
    })
}

/// Enumerates the whole matrix of `design` over `roots`.
///
/// Missing Phase C files are always errors; a missing Phase D view is an error when `strict`,
/// otherwise a skip event. Every problem is reported at once, not only the first. Skip events
/// cover the whole matrix: filters are applied afterwards ([`JobMatrix::select`]).
pub fn enumerate(design: &Design, roots: &Roots, strict: bool) -> Result<JobMatrix, MatrixError> {
    check_root(
        "Phase C",
        &roots.phase_c,
        "run `dose-overlap generate` first or check --phase-c-root",
    )?;
    check_root(
        "Phase D",
        &roots.phase_d,
        "run `dose-overlap overlap` first or check --phase-d-root",
    )?;
    // Without `cross_gridsizes`, overlap views train in groups of the design's largest
    // gridsize (2 in the spec's table) and the baseline single positions; with it, every
    // variant trains at every gridsize (`Design::variant_gridsizes`).
    let baseline_gridsizes = design.variant_gridsizes(true);
    let view_gridsizes = design.variant_gridsizes(false);
    debug_assert!(design.cross_gridsizes || baseline_gridsizes == [BASELINE_GRIDSIZE]);
    let views: Vec<&str> = design.overlap_views.names().collect();

    let mut jobs = Vec::with_capacity(design.dose_list.len() * (1 + views.len()));
    let mut skipped = Vec::new();
    let mut problems = Vec::new();
    for &dose in &design.dose_list {
        let dose_dir = Design::dose_dir_name(dose);
        let job = |view: &str, gridsize: u32, train: PathBuf, test: PathBuf| {
            let artifact_dir = crate::job_dir(&roots.artifacts, dose, view, gridsize);
            TrainingJob {
                dose,
                view: view.to_string(),
                gridsize,
                train_data_path: train,
                test_data_path: test,
                log_path: artifact_dir.join(LOG_FILE),
                artifact_dir,
            }
        };

        let phase_c = roots.phase_c.join(&dose_dir);
        let train = phase_c.join("patched_train.npz");
        let test = phase_c.join("patched_test.npz");
        for path in [&train, &test] {
            if !path.is_file() {
                problems.push(MissingData::PhaseC {
                    dose,
                    path: path.clone(),
                });
            }
        }
        for &g in &baseline_gridsizes {
            jobs.push(job(BASELINE, g, train.clone(), test.clone()));
        }

        let phase_d = roots.phase_d.join(&dose_dir);
        // Read at most once per dose, and only when a view is missing.
        let mut report: Option<ReportLookup> = None;
        for view in &views {
            let folder = phase_d.join(view);
            let train = folder.join(format!("{view}_train.npz"));
            let test = folder.join(format!("{view}_test.npz"));
            let (has_train, has_test) = (train.is_file(), test.is_file());
            if has_train && has_test {
                for &g in &view_gridsizes {
                    jobs.push(job(view, g, train.clone(), test.clone()));
                }
                continue;
            }
            let lookup = report.get_or_insert_with(|| read_report(&phase_d.join(OVERLAP_REPORT)));
            let note = lookup.explain(view);
            // The original wording explains the usual case; a view Phase D accepted was not
            // rejected, and the note says what to do instead.
            let expected = if lookup.accepted(view) {
                ""
            } else {
                " This is expected when Phase D overlap filtering rejected the view due to \
                 spacing threshold."
            };
            if strict {
                let missing = [(has_train, train), (has_test, test)]
                    .into_iter()
                    .filter(|(exists, _)| !exists)
                    .map(|(_, path)| path)
                    .collect();
                problems.push(MissingData::View {
                    dose,
                    view: view.to_string(),
                    missing,
                    phase_d: note,
                });
                continue;
            }
            let mut reason = format!(
                "NPZ files not found (train={}, test={}).{expected}",
                py_bool(has_train),
                py_bool(has_test)
            );
            if let Some(note) = note {
                reason.push(' ');
                reason.push_str(&note);
            }
            skipped.push(SkipEvent {
                dose,
                view: view.to_string(),
                reason,
            });
        }
    }
    if !problems.is_empty() {
        return Err(MatrixError::MissingData { problems });
    }
    Ok(JobMatrix { jobs, skipped })
}
