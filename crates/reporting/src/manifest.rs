//! `training_manifest.json` and `skip_summary.json`: assembled from a plan and its jobs'
//! results, the same way after a local run and after `collect`, and written atomically.
//!
//! Both are deterministic: the timestamp comes from the plan (fixed by `SOURCE_DATE_EPOCH`),
//! key order is the struct order, and nothing volatile (wall times, hosts) is recorded.

use job_matrix::{JobFilter, SkipEvent};
use runner::{JobResult, Plan};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// File name of the manifest under the artifact root.
pub const MANIFEST_FILE: &str = "training_manifest.json";
/// File name of the skip summary under the artifact root.
pub const SKIP_SUMMARY_FILE: &str = "skip_summary.json";
/// Cap on a manifest read whole: 100,000 jobs (the most a design allows) of the largest
/// results the toolkit writes fit well below it.
pub const MANIFEST_CAP: u64 = 2 << 30;
/// Version of the manifest format. Bump it when a field changes meaning or goes away.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// The training manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingManifest {
    /// [`MANIFEST_FORMAT_VERSION`].
    pub format_version: u32,
    /// UTC, ISO 8601 with microseconds and `Z`.
    pub timestamp: String,
    /// As given on the command line.
    pub phase_c_root: String,
    /// As given on the command line.
    pub phase_d_root: String,
    /// As given on the command line.
    pub artifact_root: String,
    /// The backend of every job.
    pub backend: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether missing views were errors.
    pub strict: bool,
    /// The filters given (`null` for none).
    pub filters: JobFilter,
    /// Jobs in the whole matrix before filters.
    pub enumerated_count: usize,
    /// One entry per selected job, in matrix order.
    pub jobs: Vec<ManifestJob>,
    /// Skip events of the whole matrix.
    pub skipped_views: Vec<SkipEvent>,
    /// Their number.
    pub skipped_count: usize,
    /// `skip_summary.json`, relative to the artifact root.
    pub skip_summary_path: String,
    /// Present only while the run that wrote this manifest has not finished (or if it died):
    /// then the jobs' results are not final. A finished run's manifest has no such field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_in_progress: Option<RunInProgress>,
}

/// Who is (or was) writing an unfinished manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInProgress {
    /// The writer's process id.
    pub pid: u32,
    /// When that run started (UTC, wall clock: an unfinished manifest is not an artifact to
    /// compare).
    pub started: String,
}

impl RunInProgress {
    /// This process, now.
    pub fn this_process() -> RunInProgress {
        RunInProgress {
            pid: std::process::id(),
            started: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        }
    }

    /// The `run_in_progress` of a manifest read as JSON (as `diff` reads it), if it has one
    /// of this shape.
    pub fn in_json(manifest: &serde_json::Value) -> Option<RunInProgress> {
        serde_json::from_value(manifest.get("run_in_progress")?.clone()).ok()
    }

    /// `the run that wrote it (pid 12, started T) did not finish: it is still running, or it
    /// died` — for report and diff.
    pub fn describe(&self) -> String {
        let alive = Path::new("/proc").join(self.pid.to_string()).exists();
        let state = if alive && self.pid != std::process::id() {
            "it is still running, or died and its pid was reused"
        } else {
            "it is no longer running: it was killed or crashed"
        };
        format!(
            "this manifest is from a run that did not finish (pid {}, started {}): {state}; \
             its results are not final. Rerun the same command to resume it",
            self.pid, self.started
        )
    }
}

/// Where a job is in an unfinished run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not started yet.
    Pending,
    /// Started, not finished.
    Running,
    /// Finished (or verified complete from an earlier run): its result is final.
    Done,
}

/// Where a path the manifest records is read now: a path under the artifact root the run was
/// given (`recorded_root`) is taken under `root`, the root as given now (another path to the
/// same folder, or the folder moved), with no link on the way ([`npz_contract::confine`]);
/// any other path is refused. The one rule by which `verify` and the pictures of `report` and
/// `compare` find a job's files; [`Locations`] applies it to a manifest's inputs too.
pub fn relocate(recorded: &Path, recorded_root: &Path, root: &Path) -> Result<PathBuf, String> {
    npz_contract::confine::within(recorded, recorded_root, root).map_err(|e| e.to_string())
}

/// A path's components folded lexically: how many `..` it starts with and the names after
/// (`None` when a `..` follows a name it cannot fold, or for a root or prefix inside).
fn folded(path: &Path) -> Option<(usize, Vec<std::ffi::OsString>)> {
    let mut ups = 0;
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name.to_os_string()),
            Component::ParentDir if names.is_empty() => ups += 1,
            Component::ParentDir => {
                names.pop();
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return None,
        }
    }
    Some((ups, names))
}

/// The study folder an artifact root is part of (`S/artifacts` or `S/artifacts/<method>`
/// whose `S` holds `study.json`), if it is one; `root` made absolute lexically.
pub fn study_of(root: &Path) -> Option<PathBuf> {
    let (ups, names) = folded(&std::path::absolute(root).ok()?)?;
    if ups > 0 {
        return None;
    }
    let is_study = |k: usize| {
        let dir: PathBuf = std::iter::once(std::ffi::OsString::from("/"))
            .chain(names[..k].iter().cloned())
            .collect();
        std::fs::symlink_metadata(dir.join("study.json"))
            .is_ok_and(|m| m.is_file())
            .then_some(dir)
    };
    let n = names.len();
    if n >= 1 && names[n - 1] == "artifacts" {
        return is_study(n - 1);
    }
    if n >= 2 && names[n - 2] == "artifacts" {
        return is_study(n - 2);
    }
    None
}

