//! `cargo xtask fuzz --target artifacts`: mutates one file of a finished study folder per case
//! and runs `verify`, `report`, `diff` and `compare` on it in-process, through the reporting
//! library's functions that the commands call (routed as crates/cli/cmd_*.rs route them).
//!
//! golden/ holds the baseline's reports and manifests but no complete root (no results,
//! bundles or Phase C/D data), so each run makes one: [`STUDY`] with two replicates of two
//! methods, by the `dose-overlap` binary, into `<work>/seed/root`. Per case, `<work>/case/`
//! holds `root/` (a fresh copy, one file mutated), `out/` (compare's output) and `outside/`
//! (link targets, and the absolute paths written into values). A case is a finding when a
//! command panics, a command peaks above [`super::MAX_CASE_BYTES`], the four take more than
//! [`super::MAX_CASE_TIME`] of CPU (or [`WALL_LIMIT`] of wall time), or anything under
//! `<work>` other than `case/root` and `case/out` changed (the pristine twin, `outside/`, the
//! folders themselves). Errors are expected.

use super::mutate::Rng;
use super::mutate_artifact::{self, Mutation};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The study mutated: small (each case copies it and reports on it), with a skipped view (a
/// skip summary with an entry), two methods (a comparison) and two replicates (the aggregate).
pub const STUDY: &str = r#"name = "fuzz"
preset = "tiny"
dose_list = [1000.0]
gridsizes = [1, 2]
neighbor_count = 7
patch_size_pixels = 32
overlap_views = { dense = 0.7, sparse = 0.2 }
train_test_split_axis = "y"

[rng_seeds]
simulation = 42
grouping = 123
subsampling = 456

[simulation]
n_positions = 100
object_size = 96
compress = false
probe_diameter = 0.6
object_phase_range = 3.0

[solver]
algorithm = "rpie"
epochs = 2
"#;

/// The methods of [`STUDY`], as folders of each replicate's `artifacts/`.
const METHODS: [&str; 2] = ["native-rpie", "native-epie"];

/// The folders one case's commands are given.
pub struct CaseDirs {
    /// The folder given to verify, report and diff (the study, a replicate, an artifact root
    /// or a comparison folder of the mutated root).
    pub dir: PathBuf,
    /// The same folder of the pristine root, diff's other side.
    pub twin: PathBuf,
    /// The artifact roots of one replicate, given to compare.
    pub roots: Vec<PathBuf>,
    /// compare's output folder.
    pub out: PathBuf,
}

/// A command run on each case; an `Err` is the expected answer to most mutations.
pub type Command = fn(&CaseDirs) -> anyhow::Result<()>;

/// The commands run on each case, in order, through the reporting library.
pub const COMMANDS: [(&str, Command); 4] = [
    ("verify", |c| verify(&c.dir)),
    ("report", |c| report(&c.dir, None)),
    ("diff", |c| diff(&c.dir, &c.twin)),
    ("compare", |c| compare(&c.roots, &c.out)),
];

/// Wall time a case's commands may take (a blocked read uses no CPU time).
const WALL_LIMIT: Duration = Duration::from_secs(10);

/// A case running longer than this is a hang: the watchdog ends the process (a blocked read
/// cannot be interrupted from another thread).
const HANG: Duration = Duration::from_secs(20);

/// The finished study, made once per run.
pub struct Fixture {
    /// `<work>`: everything of the run is below it.
    pub work: PathBuf,
    /// Every non-empty regular file of the root, relative to it, and whether it is JSON.
    pub files: Vec<(PathBuf, bool)>,
}

impl Fixture {
    /// The pristine root (the twin `diff` compares with).
    pub fn seed_root(&self) -> PathBuf {
        self.work.join("seed/root")
    }
    fn case_dir(&self) -> PathBuf {
        self.work.join("case")
    }
}

/// Runs [`STUDY`] with `binary` into `<work>/seed/root` (`work` is emptied first).
pub fn build_fixture(binary: &Path, work: &Path) -> anyhow::Result<Fixture> {
    if work.exists() {
        std::fs::remove_dir_all(work).with_context(|| format!("clearing {}", work.display()))?;
    }
    let seed = work.join("seed");
    std::fs::create_dir_all(&seed).with_context(|| format!("creating {}", seed.display()))?;
    std::fs::write(seed.join("fuzz.toml"), STUDY).context("writing the fuzz study")?;
    let output = std::process::Command::new(binary)
        .args([
            "--quiet",
            "study",
            "--design",
            "fuzz.toml",
            "--replicates",
            "2",
            "--backends",
            "native:rpie,native:epie",
            "-j",
            "1",
            "--out",
            "root",
        ])
        .current_dir(&seed)
        .env("SOURCE_DATE_EPOCH", "1762245266")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "the fuzz study did not run ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let root = seed.join("root");
    let mut files = Vec::new();
    for path in walk(&root)? {
        let meta = std::fs::symlink_metadata(&path)?;
        // Empty files (locks) have nothing to cut or flip.
        if !meta.is_file() || meta.len() == 0 {
            continue;
        }
        let rel = path.strip_prefix(&root)?.to_path_buf();
        let is_json = rel.extension().is_some_and(|e| e == "json")
            && std::fs::read(&path)
                .is_ok_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok());
        files.push((rel, is_json));
    }
    Ok(Fixture {
        work: work.to_path_buf(),
        files,
    })
}

