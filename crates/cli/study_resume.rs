//! Resuming `study` phase by phase: Phase C and D are skipped when their outputs re-hash to
//! what their phase record (`<phase>.record.json` in the study folder) says, and that record
//! was made from the same resolved study and the same inputs (Phase D's inputs are Phase C's
//! outputs). Phase E resumes job by job (`train`). The report and the comparison are redrawn
//! only when what they are drawn from changed: their records list as inputs each method's
//! training manifest (whose bundles `train` has just re-hashed), the resolved study and the
//! Phase C and D records, and name the binary that drew them ([`tool_sha256`]).

use reporting::verify::{PhaseRecord, phase_record_file};
use std::path::{Path, PathBuf};

/// Hashing threads: every core (hashing is the whole cost of a rerun).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The files under `study_dir/phase` (relative to `study_dir`), sorted, without temporary files.
pub fn files_under(study_dir: &Path, phase: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![study_dir.join(phase)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && entry
                    .file_name()
                    .to_str()
                    .and_then(npz_contract::atomic::temp_pid)
                    .is_none()
                && let Ok(rel) = path.strip_prefix(study_dir)
            {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `Ok(record)` when `phase` is verified complete for this study and these inputs, else
/// `Err(reason)` (why it must run).
pub fn verified(
    study_dir: &Path,
    phase: &str,
    study_sha256: &str,
    tool_sha256: Option<&str>,
    inputs: &[PathBuf],
) -> Result<PhaseRecord, String> {
    let record = PhaseRecord::read(study_dir, phase)
        .ok_or_else(|| format!("no {}", phase_record_file(phase)))?;
    let on_disk = files_under(study_dir, phase);
    check(
        study_dir,
        record,
        study_sha256,
        tool_sha256,
        inputs,
        on_disk.len(),
    )
}

/// `Ok(record)` when `record` was made from this study and these inputs and every file it
/// names re-hashes to what it says (`on_disk`: how many files its folders hold now).
fn check(
    study_dir: &Path,
    record: PhaseRecord,
    study_sha256: &str,
    tool_sha256: Option<&str>,
    inputs: &[PathBuf],
    on_disk: usize,
) -> Result<PhaseRecord, String> {
    if record.study_sha256 != study_sha256 {
        return Err("the study changed".to_string());
    }
    if record.tool_sha256.as_deref() != tool_sha256 {
        return Err("drawn by another dose-overlap binary".to_string());
    }
    let names: Vec<String> = inputs
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    if !names.iter().eq(record.inputs.keys()) {
        return Err("its inputs changed".to_string());
    }
    if on_disk < record.outputs.len() {
        return Err("an output is missing".to_string());
    }
    let (problems, _) = record.check(study_dir, threads());
    match problems.first() {
        Some(problem) => Err(problem.clone()),
        None => Ok(record),
    }
}

/// One dose's Phase C and D files, as a study on SLURM records each `prep` task's work:
/// `phase_c/<dose>` and `phase_d/<dose>` (relative to `study_dir`), sorted.
pub fn dose_outputs(study_dir: &Path, dose_dir: &str) -> Vec<PathBuf> {
    let mut out = files_under(study_dir, &format!("phase_c/{dose_dir}"));
    out.extend(files_under(study_dir, &format!("phase_d/{dose_dir}")));
    out
}

/// Records one dose's Phase C and D files into `record_path` (outside the phase folders, so
/// that the phases' own records, and their file lists, are the local run's).
pub fn record_dose(
    study_dir: &Path,
    record_path: &Path,
    dose_dir: &str,
    study_sha256: &str,
    inputs: &[PathBuf],
) -> std::io::Result<PhaseRecord> {
    let outputs = dose_outputs(study_dir, dose_dir);
    let record = PhaseRecord::measure(
        study_dir,
        dose_dir,
        study_sha256,
        inputs,
        &outputs,
        threads(),
    )?;
    let text = runner::artifact_json(&record).map_err(std::io::Error::other)?;
    npz_contract::atomic::write_atomic(record_path, text.as_bytes())?;
    Ok(record)
}

/// The record [`record_dose`] wrote, if it reads as one of this dose.
pub fn read_dose_record(record_path: &Path, dose_dir: &str) -> Option<PhaseRecord> {
    let text =
        npz_contract::confine::read_to_string_capped(record_path, npz_contract::confine::JSON_CAP)
            .ok()?;
    serde_json::from_str::<PhaseRecord>(&text).ok().filter(|r| {
        r.format_version == reporting::verify::PHASE_RECORD_FORMAT_VERSION && r.phase == dose_dir
    })
}

/// [`verified`] for one dose's record (by the same rules: the same study, the same inputs,
/// every file as recorded).
pub fn dose_verified(
    study_dir: &Path,
    record_path: &Path,
    dose_dir: &str,
    study_sha256: &str,
    inputs: &[PathBuf],
) -> Result<PhaseRecord, String> {
    let record = read_dose_record(record_path, dose_dir)
        .ok_or_else(|| format!("no record of {dose_dir}"))?;
    let on_disk = dose_outputs(study_dir, dose_dir).len();
    check(study_dir, record, study_sha256, None, inputs, on_disk)
}

/// Removes the phase's record before it runs: an interrupted phase leaves none.
pub fn forget(study_dir: &Path, phase: &str) -> std::io::Result<()> {
    match std::fs::remove_file(study_dir.join(phase_record_file(phase))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Records what `phase` wrote, from what.
pub fn record(
    study_dir: &Path,
    phase: &str,
    study_sha256: &str,
    tool_sha256: Option<&str>,
    inputs: &[PathBuf],
) -> std::io::Result<PhaseRecord> {
    let outputs = files_under(study_dir, phase);
    let mut record =
        PhaseRecord::measure(study_dir, phase, study_sha256, inputs, &outputs, threads())?;
    record.tool_sha256 = tool_sha256.map(str::to_string);
    record.write(study_dir)?;
    Ok(record)
}

/// SHA-256 of the running binary: the report and the comparison it drew are its rendering,
/// which another build may draw differently (a version number would not change with every
/// build). `None` when it cannot be read: they are then always redrawn.
pub fn tool_sha256() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let digests = runner::file_digests(&[exe], 1);
    match digests.into_iter().next()? {
        Ok(digest) => Some(digest.sha256),
        Err(_) => None,
    }
}