/// Where the paths a manifest records are read now: the relocation rule ([`relocate`]) for
/// paths under the artifact root, and for the train and test data, the Phase C and D roots
/// found from where the artifact root is now (their recorded positions relative to the
/// recorded artifact root, never the current folder). Inside a study folder, data outside it
/// are refused; everywhere, a data file is read only below its phase root, through no link.
#[derive(Clone, Debug)]
pub struct Locations {
    /// The artifact root as given now.
    root: PathBuf,
    /// The artifact root the run was given.
    recorded_root: PathBuf,
    /// The recorded Phase C and D roots, each with where it is now (or why it cannot be found).
    phase_roots: Vec<(PathBuf, Result<PathBuf, String>)>,
    /// The study folder the root is part of.
    study: Option<PathBuf>,
}

impl Locations {
    /// The locations of a manifest read from `root`, whose run was given `artifact_root`,
    /// `phase_c_root` and `phase_d_root`.
    pub fn new(root: &Path, artifact_root: &str, phase_c_root: &str, phase_d_root: &str) -> Self {
        let study = study_of(root);
        let phase_roots = [phase_c_root, phase_d_root]
            .into_iter()
            .map(|recorded| {
                let recorded = PathBuf::from(recorded);
                let now =
                    phase_root_now(root, Path::new(artifact_root), &recorded).and_then(|now| {
                        match &study {
                            Some(study) => confined_to(study, &now),
                            None => Ok(now),
                        }
                    });
                (recorded, now)
            })
            .collect();
        Locations {
            root: root.to_path_buf(),
            recorded_root: PathBuf::from(artifact_root),
            phase_roots,
            study,
        }
    }

    /// The artifact root as given now.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A job's artifact dir (recorded under the recorded artifact root), now.
    pub fn job_dir(&self, recorded: &Path) -> Result<PathBuf, String> {
        relocate(recorded, &self.recorded_root, &self.root)
    }

    /// A job's train or test data (recorded under the recorded Phase C or D root), now.
    pub fn input(&self, recorded: &Path) -> Result<PathBuf, String> {
        for (phase_root, now) in &self.phase_roots {
            let Ok(rel) = recorded.strip_prefix(phase_root) else {
                continue;
            };
            let now = now
                .as_ref()
                .map_err(|e| format!("{}: {e}", recorded.display()))?;
            // Inside a study no link from the study folder down; elsewhere none below the
            // phase root.
            let checked = match &self.study {
                Some(study) => {
                    now.strip_prefix(study)
                        .map_err(|e| e.to_string())
                        .and_then(|phase| {
                            npz_contract::confine::join(study, &phase.join(rel))
                                .map_err(|e| e.to_string())
                        })
                }
                None => npz_contract::confine::join(now, rel).map_err(|e| e.to_string()),
            };
            return checked;
        }
        Err(format!(
            "{}: not under the run's Phase C or Phase D root",
            recorded.display()
        ))
    }
}

/// `now` when it is inside `study` (else why not).
fn confined_to(study: &Path, now: &Path) -> Result<PathBuf, String> {
    match now.strip_prefix(study) {
        Ok(rel) if npz_contract::confine::plain_relative(rel).is_ok() => Ok(now.to_path_buf()),
        _ => Err(format!(
            "its phase root {} is outside the study folder {}",
            now.display(),
            study.display()
        )),
    }
}

/// Where a recorded phase root is now, from where the artifact root is now: both recorded
/// paths are relative to the folder the run started in (or both absolute), so the phase
/// root's place relative to the artifact root is known; an absolute phase root of a run given
/// a relative artifact root is where it was.
fn phase_root_now(root: &Path, recorded_root: &Path, recorded: &Path) -> Result<PathBuf, String> {
    let unknown = || {
        format!(
            "the phase root {} was recorded relative to a folder that cannot be found from \
             the artifact root {}",
            recorded.display(),
            root.display()
        )
    };
    let root_now = std::path::absolute(root).map_err(|e| e.to_string())?;
    let (root_ups, root_names) = folded(&root_now).ok_or_else(unknown)?;
    if root_ups > 0 {
        return Err(unknown());
    }
    let (ra, rp) = (recorded_root.is_absolute(), recorded.is_absolute());
    if rp && !ra {
        return Ok(recorded.to_path_buf());
    }
    if ra && !rp {
        return Err(unknown());
    }
    let (ua, na) = folded(recorded_root).ok_or_else(unknown)?;
    let (up, np) = folded(recorded).ok_or_else(unknown)?;
    // Components of the recorded artifact root below the folder both paths share, and the
    // names of the phase root below it.
    let (strip, rest): (usize, &[std::ffi::OsString]) = if ua == up {
        let common = na.iter().zip(&np).take_while(|(a, b)| a == b).count();
        (na.len() - common, &np[common..])
    } else if up > ua {
        (up - ua + na.len(), &np[..])
    } else {
        return Err(unknown());
    };
    let keep = root_names.len().checked_sub(strip).ok_or_else(unknown)?;
    let mut now = PathBuf::from("/");
    now.extend(&root_names[..keep]);
    now.extend(rest);
    Ok(now)
}

/// One job of the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestJob {
    /// Dose (a JSON number, `1000.0`).
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u32,
    /// Training NPZ.
    pub train_data_path: PathBuf,
    /// Test NPZ.
    pub test_data_path: PathBuf,
    /// `<artifact_root>/dose_<int>/<view>/gs<g>`.
    pub artifact_dir: PathBuf,
    /// The job's log.
    pub log_path: PathBuf,
    /// The dry-run summary or the backend's result.
    pub result: JobResult,
    /// Only in an unfinished run's manifest: pending, running or done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
}

/// Why `rel`, a file name a result records relative to its job dir (its bundle, its
/// reconstruction), cannot be used: it must be a plain relative path of ASCII letters, digits,
/// `_`, `-`, `.` and `/` (it is joined under the job dir and printed in the report).
fn job_file_problem(rel: &str) -> Option<String> {
    if let Err(why) = npz_contract::confine::plain_relative(Path::new(rel)) {
        return Some(why);
    }
    rel.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
        .map(|c| format!("it holds {c:?}"))
}

