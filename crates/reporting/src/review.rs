//! Review of study and comparison folders: which methods' artifact roots they hold, and what
//! changed between two of them — each method's run (as `diff` compares artifact roots), the
//! Phase C/D data by SHA-256, and the resolved study (`study.json`).

use crate::compare::{COMPARISON_MANIFEST, MethodRoot, read_methods};
use crate::diff::{FieldChange, RunDiff, diff_runs, diff_values};
use crate::manifest::MANIFEST_FILE;
use crate::method::method_name;
use crate::output::{ReportError, read_checked_manifest};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a folder given to `report` or `diff` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderKind {
    /// Holds `training_manifest.json` (written by `train`).
    ArtifactRoot,
    /// Holds `study.json` and `artifacts/` (written by `study`).
    Study,
    /// Holds `comparison_manifest.json` (written by `compare` or `study`).
    Comparison,
}

/// Tells the kinds apart by their marker files; `None` when it is none of them.
pub fn folder_kind(dir: &Path) -> Option<FolderKind> {
    if dir.join(MANIFEST_FILE).is_file() {
        Some(FolderKind::ArtifactRoot)
    } else if dir.join(COMPARISON_MANIFEST).is_file() {
        Some(FolderKind::Comparison)
    } else if dir.join("study.json").is_file() {
        Some(FolderKind::Study)
    } else {
        None
    }
}

/// Why a folder could not be reviewed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// A manifest could not be read.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A comparison manifest could not be read.
    #[error(transparent)]
    Compare(#[from] crate::compare::CompareError),
    /// The study folder holds no artifact root.
    #[error(
        "{} holds no artifact root ({MANIFEST_FILE}) in artifacts/ or artifacts/*/: is \
         it a study folder written by `dose-overlap study`?",
        .0.display()
    )]
    NoRoots(PathBuf),
    /// A data file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The artifact roots of a study folder: `DIR/artifacts` when it holds a manifest (one
/// method), else every folder under it that does (sorted by name). A link is never followed:
/// neither `artifacts` nor a method's folder nor a manifest may be one.
pub fn study_root_dirs(study_dir: &Path) -> Vec<PathBuf> {
    study_root_dirs_with(study_dir, |path| {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
    })
}

