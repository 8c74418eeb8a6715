//! The job check: does what a job's `result.json` claims still hold on disk? One function,
//! [`check_job`], returns every [`Finding`]; `resume` reruns a job on the first one, `verify`
//! lists them all (each says them in its own words).
//!
//! The claims, in the order they are checked: `result.json` is there, readable and this job's;
//! it says what the manifest says (when a manifest is given); the job trained ([`JobResult::
//! Success`]) and was scored (no `scoring_error`); the SHA-256 of the config it ran with equals
//! the expected config's; its train and test NPZ re-hash to the size and SHA-256 recorded when
//! it ran; its bundle is a regular file inside the job dir that re-hashes to the recorded
//! digest and size. A job with no finding is verified complete.

use crate::config::TrainingConfig;
use crate::digest::{FileDigest, checked_bundle, file_digests, hash_bundle, sha256_bytes};
use crate::result::{InputDigests, JobResult, RESULT_FILE, ResultRecord};
use npz_contract::confine::JSON_CAP;
use std::path::{Path, PathBuf};

/// What a job's result is checked against.
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    /// The job's artifact dir: its `result.json` and bundle are read there.
    pub dir: &'a Path,
    /// The job's dose.
    pub dose: f64,
    /// The job's view.
    pub view: &'a str,
    /// The job's gridsize.
    pub gridsize: u32,
    /// What another record says the result is (the manifest's entry), if any.
    pub claimed: Option<&'a JobResult>,
    /// The bytes of the config the result must have run with (`resume`: the config the job
    /// would run with now; `verify`: the `training_config.json` in the job dir), or why there
    /// are none.
    pub config: Result<&'a [u8], String>,
    /// The train and test NPZ as they are read now, or why they cannot be found (a path a
    /// manifest records outside its roots).
    pub inputs: [Result<&'a Path, &'a str>; 2],
    /// Threads to hash the inputs on.
    pub threads: usize,
}

/// How far [`check_job`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Stop at the first finding (`resume`: one reason is enough to rerun a job, and nothing
    /// more is hashed).
    First,
    /// Every finding (`verify`).
    All,
}