impl ManifestJob {
    /// Why this job, read from a manifest whose run was given `artifact_root` and the Phase C
    /// and D roots `phase_roots`, is not one `train` could have written: its identity is one
    /// `design` refuses (its view becomes file names and report lines), its artifact dir is
    /// not `<artifact_root>/dose_<int>/<view>/gs<g>` with its log in it, its data are not
    /// under a phase root, or its result names files outside its job dir. Every reader of a
    /// manifest refuses such a job.
    pub fn problem(&self, artifact_root: &str, phase_roots: [&str; 2]) -> Option<String> {
        if let Some(why) = job_matrix::job_identity_problem(self.dose, &self.view, self.gridsize) {
            return Some(why);
        }
        let dir = job_matrix::job_dir(
            Path::new(artifact_root),
            self.dose,
            &self.view,
            self.gridsize,
        );
        if self.artifact_dir != dir {
            return Some(format!(
                "its artifact_dir {} is not {}, where its artifact root puts it",
                self.artifact_dir.display(),
                dir.display()
            ));
        }
        if self.log_path != dir.join(job_matrix::LOG_FILE) {
            return Some(format!(
                "its log_path {} is not in its artifact dir",
                self.log_path.display()
            ));
        }
        for data in [&self.train_data_path, &self.test_data_path] {
            let inside = phase_roots.iter().any(|root| {
                data.strip_prefix(root)
                    .is_ok_and(|rel| npz_contract::confine::plain_relative(rel).is_ok())
            });
            if !inside {
                return Some(format!(
                    "its data {} is not under the Phase C or D root",
                    data.display()
                ));
            }
        }
        let backend = match &self.result {
            JobResult::DryRun(r) => &r.backend,
            JobResult::Success(r) => &r.backend,
            JobResult::Failed(r) => &r.backend,
            JobResult::Interrupted(r) => &r.backend,
        };
        if backend.parse::<runner::BackendKind>().is_err() {
            return Some(format!(
                "its result's backend '{}' is not one dose-overlap runs",
                backend.escape_debug()
            ));
        }
        match &self.result {
            JobResult::Success(trained) => {
                let files = std::iter::once(("bundle_path", &trained.bundle_path)).chain(
                    trained
                        .reconstruction_path
                        .iter()
                        .map(|p| ("reconstruction_path", p)),
                );
                for (field, rel) in files {
                    if let Some(why) = job_file_problem(rel) {
                        return Some(format!(
                            "its {field} '{}' is not a file name inside its job dir: {why}",
                            rel.escape_debug()
                        ));
                    }
                }
                let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
                if trained.bundle_sha256.len() != 64 || !trained.bundle_sha256.chars().all(hex) {
                    return Some("its bundle_sha256 is not a SHA-256 in hex".to_string());
                }
            }
            JobResult::DryRun(summary) => {
                if summary.dose.to_bits() != self.dose.to_bits()
                    || summary.view != self.view
                    || summary.gridsize != self.gridsize
                    || summary.artifact_dir != self.artifact_dir
                    || summary.log_path != self.log_path
                    || summary.train_data_path != self.train_data_path
                    || summary.test_data_path != self.test_data_path
                {
                    return Some("its dry-run summary is another job's".to_string());
                }
            }
            JobResult::Failed(_) | JobResult::Interrupted(_) => {}
        }
        None
    }
}

/// Version of the `skip_summary.json` format.
pub const SKIP_SUMMARY_FORMAT_VERSION: u32 = 1;

/// `skip_summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipSummary {
    /// [`SKIP_SUMMARY_FORMAT_VERSION`] (summaries written before it existed read as 1).
    #[serde(default = "skip_summary_version")]
    pub format_version: u32,
    /// Same as the manifest's.
    pub timestamp: String,
    /// Same as the manifest's.
    pub skipped_views: Vec<SkipEvent>,
    /// Their number.
    pub skipped_count: usize,
}

/// Why a manifest could not be assembled, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The results do not match the plan's jobs.
    #[error("{results} result(s) for a plan of {jobs} job(s)")]
    Mismatch {
        /// Jobs in the plan.
        jobs: usize,
        /// Results given.
        results: usize,
    },
    /// The manifest could not be read.
    // The cause is part of the message, not a `source`: an error chain printed in full
    // (`{:#}`) would otherwise say it twice.
    #[error("reading {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file could not be written (the message names it).
    #[error(transparent)]
    Write(std::io::Error),
    /// Not a manifest of this format.
    #[error("{} is not a training manifest of format {MANIFEST_FORMAT_VERSION}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn skip_summary_version() -> u32 {
    SKIP_SUMMARY_FORMAT_VERSION
}

fn pretty<T: Serialize>(value: &T, path: &Path) -> Result<String, ManifestError> {
    runner::artifact_json(value).map_err(|e| ManifestError::Parse {
        path: path.to_path_buf(),
        message: format!("cannot be serialised: {e}"),
    })
}

