//! `dose-overlap verify`: does what an artifact root (or a study folder) claims hold on disk?
//!
//! For an artifact root: the manifest is a finished run's; the skip summary matches it; every
//! job passes the job check (`runner::check::check_job`, the one `train` resumes by): its
//! `result.json` exists, is that job's, and says what the manifest says; a success was scored;
//! its `training_config.json` is the one it ran with; the train and test NPZ re-hash to the
//! digests recorded when it ran; a success's bundle is a regular file inside the job dir that
//! re-hashes to the recorded digest and size. No temporary file is left. For a study folder:
//! the same for every artifact root under `artifacts/`, and the Phase C and Phase D outputs
//! against their phase records ([`PhaseRecord`]). Every mismatch is listed, not only the first.

use crate::manifest::{Locations, MANIFEST_FILE, TrainingManifest};
use npz_contract::confine;
use runner::check::{Depth, Expected, Finding, check_job};
use runner::{FileDigest, RESULT_FILE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `verify` found.
#[derive(Debug, Default, PartialEq)]
pub struct Verification {
    /// Artifact roots checked.
    pub roots: Vec<PathBuf>,
    /// Files re-hashed.
    pub hashed: usize,
    /// Every mismatch, one line each, naming the file and what disagrees.
    pub problems: Vec<String>,
}

/// Why `verify` could not start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The folder holds neither a manifest nor a study.
    #[error(
        "{} holds neither {MANIFEST_FILE} (an artifact root) nor study.json (a study folder): \
         give the --artifact-root of a `train` run or the --out of a `study`",
        .0.display()
    )]
    NotARun(PathBuf),
}

/// File name of a phase record in a study folder (`phase_c.record.json`, ...).
pub fn phase_record_file(phase: &str) -> String {
    format!("{phase}.record.json")
}

/// Version of the phase record format.
pub const PHASE_RECORD_FORMAT_VERSION: u32 = 1;

/// What a study's Phase C or D produced, from what: written by `study` after the phase, read
/// to skip it on a rerun and by `verify`. Paths are relative to the study folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseRecord {
    /// [`PHASE_RECORD_FORMAT_VERSION`].
    pub format_version: u32,
    /// `phase_c` or `phase_d`.
    pub phase: String,
    /// SHA-256 of the resolved study (`study.json`) the phase ran with.
    pub study_sha256: String,
    /// Files it read (none for Phase C from the built-in scene).
    pub inputs: BTreeMap<String, FileDigest>,
    /// Files it wrote.
    pub outputs: BTreeMap<String, FileDigest>,
    /// SHA-256 of the `dose-overlap` binary that wrote them, for a phase whose outputs are
    /// the program's own rendering of its inputs (the report and the comparison): a new
    /// binary may draw them differently, so it redraws them. Absent for Phase C and D, whose
    /// outputs are checked by their contract instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_sha256: Option<String>,
}

impl PhaseRecord {
    /// Records the files of `phase` in `study_dir`.
    pub fn measure(
        study_dir: &Path,
        phase: &str,
        study_sha256: &str,
        inputs: &[PathBuf],
        outputs: &[PathBuf],
        threads: usize,
    ) -> std::io::Result<PhaseRecord> {
        let digests = |paths: &[PathBuf]| -> std::io::Result<BTreeMap<String, FileDigest>> {
            let full: Vec<PathBuf> = paths.iter().map(|p| study_dir.join(p)).collect();
            let mut map = BTreeMap::new();
            for (path, digest) in paths.iter().zip(runner::file_digests(&full, threads)) {
                map.insert(path.to_string_lossy().replace('\\', "/"), digest?);
            }
            Ok(map)
        };
        Ok(PhaseRecord {
            format_version: PHASE_RECORD_FORMAT_VERSION,
            phase: phase.to_string(),
            study_sha256: study_sha256.to_string(),
            inputs: digests(inputs)?,
            outputs: digests(outputs)?,
            tool_sha256: None,
        })
    }

    /// Reads `<study_dir>/<phase>.record.json`, if there is a usable one.
    pub fn read(study_dir: &Path, phase: &str) -> Option<PhaseRecord> {
        let text = confine::read_to_string_capped(
            &study_dir.join(phase_record_file(phase)),
            confine::JSON_CAP,
        )
        .ok()?;
        serde_json::from_str::<PhaseRecord>(&text)
            .ok()
            .filter(|r| r.format_version == PHASE_RECORD_FORMAT_VERSION && r.phase == phase)
    }