/// One way a job's result does not hold on disk. What each consumer says about it is its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// No `result.json`.
    NoResult {
        /// The I/O error.
        error: String,
    },
    /// `result.json` cannot be read.
    ResultUnreadable {
        /// The I/O error.
        error: String,
    },
    /// `result.json` is not a result of this format.
    ResultUnusable {
        /// The parse error.
        error: String,
    },
    /// `result.json` is another job's.
    OtherJob {
        /// Its view.
        view: String,
        /// Its gridsize.
        gridsize: u32,
    },
    /// The claim (the manifest's entry) and `result.json` differ.
    ClaimDiffers {
        /// The status the claim says.
        claimed: &'static str,
        /// The status `result.json` says.
        recorded: &'static str,
    },
    /// The job did not train (failed, interrupted, dry run).
    NotTrained {
        /// Its status.
        status: &'static str,
    },
    /// The job trained but was not scored: its result has no metrics.
    NotScored {
        /// `scoring_error: <its first line>`, or that it has neither.
        why: String,
    },
    /// The expected config has no bytes to compare.
    ConfigUnavailable {
        /// Why.
        error: String,
    },
    /// The result records no config digest (written by an older version).
    NoConfigDigest,
    /// The expected config's SHA-256 is not the one the result records.
    ConfigDiffers {
        /// The digest the result records.
        recorded: String,
    },
    /// The result records no input digests (written by an older version).
    NoInputDigests,
    /// An input cannot be hashed.
    InputUnreadable {
        /// `train` or `test`.
        name: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// An input's size or SHA-256 is not the one recorded when the job ran.
    InputChanged {
        /// `train` or `test`.
        name: &'static str,
        /// The file.
        path: PathBuf,
        /// As recorded.
        recorded: FileDigest,
        /// As read now.
        now: FileDigest,
    },
    /// The bundle is missing, or is not a regular file inside the job dir.
    BundleNotContained {
        /// The bundle.
        path: PathBuf,
        /// Nothing is there at all.
        missing: bool,
        /// What [`checked_bundle`] says.
        error: String,
    },
    /// The bundle cannot be read.
    BundleUnreadable {
        /// The bundle.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// The reconstruction the result names (`reconstruction_path`) is missing, or is not a
    /// regular file inside the job dir.
    ReconstructionNotContained {
        /// The reconstruction.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// The bundle's SHA-256 or size is not the one recorded.
    BundleAltered {
        /// The bundle.
        path: PathBuf,
        /// SHA-256 and size as recorded.
        recorded: (String, u64),
        /// SHA-256 and size as read now.
        now: (String, u64),
    },
}

/// What [`check_job`] found: the result (when one could be read and is this job's), every
/// finding in the order of the claims, and how many files were hashed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobCheck {
    /// The job's `result.json`, when it is readable and this job's.
    pub record: Option<ResultRecord>,
    /// Every finding ([`Depth::First`]: at most one).
    pub findings: Vec<Finding>,
    /// Files re-hashed (inputs and bundle).
    pub hashed: usize,
}

impl JobCheck {
    /// The result, when the job is verified complete (no finding).
    pub fn complete(self) -> Option<ResultRecord> {
        self.record.filter(|_| self.findings.is_empty())
    }
}

/// Size and SHA-256 of a job's train and test NPZ, hashed on up to `threads` threads: what a
/// result records when the job runs, and what [`check_job`] compares.
pub fn input_digests(config: &TrainingConfig, threads: usize) -> Result<InputDigests, String> {
    let paths = [
        config.train_data_file.clone(),
        config.test_data_file.clone(),
    ];
    let mut digests = file_digests(&paths, threads).into_iter();
    let mut next = |path: &Path| {
        digests
            .next()
            .unwrap_or_else(|| Err(std::io::Error::other("not hashed")))
            .map_err(|e| format!("cannot read the input {}: {e}", path.display()))
    };
    Ok(InputDigests {
        train: next(&paths[0])?,
        test: next(&paths[1])?,
    })
}

/// Collects findings; `push` says whether the check goes on (`None`: stop), so that each step
/// reads `out.push(finding)?`.
struct Findings {
    depth: Depth,
    found: Vec<Finding>,
}

impl Findings {
    fn push(&mut self, finding: Finding) -> Option<()> {
        self.found.push(finding);
        (self.depth == Depth::All).then_some(())
    }
}

/// The job check: every way the result in `expected.dir` does not hold (see the module's
/// documentation for the claims and their order). With [`Depth::First`] it stops at the first
/// finding, so that, e.g., a job whose config changed has no bundle re-hashed.
pub fn check_job(expected: &Expected<'_>, depth: Depth) -> JobCheck {
    let mut out = Findings {
        depth,
        found: Vec::new(),
    };
    let mut hashed = 0;
    let record = read_record(expected, &mut out);
    if let Some(record) = &record {
        check_record(expected, record, &mut out, &mut hashed);
    }
    JobCheck {
        record,
        findings: out.found,
        hashed,
    }
}

/// The job's result, when it is readable and this job's (else the finding why not: nothing
/// more can be checked).
fn read_record(expected: &Expected<'_>, out: &mut Findings) -> Option<ResultRecord> {
    // Read only if a regular file (a link, a FIFO or a device is refused, never read), and
    // only up to a cap.
    let path = expected.dir.join(RESULT_FILE);
    let text = match npz_contract::confine::read_to_string_capped(&path, JSON_CAP) {
        Ok(text) => text,
        Err(e) => {
            let error = e.to_string();
            out.push(if e.kind() == std::io::ErrorKind::NotFound {
                Finding::NoResult { error }
            } else {
                Finding::ResultUnreadable { error }
            });
            return None;
        }
    };
    let record = match ResultRecord::from_json(&text) {
        Ok(record) => record,
        Err(error) => {
            out.push(Finding::ResultUnusable { error });
            return None;
        }
    };
    if record.view != expected.view
        || record.gridsize != expected.gridsize
        || record.dose != expected.dose
    {
        out.push(Finding::OtherJob {
            view: record.view,
            gridsize: record.gridsize,
        });
        return None;
    }
    Some(record)
}

/// The claims of a result that is this job's.
fn check_record(
    expected: &Expected<'_>,
    record: &ResultRecord,
    out: &mut Findings,
    hashed: &mut usize,
) -> Option<()> {
    if let Some(claimed) = expected.claimed
        && serde_json::to_value(&record.result).ok() != serde_json::to_value(claimed).ok()
    {
        out.push(Finding::ClaimDiffers {
            claimed: claimed.status(),
            recorded: record.result.status(),
        })?;
    }
    let trained = match &record.result {
        JobResult::Success(trained) => Some(trained),
        other => {
            out.push(Finding::NotTrained {
                status: other.status(),
            })?;
            None
        }
    };
    // A trained job that could not be scored is not complete: its result has no metrics.
    // (A success with neither metrics nor a scoring_error is one too, not skipped forever.)
    if let Some(why) = trained.and_then(|t| t.unscored()) {
        out.push(Finding::NotScored { why })?;
    }
    check_config(expected, record, out)?;
    // A job that did not train claims no inputs and no bundle: nothing more to check.
    let trained = trained?;
    check_inputs(expected, record.inputs.as_ref(), out, hashed)?;
    let bundle = expected.dir.join(&trained.bundle_path);
    if let Err(error) = checked_bundle(&bundle, expected.dir) {
        return out.push(Finding::BundleNotContained {
            missing: std::fs::symlink_metadata(&bundle).is_err(),
            path: bundle,
            error,
        });
    }
    match hash_bundle(&bundle) {
        Ok(now) => {
            *hashed += 1;
            let recorded = (trained.bundle_sha256.clone(), trained.bundle_size_bytes);
            if now != recorded {
                out.push(Finding::BundleAltered {
                    path: bundle,
                    recorded,
                    now,
                })?;
            }
        }
        Err(e) => out.push(Finding::BundleUnreadable {
            path: bundle,
            error: e.to_string(),
        })?,
    }
    // The reconstruction the metrics scored, which the pictures show: a regular file inside
    // the job dir, reached through no link.
    if let Some(rel) = &trained.reconstruction_path {
        let path = expected.dir.join(rel);
        let contained = npz_contract::confine::join(expected.dir, Path::new(rel))
            .and_then(|p| npz_contract::confine::open_regular(&p));
        if let Err(e) = contained {
            out.push(Finding::ReconstructionNotContained {
                path,
                error: e.to_string(),
            })?;
        }
    }
    Some(())
}

/// Whether the expected config is the one the result ran with.
fn check_config(expected: &Expected<'_>, record: &ResultRecord, out: &mut Findings) -> Option<()> {
    let bytes = match &expected.config {
        Ok(bytes) => Some(*bytes),
        Err(error) => {
            out.push(Finding::ConfigUnavailable {
                error: error.clone(),
            })?;
            None
        }
    };
    let Some(recorded) = &record.config_sha256 else {
        return out.push(Finding::NoConfigDigest);
    };
    if let Some(bytes) = bytes
        && sha256_bytes(bytes) != *recorded
    {
        out.push(Finding::ConfigDiffers {
            recorded: recorded.clone(),
        })?;
    }
    Some(())
}

/// Whether the inputs re-hash to the digests recorded when the job ran.
fn check_inputs(
    expected: &Expected<'_>,
    recorded: Option<&InputDigests>,
    out: &mut Findings,
    hashed: &mut usize,
) -> Option<()> {
    let Some(recorded) = recorded else {
        return out.push(Finding::NoInputDigests);
    };
    let found: Vec<&Path> = expected.inputs.iter().filter_map(|i| i.ok()).collect();
    let paths: Vec<PathBuf> = found.iter().map(|p| p.to_path_buf()).collect();
    let mut hashed_now = file_digests(&paths, expected.threads).into_iter();
    for ((name, input), was) in ["train", "test"]
        .into_iter()
        .zip(&expected.inputs)
        .zip([&recorded.train, &recorded.test])
    {
        let (path, is) = match input {
            Ok(path) => (
                path.to_path_buf(),
                hashed_now
                    .next()
                    .unwrap_or_else(|| Err(std::io::Error::other("not hashed")))
                    .map_err(|e| e.to_string()),
            ),
            Err(why) => (PathBuf::new(), Err(why.to_string())),
        };
        match is {
            Err(error) => out.push(Finding::InputUnreadable { name, path, error })?,
            Ok(is) => {
                *hashed += 1;
                if is != *was {
                    out.push(Finding::InputChanged {
                        name,
                        path,
                        recorded: was.clone(),
                        now: is,
                    })?;
                }
            }
        }
    }
    Some(())
}