impl TrainingManifest {
    /// The manifest of `plan` whose jobs ended with `results` (in plan order).
    pub fn assemble(plan: &Plan, results: &[JobResult]) -> Result<TrainingManifest, ManifestError> {
        if results.len() != plan.jobs.len() {
            return Err(ManifestError::Mismatch {
                jobs: plan.jobs.len(),
                results: results.len(),
            });
        }
        let jobs = plan
            .jobs
            .iter()
            .zip(results)
            .map(|(planned, result)| {
                let job = &planned.job;
                ManifestJob {
                    dose: job.dose,
                    view: job.view.clone(),
                    gridsize: job.gridsize,
                    train_data_path: job.train_data_path.clone(),
                    test_data_path: job.test_data_path.clone(),
                    artifact_dir: job.artifact_dir.clone(),
                    log_path: job.log_path.clone(),
                    result: result.clone(),
                    state: None,
                }
            })
            .collect();
        Ok(TrainingManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            timestamp: plan.timestamp.clone(),
            phase_c_root: plan.phase_c_root.clone(),
            phase_d_root: plan.phase_d_root.clone(),
            artifact_root: plan.artifact_root.clone(),
            backend: plan.backend.as_str().to_string(),
            dry_run: plan.dry_run,
            strict: plan.strict,
            filters: plan.filters.clone(),
            enumerated_count: plan.enumerated_count,
            jobs,
            skipped_views: plan.skipped_views.clone(),
            skipped_count: plan.skipped_views.len(),
            skip_summary_path: SKIP_SUMMARY_FILE.to_string(),
            run_in_progress: None,
        })
    }

    /// The manifest of a run still going: jobs with a result in `done` are done, jobs whose
    /// `running` flag is set are running, the others pending. A job that is not done carries
    /// an `interrupted` result, which is what it will be if this run dies.
    pub fn in_progress(
        plan: &Plan,
        done: &[Option<JobResult>],
        running: &[bool],
        run: &RunInProgress,
    ) -> Result<TrainingManifest, ManifestError> {
        let results: Vec<JobResult> = done
            .iter()
            .zip(running)
            .map(|(result, &started)| {
                result.clone().unwrap_or_else(|| {
                    JobResult::Interrupted(runner::InterruptedResult {
                        backend: plan.backend.as_str().to_string(),
                        started,
                        error: format!(
                            "not finished: the run that wrote this manifest (pid {}) had not \
                             finished this job; rerun the same command to resume",
                            run.pid
                        ),
                    })
                })
            })
            .collect();
        let mut manifest = TrainingManifest::assemble(plan, &results)?;
        for ((job, result), &started) in manifest.jobs.iter_mut().zip(done).zip(running) {
            job.state = Some(match (result, started) {
                (Some(_), _) => JobState::Done,
                (None, true) => JobState::Running,
                (None, false) => JobState::Pending,
            });
        }
        manifest.run_in_progress = Some(run.clone());
        Ok(manifest)
    }

    /// Writes only `training_manifest.json`, atomically (an unfinished run's manifest; the skip
    /// summary is written with the final one).
    pub fn write_manifest_only(&self) -> Result<PathBuf, ManifestError> {
        let path = self.path();
        let text = self.to_json()?;
        npz_contract::atomic::write_atomic(&path, text.as_bytes()).map_err(ManifestError::Write)?;
        Ok(path)
    }

    /// The skip summary that goes with this manifest.
    pub fn skip_summary(&self) -> SkipSummary {
        SkipSummary {
            format_version: SKIP_SUMMARY_FORMAT_VERSION,
            timestamp: self.timestamp.clone(),
            skipped_views: self.skipped_views.clone(),
            skipped_count: self.skipped_views.len(),
        }
    }

    /// `<artifact_root>/training_manifest.json`.
    pub fn path(&self) -> PathBuf {
        Path::new(&self.artifact_root).join(MANIFEST_FILE)
    }

    /// `<artifact_root>/skip_summary.json`.
    pub fn skip_summary_file(&self) -> PathBuf {
        Path::new(&self.artifact_root).join(&self.skip_summary_path)
    }

    /// Pretty JSON with a final newline: the bytes of the manifest.
    pub fn to_json(&self) -> Result<String, ManifestError> {
        pretty(self, &self.path())
    }

    /// Parses a manifest held whole, checking its format version first (with a message that
    /// says so). Every reader now streams ([`TrainingManifest::stream`]); this is kept as the
    /// independent reader the streamed one is tested against.
    #[cfg(test)]
    pub fn from_json(text: &str, path: &Path) -> Result<TrainingManifest, ManifestError> {
        let parse = |message: String| ManifestError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse(format!("not JSON: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(MANIFEST_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(parse(format!(
                    "it is of format {v}, written by another version of dose-overlap"
                )));
            }
            None => return Err(parse("it has no format_version".to_string())),
        }
        let manifest: TrainingManifest =
            serde_json::from_str(text).map_err(|e| parse(e.to_string()))?;
        manifest.check().map_err(parse)?;
        Ok(manifest)
    }

    /// Whether this manifest is one `train` could have written (every reader checks it before
    /// using a field): each job passes [`ManifestJob::problem`], no job is listed twice, the
    /// skip summary is a file of the artifact root and each skip names a view `design`
    /// allows. Says the first problem.
    pub fn check(&self) -> Result<(), String> {
        if self.backend.parse::<runner::BackendKind>().is_err() {
            return Err(format!(
                "its backend '{}' is not one dose-overlap runs",
                self.backend.escape_debug()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, job) in self.jobs.iter().enumerate() {
            job_problem(self, i, job, &mut seen)?;
        }
        if let Err(why) = npz_contract::confine::plain_relative(Path::new(&self.skip_summary_path))
        {
            return Err(format!(
                "its skip_summary_path '{}' is not a file of the artifact root: {why}",
                self.skip_summary_path.escape_debug()
            ));
        }
        for (i, skip) in self.skipped_views.iter().enumerate() {
            if let Some(why) = job_matrix::job_identity_problem(skip.dose, &skip.view, 1) {
                return Err(format!("skipped view {i}: {why}"));
            }
        }
        Ok(())
    }

    /// Reads `<artifact_root>/training_manifest.json`.
    pub fn read(artifact_root: &Path) -> Result<TrainingManifest, ManifestError> {
        // Streamed into its jobs: the text is never held beside them.
        let mut jobs = Vec::new();
        let head = TrainingManifest::stream(artifact_root, |_, job| jobs.push(job))?;
        Ok(TrainingManifest {
            jobs,
            ..head.manifest
        })
    }

    /// Writes `skip_summary.json`, then `training_manifest.json` (which points at it), each
    /// atomically. Returns their paths.
    pub fn write(&self) -> Result<(PathBuf, PathBuf), ManifestError> {
        let summary_path = self.skip_summary_file();
        let manifest_path = self.path();
        let summary = pretty(&self.skip_summary(), &summary_path)?;
        let manifest = self.to_json()?;
        for (path, text) in [(&summary_path, summary), (&manifest_path, manifest)] {
            npz_contract::atomic::write_atomic(path, text.as_bytes())
                .map_err(ManifestError::Write)?;
        }
        Ok((manifest_path, summary_path))
    }
}

/// Everything of a manifest but its jobs, with how many jobs it lists: what
/// [`TrainingManifest::stream`] returns once every job went to its callback.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestHead {
    /// The manifest with `jobs` empty.
    pub manifest: TrainingManifest,
    /// How many jobs it lists.
    pub job_count: usize,
}