/// [`study_root_dirs`], a folder counting as a root when `has_manifest` holds for its
/// manifest's path (the folders themselves are real folders, never links).
pub(crate) fn study_root_dirs_with(
    study_dir: &Path,
    has_manifest: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let real_dir = |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let base = study_dir.join("artifacts");
    if !real_dir(&base) {
        return Vec::new();
    }
    if has_manifest(&base.join(MANIFEST_FILE)) {
        return vec![base];
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .filter(|p| has_manifest(&p.join(MANIFEST_FILE)))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The method roots of a study folder ([`study_root_dirs`]), named from their manifests.
pub fn study_roots(study_dir: &Path) -> Result<Vec<MethodRoot>, ReviewError> {
    let roots = study_root_dirs(study_dir);
    if roots.is_empty() {
        return Err(ReviewError::NoRoots(study_dir.to_path_buf()));
    }
    roots
        .into_iter()
        .map(|root| {
            let manifest = read_checked_manifest(&root)?;
            Ok(MethodRoot {
                name: method_name(&root, &manifest),
                root,
            })
        })
        .collect()
}

/// The methods of a study or comparison folder.
pub fn folder_methods(dir: &Path, kind: FolderKind) -> Result<Vec<MethodRoot>, ReviewError> {
    match kind {
        FolderKind::Study => study_roots(dir),
        FolderKind::Comparison => Ok(read_methods(dir)?),
        FolderKind::ArtifactRoot => {
            let manifest = read_checked_manifest(dir)?;
            Ok(vec![MethodRoot {
                name: method_name(dir, &manifest),
                root: dir.to_path_buf(),
            }])
        }
    }
}

/// One method's run compared.
#[derive(Debug, Clone, Serialize)]
pub struct MethodDiff {
    /// The method.
    pub method: String,
    /// Its runs compared.
    pub diff: RunDiff,
}

/// Two study (or comparison) folders compared.
#[derive(Debug, Clone, Serialize)]
pub struct FolderDiff {
    /// Equal within the tolerance.
    pub equal: bool,
    /// The tolerance for numbers.
    pub tolerance: f64,
    /// What A is.
    pub kind_a: FolderKind,
    /// What B is.
    pub kind_b: FolderKind,
    /// Methods only in B.
    pub methods_added: Vec<String>,
    /// Methods only in A.
    pub methods_removed: Vec<String>,
    /// Methods in both.
    pub methods: Vec<MethodDiff>,
    /// `study.json` fields that differ (studies only).
    pub study: Vec<FieldChange>,
    /// Data compared: files of phase_c/ and phase_d/ (studies), or the jobs' data digests
    /// recorded in the comparison manifests.
    pub data_compared: usize,
    /// Data only in B.
    pub data_added: Vec<String>,
    /// Data only in A.
    pub data_removed: Vec<String>,
    /// Data in both with different SHA-256.
    pub data_changed: Vec<String>,
}

fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) -> Result<(), ReviewError> {
    let io = |source| ReviewError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        // Never through a link: a link in a phase folder is reported, not followed.
        let kind = std::fs::symlink_metadata(&path).map_err(|source| ReviewError::Io {
            path: path.clone(),
            source,
        })?;
        if kind.is_symlink() {
            return Err(ReviewError::Io {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a symbolic link in a study's data (not followed)",
                ),
            });
        }
        if kind.is_dir() {
            walk(&path, base, out)?;
        } else {
            let sha = crate::content::digest(&path).map_err(|source| ReviewError::Io {
                path: path.clone(),
                source,
            })?;
            let rel = path.strip_prefix(base).unwrap_or(&path);
            out.insert(rel.to_string_lossy().replace('\\', "/"), sha);
        }
    }
    Ok(())
}

/// SHA-256 of the folder's data: every file of a study's phase_c/ and phase_d/, or each job's
/// train and test digest recorded by a comparison.
fn data_digests(dir: &Path, kind: FolderKind) -> Result<BTreeMap<String, String>, ReviewError> {
    let mut out = BTreeMap::new();
    match kind {
        FolderKind::Study => {
            for phase in ["phase_c", "phase_d"] {
                if std::fs::symlink_metadata(dir.join(phase)).is_ok_and(|m| m.is_dir()) {
                    walk(&dir.join(phase), dir, &mut out)?;
                }
            }
        }
        FolderKind::Comparison => {
            let path = dir.join(COMPARISON_MANIFEST);
            let text = npz_contract::confine::read_to_string_capped(
                &path,
                npz_contract::confine::JSON_CAP,
            )
            .map_err(|source| ReviewError::Io {
                path: path.clone(),
                source,
            })?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            for job in value["jobs"].as_array().into_iter().flatten() {
                for split in ["train", "test"] {
                    if let Some(sha) = job[format!("{split}_data_sha256")].as_str() {
                        out.insert(
                            format!(
                                "dose {} {} gs{} {split} data",
                                job["dose"]
                                    .as_f64()
                                    .map_or("?".into(), crate::text::dose_label),
                                job["view"].as_str().unwrap_or("?"),
                                job["gridsize"]
                            ),
                            sha.to_string(),
                        );
                    }
                }
            }
        }
        FolderKind::ArtifactRoot => {}
    }
    Ok(out)
}

fn read_study(dir: &Path) -> Value {
    npz_contract::confine::read_to_string_capped(
        &dir.join("study.json"),
        npz_contract::confine::JSON_CAP,
    )
    .ok()
    .and_then(|t| serde_json::from_str(&t).ok())
    .unwrap_or(Value::Null)
}