/// Every path below `dir` (not following links), sorted.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let is_dir = entry.file_type()?.is_dir();
        out.push(path.clone());
        if is_dir {
            out.extend(walk(&path)?);
        }
    }
    Ok(out)
}

/// What is on disk under `work`, except the case's root and output folder: each path's type,
/// length, modification time and link target. Any change after the commands ran is a write
/// outside the folders they were given.
fn snapshot(work: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![work.to_path_buf()];
    // The folder above too (only its entries): a path climbing out of `work` lands there.
    if let Some(parent) = work.parent() {
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            out.insert(entry.path(), describe(&entry.path()));
        }
    }
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.insert(path.clone(), describe(&path));
        }
    }
    out
}

fn describe(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) => format!(
            "{:?} {} {}.{} {:?}",
            m.file_type(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            std::fs::read_link(path).ok()
        ),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Paths added, removed or changed between two snapshots.
fn changes(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {}", path.display())),
            Some(now) if now != was => out.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("created {}", path.display()));
    }
    out
}

/// Prepares case `case` under `seed`: a fresh copy of the root with one file mutated.
pub fn prepare_case(fixture: &Fixture, seed: u64, case: u64) -> anyhow::Result<Mutation> {
    let dir = fixture.case_dir();
    if std::fs::symlink_metadata(&dir).is_ok() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let (root, outside) = (dir.join("root"), dir.join("outside"));
    std::fs::create_dir_all(dir.join("out"))?;
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("victim.json"), b"{}\n")?;
    // Hard links: a copy of 8 MB per case took most of a case's time on a busy disk. The
    // commands replace what they write (temporary file, then rename), so they cannot change
    // the pristine root through a link; one that wrote a file in place would show as a
    // change of the twin, a finding.
    mutate_artifact::copy_tree(&fixture.seed_root(), &root, true)
        .with_context(|| format!("copying the root into {}", root.display()))?;
    let mut rng = Rng::new(seed, case);
    let (file, kind) = mutate_artifact::pick(&fixture.files, &mut rng);
    mutate_artifact::unshare(&root.join(&file))?;
    mutate_artifact::apply(&root, &outside, &file, kind, &mut rng)
        .with_context(|| format!("mutating {} ({})", file.display(), kind.name()))
}

