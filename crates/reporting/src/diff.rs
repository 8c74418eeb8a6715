//! `dose-overlap diff`: what changed between two artifact roots, the way a reviewer reads it.
//! Jobs are matched by (dose, view, gridsize); numbers compare within a tolerance; volatile
//! fields (timestamps, absolute roots) are ignored.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Fields that differ between runs by nature, never findings.
const VOLATILE: &[&str] = &["timestamp", "phase_c_root", "phase_d_root", "artifact_root"];

/// Why two runs could not be compared: a manifest missing, unreadable or of the wrong shape.
pub type DiffError = crate::output::ReportError;

/// A job's identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobKey {
    /// Dose.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u64,
}

/// One differing field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Dotted path inside the job (`result.metrics.test.phase.ssim`).
    pub field: String,
    /// Value in run A (`null` when absent).
    pub a: Value,
    /// Value in run B (`null` when absent).
    pub b: Value,
    /// b - a for numbers.
    pub delta: Option<f64>,
}

/// A job present in both runs with differing fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobChange {
    /// Which job.
    pub job: JobKey,
    /// What differs.
    pub fields: Vec<FieldChange>,
}

/// A skip event's identity and reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// Dose.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Reason as recorded.
    pub reason: String,
}

/// The comparison of two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDiff {
    /// Whether the runs are equal within the tolerance.
    pub equal: bool,
    /// The relative/absolute tolerance used for numbers.
    pub tolerance: f64,
    /// Jobs only in B.
    pub jobs_added: Vec<JobKey>,
    /// Jobs only in A.
    pub jobs_removed: Vec<JobKey>,
    /// Jobs in both that differ.
    pub jobs_changed: Vec<JobChange>,
    /// Skip events only in B.
    pub skips_added: Vec<Skip>,
    /// Skip events only in A.
    pub skips_removed: Vec<Skip>,
    /// Skip events in both whose reason changed: (A, B).
    pub skips_changed: Vec<(Skip, Skip)>,
    /// Top-level manifest fields that differ (other than jobs, skips and volatile ones).
    pub other_fields: Vec<FieldChange>,
    /// `run A: this manifest is from a run that did not finish ...`: a run whose manifest is
    /// not final (the runs are then never equal).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
    /// How the comparison was made where it is not field by field (PtychoPINN jobs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What is said when PtychoPINN jobs were compared.
pub const PINN_NOTE: &str = "PtychoPINN jobs (tensorflow, pytorch) are compared by status, bundle \
     size, loss and metrics within the tolerance: the real trainer's bundles differ from run to \
     run, so their digests are not compared";

/// A job trained by PtychoPINN's trainer (its bundle is not byte-reproducible).
fn is_pinn(job: &Value) -> bool {
    matches!(
        job["result"]["backend"].as_str(),
        Some("tensorflow" | "pytorch")
    ) && job["result"]["status"] == "success"
}

/// The job without what varies by nature between real-trainer runs.
fn comparable(job: &Value) -> Value {
    let mut job = job.clone();
    if let Some(result) = job.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("bundle_sha256");
    }
    job
}

/// Numbers equal within `tol`, absolutely or relative to the larger magnitude.
fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

fn job_key(job: &Value) -> Option<JobKey> {
    Some(JobKey {
        dose: job["dose"].as_f64()?,
        view: job["view"].as_str()?.to_string(),
        gridsize: job["gridsize"].as_u64()?,
    })
}

fn skip(event: &Value) -> Option<Skip> {
    Some(Skip {
        dose: event["dose"].as_f64()?,
        view: event["view"].as_str()?.to_string(),
        reason: event["reason"].as_str().unwrap_or("").to_string(),
    })
}

