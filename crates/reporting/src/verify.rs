//! `dose-overlap verify`: does what an artifact root (or a study folder) claims hold on disk?
//!
//! For an artifact root: the manifest is a finished run's; the skip summary matches it; every
//! job's `result.json` exists, is that job's, and says what the manifest says; its
//! `training_config.json` is the one it ran with; a success's bundle is a regular file inside
//! the job dir that re-hashes to the recorded digest and size; the train and test NPZ re-hash
//! to the digests recorded when the job ran; no temporary file is left. For a study folder:
//! the same for every artifact root under `artifacts/`, and the Phase C and Phase D outputs
//! against their phase records ([`PhaseRecord`]). Every mismatch is listed, not only the first.

use crate::manifest::{MANIFEST_FILE, TrainingManifest};
use runner::{FileDigest, JobResult, RESULT_FILE, ResultRecord};
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
        })
    }

    /// Reads `<study_dir>/<phase>.record.json`, if there is a usable one.
    pub fn read(study_dir: &Path, phase: &str) -> Option<PhaseRecord> {
        let text = std::fs::read_to_string(study_dir.join(phase_record_file(phase))).ok()?;
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
        let entries: Vec<(&String, &FileDigest)> =
            self.inputs.iter().chain(&self.outputs).collect();
        let paths: Vec<PathBuf> = entries.iter().map(|(p, _)| study_dir.join(p)).collect();
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

/// A path the manifest names, read from `root` now: a path under the artifact root as it was
/// given then is mapped onto `root` as given now (verify can run from anywhere).
fn locate(path: &Path, recorded_root: &str, root: &Path) -> PathBuf {
    match path.strip_prefix(recorded_root) {
        Ok(rest) => root.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

fn verify_root(root: &Path, out: &mut Verification) {
    let problems = &mut out.problems;
    let manifest = match TrainingManifest::read(root) {
        Ok(m) => m,
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
    let summary_path = root.join(&manifest.skip_summary_path);
    match std::fs::read_to_string(&summary_path) {
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
        Err(e) => problems.push(format!("{}: {e}", summary_path.display())),
    }
    let recorded_root = manifest.artifact_root.as_str();
    for job in &manifest.jobs {
        let label = format!(
            "job {}/{}/gs{}",
            job_matrix::format_dose(job.dose),
            job.view,
            job.gridsize
        );
        let dir = locate(&job.artifact_dir, recorded_root, root);
        let result_path = dir.join(RESULT_FILE);
        let record = match std::fs::read_to_string(&result_path)
            .map_err(|e| e.to_string())
            .and_then(|t| ResultRecord::from_json(&t))
        {
            Ok(record) => record,
            Err(e) => {
                problems.push(format!("{label}: {}: {e}", result_path.display()));
                continue;
            }
        };
        if record.dose != job.dose || record.view != job.view || record.gridsize != job.gridsize {
            problems.push(format!(
                "{label}: {} is the result of another job ({} gs{})",
                result_path.display(),
                record.view,
                record.gridsize
            ));
            continue;
        }
        if serde_json::to_value(&record.result).ok() != serde_json::to_value(&job.result).ok() {
            problems.push(format!(
                "{label}: the manifest says {} but {} says {}",
                job.result.status(),
                result_path.display(),
                record.result.status()
            ));
        }
        let config_path = dir.join(runner::CONFIG_FILE);
        match (std::fs::read(&config_path), &record.config_sha256) {
            (Ok(bytes), Some(want)) if runner::sha256_bytes(&bytes) != *want => {
                problems.push(format!(
                    "{label}: {} is not the config the job ran with (its digest differs from \
                     the result's)",
                    config_path.display()
                ));
            }
            (Err(e), _) => problems.push(format!("{label}: {}: {e}", config_path.display())),
            _ => {}
        }
        let JobResult::Success(trained) = &record.result else {
            continue;
        };
        // Resume's rule (runner::resume): a trained job without metrics is not complete.
        if let Some(error) = &trained.scoring_error {
            problems.push(format!(
                "{label}: trained but not scored (scoring_error: {}): a rerun of `train` \
                 trains and scores it again",
                error.lines().next().unwrap_or("")
            ));
        }
        let bundle = dir.join(&trained.bundle_path);
        match runner::checked_bundle(&bundle, &dir).and_then(|_| {
            runner::hash_bundle(&bundle)
                .map_err(|e| format!("cannot read the bundle {}: {e}", bundle.display()))
        }) {
            Ok((sha, size)) => {
                out.hashed += 1;
                if sha != trained.bundle_sha256 || size != trained.bundle_size_bytes {
                    problems.push(format!(
                        "{label}: bundle {} re-hashes to {sha} ({size} bytes), the result \
                         records {} ({} bytes)",
                        bundle.display(),
                        trained.bundle_sha256,
                        trained.bundle_size_bytes
                    ));
                }
            }
            Err(e) => problems.push(format!("{label}: {e}")),
        }
        let Some(inputs) = &record.inputs else {
            problems.push(format!(
                "{label}: {} records no input digests (written by an older version): rerun \
                 the job with --force",
                result_path.display()
            ));
            continue;
        };
        for (name, path, want) in [
            ("train", &job.train_data_path, &inputs.train),
            ("test", &job.test_data_path, &inputs.test),
        ] {
            let path = locate(path, recorded_root, root);
            match runner::file_digest(&path) {
                Ok(got) => {
                    out.hashed += 1;
                    if got != *want {
                        problems.push(format!(
                            "{label}: {name} input {} changed since the job ran (size {} -> {}, \
                             SHA-256 {} -> {})",
                            path.display(),
                            want.size_bytes,
                            got.size_bytes,
                            want.sha256,
                            got.sha256
                        ));
                    }
                }
                Err(e) => problems.push(format!("{label}: {name} input unreadable: {e}")),
            }
        }
    }
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
/// manifest (one per method when a study compares several).
fn study_roots(study: &Path) -> Vec<PathBuf> {
    let artifacts = study.join("artifacts");
    if artifacts.join(MANIFEST_FILE).is_file() {
        return vec![artifacts];
    }
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&artifacts)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    roots.sort();
    roots
}

/// Verifies the artifact root or study folder `root`, hashing on up to `threads` threads.
pub fn verify(root: &Path, threads: usize) -> Result<Verification, VerifyError> {
    let mut out = Verification::default();
    if root.join(MANIFEST_FILE).is_file() {
        verify_root(root, &mut out);
    } else if root.join("study.json").is_file() {
        let study_sha = std::fs::read(root.join("study.json"))
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