/// The folders a case's commands are given: the study (replicated), the replicate holding the
/// mutated file, and the artifact root or comparison folder holding it, innermost last.
fn levels(file: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::new()];
    let parts: Vec<_> = file.components().collect();
    if parts.len() > 1
        && parts[0]
            .as_os_str()
            .to_string_lossy()
            .starts_with("replicate_0")
    {
        let replicate = PathBuf::from(parts[0].as_os_str());
        out.push(replicate.clone());
        let second = parts[1].as_os_str().to_string_lossy();
        if second == "artifacts" && parts.len() > 3 {
            out.push(replicate.join("artifacts").join(parts[2].as_os_str()));
        } else if second == "comparison" && parts.len() > 2 {
            out.push(replicate.join("comparison"));
        }
    }
    out
}

/// `dose-overlap verify DIR` (cmd_verify.rs).
fn verify(dir: &Path) -> anyhow::Result<()> {
    let found = reporting::verify::verify(dir, 2)?;
    std::hint::black_box(found.problems.len());
    Ok(())
}

/// `dose-overlap report DIR [--out OUT]` (cmd_report.rs: `execute`).
fn report(dir: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    use reporting::review::{FolderKind, folder_kind, folder_methods};
    let map = reporting::map::MapSettings::default();
    match folder_kind(dir) {
        Some(FolderKind::Study) if !reporting::replicates::replicate_dirs(dir).is_empty() => {
            let study = reporting::replicates::read_study(dir).map_err(anyhow::Error::msg)?;
            for (_, rdir) in reporting::replicates::replicate_dirs(dir) {
                let name = rdir.file_name().map(PathBuf::from).unwrap_or_default();
                report(&rdir, out.map(|o| o.join(&name)).as_deref())?;
            }
            let replicates =
                reporting::replicates::read_replicates(dir).map_err(anyhow::Error::msg)?;
            let out = out
                .unwrap_or(dir)
                .join(reporting::replicates::REPLICATES_DIR);
            reporting::replicates::write(&replicates, &study.name, study.replicates, &map, &out)?;
        }
        Some(FolderKind::Study) => {
            let methods = folder_methods(dir, FolderKind::Study)?;
            let base = out.map_or_else(|| dir.join("report"), Path::to_path_buf);
            for m in &methods {
                let o = if methods.len() > 1 {
                    base.join(reporting::compare::slug(&m.name))
                } else {
                    base.clone()
                };
                reporting::report::write_report_with(&m.root, &o, &map)?;
            }
            let comparison = out.map_or_else(|| dir.join("comparison"), |o| o.join("comparison"));
            reporting::compare::compare_with(&methods, &comparison, &map)?;
        }
        Some(FolderKind::Comparison) => {
            let methods = folder_methods(dir, FolderKind::Comparison)?;
            reporting::compare::compare_with(&methods, out.unwrap_or(dir), &map)?;
        }
        _ => {
            let out = out.map_or_else(|| dir.join("report"), Path::to_path_buf);
            reporting::report::write_report_with(dir, &out, &map)?;
        }
    }
    Ok(())
}

/// `dose-overlap diff A B --json` and without (cmd_diff.rs), tolerance 1e-6.
fn diff(a: &Path, b: &Path) -> anyhow::Result<()> {
    use reporting::review::{FolderKind, folder_kind};
    let tolerance = 1e-6;
    let texts = match (folder_kind(a), folder_kind(b)) {
        (Some(ka @ (FolderKind::Study | FolderKind::Comparison)), Some(kb))
        | (Some(ka), Some(kb @ (FolderKind::Study | FolderKind::Comparison))) => {
            if ka == FolderKind::ArtifactRoot || kb == FolderKind::ArtifactRoot {
                bail!("not of one kind");
            }
            let replicated = |d: &Path| !reporting::replicates::replicate_dirs(d).is_empty();
            if ka == FolderKind::Study
                && kb == FolderKind::Study
                && (replicated(a) || replicated(b))
            {
                let d = reporting::review::diff_replicated(a, b, tolerance)?;
                (d.to_text(), d.to_json())
            } else {
                let d = reporting::review::diff_folders(a, ka, b, kb, tolerance)?;
                (d.to_text(), d.to_json())
            }
        }
        _ => {
            let d = reporting::diff::diff_runs(a, b, tolerance)?;
            (d.to_text(), d.to_json())
        }
    };
    std::hint::black_box(texts);
    Ok(())
}