/// Replaces a run's own roots in path strings, so runs in different folders compare equal.
fn normalise(value: &Value, roots: &[String]) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            for (k, root) in roots.iter().enumerate() {
                let inside = s
                    .strip_prefix(root.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                if !root.is_empty() && inside {
                    s = format!("<root{k}>{}", &s[root.len()..]);
                }
            }
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, roots)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalise(v, roots)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn compare(path: &str, a: &Value, b: &Value, tol: f64, out: &mut Vec<FieldChange>) {
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                compare(
                    &child,
                    ma.get(key).unwrap_or(&Value::Null),
                    mb.get(key).unwrap_or(&Value::Null),
                    tol,
                    out,
                );
            }
        }
        (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => {
            // Arrays of numbers (loss histories) are one finding, not one per element.
            let numeric = xa.iter().chain(xb).all(Value::is_number);
            if numeric {
                let differs = xa.iter().zip(xb).any(|(x, y)| {
                    !close(x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0), tol)
                });
                if differs {
                    out.push(FieldChange {
                        field: path.to_string(),
                        a: a.clone(),
                        b: b.clone(),
                        delta: None,
                    });
                }
            } else {
                for (k, (x, y)) in xa.iter().zip(xb).enumerate() {
                    compare(&format!("{path}[{k}]"), x, y, tol, out);
                }
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            if !close(x, y, tol) {
                out.push(FieldChange {
                    field: path.to_string(),
                    a: a.clone(),
                    b: b.clone(),
                    delta: Some(y - x),
                });
            }
        }
        _ if a == b => {}
        _ => out.push(FieldChange {
            field: path.to_string(),
            a: a.clone(),
            b: b.clone(),
            delta: None,
        }),
    }
}

/// The fields of two JSON values that differ (dotted paths; numbers within `tolerance`).
pub fn diff_values(a: &Value, b: &Value, tolerance: f64) -> Vec<FieldChange> {
    let mut out = Vec::new();
    compare("", a, b, tolerance, &mut out);
    out
}

/// A manifest as `diff` holds it: its top-level fields parsed, and each job kept as its
/// compact JSON text, in file order (a parsed job takes about ten times its text, and a
/// manifest of 100,000 jobs is close to 1 GB of pretty JSON). `jobs` is `None` when the
/// manifest has no `jobs` array.
struct Held {
    head: serde_json::Map<String, Value>,
    jobs: Option<Vec<String>>,
}

impl Held {
    /// From a parsed manifest (what the tests and in-memory callers have).
    fn of_value(m: &Value) -> Held {
        let mut head = m.as_object().cloned().unwrap_or_default();
        let jobs = head.remove("jobs").and_then(|jobs| match jobs {
            Value::Array(jobs) => Some(jobs.iter().map(Value::to_string).collect()),
            _ => None,
        });
        Held { head, jobs }
    }

    /// Streams `<artifact_root>/training_manifest.json` (a regular file, never a link or a
    /// FIFO, at most `MANIFEST_CAP` bytes) into its held form: one parsed job at a time.
    fn read(artifact_root: &Path) -> Result<Held, DiffError> {
        use serde::Deserializer as _;
        let path = artifact_root.join(crate::manifest::MANIFEST_FILE);
        let file = npz_contract::confine::open_capped(&path, crate::manifest::MANIFEST_CAP)
            .map_err(|source| DiffError::Read {
                path: path.clone(),
                source,
            })?;
        let mut de =
            serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, file));
        de.deserialize_any(HeldVisitor)
            .and_then(|held| de.end().map(|()| held))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Io => DiffError::Read {
                    path,
                    source: std::io::Error::other(e.to_string()),
                },
                _ => DiffError::Parse {
                    path,
                    message: e.to_string(),
                },
            })
    }
}

/// The manifest's top level: every field parsed but `jobs`, whose elements are kept as text.
struct HeldVisitor;

impl<'de> serde::de::Visitor<'de> for HeldVisitor {
    type Value = Held;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a training manifest (a JSON object)")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Held, M::Error> {
        let mut held = Held {
            head: serde_json::Map::new(),
            jobs: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "jobs" {
                // As a parsed manifest would: the last `jobs` is the one.
                held.jobs = map.next_value_seed(JobsSeed)?;
            } else {
                let value: Value = map.next_value()?;
                held.head.insert(key, value);
            }
        }
        Ok(held)
    }
}