/// The manifest's fields by name: an unknown one is refused as `deny_unknown_fields` refuses it.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    FormatVersion,
    Timestamp,
    PhaseCRoot,
    PhaseDRoot,
    ArtifactRoot,
    Backend,
    DryRun,
    Strict,
    Filters,
    EnumeratedCount,
    Jobs,
    SkippedViews,
    SkippedCount,
    SkipSummaryPath,
    RunInProgress,
}

/// Why streaming stopped when it is not the JSON's fault (another format, a job no run
/// writes): said as [`TrainingManifest::check`] says it, not as a parser error at a line.
type Stop = std::cell::RefCell<Option<String>>;

/// Hands each job, checked, to `on_job` once the fields it is checked against are known
/// (the format version and the three roots come first in every manifest `train` writes);
/// jobs listed before them wait in `waiting` until the end.
struct Jobs<'s, F> {
    head: Option<&'s TrainingManifest>,
    waiting: &'s mut Vec<ManifestJob>,
    seen: &'s mut std::collections::HashSet<(u64, String, u32)>,
    count: &'s mut usize,
    on_job: &'s mut F,
    stop: &'s Stop,
}

/// What [`TrainingManifest::check`] finds wrong with job `i` of `head`'s manifest: a
/// [`ManifestJob::problem`], or a job already in `seen`.
fn job_problem(
    head: &TrainingManifest,
    i: usize,
    job: &ManifestJob,
    seen: &mut std::collections::HashSet<(u64, String, u32)>,
) -> Result<(), String> {
    let phase_roots = [head.phase_c_root.as_str(), head.phase_d_root.as_str()];
    if let Some(why) = job.problem(&head.artifact_root, phase_roots) {
        return Err(format!("job {i}: {why}"));
    }
    if !seen.insert((job.dose.to_bits(), job.view.clone(), job.gridsize)) {
        return Err(format!(
            "job {i} ({} {} gs{}) is listed twice",
            job_matrix::format_dose(job.dose),
            job.view,
            job.gridsize
        ));
    }
    Ok(())
}

/// The checks of [`TrainingManifest::check`] on job `i`, then `on_job`.
fn take_job<F: FnMut(&TrainingManifest, ManifestJob)>(
    head: &TrainingManifest,
    i: usize,
    job: ManifestJob,
    seen: &mut std::collections::HashSet<(u64, String, u32)>,
    on_job: &mut F,
) -> Result<(), String> {
    job_problem(head, i, &job, seen)?;
    on_job(head, job);
    Ok(())
}

impl<'de, F: FnMut(&TrainingManifest, ManifestJob)> serde::de::DeserializeSeed<'de>
    for Jobs<'_, F>
{
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&TrainingManifest, ManifestJob)> serde::de::Visitor<'de> for Jobs<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence of jobs")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(job) = seq.next_element::<ManifestJob>()? {
            let i = *self.count;
            *self.count += 1;
            match self.head {
                Some(head) => {
                    if let Err(why) = take_job(head, i, job, self.seen, self.on_job) {
                        *self.stop.borrow_mut() = Some(why);
                        return Err(serde::de::Error::custom("stopped"));
                    }
                }
                None => self.waiting.push(job),
            }
        }
        Ok(())
    }
}

/// The whole manifest object: its fields as `TrainingManifest`'s derive reads them (unknown,
/// duplicate and missing fields are errors worded the same), its jobs streamed.
struct Whole<'s, F> {
    on_job: &'s mut F,
    stop: &'s Stop,
}