    /// Writes it atomically.
    pub fn write(&self, study_dir: &Path) -> std::io::Result<()> {
        let text = runner::artifact_json(self).map_err(std::io::Error::other)?;
        npz_contract::atomic::write_atomic(
            &study_dir.join(phase_record_file(&self.phase)),
            text.as_bytes(),
        )
    }

    /// Every way the files on disk differ from this record (re-hashing them all), and how
    /// many files were hashed.
    pub fn check(&self, study_dir: &Path, threads: usize) -> (Vec<String>, usize) {
        let mut problems = Vec::new();
        // Only files of the study folder, reached through no link.
        let mut entries: Vec<(&String, &FileDigest)> = Vec::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for (name, want) in self.inputs.iter().chain(&self.outputs) {
            match confine::join(study_dir, Path::new(name)) {
                Ok(path) => {
                    entries.push((name, want));
                    paths.push(path);
                }
                Err(e) => problems.push(format!(
                    "{}: {} is not a file of the study folder: {e}",
                    self.phase,
                    name.escape_debug()
                )),
            }
        }
        for ((name, want), got) in entries.iter().zip(runner::file_digests(&paths, threads)) {
            match got {
                Err(e) => problems.push(format!("{}: {name} unreadable: {e}", self.phase)),
                Ok(got) if got != **want => problems.push(format!(
                    "{}: {name} changed since the phase ran (size {} -> {}, SHA-256 {} -> {})",
                    self.phase, want.size_bytes, got.size_bytes, want.sha256, got.sha256
                )),
                Ok(_) => {}
            }
        }
        (problems, paths.len())
    }
}

