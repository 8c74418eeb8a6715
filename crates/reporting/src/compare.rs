//! The comparison phase: several methods' artifact roots over the same Phase C/D data, side by
//! side — `comparison_manifest.json`, `comparison_metrics.csv`, `comparison.md`, quality
//! plots (one line per method and view) and pictures (truth and every method per job).
//!
//! Roots are refused unless every job they share was trained and tested on the same data: the
//! content SHA-256 of each matched job's train and test NPZ is compared (every member's bytes,
//! with the paths Phase D records made study-relative). Paths alone could name different files
//! on different machines, and equal data sits in different folders.

use crate::manifest::MANIFEST_FILE;
pub use crate::method::{method_name, root_method_name, slug};
use crate::metrics::{
    FLAT_TIE, FlatStanding, HEADLINE, Names, PLOTTED, SPLITS, against_flat_start, flatten,
    lower_is_better,
};
use crate::output::{PictureRef, ReportError, write_file};
use crate::pictures::{self, JobPicture};
use crate::svg::{Chart, Series};
use crate::text::{dose_label, fmt_num};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// File name of the comparison manifest.
pub const COMPARISON_MANIFEST: &str = "comparison_manifest.json";
/// Version of its format.
pub const COMPARISON_FORMAT_VERSION: u32 = 1;

/// One method's artifact root.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodRoot {
    /// `native:rpie`, `tensorflow`, ...
    pub name: String,
    /// Its artifact root (holds `training_manifest.json`).
    pub root: PathBuf,
}

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A manifest could not be read, or a file not written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Nothing to compare.
    #[error("no artifact roots to compare")]
    Empty,
    /// Two roots carry the same method name.
    #[error("two artifact roots are both `{0}`: name them apart (`NAME=ROOT`) or drop one")]
    Duplicate(String),
    /// The methods did not see the same data.
    #[error(
        "the artifact roots were not trained on the same Phase C/D data: {0}; compare runs made \
         from one Phase C/D tree"
    )]
    InputsDiffer(Box<InputMismatch>),
    /// A data file named by a manifest cannot be read.
    #[error(
        "cannot read {} ({what}), needed to check that the methods saw the same data: {source}",
        path.display()
    )]
    Data {
        /// The file.
        path: PathBuf,
        /// Whose data it is (`train data of dose 1e+03 dense in native:rpie`).
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A comparison manifest is not of this format.
    #[error("{path} is not a comparison manifest of format {COMPARISON_FORMAT_VERSION}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One job whose data differ between two methods.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMismatch {
    /// Dose label.
    pub dose: String,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u64,
    /// `train` or `test`.
    pub split: String,
    /// First method, its recorded file and digest.
    pub a: (String, String, String),
    /// Second method, its recorded file and digest.
    pub b: (String, String, String),
}

impl std::fmt::Display for InputMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job dose {} {} gs{} has {} data {} in {} ({}) but {} in {} ({})",
            self.dose,
            self.view,
            self.gridsize,
            self.split,
            self.a.2,
            self.a.0,
            self.a.1,
            self.b.2,
            self.b.0,
            self.b.1
        )
    }
}

/// A written comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Text files (relative to the comparison folder) and contents.
    pub files: Vec<(String, String)>,
    /// `pictures/*.png` and their bytes.
    pub pictures: Vec<(String, Vec<u8>)>,
    /// Jobs present in every method.
    pub matched_jobs: usize,
}

/// `path` relative to `base` (both made absolute first, `.` and `..` folded), with `..` where
/// needed.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let parts = |p: &Path| -> Vec<std::ffi::OsString> {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut out = Vec::new();
        for c in abs.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(s) => out.push(s.to_os_string()),
                _ => {}
            }
        }
        out
    };
    let (p, b) = (parts(path), parts(base));
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