impl<'de, F: FnMut(&TrainingManifest, ManifestJob)> serde::de::Visitor<'de> for Whole<'_, F> {
    type Value = ManifestHead;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a training manifest")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ManifestHead, A::Error> {
        use serde::de::Error;
        let mut head = TrainingManifest {
            format_version: 0,
            timestamp: String::new(),
            phase_c_root: String::new(),
            phase_d_root: String::new(),
            artifact_root: String::new(),
            backend: String::new(),
            dry_run: false,
            strict: false,
            filters: JobFilter::default(),
            enumerated_count: 0,
            jobs: Vec::new(),
            skipped_views: Vec::new(),
            skipped_count: 0,
            skip_summary_path: String::new(),
            run_in_progress: None,
        };
        // Which fields were given (a missing one is an error, as the derive says it).
        let mut given = std::collections::HashSet::new();
        let mut waiting = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut count = 0;
        macro_rules! field {
            ($name:literal, $slot:expr) => {{
                if !given.insert($name) {
                    return Err(A::Error::duplicate_field($name));
                }
                $slot = map.next_value()?;
            }};
        }
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::FormatVersion => {
                    field!("format_version", head.format_version);
                    if head.format_version != MANIFEST_FORMAT_VERSION {
                        *self.stop.borrow_mut() = Some(format!(
                            "it is of format {}, written by another version of dose-overlap",
                            head.format_version
                        ));
                        return Err(A::Error::custom("stopped"));
                    }
                }
                Field::Timestamp => field!("timestamp", head.timestamp),
                Field::PhaseCRoot => field!("phase_c_root", head.phase_c_root),
                Field::PhaseDRoot => field!("phase_d_root", head.phase_d_root),
                Field::ArtifactRoot => field!("artifact_root", head.artifact_root),
                Field::Backend => field!("backend", head.backend),
                Field::DryRun => field!("dry_run", head.dry_run),
                Field::Strict => field!("strict", head.strict),
                Field::Filters => field!("filters", head.filters),
                Field::EnumeratedCount => field!("enumerated_count", head.enumerated_count),
                Field::SkippedViews => field!("skipped_views", head.skipped_views),
                Field::SkippedCount => field!("skipped_count", head.skipped_count),
                Field::SkipSummaryPath => field!("skip_summary_path", head.skip_summary_path),
                Field::RunInProgress => field!("run_in_progress", head.run_in_progress),
                Field::Jobs => {
                    if !given.insert("jobs") {
                        return Err(A::Error::duplicate_field("jobs"));
                    }
                    let ready = [
                        "format_version",
                        "artifact_root",
                        "phase_c_root",
                        "phase_d_root",
                    ]
                    .iter()
                    .all(|f| given.contains(f));
                    map.next_value_seed(Jobs {
                        head: ready.then_some(&head),
                        waiting: &mut waiting,
                        seen: &mut seen,
                        count: &mut count,
                        on_job: &mut *self.on_job,
                        stop: self.stop,
                    })?;
                }
            }
        }
        if !given.contains("format_version") {
            *self.stop.borrow_mut() = Some("it has no format_version".to_string());
            return Err(A::Error::custom("stopped"));
        }
        for name in [
            "timestamp",
            "phase_c_root",
            "phase_d_root",
            "artifact_root",
            "backend",
            "dry_run",
            "strict",
            "filters",
            "enumerated_count",
            "jobs",
            "skipped_views",
            "skipped_count",
            "skip_summary_path",
        ] {
            if !given.contains(name) {
                return Err(A::Error::missing_field(name));
            }
        }
        let first_waiting = count - waiting.len();
        for (k, job) in waiting.into_iter().enumerate() {
            if let Err(why) = take_job(&head, first_waiting + k, job, &mut seen, self.on_job) {
                *self.stop.borrow_mut() = Some(why);
                return Err(A::Error::custom("stopped"));
            }
        }
        if let Err(why) = head.check() {
            *self.stop.borrow_mut() = Some(why);
            return Err(A::Error::custom("stopped"));
        }
        Ok(ManifestHead {
            manifest: head,
            job_count: count,
        })
    }
}