/// `dose-overlap compare ROOT... --out OUT` (cmd_compare.rs: `resolve`, `execute`).
fn compare(roots: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut methods = Vec::new();
    for root in roots {
        let manifest = reporting::report::read_checked_manifest(root)?;
        let name = reporting::compare::method_name(root, &manifest);
        methods.push(reporting::compare::MethodRoot {
            name,
            root: root.clone(),
        });
    }
    reporting::compare::compare_with(&methods, out, &reporting::map::MapSettings::default())?;
    Ok(())
}

/// What one command of one case did.
pub struct Ran {
    /// The panic's message, if it panicked.
    pub panic: Option<String>,
    /// Peak bytes allocated above what was live when it started.
    pub peak: usize,
    /// Wall time.
    pub took: Duration,
    /// CPU time of the process (all threads; 10 ms resolution).
    pub cpu: Duration,
}

/// User and system CPU time of this process, all threads (`/proc/self/stat`, in USER_HZ
/// ticks, 100 per second on Linux); zero where it cannot be read.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces and parentheses): state is the
    // first, utime the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `command` under the measurements of the fuzzer (panic caught, peak and time taken).
pub fn measured(command: impl FnOnce() -> anyhow::Result<()>) -> Ran {
    let base = super::alloc::reset_peak();
    let (start, cpu_start) = (Instant::now(), cpu_time());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(command));
    let took = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_start);
    let peak = super::alloc::peak().saturating_sub(base);
    let panic = result.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    Ran {
        panic,
        peak,
        took,
        cpu,
    }
}

/// One finding of the artifacts target.
#[derive(Debug, Clone)]
pub struct Finding {
    /// `panic`, `memory`, `time` or `escape`.
    pub kind: &'static str,
    /// The case number (with the run's seed, it reproduces the case).
    pub case: u64,
    /// What the case mutated.
    pub mutation: Mutation,
    /// What went wrong, naming the command.
    pub detail: String,
}