/// `jobs`: an array, each element parsed alone and kept as compact text; anything else is
/// no `jobs` array (`None`).
struct JobsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for JobsSeed {
    type Value = Option<Vec<String>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JobsSeed {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the jobs array")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut jobs = Vec::new();
        while let Some(job) = seq.next_element::<Value>()? {
            jobs.push(job.to_string());
        }
        Ok(Some(jobs))
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// The run's roots (`phase_c_root`, `phase_d_root`, `artifact_root`), as `normalise` takes them.
fn roots_of(head: &serde_json::Map<String, Value>) -> Vec<String> {
    VOLATILE[1..]
        .iter()
        .map(|k| {
            head.get(*k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// A held job parsed back, its run's roots replaced.
fn held_job(text: &str, roots: &[String]) -> Value {
    let job: Value = serde_json::from_str(text).expect("held jobs are JSON that serde_json wrote");
    normalise(&job, roots)
}

/// Each held job's key, in file order; a job listed twice is refused.
fn held_keys(jobs: &[String], name: &str) -> Result<Vec<JobKey>, String> {
    let mut seen = std::collections::HashSet::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    for text in jobs {
        let job: Value =
            serde_json::from_str(text).expect("held jobs are JSON that serde_json wrote");
        let key =
            job_key(&job).ok_or(format!("run {name} has a job without dose/view/gridsize"))?;
        // A job listed twice is no run `train` writes: refused, never matched half.
        if !seen.insert((key.dose.to_bits(), key.view.clone(), key.gridsize)) {
            return Err(format!(
                "run {name} lists job dose={} view={} gs{} twice",
                crate::text::dose_label(key.dose),
                key.view,
                key.gridsize
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Compares two parsed manifests.
pub fn diff_manifests(a: &Value, b: &Value, tolerance: f64) -> Result<RunDiff, String> {
    diff_held(Held::of_value(a), Held::of_value(b), tolerance)
}

/// Compares two held manifests: one pair of jobs parsed at a time, matched by key through a
/// hash map (memory: the two manifests' compact job texts, and their keys).
fn diff_held(a: Held, b: Held, tolerance: f64) -> Result<RunDiff, String> {
    let (roots_a, roots_b) = (roots_of(&a.head), roots_of(&b.head));
    let head_a = normalise(&Value::Object(a.head), &roots_a);
    let head_b = normalise(&Value::Object(b.head), &roots_b);
    let ja = a.jobs.ok_or("run A has no `jobs` array")?;
    let jb = b.jobs.ok_or("run B has no `jobs` array")?;
    let (ka, kb) = (held_keys(&ja, "A")?, held_keys(&jb, "B")?);
    let index = |keys: &[JobKey]| -> std::collections::HashMap<(u64, String, u64), usize> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| ((k.dose.to_bits(), k.view.clone(), k.gridsize), i))
            .collect()
    };
    let (ia, ib) = (index(&ka), index(&kb));
    let mut diff = RunDiff {
        equal: true,
        tolerance,
        jobs_added: Vec::new(),
        jobs_removed: Vec::new(),
        jobs_changed: Vec::new(),
        skips_added: Vec::new(),
        skips_removed: Vec::new(),
        skips_changed: Vec::new(),
        other_fields: Vec::new(),
        unfinished: Vec::new(),
        notes: Vec::new(),
    };
    for (name, m) in [("A", &head_a), ("B", &head_b)] {
        if let Some(run) = crate::manifest::RunInProgress::in_json(m) {
            diff.unfinished
                .push(format!("run {name}: {}", run.describe()));
        }
    }
    let mut pinn = false;
    for (key, text_a) in ka.iter().zip(&ja) {
        match ib.get(&(key.dose.to_bits(), key.view.clone(), key.gridsize)) {
            None => diff.jobs_removed.push(key.clone()),
            Some(&i) => {
                let (job_a, job_b) = (held_job(text_a, &roots_a), held_job(&jb[i], &roots_b));
                let mut fields = Vec::new();
                if is_pinn(&job_a) && is_pinn(&job_b) {
                    pinn = true;
                    compare(
                        "",
                        &comparable(&job_a),
                        &comparable(&job_b),
                        tolerance,
                        &mut fields,
                    );
                } else {
                    compare("", &job_a, &job_b, tolerance, &mut fields);
                }
                if !fields.is_empty() {
                    diff.jobs_changed.push(JobChange {
                        job: key.clone(),
                        fields,
                    });
                }
            }
        }
    }
    diff.jobs_added = kb
        .iter()
        .filter(|k| !ia.contains_key(&(k.dose.to_bits(), k.view.clone(), k.gridsize)))
        .cloned()
        .collect();
    let skips = |m: &Value| -> Vec<Skip> {
        m["skipped_views"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(skip)
            .collect()
    };
    let (sa, sb) = (skips(&head_a), skips(&head_b));
    let same = |x: &Skip, y: &Skip| x.dose == y.dose && x.view == y.view;
    for s in &sa {
        match sb.iter().find(|t| same(s, t)) {
            None => diff.skips_removed.push(s.clone()),
            Some(t) if t.reason != s.reason => diff.skips_changed.push((s.clone(), t.clone())),
            Some(_) => {}
        }
    }
    diff.skips_added = sb
        .iter()
        .filter(|t| !sa.iter().any(|s| same(s, t)))
        .cloned()
        .collect();
    let strip = |m: &Value| -> Value {
        let mut m = m.clone();
        if let Value::Object(map) = &mut m {
            for key in VOLATILE
                .iter()
                .chain(&["jobs", "skipped_views", "skipped_count"])
            {
                map.remove(*key);
            }
        }
        m
    };
    compare(
        "",
        &strip(&head_a),
        &strip(&head_b),
        tolerance,
        &mut diff.other_fields,
    );
    diff.equal = diff.jobs_added.is_empty()
        && diff.jobs_removed.is_empty()
        && diff.jobs_changed.is_empty()
        && diff.skips_added.is_empty()
        && diff.skips_removed.is_empty()
        && diff.skips_changed.is_empty()
        && diff.other_fields.is_empty()
        && diff.unfinished.is_empty();
    if pinn {
        diff.notes.push(PINN_NOTE.to_string());
    }
    Ok(diff)
}

/// Compares the manifests of two artifact roots, each streamed in (see [`Held`]).
pub fn diff_runs(a: &Path, b: &Path, tolerance: f64) -> Result<RunDiff, DiffError> {
    let (ha, hb) = (Held::read(a)?, Held::read(b)?);
    diff_held(ha, hb, tolerance).map_err(|message| DiffError::Parse {
        path: a.join(crate::manifest::MANIFEST_FILE),
        message,
    })
}

fn job_text(k: &JobKey) -> String {
    format!(
        "dose={} view={} gs{}",
        crate::text::dose_label(k.dose),
        k.view,
        k.gridsize
    )
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => "(absent)".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 72 {
        format!("{}…", s.chars().take(72).collect::<String>())
    } else {
        s
    }
}

impl RunDiff {
    /// Plain-text rendering for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for note in &self.unfinished {
            let _ = writeln!(s, "! {note}");
        }
        for k in &self.jobs_added {
            let _ = writeln!(s, "+ job {} (only in B)", job_text(k));
        }
        for k in &self.jobs_removed {
            let _ = writeln!(s, "- job {} (only in A)", job_text(k));
        }
        for change in &self.jobs_changed {
            let _ = writeln!(s, "~ job {}", job_text(&change.job));
            for f in &change.fields {
                match f.delta {
                    Some(d) => {
                        let rel = f
                            .a
                            .as_f64()
                            .filter(|a| *a != 0.0)
                            .map_or(String::new(), |a| format!(", {:+.2}%", 100.0 * d / a.abs()));
                        let _ = writeln!(
                            s,
                            "    {}: {} -> {} (Δ {d:+.3e}{rel})",
                            f.field,
                            short(&f.a),
                            short(&f.b)
                        );
                    }
                    None => {
                        let _ = writeln!(s, "    {}: {} -> {}", f.field, short(&f.a), short(&f.b));
                    }
                }
            }
        }
        for sk in &self.skips_added {
            let _ = writeln!(
                s,
                "+ skip dose={} view={}: {}",
                crate::text::dose_label(sk.dose),
                sk.view,
                sk.reason
            );
        }
        for sk in &self.skips_removed {
            let _ = writeln!(
                s,
                "- skip dose={} view={}: {}",
                crate::text::dose_label(sk.dose),
                sk.view,
                sk.reason
            );
        }
        for (a, b) in &self.skips_changed {
            let _ = writeln!(
                s,
                "~ skip dose={} view={}: reason {:?} -> {:?}",
                crate::text::dose_label(a.dose),
                a.view,
                a.reason,
                b.reason
            );
        }
        for f in &self.other_fields {
            let _ = writeln!(s, "~ {}: {} -> {}", f.field, short(&f.a), short(&f.b));
        }
        let findings = self.jobs_added.len()
            + self.jobs_removed.len()
            + self.jobs_changed.len()
            + self.skips_added.len()
            + self.skips_removed.len()
            + self.skips_changed.len()
            + self.other_fields.len();
        for note in &self.notes {
            let _ = writeln!(s, "note: {note}");
        }
        if self.equal {
            let _ = writeln!(s, "runs are equal within tolerance {:e}", self.tolerance);
        } else {
            let _ = writeln!(
                s,
                "runs differ: {findings} finding(s) (tolerance {:e})",
                self.tolerance
            );
        }
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
    use serde_json::json;

    fn run(root: &str, loss: f64) -> Value {
        json!({"timestamp": "t1", "artifact_root": root, "phase_c_root": "c", "phase_d_root": "d",
            "jobs": [{"dose": 1000.0, "view": "dense", "gridsize": 2, "log_path": format!("{root}/dose_1000/dense/gs2/train.log"),
                      "result": {"status": "success", "final_loss": loss, "bundle_sha256": "ab"}}],
            "skipped_views": [{"dose": 1000.0, "view": "sparse", "reason": "r"}], "skipped_count": 1})
    }

    /// Two real-trainer runs of the same job: other bundle bytes, metrics within tolerance.
    fn pinn_run(sha: &str, size: u64, ssim: f64) -> Value {
        json!({"jobs": [{"dose": 1e3, "view": "baseline", "gridsize": 1, "result": {
            "status": "success", "backend": "tensorflow", "bundle_sha256": sha,
            "bundle_size_bytes": size, "metrics": {"test": {"phase": {"ssim": ssim}}}}}]})
    }

    #[test]
    fn pinn_jobs_compare_without_digests_and_say_so() {
        let d = diff_manifests(
            &pinn_run("aa", 1000, 0.50),
            &pinn_run("bb", 1000, 0.51),
            0.05,
        )
        .unwrap();
        assert!(d.equal, "{}", d.to_text());
        assert_eq!(
            d.to_text(),
            format!("note: {PINN_NOTE}\nruns are equal within tolerance 5e-2\n")
        );
        // Outside the tolerance, the metric is a finding; the digest still is not.
        let d = diff_manifests(
            &pinn_run("aa", 1000, 0.50),
            &pinn_run("bb", 1000, 0.9),
            0.05,
        )
        .unwrap();
        assert!(!d.equal);
        let fields: Vec<&str> = d.jobs_changed[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["result.metrics.test.phase.ssim"]);
        // Native bundles are byte-reproducible: their digests are compared.
        let mut a = pinn_run("aa", 1000, 0.5);
        let mut b = pinn_run("bb", 1000, 0.5);
        a["jobs"][0]["result"]["backend"] = json!("native");
        b["jobs"][0]["result"]["backend"] = json!("native");
        let d = diff_manifests(&a, &b, 0.05).unwrap();
        assert!(!d.equal && d.notes.is_empty());
    }

    #[test]
    fn identical_runs_in_different_folders_are_equal() {
        let d = diff_manifests(&run("/tmp/a", 0.5), &run("/tmp/b", 0.5), 1e-9).unwrap();
        assert!(d.equal, "{}", d.to_text());
        assert_eq!(d.to_text(), "runs are equal within tolerance 1e-9\n");
    }

    #[test]
    fn metric_change_inside_and_outside_tolerance() {
        let d = diff_manifests(&run("a", 0.5), &run("a", 0.5000001), 1e-6).unwrap();
        assert!(d.equal);
        let d = diff_manifests(&run("a", 0.5), &run("a", 0.6), 1e-6).unwrap();
        assert!(!d.equal);
        assert_eq!(d.jobs_changed[0].fields[0].field, "result.final_loss");
        assert!(d.to_text().contains("~ job dose=1e+03 view=dense gs2\n    result.final_loss: 0.5 -> 0.6 (Δ +1.000e-1, +20.00%)"), "{}", d.to_text());
    }

    #[test]
    fn streamed_roots_diff_as_the_parsed_manifests_do() {
        let dir = tempfile::tempdir().unwrap();
        let root = |name: &str, m: &Value| {
            let r = dir.path().join(name);
            std::fs::create_dir_all(&r).unwrap();
            std::fs::write(r.join(crate::manifest::MANIFEST_FILE), m.to_string()).unwrap();
            r
        };
        // Other roots, a changed loss, a job only in B, a skip only in A.
        let a = run("/x/a", 0.5);
        let mut b = run("/y/b", 0.7);
        b["jobs"]
            .as_array_mut()
            .unwrap()
            .push(json!({"dose": 1e4, "view": "dense",
            "gridsize": 2, "result": {"status": "success"}}));
        b["skipped_views"] = json!([]);
        let streamed = diff_runs(&root("a", &a), &root("b", &b), 1e-9).unwrap();
        assert_eq!(streamed, diff_manifests(&a, &b, 1e-9).unwrap());
        assert_eq!(streamed.jobs_changed.len(), 1);
        assert_eq!(streamed.jobs_added.len(), 1);
        // No `jobs` array, a job listed twice, text after the manifest: refused, saying so.
        let mut no_jobs = a.clone();
        no_jobs["jobs"] = json!("none");
        let err = diff_runs(&root("nojobs", &no_jobs), &root("a", &a), 1e-9).unwrap_err();
        assert!(
            err.to_string().contains("run A has no `jobs` array"),
            "{err}"
        );
        let mut twice = a.clone();
        let job = twice["jobs"][0].clone();
        twice["jobs"].as_array_mut().unwrap().push(job);
        let err = diff_runs(&root("a", &a), &root("twice", &twice), 1e-9).unwrap_err();
        assert!(
            err.to_string()
                .contains("run B lists job dose=1e+03 view=dense gs2 twice"),
            "{err}"
        );
        let trailing = dir.path().join("trailing");
        std::fs::create_dir_all(&trailing).unwrap();
        std::fs::write(
            trailing.join(crate::manifest::MANIFEST_FILE),
            format!("{a} {{}}"),
        )
        .unwrap();
        let err = diff_runs(&trailing, &root("a", &a), 1e-9).unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }

    #[test]
    fn added_jobs_and_removed_skips() {
        let a = run("a", 0.5);
        let mut b = run("a", 0.5);
        b["jobs"].as_array_mut().unwrap().push(json!({"dose": 1000.0, "view": "sparse", "gridsize": 2, "result": {"status": "success"}}));
        b["skipped_views"] = json!([]);
        let d = diff_manifests(&a, &b, 1e-9).unwrap();
        assert_eq!(d.jobs_added.len(), 1);
        assert_eq!(d.skips_removed.len(), 1);
        let text = d.to_text();
        assert!(text.contains("+ job dose=1e+03 view=sparse gs2 (only in B)"));
        assert!(text.contains("- skip dose=1e+03 view=sparse: r"));
        assert!(
            text.ends_with("runs differ: 2 finding(s) (tolerance 1e-9)\n"),
            "{text}"
        );
    }
}