impl TrainingManifest {
    /// Reads `<artifact_root>/training_manifest.json` as a stream, handing each job to `on_job`
    /// (with the manifest's fields read so far: its roots and format) as soon as it is parsed
    /// and checked, and returns the rest. Memory does not grow with the number of jobs beyond
    /// what `on_job` keeps: a manifest of 100,000 jobs is several hundred MB of JSON. The same
    /// file, confinement and cap as [`TrainingManifest::read`], and the same checks and
    /// messages; on an error `on_job` may have seen some jobs of a manifest that is then
    /// refused, so a caller keeps what it derives from them until this returns `Ok`.
    pub fn stream(
        artifact_root: &Path,
        mut on_job: impl FnMut(&TrainingManifest, ManifestJob),
    ) -> Result<ManifestHead, ManifestError> {
        use serde::Deserializer as _;
        let path = artifact_root.join(MANIFEST_FILE);
        let file = npz_contract::confine::open_capped(&path, MANIFEST_CAP).map_err(|cause| {
            ManifestError::Read {
                path: path.clone(),
                cause,
            }
        })?;
        let stop = Stop::default();
        let mut de =
            serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, file));
        let parsed = de
            .deserialize_map(Whole {
                on_job: &mut on_job,
                stop: &stop,
            })
            .and_then(|head| de.end().map(|()| head));
        parsed.map_err(|e| {
            let message = match stop.into_inner() {
                Some(why) => why,
                None => match e.classify() {
                    serde_json::error::Category::Io => {
                        return ManifestError::Read {
                            path: path.clone(),
                            cause: std::io::Error::other(e.to_string()),
                        };
                    }
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                        format!("not JSON: {e}")
                    }
                    serde_json::error::Category::Data => e.to_string(),
                },
            };
            ManifestError::Parse { path, message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use runner::{DryRunSummary, FailedResult, InterruptedResult, TrainedResult};

    fn job(i: usize, mut result: JobResult) -> ManifestJob {
        let (dose, view, gridsize) = (
            [1e3, 1e4, 1e5][i % 3],
            ["baseline", "dense", "sparse"][i % 3],
            1 + (i % 2) as u32,
        );
        let artifact_dir = job_matrix::job_dir(Path::new("art"), dose, view, gridsize);
        let job = ManifestJob {
            dose,
            view: view.to_string(),
            gridsize,
            train_data_path: format!("phase c/dose_{i}/train.npz").into(),
            test_data_path: format!("phase c/dose_{i}/test.npz").into(),
            log_path: artifact_dir.join("train.log"),
            artifact_dir,
            result: JobResult::Interrupted(InterruptedResult {
                backend: "native".into(),
                started: false,
                error: String::new(),
            }),
            state: None,
        };
        // A dry run's summary is its own job's.
        if let JobResult::DryRun(summary) = &mut result {
            summary.dose = job.dose;
            summary.view = job.view.clone();
            summary.gridsize = job.gridsize;
            summary.train_data_path = job.train_data_path.clone();
            summary.test_data_path = job.test_data_path.clone();
            summary.artifact_dir = job.artifact_dir.clone();
            summary.log_path = job.log_path.clone();
        }
        ManifestJob { result, ..job }
    }

    fn results() -> impl Strategy<Value = JobResult> {
        prop_oneof![
            (any::<u32>(), any::<bool>()).prop_map(|(g, b)| JobResult::DryRun(DryRunSummary {
                dose: f64::from(g) + 0.5,
                view: "dense".into(),
                gridsize: g,
                train_data_path: "a b/c.npz".into(),
                test_data_path: "d.npz".into(),
                artifact_dir: "x".into(),
                log_path: "x/train.log".into(),
                backend: if b { "native" } else { "tensorflow" }.into(),
            })),
            (
                proptest::option::of(-1e300f64..1e300),
                any::<u32>(),
                1u64..u64::MAX,
                proptest::collection::vec(0.0f64..10.0, 0..5),
                any::<bool>()
            )
                .prop_map(|(loss, epochs, size, history, with_extra)| {
                    JobResult::Success(TrainedResult {
                        backend: "native".into(),
                        final_loss: loss,
                        epochs_completed: epochs,
                        bundle_path: "native_bundle.npz".into(),
                        bundle_sha256: "0123456789abcdef".repeat(4),
                        bundle_size_bytes: size,
                        loss_history: with_extra.then(|| serde_json::json!({ "train": history })),
                        metrics: with_extra.then(|| {
                            serde_json::json!({"test": {"phase": {"ssim": loss, "psnr": {"value": 31.5, "data_range": std::f64::consts::TAU}}}})
                        }),
                        solver: with_extra.then(|| serde_json::json!({"algorithm": "ml"})),
                        reconstruction_path: with_extra.then(|| "pinn_reconstruction.npz".into()),
                        scoring_error: (!with_extra).then(|| "no Python".into()),
                        pinn: None,
                    })
                }),
            ("[ -~]{0,40}", any::<bool>()).prop_map(|(error, with_history)| JobResult::Failed(FailedResult {
                backend: "pytorch".into(),
                error,
                loss_history: with_history.then(|| serde_json::json!([0.5, 40.0])),
            })),
            any::<bool>().prop_map(|started| JobResult::Interrupted(InterruptedResult {
                backend: "native".into(),
                started,
                error: "interrupted by SIGTERM".into()
            })),
        ]
    }

    fn manifest(jobs: Vec<ManifestJob>, skips: usize) -> TrainingManifest {
        let skipped_views: Vec<SkipEvent> = (0..skips)
            .map(|i| SkipEvent {
                dose: 10f64.powi(i as i32 + 3),
                view: "sparse".into(),
                reason: "NPZ files not found (train=False, test=False). \"quoted\" ✓".into(),
            })
            .collect();
        TrainingManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            timestamp: "2025-11-04T08:34:26.000000Z".into(),
            phase_c_root: "phase c".into(),
            phase_d_root: "/abs/phase_d".into(),
            artifact_root: "art".into(),
            backend: "native".into(),
            dry_run: false,
            strict: false,
            filters: JobFilter {
                dose: Some(1e3),
                view: None,
                gridsize: Some(2),
            },
            enumerated_count: jobs.len() + 3,
            jobs,
            skipped_count: skipped_views.len(),
            skipped_views,
            skip_summary_path: SKIP_SUMMARY_FILE.into(),
            run_in_progress: None,
        }
    }

    proptest! {
        /// serialize -> parse gives the same manifest, and serialising again the same bytes.
        #[test]
        fn manifest_round_trips(results in proptest::collection::vec(results(), 0..6), skips in 0usize..4) {
            let jobs = results.into_iter().enumerate().map(|(i, r)| job(i, r)).collect();
            let m = manifest(jobs, skips);
            let text = m.to_json().unwrap();
            let back = TrainingManifest::from_json(&text, Path::new("m.json")).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.to_json().unwrap(), text);
        }
    }

    #[test]
    fn field_order_and_number_forms() {
        let m = manifest(
            vec![job(
                0,
                JobResult::Failed(FailedResult {
                    backend: "tensorflow".into(),
                    error: "e".into(),
                    loss_history: None,
                }),
            )],
            1,
        );
        let text = m.to_json().unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "format_version",
                "timestamp",
                "phase_c_root",
                "phase_d_root",
                "artifact_root",
                "backend",
                "dry_run",
                "strict",
                "filters",
                "enumerated_count",
                "jobs",
                "skipped_views",
                "skipped_count",
                "skip_summary_path"
            ]
        );
        assert!(text.contains("\"dose\": 1000.0,"), "{text}");
        assert!(text.contains("\"status\": \"failed\""), "{text}");
        assert!(text.ends_with("}\n"));
        let summary = serde_json::to_string_pretty(&m.skip_summary()).unwrap();
        assert!(summary.starts_with("{\n  \"format_version\": 1,\n  \"timestamp\": \"2025-11-04T08:34:26.000000Z\",\n  \"skipped_views\": [\n    {\n      \"dose\": 1000.0,"), "{summary}");
    }

    #[test]
    fn version_and_shape_errors() {
        let path = Path::new("x/training_manifest.json");
        let err = TrainingManifest::from_json("{\"format_version\": 2}", path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x/training_manifest.json is not a training manifest of format 1: it is of format 2, \
             written by another version of dose-overlap"
        );
        let err = TrainingManifest::from_json("{\"jobs\": []}", path).unwrap_err();
        assert!(
            err.to_string().ends_with("it has no format_version"),
            "{err}"
        );
        let mut value = serde_json::to_value(manifest(vec![], 0)).unwrap();
        value["wall_time"] = serde_json::json!(3.5);
        let err = TrainingManifest::from_json(&value.to_string(), path).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `wall_time`"),
            "{err}"
        );
    }

    /// The manifest `text` as the streamed reader reads it from a root: its jobs and the rest.
    fn streamed(text: &str) -> Result<TrainingManifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let mut jobs = Vec::new();
        let head = TrainingManifest::stream(dir.path(), |_, job| jobs.push(job))?;
        assert_eq!(head.job_count, jobs.len());
        Ok(TrainingManifest {
            jobs,
            ..head.manifest
        })
    }

    /// What the streamed reader says of `text`, with the root's path taken out.
    fn refusal(text: &str) -> String {
        let err = streamed(text).unwrap_err().to_string();
        err.split_once(MANIFEST_FILE)
            .map_or(err.clone(), |(_, rest)| rest.to_string())
    }

    #[test]
    fn the_streamed_reader_reads_the_golden_manifests_as_the_whole_text_reader() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden/baseline");
        for run in ["native", "dry"] {
            let path = golden.join(run).join(MANIFEST_FILE);
            let text = std::fs::read_to_string(&path).unwrap();
            let whole = TrainingManifest::from_json(&text, &path).unwrap();
            assert!(!whole.jobs.is_empty());
            assert_eq!(streamed(&text).unwrap(), whole, "{run}");
        }
    }

    proptest! {
        /// Any manifest the writer makes reads back the same through the stream.
        #[test]
        fn streamed_manifests_round_trip(results in proptest::collection::vec(results(), 0..6), skips in 0usize..4) {
            let jobs = results.into_iter().enumerate().map(|(i, r)| job(i, r)).collect();
            let m = manifest(jobs, skips);
            prop_assert_eq!(streamed(&m.to_json().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn the_streamed_reader_refuses_what_the_whole_text_reader_refuses() {
        let good = manifest(
            (0..3)
                .map(|i| {
                    job(
                        i,
                        JobResult::Failed(FailedResult {
                            backend: "native".into(),
                            error: "e".into(),
                            loss_history: None,
                        }),
                    )
                })
                .collect(),
            1,
        );
        let text = good.to_json().unwrap();
        let path = Path::new("m.json");
        // The same words as the whole-text reader, for each way a manifest can be wrong.
        let whole = |text: &str| {
            let err = TrainingManifest::from_json(text, path)
                .unwrap_err()
                .to_string();
            err.split_once("m.json").unwrap().1.to_string()
        };
        // Truncated: cut in the middle of a job.
        let cut = &text[..text.len() / 2];
        let said = refusal(cut);
        assert!(said.contains("not JSON: EOF while parsing"), "{said}");
        assert_eq!(said, whole(cut));
        // Wrong types: a gridsize that is a string, a dose that is a string.
        for (from, to) in [
            ("\"gridsize\": 2", "\"gridsize\": \"2\""),
            ("\"dose\": 10000.0", "\"dose\": \"1e4\""),
        ] {
            let bad = text.replacen(from, to, 1);
            assert_ne!(bad, text);
            let said = refusal(&bad);
            assert!(said.contains("invalid type: string"), "{said}");
        }
        // A job whose artifact dir is outside the root: refused by the job check, not read.
        let mut outside = good.clone();
        outside.jobs[1].artifact_dir = "art/../../etc".into();
        outside.jobs[1].log_path = "art/../../etc/train.log".into();
        let bad = outside.to_json().unwrap();
        let said = refusal(&bad);
        assert!(said.ends_with(&format!(": job 1: its artifact_dir art/../../etc is not {}, where its artifact root puts it",
            good.jobs[1].artifact_dir.display())), "{said}");
        assert_eq!(said, whole(&bad));
        // A job listed twice, another format, no format, an unknown field, trailing text.
        let mut twice = good.clone();
        twice.jobs.push(good.jobs[0].clone());
        let bad = twice.to_json().unwrap();
        assert!(refusal(&bad).ends_with("job 3 (1e+03 baseline gs1) is listed twice"));
        assert_eq!(refusal(&bad), whole(&bad));
        for bad in [
            text.replacen("\"format_version\": 1", "\"format_version\": 2", 1),
            "{\"jobs\": []}".to_string(),
            text.replacen("\"timestamp\"", "\"wall_time\": 3.5,\n  \"timestamp\"", 1),
            format!("{text}{{}}"),
        ] {
            // The same words; where a reader counts a column from may differ by one.
            let unplaced = |s: String| s.split(" at line ").next().unwrap().to_string();
            assert_eq!(unplaced(refusal(&bad)), unplaced(whole(&bad)), "{bad}");
        }
        let no_timestamp =
            text.replacen("  \"timestamp\": \"2025-11-04T08:34:26.000000Z\",\n", "", 1);
        assert!(refusal(&no_timestamp).contains("missing field `timestamp`"));
        // A link is not followed.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.json"), &text).unwrap();
        std::os::unix::fs::symlink("real.json", dir.path().join(MANIFEST_FILE)).unwrap();
        let err = TrainingManifest::stream(dir.path(), |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn writes_both_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest(vec![], 2);
        m.artifact_root = dir.path().join("a root").display().to_string();
        std::fs::create_dir_all(&m.artifact_root).unwrap();
        let (manifest_path, summary_path) = m.write().unwrap();
        assert_eq!(
            TrainingManifest::read(Path::new(&m.artifact_root)).unwrap(),
            m
        );
        let summary: SkipSummary =
            serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
        assert_eq!(summary, m.skip_summary());
        assert_eq!(summary.skipped_count, 2);
        assert!(manifest_path.ends_with(MANIFEST_FILE));
        // Nothing but the two files (no temporary leftovers).
        assert_eq!(std::fs::read_dir(&m.artifact_root).unwrap().count(), 2);
    }
}