/// Reads the methods of a comparison folder (roots resolved against the folder).
pub fn read_methods(dir: &Path) -> Result<Vec<MethodRoot>, CompareError> {
    let path = dir.join(COMPARISON_MANIFEST);
    let text = npz_contract::confine::read_to_string_capped(&path, npz_contract::confine::JSON_CAP)
        .map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
    let parse = |message: String| CompareError::Parse {
        path: path.clone(),
        message,
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
    // The roots a comparison folder names are read only inside the folder that holds it (a
    // study's `comparison/` names `../artifacts/<method>`), through no link.
    let holder = dir.parent().unwrap_or(Path::new(""));
    let root_of = |recorded: &str| -> Result<PathBuf, CompareError> {
        let rel = Path::new(recorded).strip_prefix("..").map_err(|_| {
            parse(format!(
                "a method's artifact_root '{}' is not in the folder that holds the comparison",
                recorded.escape_debug()
            ))
        })?;
        npz_contract::confine::join(holder, rel).map_err(|e| {
            parse(format!(
                "a method's artifact_root '{}' is not a folder beside the comparison: {e}",
                recorded.escape_debug()
            ))
        })?;
        Ok(dir.join(recorded))
    };
    if value["format_version"].as_u64() != Some(u64::from(COMPARISON_FORMAT_VERSION)) {
        return Err(parse(format!(
            "format_version is {}",
            value["format_version"]
        )));
    }
    value["methods"]
        .as_array()
        .ok_or_else(|| parse("no `methods` array".into()))?
        .iter()
        .map(|m| {
            Ok(MethodRoot {
                name: m["name"]
                    .as_str()
                    .ok_or_else(|| parse("a method has no `name`".into()))?
                    .to_string(),
                root: root_of(
                    m["artifact_root"]
                        .as_str()
                        .ok_or_else(|| parse("a method has no `artifact_root`".into()))?,
                )?,
            })
        })
        .collect()
}

type Key = (f64, String, u64);

fn key_of(job: &Value) -> Option<Key> {
    Some((
        job["dose"].as_f64()?,
        job["view"].as_str()?.to_string(),
        job["gridsize"].as_u64()?,
    ))
}

struct Loaded {
    method: MethodRoot,
    /// The checked manifest, each job with only what a comparison reads ([`for_comparison`])
    /// and its metrics taken out into `metrics`.
    manifest: Value,
    manifest_sha256: String,
    /// Each job's key, in manifest order.
    keys: Vec<Key>,
    /// Where each key is in the manifest's jobs (a sweep has 100,000 of them), by [`hashed`]
    /// key.
    index: std::collections::HashMap<(u64, String, u64), usize>,
    /// Metric names, each stored once.
    names: Names,
    /// Each job's numeric metric leaves (name id, value) per split ([`SPLITS`] order), in the
    /// order `flatten` gives them: a tenth of their JSON tree.
    metrics: Vec<[Vec<(u32, f64)>; 2]>,
}

/// A job's fields that a comparison reads (identity, data and folder paths, status, backend,
/// metrics, reconstruction): its loss histories and solver facts are most of its size and
/// are left in its manifest.
fn for_comparison(mut job: Value) -> Value {
    const KEEP: &[&str] = &[
        "dose",
        "view",
        "gridsize",
        "train_data_path",
        "test_data_path",
        "artifact_dir",
        "result",
    ];
    const KEEP_RESULT: &[&str] = &[
        "status",
        "backend",
        "metrics",
        "reconstruction_path",
        "bundle_path",
    ];
    if let Value::Object(map) = &mut job {
        map.retain(|k, _| KEEP.contains(&k.as_str()));
        if let Some(Value::Object(result)) = map.get_mut("result") {
            result.retain(|k, _| KEEP_RESULT.contains(&k.as_str()));
        }
    }
    job
}

/// A key as a hash map takes it (a dose by its bits: doses are finite and positive).
fn hashed(key: &Key) -> (u64, String, u64) {
    (key.0.to_bits(), key.1.clone(), key.2)
}

/// Where `split` is in [`SPLITS`].
fn split_index(split: &str) -> Option<usize> {
    SPLITS.iter().position(|s| *s == split)
}

impl Loaded {
    /// Streams `method`'s manifest (checked as every reader checks it), keeping each job
    /// [`for_comparison`].
    fn read(method: &MethodRoot) -> Result<Loaded, CompareError> {
        let mut loaded = Loaded::of(method.clone(), Value::Null, String::new());
        let mut jobs = Vec::new();
        let head = crate::manifest::TrainingManifest::stream(&method.root, |_, job| {
            let job = serde_json::to_value(&job).expect("a parsed job serialises");
            jobs.push(loaded.take_metrics(for_comparison(job)));
        })
        .map_err(crate::output::read_error)?;
        let mut manifest =
            serde_json::to_value(&head.manifest).expect("a parsed manifest serialises");
        manifest["jobs"] = Value::Array(jobs);
        let path = method.root.join(MANIFEST_FILE);
        let (manifest_sha256, _) =
            runner::sha256_file(&path).map_err(|source| ReportError::Read {
                path: path.clone(),
                source,
            })?;
        loaded.manifest = manifest;
        loaded.manifest_sha256 = manifest_sha256;
        loaded.index_jobs();
        Ok(loaded)
    }

    /// Of a manifest already in memory (its jobs kept whole but for their metrics).
    fn of(method: MethodRoot, mut manifest: Value, manifest_sha256: String) -> Loaded {
        let mut loaded = Loaded {
            method,
            manifest: Value::Null,
            manifest_sha256,
            keys: Vec::new(),
            index: std::collections::HashMap::new(),
            names: Names::default(),
            metrics: Vec::new(),
        };
        if let Some(jobs) = manifest.get_mut("jobs").and_then(Value::as_array_mut) {
            for job in jobs.iter_mut() {
                *job = loaded.take_metrics(std::mem::take(job));
            }
        }
        loaded.manifest = manifest;
        loaded.index_jobs();
        loaded
    }

    /// Takes the job's metrics into `metrics` (one entry per job, in order) and returns the
    /// job without them.
    fn take_metrics(&mut self, mut job: Value) -> Value {
        let tree = job
            .get_mut("result")
            .and_then(Value::as_object_mut)
            .and_then(|r| r.remove("metrics"))
            .unwrap_or(Value::Null);
        let mut per_split: [Vec<(u32, f64)>; 2] = [Vec::new(), Vec::new()];
        for (i, split) in SPLITS.iter().enumerate() {
            for (name, value) in flatten(&tree[*split]) {
                let id = self.names.id(name);
                per_split[i].push((id, value));
            }
        }
        self.metrics.push(per_split);
        job
    }

    fn index_jobs(&mut self) {
        for (i, job) in self.manifest["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(key) = key_of(job) {
                self.index.insert(hashed(&key), i);
                self.keys.push(key);
            }
        }
    }

    fn job(&self, key: &Key) -> Option<&Value> {
        self.index
            .get(&hashed(key))
            .map(|&i| &self.manifest["jobs"][i])
    }

    fn metrics(&self, key: &Key, split: &str) -> BTreeMap<String, f64> {
        // By name; of two leaves with one name (a key with a dot in it), the last.
        let (Some(&i), Some(s)) = (self.index.get(&hashed(key)), split_index(split)) else {
            return BTreeMap::new();
        };
        self.metrics[i][s]
            .iter()
            .map(|(id, v)| (self.names.name(*id).to_string(), *v))
            .collect()
    }

    /// Every metric name some job has in one of `splits`.
    fn split_names(&self, splits: &[&str]) -> std::collections::BTreeSet<String> {
        let at: Vec<usize> = splits.iter().filter_map(|s| split_index(s)).collect();
        let ids: std::collections::BTreeSet<u32> = self
            .metrics
            .iter()
            .flat_map(|per_split| at.iter().flat_map(move |&s| per_split[s].iter()))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .map(|id| self.names.name(id).to_string())
            .collect()
    }

    /// The job as the pictures read it: its phase SSIM of each split back under
    /// `result.metrics.<split>.phase.ssim`.
    fn job_for_pictures(&self, key: &Key) -> Option<Value> {
        let mut job = self.job(key)?.clone();
        let mut metrics = serde_json::Map::new();
        for split in SPLITS {
            if let Some(ssim) = self.metrics(key, split).get("phase.ssim") {
                metrics.insert(split.to_string(), json!({"phase": {"ssim": ssim}}));
            }
        }
        if let Some(result) = job.get_mut("result").and_then(Value::as_object_mut) {
            result.insert("metrics".into(), Value::Object(metrics));
        }
        Some(job)
    }

    /// The manifest as the map reads it: each job's identity, status and metrics (flat names
    /// under each split, which `map::cells` flattens back to the same names).
    fn manifest_for_map(&self) -> Value {
        let mut manifest = self.manifest.clone();
        if let Some(jobs) = manifest.get_mut("jobs").and_then(Value::as_array_mut) {
            for (job, per_split) in jobs.iter_mut().zip(&self.metrics) {
                let mut metrics = serde_json::Map::new();
                for (split, leaves) in SPLITS.iter().zip(per_split) {
                    let flat: serde_json::Map<String, Value> = leaves
                        .iter()
                        .map(|(id, v)| (self.names.name(*id).to_string(), json!(v)))
                        .collect();
                    metrics.insert(split.to_string(), Value::Object(flat));
                }
                if let Some(result) = job.get_mut("result").and_then(Value::as_object_mut) {
                    result.insert("metrics".into(), Value::Object(metrics));
                }
            }
        }
        manifest
    }
}