/// Judges one case's commands: the findings among `ran` (command name, measurements) under
/// `time_limit` for them all, and a write outside (`escaped`: what changed).
pub fn judge(
    case: u64,
    mutation: &Mutation,
    ran: &[(&'static str, Ran)],
    escaped: &[String],
    time_limit: Duration,
) -> Vec<Finding> {
    let finding = |kind, detail| Finding {
        kind,
        case,
        mutation: mutation.clone(),
        detail,
    };
    let mut out = Vec::new();
    for (name, r) in ran {
        if let Some(message) = &r.panic {
            out.push(finding("panic", format!("{name} panicked: {message}")));
        }
        if r.peak > super::MAX_CASE_BYTES {
            out.push(finding(
                "memory",
                format!(
                    "{name} allocated {} bytes at its peak (limit {})",
                    r.peak,
                    super::MAX_CASE_BYTES
                ),
            ));
        }
    }
    // CPU time, not wall time: on a shared machine (load 14 on 2 cores while this was
    // written) wall time flagged 0.8 s reports; a command blocked on a read uses no CPU and
    // is caught by the wall limit (and, past HANG, by the watchdog).
    let cpu: Duration = ran.iter().map(|(_, r)| r.cpu).sum();
    let wall: Duration = ran.iter().map(|(_, r)| r.took).sum();
    if cpu > time_limit || wall > WALL_LIMIT {
        let each: Vec<String> = ran
            .iter()
            .map(|(n, r)| {
                format!(
                    "{n} {:.0} ms CPU, {:.0} ms wall",
                    r.cpu.as_secs_f64() * 1e3,
                    r.took.as_secs_f64() * 1e3
                )
            })
            .collect();
        out.push(finding(
            "time",
            format!(
                "the commands took {cpu:?} of CPU (limit {time_limit:?}), {wall:?} of wall time \
                 (limit {WALL_LIMIT:?}): {}",
                each.join(", ")
            ),
        ));
    }
    if !escaped.is_empty() {
        out.push(finding(
            "escape",
            format!(
                "written outside the case's root and output folder: {}",
                escaped
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    out
}

/// What a run of the artifacts target did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Cases run.
    pub cases: u64,
    /// Cases run per command (every case runs them all, unless the mutation failed).
    pub per_command: Vec<(&'static str, u64)>,
    /// Cases per mutation kind.
    pub per_kind: BTreeMap<&'static str, u64>,
    /// Cases the mutator could not apply (the harness's problem, not the product's).
    pub skipped: u64,
    /// Largest peak of one command, and most CPU time of one case.
    pub worst: (usize, Duration),
    /// CPU time of all cases' commands together (what the cases cost on an idle machine).
    pub cpu: Duration,
    /// The findings.
    pub findings: Vec<Finding>,
}

/// The case running now, for the watchdog: its number and start (ms since `EPOCH`), 0 when
/// none runs.
static RUNNING: AtomicU64 = AtomicU64::new(0);
static CASE: AtomicU64 = AtomicU64::new(0);

fn watchdog(epoch: Instant, seed: u64) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let since = RUNNING.load(Ordering::Relaxed);
                let now = epoch.elapsed().as_millis() as u64;
                if since != 0 && now.saturating_sub(since) > HANG.as_millis() as u64 {
                    let case = CASE.load(Ordering::Relaxed);
                    eprintln!(
                        "finding hang: artifacts case {case} ran over {HANG:?} (a blocked read?); \
                         reproduce with `cargo xtask fuzz --target artifacts --seed {seed} --case \
                         {case}`; the case is in target/fuzz/current-artifact.txt"
                    );
                    std::process::exit(1);
                }
            }
        });
    });
}

/// What to run: which cases, until when, with which commands and limits.
pub struct Campaign<'a> {
    /// The run's seed; each case's stream derives from it and the case number.
    pub seed: u64,
    /// The case numbers to run.
    pub cases: std::ops::Range<u64>,
    /// Stop starting cases at this instant.
    pub deadline: Option<Instant>,
    /// Where to write the case being run (so that a hang or an abort leaves it behind).
    pub current: Option<&'a Path>,
    /// The commands ([`COMMANDS`]; tests plant a bug in one).
    pub commands: &'a [(&'static str, Command)],
    /// The time a case's commands may take together.
    pub time_limit: Duration,
}