/// Compares two study or comparison folders.
pub fn diff_folders(
    a: &Path,
    kind_a: FolderKind,
    b: &Path,
    kind_b: FolderKind,
    tolerance: f64,
) -> Result<FolderDiff, ReviewError> {
    let (ma, mb) = (folder_methods(a, kind_a)?, folder_methods(b, kind_b)?);
    let mut methods = Vec::new();
    for m in &ma {
        if let Some(n) = mb.iter().find(|n| n.name == m.name) {
            methods.push(MethodDiff {
                method: m.name.clone(),
                diff: diff_runs(&m.root, &n.root, tolerance)?,
            });
        }
    }
    let names = |v: &[MethodRoot], other: &[MethodRoot]| -> Vec<String> {
        v.iter()
            .filter(|m| !other.iter().any(|o| o.name == m.name))
            .map(|m| m.name.clone())
            .collect()
    };
    let study = if kind_a == FolderKind::Study && kind_b == FolderKind::Study {
        diff_values(&read_study(a), &read_study(b), tolerance)
    } else {
        Vec::new()
    };
    let (da, db) = (data_digests(a, kind_a)?, data_digests(b, kind_b)?);
    let same_kind = kind_a == kind_b;
    let data_removed: Vec<String> = if same_kind {
        da.keys()
            .filter(|k| !db.contains_key(*k))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let data_added: Vec<String> = if same_kind {
        db.keys()
            .filter(|k| !da.contains_key(*k))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let data_changed: Vec<String> = da
        .iter()
        .filter(|(k, v)| db.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut diff = FolderDiff {
        equal: false,
        tolerance,
        kind_a,
        kind_b,
        methods_added: names(&mb, &ma),
        methods_removed: names(&ma, &mb),
        methods,
        study,
        data_compared: da.keys().filter(|k| db.contains_key(*k)).count(),
        data_added,
        data_removed,
        data_changed,
    };
    diff.equal = diff.findings() == 0;
    Ok(diff)
}

impl FolderDiff {
    fn findings(&self) -> usize {
        self.methods_added.len()
            + self.methods_removed.len()
            + self.methods.iter().filter(|m| !m.diff.equal).count()
            + self.study.len()
            + self.data_added.len()
            + self.data_removed.len()
            + self.data_changed.len()
    }

    /// Plain-text rendering for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for m in &self.methods_added {
            let _ = writeln!(s, "+ method {m} (only in B)");
        }
        for m in &self.methods_removed {
            let _ = writeln!(s, "- method {m} (only in A)");
        }
        if self.kind_a == FolderKind::Study && self.kind_b == FolderKind::Study {
            study_lines(&mut s, &self.study);
        }
        let changed = self.data_added.len() + self.data_removed.len() + self.data_changed.len();
        if changed == 0 {
            let _ = writeln!(
                s,
                "= Phase C/D data: {} file(s) equal by content SHA-256",
                self.data_compared
            );
        }
        for d in &self.data_added {
            let _ = writeln!(s, "+ data {d} (only in B)");
        }
        for d in &self.data_removed {
            let _ = writeln!(s, "- data {d} (only in A)");
        }
        for d in &self.data_changed {
            let _ = writeln!(s, "~ data {d}: content SHA-256 differs");
        }
        for m in &self.methods {
            let _ = writeln!(s, "== method {}", m.method);
            for line in m.diff.to_text().lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        verdict_line(&mut s, self.equal, self.findings(), self.tolerance);
        s
    }

    /// JSON rendering for tools.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a diff serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_by_marker_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(folder_kind(d), None);
        std::fs::write(d.join("study.json"), "{}").unwrap();
        assert_eq!(folder_kind(d), Some(FolderKind::Study));
        assert!(matches!(study_roots(d), Err(ReviewError::NoRoots(_))));
        std::fs::write(d.join(MANIFEST_FILE), "{}").unwrap();
        assert_eq!(folder_kind(d), Some(FolderKind::ArtifactRoot));
    }
}

/// Two study folders with replicates compared: the resolved studies, then each replicate that
/// both hold as two study folders; a replicate only one holds is a finding.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicatedDiff {
    /// Equal within the tolerance.
    pub equal: bool,
    /// The tolerance for numbers.
    pub tolerance: f64,
    /// `study.json` fields that differ (the replicate count among them).
    pub study: Vec<FieldChange>,
    /// Replicates only in B.
    pub replicates_added: Vec<u32>,
    /// Replicates only in A.
    pub replicates_removed: Vec<u32>,
    /// The replicates both hold, each compared.
    pub replicates: Vec<ReplicateDiff>,
}