fn verify_root(root: &Path, out: &mut Verification) {
    // The manifest is streamed, each job checked as it is read (a root of 100,000 jobs is a
    // manifest of several hundred MB); their findings wait until the manifest is known good,
    // and are listed after the manifest's own, as before.
    let mut locations: Option<Locations> = None;
    let mut job_problems = Vec::new();
    let mut hashed = 0;
    let streamed = TrainingManifest::stream(root, |head, job| {
        let locations = locations.get_or_insert_with(|| {
            Locations::new(
                root,
                &head.artifact_root,
                &head.phase_c_root,
                &head.phase_d_root,
            )
        });
        hashed += verify_job(locations, &job, &mut job_problems);
    });
    let problems = &mut out.problems;
    let manifest = match streamed {
        Ok(head) => head.manifest,
        Err(e) => {
            problems.push(format!("{e}"));
            return;
        }
    };
    out.roots.push(root.to_path_buf());
    let manifest_path = root.join(MANIFEST_FILE);
    if let Some(run) = &manifest.run_in_progress {
        problems.push(format!("{}: {}", manifest_path.display(), run.describe()));
    }
    // A file of the root (the manifest's check made sure of it), read only if regular and
    // small.
    let summary = confine::join(root, Path::new(&manifest.skip_summary_path))
        .and_then(|path| confine::read_to_string_capped(&path, confine::JSON_CAP));
    let summary_path = root.join(&manifest.skip_summary_path);
    match summary {
        Ok(text) => {
            let on_disk: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            let expected = serde_json::to_value(manifest.skip_summary()).ok();
            if on_disk.is_none() || on_disk != expected {
                problems.push(format!(
                    "{}: does not match the manifest's skip events",
                    summary_path.display()
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    out.hashed += hashed;
    problems.extend(job_problems);
}

/// Checks one job of the manifest against its files; returns how many files it hashed.
fn verify_job(
    locations: &Locations,
    job: &crate::manifest::ManifestJob,
    problems: &mut Vec<String>,
) -> usize {
    let label = format!(
        "job {}/{}/gs{}",
        job_matrix::format_dose(job.dose),
        job.view,
        job.gridsize
    );
    // Only inside the root, through no link.
    let dir = match locations.job_dir(&job.artifact_dir) {
        Ok(dir) => dir,
        Err(e) => {
            problems.push(format!("{label}: its artifact dir: {e}"));
            return 0;
        }
    };
    let config = confine::read_capped(&dir.join(runner::CONFIG_FILE), confine::JSON_CAP)
        .map_err(|e| e.to_string());
    let train = locations.input(&job.train_data_path);
    let test = locations.input(&job.test_data_path);
    let check = check_job(
        &Expected {
            dir: &dir,
            dose: job.dose,
            view: &job.view,
            gridsize: job.gridsize,
            claimed: Some(&job.result),
            config: match &config {
                Ok(bytes) => Ok(bytes.as_slice()),
                Err(e) => Err(e.clone()),
            },
            inputs: [
                train.as_deref().map_err(String::as_str),
                test.as_deref().map_err(String::as_str),
            ],
            threads: 1,
        },
        Depth::All,
    );
    problems.extend(
        check
            .findings
            .iter()
            .filter_map(|finding| problem(finding, &label, &dir)),
    );
    check.hashed
}

/// How `verify` lists one finding of the job check (`None`: not a false claim).
fn problem(finding: &Finding, label: &str, dir: &Path) -> Option<String> {
    let result = dir.join(RESULT_FILE);
    let result = result.display();
    let config = dir.join(runner::CONFIG_FILE);
    let config = config.display();
    Some(match finding {
        // The error names the file.
        Finding::NoResult { error } | Finding::ResultUnreadable { error } => {
            format!("{label}: {error}")
        }
        Finding::ResultUnusable { error } => format!("{label}: {result}: {error}"),
        Finding::OtherJob { view, gridsize } => {
            format!("{label}: {result} is the result of another job ({view} gs{gridsize})")
        }
        Finding::ClaimDiffers { claimed, recorded } => {
            format!("{label}: the manifest says {claimed} but {result} says {recorded}")
        }
        // A job that says it failed, or a result too old to record its config's digest,
        // claims nothing false (a rerun of `train` still redoes them).
        Finding::NotTrained { .. } | Finding::NoConfigDigest => return None,
        Finding::NotScored { why } => format!(
            "{label}: trained but not scored ({why}): a rerun of `train` trains and scores it \
             again"
        ),
        // The error names the file.
        Finding::ConfigUnavailable { error } => format!("{label}: {error}"),
        Finding::ConfigDiffers { .. } => format!(
            "{label}: {config} is not the config the job ran with (its digest differs from the \
             result's)"
        ),
        Finding::NoInputDigests => format!(
            "{label}: {result} records no input digests (written by an older version): rerun \
             the job with --force"
        ),
        Finding::InputUnreadable { name, error, .. } => {
            format!("{label}: {name} input unreadable: {error}")
        }
        Finding::InputChanged {
            name,
            path,
            recorded,
            now,
        } => format!(
            "{label}: {name} input {} changed since the job ran (size {} -> {}, SHA-256 {} -> \
             {})",
            path.display(),
            recorded.size_bytes,
            now.size_bytes,
            recorded.sha256,
            now.sha256
        ),
        Finding::BundleNotContained { error, .. } => format!("{label}: {error}"),
        Finding::BundleUnreadable { path, error } => {
            format!(
                "{label}: cannot read the bundle {}: {error}",
                path.display()
            )
        }
        Finding::ReconstructionNotContained { error, .. } => {
            format!("{label}: its reconstruction: {error}")
        }
        Finding::BundleAltered {
            path,
            recorded,
            now,
        } => format!(
            "{label}: bundle {} re-hashes to {} ({} bytes), the result records {} ({} bytes)",
            path.display(),
            now.0,
            now.1,
            recorded.0,
            recorded.1
        ),
    })
}

fn leftover_temps(dir: &Path, problems: &mut Vec<String>) {
    let mut stack = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if entry
                .file_name()
                .to_str()
                .and_then(npz_contract::atomic::temp_pid)
                .is_some()
            {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    for path in found {
        problems.push(format!(
            "{}: a temporary file left by an interrupted write",
            path.display()
        ));
    }
}

/// The artifact roots of a study folder: `artifacts/` itself, or its sub-folders holding a
/// manifest (one per method when a study compares several); never through a link.
/// The artifact roots of a study folder as [`crate::review::study_root_dirs`] finds them,
/// except that a manifest that is there but is no regular file (a link, a FIFO) still makes
/// its folder a root: `verify` then says what the manifest is instead of that there is none.
fn study_roots(study: &Path) -> Vec<PathBuf> {
    crate::review::study_root_dirs_with(study, |path| std::fs::symlink_metadata(path).is_ok())
}

/// Verifies the artifact root or study folder `root`, hashing on up to `threads` threads.
pub fn verify(root: &Path, threads: usize) -> Result<Verification, VerifyError> {
    let mut out = Verification::default();
    let replicates = crate::replicates::replicate_dirs(root);
    // A manifest that is there in any form (a link, a FIFO) makes an artifact root, whose
    // check then says what the manifest is.
    if std::fs::symlink_metadata(root.join(MANIFEST_FILE)).is_ok() {
        verify_root(root, &mut out);
    } else if root.join("study.json").is_file() && !replicates.is_empty() {
        verify_replicated(root, &replicates, threads, &mut out)?;
        return Ok(out);
    } else if root.join("study.json").is_file() {
        let study_sha = confine::read_capped(&root.join("study.json"), confine::JSON_CAP)
            .map(|b| runner::sha256_bytes(&b))
            .unwrap_or_default();
        for phase in ["phase_c", "phase_d"] {
            match PhaseRecord::read(root, phase) {
                Some(record) => {
                    if record.study_sha256 != study_sha {
                        out.problems.push(format!(
                            "{phase}: ran with another study.json than the one in {}",
                            root.display()
                        ));
                    }
                    let (problems, hashed) = record.check(root, threads);
                    out.problems.extend(problems);
                    out.hashed += hashed;
                }
                None => out.problems.push(format!(
                    "{phase}: no usable {} in {} (the phase did not finish)",
                    phase_record_file(phase),
                    root.display()
                )),
            }
        }
        let roots = study_roots(root);
        if roots.is_empty() {
            out.problems.push(format!(
                "{}: no training manifest under artifacts/",
                root.display()
            ));
        }
        for r in roots {
            verify_root(&r, &mut out);
        }
    } else {
        return Err(VerifyError::NotARun(root.to_path_buf()));
    }
    leftover_temps(root, &mut out.problems);
    Ok(out)
}

/// A study folder with replicates: each replicate folder verified as a study folder, each
/// one's `study.json` the study's replicate of that index, as many as the study asks for, and
/// the aggregate (`replicates/`) what the replicates' artifacts give.
fn verify_replicated(
    root: &Path,
    replicates: &[(u32, PathBuf)],
    threads: usize,
    out: &mut Verification,
) -> Result<(), VerifyError> {
    let study = match crate::replicates::read_study(root) {
        Ok(study) => study,
        Err(e) => {
            out.problems.push(e);
            return Ok(());
        }
    };
    if replicates.len() != study.replicates as usize {
        out.problems.push(format!(
            "{}: the study asks for {} replicate(s), the folder holds {} (replicate_01 to \
             replicate_{:02}): rerun `dose-overlap study` to finish it",
            root.display(),
            study.replicates,
            replicates.len(),
            replicates.len()
        ));
    }
    for (r, dir) in replicates {
        let expected = study.replicate_study(*r).to_study_json();
        let actual =
            confine::read_capped(&dir.join("study.json"), confine::JSON_CAP).unwrap_or_default();
        if actual != expected.as_bytes() {
            out.problems.push(format!(
                "{}: not replicate {r} of {} (another study, or edited)",
                dir.join("study.json").display(),
                root.join("study.json").display()
            ));
        }
        let found = verify(dir, threads)?;
        out.roots.extend(found.roots);
        out.hashed += found.hashed;
        out.problems.extend(found.problems);
    }
    let aggregate = root.join(crate::replicates::REPLICATES_DIR);
    // Redrawn with the success threshold it was drawn with (a display setting, not a result).
    let settings = crate::replicates::recorded_settings(&aggregate).unwrap_or_default();
    let redrawn = crate::replicates::read_replicates(root).and_then(|reps| {
        crate::replicates::render(&reps, &study.name, study.replicates, &settings)
            .map_err(|e| e.to_string())
    });
    match redrawn {
        Err(e) => out.problems.push(format!(
            "{}: cannot redraw the aggregate: {e}",
            aggregate.display()
        )),
        Ok((files, _)) => {
            for (name, text) in files {
                let path = aggregate.join(&name);
                let on_disk = confine::read_capped(&path, 1 << 30).unwrap_or_default();
                if on_disk != text.as_bytes() {
                    out.problems.push(format!(
                        "{}: not the aggregate of the replicates' artifacts (edited, missing, or \
                         drawn from other runs): rerun `dose-overlap study` to redraw it",
                        path.display()
                    ));
                }
            }
        }
    }
    leftover_temps(&aggregate, &mut out.problems);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner::{
        Backend, BackendError, BackendKind, BackendOutcome, CancelToken, ConfigOverrides,
        JobContext, JobLimits, JobResult, Plan, PlanRequest, RunContext, TrainingConfig,
    };

    /// An NPZ with 8 positions (`xcoords`): enough for planning.
    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w =
            npz_contract::NpzWriter::create(path, npz_contract::Compression::Stored).unwrap();
        w.add("xcoords", &ndarray::Array1::<f64>::zeros(8)).unwrap();
        w.finish().unwrap();
    }

    /// Writes a small bundle named after the job.
    struct Bundler;
    impl Backend for Bundler {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn train(
            &self,
            config: &TrainingConfig,
            _: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            let bundle = config.output_dir.join("bundle.zip");
            std::fs::write(&bundle, format!("{} {}", config.view, config.dose)).unwrap();
            Ok(BackendOutcome {
                bundle,
                final_loss: None,
                epochs_completed: config.epochs,
                loss_history: None,
                // Scored (with nothing to score against here): a job without metrics is not
                // complete.
                metrics: Some(serde_json::json!({})),
                solver: None,
                reconstruction: None,
                scoring_error: None,
                pinn: None,
            })
        }
    }

    /// Issue 25: `verify` lists every finding of the job check `train` resumes by, for a job
    /// with several faults (its config on disk edited and its bundle tampered with).
    #[test]
    fn verify_lists_every_finding_of_the_job_check() {
        let dir = tempfile::tempdir().unwrap();
        let (c, d, art) = (
            dir.path().join("phase_c"),
            dir.path().join("phase_d"),
            dir.path().join("art"),
        );
        for dose in ["dose_1000", "dose_10000", "dose_100000"] {
            touch(&c.join(dose).join("patched_train.npz"));
            touch(&c.join(dose).join("patched_test.npz"));
        }
        std::fs::create_dir_all(&d).unwrap();
        let plan = Plan::resolve(&PlanRequest {
            study: &study_design::Study::default(),
            phase_c_root: &c,
            phase_d_root: &d,
            artifact_root: &art,
            filters: job_matrix::JobFilter::default(),
            backend: BackendKind::Native,
            dry_run: false,
            strict: false,
            overrides: ConfigOverrides::default(),
            trainer: None,
            timestamp: runner::manifest_timestamp(Some("1762245266")).unwrap(),
            pinn: runner::ptychopinn::PinnOverrides::default(),
            python: None,
        })
        .unwrap();
        let cancel = CancelToken::new();
        let ctx = RunContext {
            plan_id: "test",
            cancel: &cancel,
            progress: &|_: &str| {},
            threads_per_job: 1,
            spare_cores: None,
            limits: JobLimits::default(),
        };
        let results = runner::execute(&plan, 1, &Bundler, &ctx, &|_, _| {});
        let manifest = TrainingManifest::assemble(&plan, &results).unwrap();
        manifest.write().unwrap();
        assert_eq!(verify(&art, 1).unwrap().problems, Vec::<String>::new());

        let job = &manifest.jobs[0];
        let JobResult::Success(trained) = &job.result else {
            panic!("{:?}", job.result);
        };
        let config_path = job.artifact_dir.join(runner::CONFIG_FILE);
        let mut config = std::fs::read(&config_path).unwrap();
        config.push(b'\n');
        std::fs::write(&config_path, &config).unwrap();
        let bundle = job.artifact_dir.join(&trained.bundle_path);
        std::fs::write(&bundle, b"tampered").unwrap();

        let check = check_job(
            &Expected {
                dir: &job.artifact_dir,
                dose: job.dose,
                view: &job.view,
                gridsize: job.gridsize,
                claimed: Some(&job.result),
                config: Ok(&config),
                inputs: [Ok(&job.train_data_path), Ok(&job.test_data_path)],
                threads: 1,
            },
            Depth::All,
        );
        assert!(
            matches!(
                check.findings[..],
                [Finding::ConfigDiffers { .. }, Finding::BundleAltered { .. }]
            ),
            "{:?}",
            check.findings
        );
        let label = format!("job 1e+03/{}/gs{}", job.view, job.gridsize);
        assert_eq!(
            verify(&art, 1).unwrap().problems,
            [
                format!(
                    "{label}: {} is not the config the job ran with (its digest differs from \
                     the result's)",
                    config_path.display()
                ),
                format!(
                    "{label}: bundle {} re-hashes to {} (8 bytes), the result records {} ({} \
                     bytes)",
                    bundle.display(),
                    runner::sha256_bytes(b"tampered"),
                    trained.bundle_sha256,
                    trained.bundle_size_bytes
                ),
            ]
        );
    }
}