/// Runs the campaign's cases on `fixture`.
pub fn run_cases(fixture: &Fixture, campaign: &Campaign) -> anyhow::Result<Summary> {
    let seed = campaign.seed;
    let epoch = Instant::now() - Duration::from_millis(1);
    watchdog(epoch, seed);
    let mut summary = Summary {
        per_command: campaign.commands.iter().map(|(n, _)| (*n, 0)).collect(),
        ..Summary::default()
    };
    let case_dir = fixture.case_dir();
    let (root, out) = (case_dir.join("root"), case_dir.join("out"));
    let twin = fixture.seed_root();
    let skip = [root.clone(), out.clone()];
    for case in campaign.cases.clone() {
        if campaign.deadline.is_some_and(|d| Instant::now() >= d) || summary.findings.len() >= 50 {
            break;
        }
        let mutation = match prepare_case(fixture, seed, case) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("fuzz: artifacts case {case} skipped: {e:#}");
                summary.skipped += 1;
                continue;
            }
        };
        if let Some(current) = campaign.current {
            std::fs::write(
                current,
                format!(
                    "seed {seed} case {case}: {} {}: {}\n",
                    mutation.file.display(),
                    mutation.kind.name(),
                    mutation.detail.chars().take(2000).collect::<String>()
                ),
            )?;
        }
        let mut rng = Rng::new(seed ^ 0xA5A5, case);
        let mut levels = levels(&mutation.file);
        // A folder given on the command line may be a link (the user named it): a folder made
        // a link is given only as what is inside a folder the command is given.
        if let Some(linked) = mutation.linked_dir() {
            levels.retain(|l| linked.starts_with(l) && linked != *l);
        }
        // Half the cases are given the innermost folder holding the file (cheapest), the
        // others any folder holding it, the whole study included.
        let level = if rng.below(2) == 0 {
            levels.last().cloned().unwrap_or_default()
        } else {
            levels[rng.below(levels.len())].clone()
        };
        let replicate = levels
            .get(1)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(["replicate_01", "replicate_02"][rng.below(2)]));
        let dirs = CaseDirs {
            dir: root.join(&level),
            twin: twin.join(&level),
            roots: METHODS
                .iter()
                .map(|m| root.join(&replicate).join("artifacts").join(m))
                .collect(),
            out: out.join("comparison"),
        };
        let before = snapshot(&fixture.work, &skip);
        CASE.store(case, Ordering::Relaxed);
        RUNNING.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let ran: Vec<(&'static str, Ran)> = campaign
            .commands
            .iter()
            .map(|(name, command)| (*name, measured(|| command(&dirs))))
            .collect();
        RUNNING.store(0, Ordering::Relaxed);
        let escaped = changes(&before, &snapshot(&fixture.work, &skip));
        summary.cases += 1;
        for (_, count) in &mut summary.per_command {
            *count += 1;
        }
        *summary.per_kind.entry(mutation.kind.name()).or_default() += 1;
        let total: Duration = ran.iter().map(|(_, r)| r.cpu).sum();
        let peak = ran.iter().map(|(_, r)| r.peak).max().unwrap_or(0);
        summary.worst = (summary.worst.0.max(peak), summary.worst.1.max(total));
        summary.cpu += total;
        summary
            .findings
            .extend(judge(case, &mutation, &ran, &escaped, campaign.time_limit));
    }
    Ok(summary)
}