/// One replicate of two studies compared.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicateDiff {
    /// 1-based.
    pub replicate: u32,
    /// Its two study folders compared.
    pub diff: FolderDiff,
}

/// Compares two study folders of which one at least holds replicate folders (`replicate_NN`).
/// A study without replicates is compared as replicate 1 of the other.
pub fn diff_replicated(a: &Path, b: &Path, tolerance: f64) -> Result<ReplicatedDiff, ReviewError> {
    let reps = |dir: &Path| {
        let found = crate::replicates::replicate_dirs(dir);
        if found.is_empty() {
            vec![(1, dir.to_path_buf())]
        } else {
            found
        }
    };
    let (ra, rb) = (reps(a), reps(b));
    let mut replicates = Vec::new();
    for (r, da) in &ra {
        if let Some((_, db)) = rb.iter().find(|(s, _)| s == r) {
            replicates.push(ReplicateDiff {
                replicate: *r,
                diff: diff_folders(da, FolderKind::Study, db, FolderKind::Study, tolerance)?,
            });
        }
    }
    let only = |x: &[(u32, PathBuf)], y: &[(u32, PathBuf)]| -> Vec<u32> {
        x.iter()
            .filter(|(r, _)| !y.iter().any(|(s, _)| s == r))
            .map(|(r, _)| *r)
            .collect()
    };
    let mut diff = ReplicatedDiff {
        equal: false,
        tolerance,
        study: diff_values(&read_study(a), &read_study(b), tolerance),
        replicates_added: only(&rb, &ra),
        replicates_removed: only(&ra, &rb),
        replicates,
    };
    diff.equal = diff.findings() == 0;
    Ok(diff)
}

impl ReplicatedDiff {
    fn findings(&self) -> usize {
        self.study.len()
            + self.replicates_added.len()
            + self.replicates_removed.len()
            + self
                .replicates
                .iter()
                .map(|r| r.diff.findings())
                .sum::<usize>()
    }

    /// Plain-text rendering for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        study_lines(&mut s, &self.study);
        for r in &self.replicates_added {
            let _ = writeln!(s, "+ replicate {r} (only in B)");
        }
        for r in &self.replicates_removed {
            let _ = writeln!(s, "- replicate {r} (only in A)");
        }
        for r in &self.replicates {
            let _ = writeln!(s, "== replicate {}", r.replicate);
            for line in r.diff.to_text().lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        verdict_line(&mut s, self.equal, self.findings(), self.tolerance);
        s
    }

    /// JSON rendering for tools.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a diff serialises")
    }
}

/// `study.json`'s changed fields, or that it is equal.
fn study_lines(s: &mut String, changes: &[FieldChange]) {
    if changes.is_empty() {
        let _ = writeln!(s, "= study.json: equal");
    }
    for f in changes {
        let _ = writeln!(s, "~ study.json {}: {} -> {}", f.field, f.a, f.b);
    }
}

/// A folder diff's last line.
fn verdict_line(s: &mut String, equal: bool, findings: usize, tolerance: f64) {
    if equal {
        let _ = writeln!(s, "folders are equal within tolerance {tolerance:e}");
    } else {
        let _ = writeln!(
            s,
            "folders differ: {findings} finding(s) (tolerance {tolerance:e})"
        );
    }
}