/// Compares `methods` and writes the comparison into `out`.
pub fn compare(methods: &[MethodRoot], out: &Path) -> Result<Comparison, CompareError> {
    compare_with(methods, out, &crate::map::MapSettings::default())
}

/// [`compare`], with each method's dose x overlap map and the difference map of each pair
/// (`maps/`, in comparison.md) drawn under `settings` when the study has overlap levels.
pub fn compare_with(
    methods: &[MethodRoot],
    out: &Path,
    settings: &crate::map::MapSettings,
) -> Result<Comparison, CompareError> {
    if methods.is_empty() {
        return Err(CompareError::Empty);
    }
    for (k, m) in methods.iter().enumerate() {
        if methods[..k].iter().any(|o| o.name == m.name) {
            return Err(CompareError::Duplicate(m.name.clone()));
        }
    }
    let mut loaded = Vec::new();
    for method in methods {
        loaded.push(Loaded::read(method)?);
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in &loaded {
        for k in &l.keys {
            if seen.insert(hashed(k)) {
                keys.push(k.clone());
            }
        }
    }

    // The inputs: every job's data digests, equal across the methods that ran it.
    let locations: Vec<crate::manifest::Locations> = loaded
        .iter()
        .map(|l| pictures::locations(&l.method.root, &l.manifest))
        .collect();
    // Every input's content digest first, on every core; the loop below finds them cached
    // (one that failed is left out, and computed again there to say why).
    let mut wanted: Vec<PathBuf> = Vec::new();
    let mut seen_paths = std::collections::HashSet::new();
    for key in &keys {
        for split in ["train", "test"] {
            for (l, locations) in loaded.iter().zip(&locations) {
                let Some(job) = l.job(key) else { continue };
                let recorded =
                    PathBuf::from(job[format!("{split}_data_path")].as_str().unwrap_or(""));
                if let Ok(path) = locations.input(&recorded)
                    && seen_paths.insert(path.clone())
                {
                    wanted.push(path);
                }
            }
        }
    }
    let found = runner::map_ordered(&wanted, crate::output::cores(), |path| {
        crate::content::digest(path)
    });
    let mut digest_cache: BTreeMap<PathBuf, String> = wanted
        .into_iter()
        .zip(found)
        .filter_map(|(path, sha)| Some((path, sha.ok()?)))
        .collect();
    let mut job_entries = Vec::new();
    let mut matched = 0;
    for key in &keys {
        let mut digests: BTreeMap<&str, (String, String, String)> = BTreeMap::new();
        for split in ["train", "test"] {
            let mut first: Option<(&str, String, String)> = None;
            for (l, locations) in loaded.iter().zip(&locations) {
                let Some(job) = l.job(key) else { continue };
                let recorded =
                    PathBuf::from(job[format!("{split}_data_path")].as_str().unwrap_or(""));
                let what = || {
                    format!(
                        "{split} data of dose {} {} in {}",
                        dose_label(key.0),
                        key.1,
                        l.method.name
                    )
                };
                let path = locations.input(&recorded).map_err(|e| CompareError::Data {
                    path: recorded.clone(),
                    what: what(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
                let sha = match digest_cache.get(&path) {
                    Some(s) => s.clone(),
                    None => {
                        let sha =
                            crate::content::digest(&path).map_err(|source| CompareError::Data {
                                path: path.clone(),
                                what: what(),
                                source,
                            })?;
                        digest_cache.insert(path.clone(), sha.clone());
                        sha
                    }
                };
                match &first {
                    None => first = Some((&l.method.name, recorded.display().to_string(), sha)),
                    Some((a, a_path, a_sha)) if *a_sha != sha => {
                        return Err(CompareError::InputsDiffer(Box::new(InputMismatch {
                            dose: dose_label(key.0),
                            view: key.1.clone(),
                            gridsize: key.2,
                            split: split.into(),
                            a: (a.to_string(), a_path.clone(), a_sha.clone()),
                            b: (l.method.name.clone(), recorded.display().to_string(), sha),
                        })));
                    }
                    Some(_) => {}
                }
            }
            if let Some((_, p, sha)) = first {
                digests.insert(split, (p, sha, String::new()));
            }
        }
        let statuses: serde_json::Map<String, Value> = loaded
            .iter()
            .map(|l| {
                let status = l
                    .job(key)
                    .and_then(|j| j["result"]["status"].as_str())
                    .unwrap_or("absent");
                (l.method.name.clone(), json!(status))
            })
            .collect();
        let in_all = loaded.iter().all(|l| l.job(key).is_some());
        matched += usize::from(in_all);
        job_entries.push(json!({
            "dose": key.0,
            "view": key.1,
            "gridsize": key.2,
            "in_every_method": in_all,
            "train_data_sha256": digests.get("train").map(|d| d.1.clone()),
            "test_data_sha256": digests.get("test").map(|d| d.1.clone()),
            "status": statuses,
        }));
    }
    let method_entries: Vec<Value> = loaded
        .iter()
        .map(|l| {
            json!({
                "name": l.method.name,
                "artifact_root": relative_to(&l.method.root, out).to_string_lossy().replace('\\', "/"),
                "backend": l.manifest["backend"],
                "manifest_sha256": l.manifest_sha256,
                "jobs": l.keys.len(),
            })
        })
        .collect();
    let manifest = json!({
        "format_version": COMPARISON_FORMAT_VERSION,
        "methods": method_entries,
        "inputs_compared": "content SHA-256 of each job's train and test NPZ (every member; recorded paths made study-relative), equal in every method that ran the job",
        "splits_pictured": SPLITS,
        "jobs": job_entries,
        "matched_jobs": matched,
    });
    let manifest_text =
        serde_json::to_string_pretty(&manifest).expect("a JSON value serialises") + "\n";

    // comparison_metrics.csv: one row per job, method and split; every metric any has.
    let columns: Vec<String> = loaded
        .iter()
        .flat_map(|l| l.split_names(&SPLITS))
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    let mut csv = String::from("dose,view,gridsize,method,split,status");
    for c in &columns {
        let _ = write!(csv, ",{c}");
    }
    csv.push('\n');
    for key in &keys {
        for l in &loaded {
            let Some(job) = l.job(key) else { continue };
            for split in ["test", "train"] {
                let m = l.metrics(key, split);
                let _ = write!(
                    csv,
                    "{},{},{},{},{split},{}",
                    key.0,
                    key.1,
                    key.2,
                    l.method.name,
                    job["result"]["status"].as_str().unwrap_or("unknown")
                );
                for c in &columns {
                    let _ = write!(
                        csv,
                        ",{}",
                        m.get(c).map_or(String::new(), |v| v.to_string())
                    );
                }
                csv.push('\n');
            }
        }
    }

    // Plots: one line per method and view.
    let test_names: Vec<String> = loaded
        .iter()
        .flat_map(|l| l.split_names(&["test"]))
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    // The tables show what either split has.
    let table_names: Vec<String> = columns.clone();
    let mut plots: Vec<(String, String)> = Vec::new();
    let views: Vec<(String, u64)> = {
        let mut v: Vec<(String, u64)> = Vec::new();
        for k in &keys {
            if !v.contains(&(k.1.clone(), k.2)) {
                v.push((k.1.clone(), k.2));
            }
        }
        v
    };
    for metric in PLOTTED
        .iter()
        .filter(|m| test_names.iter().any(|n| n == *m))
    {
        let mut series = Vec::new();
        for l in &loaded {
            for (view, gs) in &views {
                let points: Vec<(f64, f64)> = keys
                    .iter()
                    .filter(|k| &k.1 == view && k.2 == *gs)
                    .filter_map(|k| Some((k.0, *l.metrics(k, "test").get(*metric)?)))
                    .collect();
                if !points.is_empty() {
                    series.push(Series {
                        errors: Vec::new(),
                        label: format!("{} {view} gs{gs}", l.method.name),
                        points,
                    });
                }
            }
        }
        let chart = Chart {
            title: format!("{metric} (test split) vs dose, per method"),
            x_label: "dose (photons per pattern)".into(),
            y_label: metric.to_string(),
            log_x: true,
            log_y: false,
            series,
        };
        plots.push((
            format!("plots/quality_{}.svg", metric.replace('.', "_")),
            chart.to_svg(),
        ));
    }

    // Pictures: of the jobs the report would picture (at most PICTURED_DOSES doses and as
    // many view and gridsize combinations, spread evenly), loaded a job at a time; each side by
    // side picture is written as it is drawn, and the phase grids keep only phases.
    let sampling = pictures::Sampling::of(
        keys.iter()
            .map(|k| (k.0, k.1.as_str(), u32::try_from(k.2).unwrap_or(u32::MAX))),
    );
    let locations_of: Vec<crate::manifest::Locations> = loaded
        .iter()
        .map(|l| pictures::locations(&l.method.root, &l.manifest))
        .collect();
    let mut by_method: Vec<Vec<JobPicture>> = vec![Vec::new(); loaded.len()];
    let mut notes: Vec<String> = Vec::new();
    let mut picture_files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refs: Vec<PictureRef> = Vec::new();
    for key in &keys {
        if !sampling.pictures(key.0, &key.1, u32::try_from(key.2).unwrap_or(u32::MAX)) {
            continue;
        }
        let mut row: Vec<(String, Vec<JobPicture>)> = Vec::new();
        for (l, locations) in loaded.iter().zip(&locations_of) {
            let mut splits = Vec::new();
            if let Some(job) = l.job_for_pictures(key) {
                for split in SPLITS {
                    match pictures::load_job(locations, &job, split) {
                        Ok(Some(p)) => splits.push(p),
                        Ok(None) => {}
                        Err(e) => notes.push(format!(
                            "{}: dose {} {} gs{}, {split} split: {e}",
                            l.method.name,
                            dose_label(key.0),
                            key.1,
                            key.2
                        )),
                    }
                }
            }
            row.push((l.method.name.clone(), splits));
        }
        let label = format!("dose {} {} gs{}", dose_label(key.0), key.1, key.2);
        let drawn = {
            let view: Vec<(String, Vec<&JobPicture>)> = row
                .iter()
                .map(|(name, ps)| (name.clone(), ps.iter().collect()))
                .collect();
            pictures::side_by_side(&view, &label)
        };
        if let Some(png) = drawn {
            let file = format!("pictures/side_by_side_{}.png", pictures::job_stem(key));
            refs.push(PictureRef {
                file: file.clone(),
                caption: format!(
                    "{label}: truth and every method, train split above test split; one scale \
                     per kind of image in both."
                ),
            });
            write_file(out, &file, &png)?;
            picture_files.push((file, png));
        }
        for (kept, (_, ps)) in by_method.iter_mut().zip(row) {
            kept.extend(ps.into_iter().map(pictures::phase_only));
        }
    }
    for (l, ps) in loaded.iter().zip(&by_method) {
        let title = format!("{}: phase, train and test split", l.method.name);
        if let Some(png) = pictures::phase_grid(ps, &title) {
            let file = format!("pictures/phase_grid_{}.png", slug(&l.method.name));
            refs.push(PictureRef {
                file: file.clone(),
                caption: format!(
                    "{}: phase of every job, train split above test split, doses as rows and views as columns (the \"SSIM grid\").",
                    l.method.name
                ),
            });
            picture_files.push((file, png));
        }
    }

    let mut md = markdown(
        &loaded,
        &keys,
        &table_names,
        &plots,
        &Pictured {
            refs: &refs,
            notes: &notes,
            sampling: &sampling,
        },
        matched,
    );
    // The map: absent (and comparison.md unchanged) unless the study has overlap levels.
    let maps = map_files(&loaded, settings);
    if !maps.is_empty() {
        md.push_str(&map_section(&maps, settings));
    }
    let mut files = vec![
        (COMPARISON_MANIFEST.to_string(), manifest_text),
        ("comparison_metrics.csv".to_string(), csv),
        ("comparison.md".to_string(), md),
    ];
    files.extend(plots);
    files.extend(maps.into_iter().map(|(name, _, svg)| (name, svg)));
    for (name, text) in &files {
        write_file(out, name, text.as_bytes())?;
    }
    // The side by side pictures are written as drawn; the phase grids here.
    for (name, bytes) in picture_files
        .iter()
        .filter(|(name, _)| name.starts_with("pictures/phase_grid_"))
    {
        write_file(out, name, bytes)?;
    }
    Ok(Comparison {
        files,
        pictures: picture_files,
        matched_jobs: matched,
    })
}

/// The map files of a comparison: (file, caption, SVG): each method's heatmaps, then the
/// difference `A - B` of each pair of methods, per metric and gridsize; none unless every
/// method's cells hold a map.
fn map_files(
    loaded: &[Loaded],
    settings: &crate::map::MapSettings,
) -> Vec<(String, String, String)> {
    use crate::map;
    // Cells only where a view has an overlap target, as the report makes them: a sweep
    // without overlap levels would otherwise hold a cell per metric, job and split.
    let cells: Vec<Vec<map::Cell>> = loaded
        .iter()
        .map(|l| {
            let geometry = map::read_geometry(&l.method.root, &l.manifest);
            if geometry.values().any(|g| g.targeted) {
                map::cells(&l.manifest_for_map(), &geometry)
            } else {
                Vec::new()
            }
        })
        .collect();
    if cells.is_empty() || !cells.iter().all(|c| map::is_map(c)) {
        return Vec::new();
    }
    let grids: Vec<_> = loaded
        .iter()
        .zip(&cells)
        .map(|(l, c)| {
            let dir = format!("maps/{}", slug(&l.method.name));
            map::grids(c, &dir, settings)
        })
        .collect();
    let mut out = Vec::new();
    for (l, gs) in loaded.iter().zip(&grids) {
        for (file, metric, gridsize, g) in gs {
            let title = format!("{}: test {metric}, gs{gridsize}", l.method.name);
            let svg = map::heatmap_svg(g, &title, metric, Some(settings.success_nrmse), false);
            out.push((file.clone(), title, svg));
        }
    }
    for (a, (la, ga)) in loaded.iter().zip(&grids).enumerate() {
        for (lb, gb) in loaded.iter().zip(&grids).skip(a + 1) {
            for (file_a, metric, gridsize, grid_a) in ga {
                let Some((_, _, _, grid_b)) =
                    gb.iter().find(|(_, m, g, _)| m == metric && g == gridsize)
                else {
                    continue;
                };
                let d = map::difference(grid_a, grid_b);
                if d.values.is_empty() {
                    continue;
                }
                let stem = file_a.rsplit('/').next().unwrap_or("map.svg");
                let file = format!(
                    "maps/diff_{}_minus_{}_{stem}",
                    slug(&la.method.name),
                    slug(&lb.method.name)
                );
                let title = format!(
                    "{} - {}: test {metric}, gs{gridsize}",
                    la.method.name, lb.method.name
                );
                let svg = map::heatmap_svg(&d, &title, metric, None, true);
                out.push((file, title, svg));
            }
        }
    }
    out
}

/// comparison.md's map section: every map embedded under its caption.
fn map_section(maps: &[(String, String, String)], settings: &crate::map::MapSettings) -> String {
    let mut md = format!(
        "\n## Dose x overlap map\n\nEach method's heatmaps of the test split over dose (columns) \
         and realised overlap (rows), with the success boundary at test Fienup NRMSE <= {} and \
         dashed iso-photon-budget lines, then the difference A - B of each pair of methods \
         (blue: A lower, red: A higher). Tidy cells: each method's `map.csv` in its report.\n\n",
        fmt_num(settings.success_nrmse)
    );
    for (file, title, _) in maps {
        let _ = writeln!(md, "### {title}\n\n![{title}]({file})\n");
    }
    md
}

/// One method's standing against the flat start on one split.
struct FlatStart {
    split: &'static str,
    scored: usize,
    below: usize,
    /// Jobs level with it (within `FLAT_TIE`): job, NRMSE vs flat.
    level: Vec<String>,
    /// Jobs above it: job, NRMSE vs flat.
    above: Vec<String>,
}

impl FlatStart {
    fn cell(jobs: &[String]) -> String {
        if jobs.is_empty() {
            "-".to_string()
        } else {
            jobs.join(", ")
        }
    }
}

/// What comparison.md says of its pictures: the pictures, the jobs that could not be
/// pictured and why, and which jobs were pictured.
struct Pictured<'a> {
    refs: &'a [PictureRef],
    notes: &'a [String],
    sampling: &'a pictures::Sampling,
}

fn markdown(
    loaded: &[Loaded],
    keys: &[Key],
    table_names: &[String],
    plots: &[(String, String)],
    pictured: &Pictured<'_>,
    matched: usize,
) -> String {
    let Pictured {
        refs,
        notes,
        sampling,
    } = *pictured;
    let mut md = String::new();
    let names: Vec<&str> = loaded.iter().map(|l| l.method.name.as_str()).collect();
    let _ = writeln!(md, "# Comparison: {}\n", names.join(" vs "));
    let _ = writeln!(
        md,
        "{} job(s) in every method, {} in all; every job's train and test data are the same in \
         every method that ran it (content SHA-256, see `{COMPARISON_MANIFEST}`).\n",
        matched,
        keys.len()
    );
    let _ = writeln!(
        md,
        "| method | artifact root | jobs | ended well | manifest SHA-256 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for l in loaded {
        let ok = l.manifest["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| matches!(j["result"]["status"].as_str(), Some("success" | "dry_run")))
            .count();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | `{}` |",
            l.method.name,
            l.method.root.file_name().map_or_else(
                || l.method.root.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
            l.keys.len(),
            ok,
            l.manifest_sha256
        );
    }
    let _ = writeln!(md);
    // How many jobs of each method get closer to the truth than the flat start they are
    // scored against (the object of ones, registered the same way): a method below it on
    // no job has learned nothing the scoring sees, whatever its loss says, and one level with
    // it returns what any constant object would score. Per split: a self-supervised method
    // may fit its training data and still not generalise.
    let flat: Vec<Vec<FlatStart>> = loaded
        .iter()
        .map(|l| {
            SPLITS
                .iter()
                .map(|split| {
                    let mut standing = FlatStart {
                        split,
                        scored: 0,
                        below: 0,
                        level: Vec::new(),
                        above: Vec::new(),
                    };
                    for key in keys {
                        let m = l.metrics(key, split);
                        let Some((v, f, s)) = against_flat_start(|k| m.get(k).copied()) else {
                            continue;
                        };
                        standing.scored += 1;
                        let job = || {
                            format!(
                                "{} {} gs{} ({} vs {})",
                                dose_label(key.0),
                                key.1,
                                key.2,
                                fmt_num(v),
                                fmt_num(f)
                            )
                        };
                        match s {
                            FlatStanding::Below => standing.below += 1,
                            FlatStanding::Level => standing.level.push(job()),
                            FlatStanding::Above => standing.above.push(job()),
                        }
                    }
                    standing
                })
                .filter(|standing| standing.scored > 0)
                .collect()
        })
        .collect();
    if flat.iter().any(|splits| !splits.is_empty()) {
        let _ = writeln!(
            md,
            "## Against the flat start (train and test split, fienup_nrmse)\n"
        );
        let _ = writeln!(
            md,
            "Level: within {:.0} % of the flat start's NRMSE, which any constant object scores \
             exactly (the NRMSE fits one global complex factor).\n",
            FLAT_TIE * 100.0
        );
        let _ = writeln!(
            md,
            "| method | split | jobs below the flat start | level with it (NRMSE vs flat) | \
             above it (NRMSE vs flat) |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for (l, splits) in loaded.iter().zip(&flat) {
            for standing in splits {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} of {} | {} | {} |",
                    l.method.name,
                    standing.split,
                    standing.below,
                    standing.scored,
                    FlatStart::cell(&standing.level),
                    FlatStart::cell(&standing.above)
                );
            }
        }
        let _ = writeln!(md);
        // A method with no job below the flat start on a split is named, not left for the
        // reader to find in the tables below, where it may even be "best" of a bad lot.
        for (l, splits) in loaded.iter().zip(&flat) {
            let none: Vec<&str> = splits
                .iter()
                .filter(|standing| standing.below == 0)
                .map(|standing| standing.split)
                .collect();
            if !none.is_empty() {
                let _ = writeln!(
                    md,
                    "**{} is below the flat start on no job of its {} split{}**: its objects \
                     are no closer to the truth than a flat one; read its other figures as a \
                     failure to reconstruct (degenerate), not as a ranking.\n",
                    l.method.name,
                    none.join(" and "),
                    if none.len() > 1 { "s" } else { "" }
                );
            }
        }
    }
    let headline: Vec<&str> = HEADLINE
        .iter()
        .copied()
        .filter(|h| table_names.iter().any(|n| n == h))
        .collect();
    // Each method's train and test values side by side; the best is found per split, never
    // a train value against a test value.
    let columns: Vec<String> = names
        .iter()
        .flat_map(|n| SPLITS.map(|split| format!("{n} {split}")))
        .collect();
    for metric in &headline {
        let lower = lower_is_better(metric);
        let better = if lower { "lower" } else { "higher" };
        let _ = writeln!(
            md,
            "## {metric} (train and test split; {better} is better, best of each split in bold)\n"
        );
        let _ = writeln!(md, "| dose | view | gs | {} |", columns.join(" | "));
        let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(columns.len()));
        for key in keys {
            let values: Vec<[Option<f64>; 2]> = loaded
                .iter()
                .map(|l| {
                    SPLITS.map(|split| {
                        l.metrics(key, split)
                            .get(*metric)
                            .copied()
                            .filter(|v| v.is_finite())
                    })
                })
                .collect();
            let per_split: Vec<(Option<f64>, bool)> = (0..SPLITS.len())
                .map(|s| {
                    let of_split = || values.iter().filter_map(|v| v[s]);
                    let best = of_split().reduce(|a, b| if lower { a.min(b) } else { a.max(b) });
                    (best, of_split().count() > 1)
                })
                .collect();
            let cells: Vec<String> = values
                .iter()
                .flat_map(|v| v.iter().enumerate())
                .map(|(s, v)| {
                    let (best, several) = per_split[s];
                    match v {
                        Some(v) if several && Some(*v) == best => format!("**{}**", fmt_num(*v)),
                        Some(v) => fmt_num(*v),
                        None => "-".into(),
                    }
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                dose_label(key.0),
                key.1,
                key.2,
                cells.join(" | ")
            );
        }
        let _ = writeln!(md);
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "## Quality against dose\n");
        for (name, _) in plots {
            let _ = writeln!(md, "![{name}]({name})");
        }
        let _ = writeln!(md);
    }
    if !refs.is_empty() || !notes.is_empty() || sampling.is_sampled() {
        let _ = writeln!(md, "## Pictures (train and test split)\n");
        let _ = writeln!(
            md,
            "Each picture has a panel per split, the train split above the test split, each \
             against its own truth. Registered as the metrics score them (global phase and \
             fitted phase plane removed), cropped to the scored region (grey: outside it); each \
             kind of image has one scale in both panels, set by the truth's range (values beyond \
             it saturate).\n"
        );
        sampling.describe(
            &mut md,
            "no side by side picture or phase-grid cell",
            "comparison_metrics.csv",
        );
        for p in refs {
            let _ = writeln!(md, "{}\n\n![{}]({})\n", p.caption, p.file, p.file);
        }
        for n in notes {
            let _ = writeln!(md, "- not pictured: {}", n.replace('\n', " "));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_relative_paths() {
        assert_eq!(slug("native:epie"), "native-epie");
        assert_eq!(slug("tensorflow"), "tensorflow");
        assert_eq!(
            relative_to(
                Path::new("/s/artifacts/native-epie"),
                Path::new("/s/comparison")
            ),
            PathBuf::from("../artifacts/native-epie")
        );
        assert_eq!(
            relative_to(Path::new("/s/a"), Path::new("/s/a")),
            PathBuf::from(".")
        );
    }

    /// The best of a row is found per split: a method's train value is never weighed against
    /// another's test value, and each method shows both splits side by side.
    #[test]
    fn tables_show_both_splits_and_mark_the_best_per_split() {
        let method = |name: &str, train: f64, test: f64| {
            let job = json!({"dose": 1000.0, "view": "dense", "gridsize": 2, "result": {
                "status": "success", "metrics": {
                    "train": {"phase": {"ssim": train}, "fienup_nrmse": 0.9, "fienup_nrmse_initial": 0.5},
                    "test": {"phase": {"ssim": test}, "fienup_nrmse": 0.2, "fienup_nrmse_initial": 0.5}}}});
            Loaded::of(
                MethodRoot {
                    name: name.into(),
                    root: PathBuf::from(name),
                },
                json!({"jobs": [job]}),
                "0".repeat(64),
            )
        };
        // a fits its training data best; b generalises best, with a test value below a's train.
        let loaded = [method("a", 0.9, 0.5), method("b", 0.7, 0.6)];
        let keys = [(1000.0, "dense".to_string(), 2)];
        let names = ["fienup_nrmse".to_string(), "phase.ssim".to_string()];
        let md = markdown(
            &loaded,
            &keys,
            &names,
            &[],
            &Pictured {
                refs: &[],
                notes: &[],
                sampling: &pictures::Sampling::default(),
            },
            1,
        );
        let table = md
            .split("## phase.ssim (train and test split; higher is better, best of each split in bold)\n")
            .nth(1)
            .expect("a phase.ssim table");
        assert!(
            table.contains(
                "| dose | view | gs | a train | a test | b train | b test |\n|---|---|---|---|---|---|---|\n\
                 | 1e+03 | dense | 2 | **0.9000** | 0.5000 | 0.7000 | **0.6000** |\n"
            ),
            "{table}"
        );
        // Against the flat start, per split: a train split above it is named, and so is the
        // method that is below it on no job of that split.
        assert!(
            md.contains(
                "| a | train | 0 of 1 | - | 1e+03 dense gs2 (0.9000 vs 0.5000) |\n\
                 | a | test | 1 of 1 | - | - |"
            ),
            "{md}"
        );
        assert!(
            md.contains("**a is below the flat start on no job of its train split**"),
            "{md}"
        );
    }
}