/// Writes each finding's reproducer under `dir`: `artifacts-<kind>-case<N>/` with
/// `finding.txt` (seed, case, mutation, what went wrong, the command that replays it) and
/// `root/`, the mutated root as the commands got it.
pub fn write_findings(
    fixture: &Fixture,
    seed: u64,
    findings: &[Finding],
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in findings {
        let out = dir.join(format!("artifacts-{}-seed{seed}-case{}", f.kind, f.case));
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        std::fs::create_dir_all(&out)?;
        std::fs::write(
            out.join("finding.txt"),
            format!(
                "{}\nseed {seed} case {}: {} {}: {}\nreplay: cargo xtask fuzz --target artifacts \
                 --seed {seed} --case {}\n",
                f.detail,
                f.case,
                f.mutation.file.display(),
                f.mutation.kind.name(),
                f.mutation.detail.chars().take(2000).collect::<String>(),
                f.case
            ),
        )?;
        // The case again (it is a function of the seed and the number), as it was before the
        // commands ran.
        prepare_case(fixture, seed, f.case)?;
        mutate_artifact::copy_tree(&fixture.case_dir().join("root"), &out.join("root"), false)?;
        written.push(out);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fuzz::unit_temp as temp;

    fn kinds(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.kind).collect()
    }

    /// A command that panics, peaks too high or runs too long is a finding; one that returns
    /// an error is not.
    #[test]
    fn panics_memory_and_time_are_findings_errors_are_not() {
        let m = Mutation {
            file: PathBuf::from("training_manifest.json"),
            kind: mutate_artifact::Kind::Empty,
            detail: "emptied".to_string(),
        };
        let limit = Duration::from_secs(1);
        let ran = vec![
            ("verify", measured(|| bail!("refused, as it should"))),
            ("report", measured(|| Ok(()))),
        ];
        assert!(judge(0, &m, &ran, &[], limit).is_empty());
        let ran = vec![
            ("verify", measured(|| bail!("refused"))),
            ("report", measured(|| panic!("planted"))),
        ];
        let found = judge(3, &m, &ran, &[], limit);
        assert_eq!(kinds(&found), ["panic"]);
        assert!(found[0].detail.contains("report panicked: planted"));
        assert_eq!(found[0].case, 3);
        let ran = |peak, cpu, wall| Ran {
            panic: None,
            peak,
            took: Duration::from_millis(wall),
            cpu: Duration::from_millis(cpu),
        };
        let big = super::super::MAX_CASE_BYTES + 1;
        assert_eq!(
            kinds(&judge(0, &m, &[("diff", ran(big, 10, 10))], &[], limit)),
            ["memory"]
        );
        assert_eq!(
            kinds(&judge(0, &m, &[("diff", ran(0, 1500, 1600))], &[], limit)),
            ["time"]
        );
        // Blocked (no CPU) past the wall limit.
        assert_eq!(
            kinds(&judge(0, &m, &[("diff", ran(0, 0, 11_000))], &[], limit)),
            ["time"]
        );
        // Busy only because the machine is: not a finding.
        assert!(judge(0, &m, &[("diff", ran(0, 300, 3000))], &[], limit).is_empty());
        let escaped = ["created /x".to_string()];
        assert_eq!(kinds(&judge(0, &m, &[], &escaped, limit)), ["escape"]);
    }

    /// A write anywhere under the work folder but the case's root and output folder shows in
    /// the snapshots: in the twin, beside the root, in `outside/`, above the work folder.
    #[test]
    fn writes_outside_the_root_show_in_the_snapshot() {
        let dir = temp("snapshot");
        let work = dir.join("work");
        let (root, out) = (work.join("case/root"), work.join("case/out"));
        for d in [
            &root,
            &out,
            &work.join("case/outside"),
            &work.join("seed/root"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(work.join("seed/root/study.json"), b"{}").unwrap();
        let skip = [root.clone(), out.clone()];
        let before = snapshot(&work, &skip);
        std::fs::write(root.join("report.md"), b"inside").unwrap();
        std::fs::create_dir_all(out.join("comparison")).unwrap();
        assert_eq!(
            changes(&before, &snapshot(&work, &skip)),
            Vec::<String>::new()
        );
        for (i, outside) in [
            work.join("seed/root/new.json"),
            work.join("case/outside/victim.json"),
            work.join("case/root.md"),
            dir.join("above.md"),
        ]
        .iter()
        .enumerate()
        {
            let before = snapshot(&work, &skip);
            std::fs::write(outside, format!("{i}")).unwrap();
            let found = changes(&before, &snapshot(&work, &skip));
            assert!(
                found
                    .iter()
                    .any(|c| c.contains(&*outside.to_string_lossy())),
                "{} not seen: {found:?}",
                outside.display()
            );
        }
        // A rewrite of a file in the twin, same length, is seen too (its time changes).
        std::thread::sleep(Duration::from_millis(20));
        let before = snapshot(&work, &skip);
        std::fs::write(work.join("seed/root/study.json"), b"[]").unwrap();
        assert_eq!(changes(&before, &snapshot(&work, &skip)).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The folders given to the commands hold the mutated file, and never pass through a folder
    /// made a link.
    #[test]
    fn levels_hold_the_file() {
        let f = Path::new("replicate_02/artifacts/native-epie/dose_1000/dense/gs2/result.json");
        assert_eq!(
            levels(f),
            [
                PathBuf::new(),
                PathBuf::from("replicate_02"),
                PathBuf::from("replicate_02/artifacts/native-epie")
            ]
        );
        assert_eq!(
            levels(Path::new(
                "replicate_01/comparison/comparison_manifest.json"
            )),
            [
                PathBuf::new(),
                PathBuf::from("replicate_01"),
                PathBuf::from("replicate_01/comparison")
            ]
        );
        assert_eq!(levels(Path::new("study.json")), [PathBuf::new()]);
        assert_eq!(levels(Path::new("replicates/summary.md")), [PathBuf::new()]);
    }
}
