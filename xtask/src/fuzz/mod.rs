//! `cargo xtask fuzz [--target all|inputs|artifacts] --seconds N [--seed S]`: an in-process,
//! seeded, time-bounded fuzzer. `inputs`: the NPZ reader, `validate` (full and header-only) and
//! the study-file loader; `artifacts`: `verify`, `report`, `diff` and `compare` on a study
//! folder with one file mutated (see `artifacts`). `all` (the default) gives `artifacts` a third
//! of the seconds and `inputs` the rest.
//!
//! Each `inputs` case is a mutant of a committed seed file (tests/fixtures/npz-corpus, tests/fixtures/npz,
//! golden/baseline/study.toml, the presets). A case is a finding when it panics, allocates more
//! than [`MAX_CASE_BYTES`] at its peak (the counting allocator of `alloc`), or takes longer than
//! [`MAX_CASE_TIME`]; and, at the end, when a file `validate` called valid does not load in
//! NumPy (tests/fixtures/npz-corpus/numpy_reads.py; skipped with a message without NumPy).
//! Findings are written to target/fuzz/findings/; commit each under
//! tests/fixtures/fuzz-regressions/, where `tests/it/hostile.rs` replays them all and this
//! task replays them first. The case being run is on disk (target/fuzz/current.*) so that
//! even an abort leaves it behind.

pub mod alloc;
pub mod artifacts;
mod mutate;
mod mutate_artifact;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mutate::Rng;

/// Peak memory a case may take (the target for any NPZ of at most 1 MiB).
pub const MAX_CASE_BYTES: usize = 64 << 20;

/// Time a case may take (judging an NPZ, or accepting or refusing a study file).
pub const MAX_CASE_TIME: Duration = Duration::from_secs(1);

/// Valid mutants kept for the NumPy check at the end.
const MAX_VALID_KEPT: usize = 400;

/// What `cargo xtask fuzz` fuzzes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Both, the seconds shared.
    All,
    /// NPZ files and study files.
    Inputs,
    /// Artifact roots given to verify, report, diff and compare.
    Artifacts,
}

/// Options of `cargo xtask fuzz`.
#[derive(Debug)]
pub struct Options {
    /// What to fuzz.
    pub target: Target,
    /// How long to fuzz, all targets together.
    pub seconds: u64,
    /// The first case's seed (each case's seed derives from it and its number).
    pub seed: u64,
    /// Only this case of the artifacts target (a finding's replay).
    pub case: Option<u64>,
    /// The `dose-overlap` binary that makes the artifacts target's study (default: the debug
    /// build, built if needed).
    pub binary: Option<PathBuf>,
}

impl Options {
    /// Parses `--target T`, `--seconds N`, `--seed S`, `--case N` and `--binary PATH`.
    pub fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            target: Target::All,
            seconds: 60,
            seed: 13,
            case: None,
            binary: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut text = |name: &str| -> anyhow::Result<String> {
                it.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))
            };
            let number = |name: &str, text: String| -> anyhow::Result<u64> {
                text.parse()
                    .with_context(|| format!("{name} takes a whole number"))
            };
            match arg.as_str() {
                "--seconds" => options.seconds = number(arg, text(arg)?)?,
                "--seed" => options.seed = number(arg, text(arg)?)?,
                "--case" => options.case = Some(number(arg, text(arg)?)?),
                "--binary" => options.binary = Some(PathBuf::from(text(arg)?)),
                "--target" => {
                    options.target = match text(arg)?.as_str() {
                        "all" => Target::All,
                        "inputs" => Target::Inputs,
                        "artifacts" => Target::Artifacts,
                        other => bail!(
                            "unknown fuzz target `{other}` (all, inputs or artifacts)\n{}",
                            crate::USAGE
                        ),
                    }
                }
                other => bail!("unknown fuzz option `{other}`\n{}", crate::USAGE),
            }
        }
        if options.case.is_some() && options.target != Target::Artifacts {
            bail!("--case replays one case of --target artifacts");
        }
        Ok(options)
    }
}

/// What one case did wrong.
#[derive(Debug)]
struct Finding {
    kind: &'static str,
    detail: String,
    ext: &'static str,
    input: Vec<u8>,
}

/// The worst case seen: peak bytes and time.
static WORST: std::sync::Mutex<(usize, Duration)> = std::sync::Mutex::new((0, Duration::ZERO));

/// Runs one case under the measurements; `Some` when it is a finding.
fn measure(what: &str, ext: &'static str, input: &[u8], run: impl FnOnce()) -> Option<Finding> {
    let base = alloc::reset_peak();
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let took = start.elapsed();
    let peak = alloc::peak().saturating_sub(base);
    if let Ok(mut worst) = WORST.lock() {
        *worst = (worst.0.max(peak), worst.1.max(took));
    }
    let finding = |kind, detail| {
        Some(Finding {
            kind,
            detail,
            ext,
            input: input.to_vec(),
        })
    };
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        return finding("panic", format!("{what} panicked: {message}"));
    }
    if peak > MAX_CASE_BYTES {
        return finding(
            "memory",
            format!("{what} allocated {peak} bytes at its peak (limit {MAX_CASE_BYTES})"),
        );
    }
    if took > MAX_CASE_TIME {
        return finding(
            "time",
            format!("{what} took {took:?} (limit {MAX_CASE_TIME:?})"),
        );
    }
    None
}

/// Everything the toolkit does with an NPZ it is given: open, read every member as what it
/// claims to be, validate fully and header-only. Returns whether `validate` called it valid.
pub fn exercise_npz(path: &Path) -> bool {
    use npz_contract::{DtypeKind, NpzReader, ValidateOptions, validate};
    if let Ok(mut reader) = NpzReader::open(path) {
        for m in reader.members().to_vec() {
            let _ = match m.dtype.kind {
                DtypeKind::Float => reader.read::<f64>(&m.key).map(drop),
                DtypeKind::Complex => reader.read::<num_complex::Complex<f64>>(&m.key).map(drop),
                DtypeKind::Int | DtypeKind::UInt | DtypeKind::Bool => {
                    reader.read::<i64>(&m.key).map(drop)
                }
                DtypeKind::Unicode if m.shape.is_empty() => reader.read_string(&m.key).map(drop),
                DtypeKind::Unicode => reader.read_strings(&m.key).map(drop),
                _ => reader.verify(&m.key),
            };
        }
    }
    let header = validate(
        path,
        &ValidateOptions {
            header_only: true,
            ..ValidateOptions::default()
        },
    );
    let full = validate(path, &ValidateOptions::default());
    // A file valid in full is valid on its headers (header checks are a subset).
    assert!(
        !full.valid || header.valid,
        "valid in full but invalid on headers: {:?}",
        header.errors
    );
    full.valid
}

/// Everything the toolkit does with a study file: parse, validate, estimate.
pub fn exercise_study(text: &str, json: bool) {
    if let Ok(study) = study_design::Study::parse(text, json, Path::new("fuzz.toml")) {
        let problems = study.validate();
        let _ = study.estimate(None, study_design::SceneSize::default());
        if problems.is_empty() {
            let _ = study.to_study_json();
            let _ = study.design.to_json();
        }
    }
}

/// The seeds: every committed NPZ fixture of at most 1 MiB, and the study files.
/// Study seeds: text, and whether it is JSON.
type StudySeeds = Vec<(String, bool)>;

fn seeds(root: &Path) -> anyhow::Result<(Vec<Vec<u8>>, StudySeeds)> {
    let mut npz = Vec::new();
    for dir in ["tests/fixtures/npz-corpus", "tests/fixtures/npz"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .with_context(|| format!("listing {dir}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "npz"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            if !bytes.is_empty() && bytes.len() <= 1 << 20 {
                npz.push(bytes);
            }
        }
    }
    let mut studies = vec![
        (
            std::fs::read_to_string(root.join("golden/baseline/study.toml"))
                .context("reading golden/baseline/study.toml")?,
            false,
        ),
        (study_design::Study::default().to_study_json(), true),
        ("preset = 'tiny'\n".to_string(), false),
    ];
    if let Some(tiny) = study_design::Study::preset("tiny") {
        studies.push((tiny.to_study_json(), true));
    }
    Ok((npz, studies))
}

/// Replays the committed regressions (tests/fixtures/fuzz-regressions); each must pass now.
fn replay(root: &Path, work: &Path) -> anyhow::Result<(usize, Vec<Finding>)> {
    let dir = root.join("tests/fixtures/fuzz-regressions");
    let mut findings = Vec::new();
    let mut replayed = 0;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok((0, findings));
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let bytes = std::fs::read(&p)?;
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let found = match p.extension().and_then(|e| e.to_str()) {
            Some("npz") => {
                let case = work.join("current.npz");
                std::fs::write(&case, &bytes)?;
                measure(&name, "npz", &bytes, || {
                    exercise_npz(&case);
                })
            }
            Some(ext @ ("toml" | "json")) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                measure(&name, "toml", &bytes, || {
                    exercise_study(&text, ext == "json")
                })
            }
            _ => continue,
        };
        replayed += 1;
        findings.extend(found);
    }
    Ok((replayed, findings))
}

/// Runs the fuzzer; exit 0 when nothing was found, 1 otherwise.
pub fn run(options: Options) -> anyhow::Result<u8> {
    let root = crate::project_root();
    let work = root.join("target/fuzz");
    let findings_dir = work.join("findings");
    std::fs::create_dir_all(&findings_dir).context("creating target/fuzz/findings")?;
    // Quiet panics: they are findings, reported below.
    std::panic::set_hook(Box::new(|_| {}));
    // The counting allocator must be the global one (the xtask binary installs it).
    alloc::reset_peak();
    drop(std::hint::black_box(vec![0u8; 1 << 16]));
    let counting = alloc::peak() >= 1 << 16;
    if !counting {
        eprintln!("warning: the counting allocator is not installed; memory is not checked");
    }
    // Artifacts cases are costlier and fewer kinds of input: a third of the time.
    let (inputs_s, artifacts_s) = match options.target {
        Target::All => (options.seconds - options.seconds / 3, options.seconds / 3),
        Target::Inputs => (options.seconds, 0),
        Target::Artifacts => (0, options.seconds),
    };
    let mut found = false;
    if options.target != Target::Artifacts {
        found |= inputs(&root, &work, options.seed, inputs_s, counting)?;
    }
    if options.target != Target::Inputs {
        found |= run_artifacts(&root, &work, &options, artifacts_s, counting)?;
    }
    Ok(u8::from(found))
}

/// The inputs target for `seconds`; whether it found anything.
fn inputs(
    root: &Path,
    work: &Path,
    seed: u64,
    seconds: u64,
    counting: bool,
) -> anyhow::Result<bool> {
    let findings_dir = work.join("findings");
    let valid_dir = work.join("valid");
    let _ = std::fs::remove_dir_all(&valid_dir);
    std::fs::create_dir_all(&valid_dir).context("creating target/fuzz/valid")?;
    let (npz_seeds, study_seeds) = seeds(root)?;
    let (replayed, mut findings) = replay(root, work)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let case_npz = work.join("current.npz");
    let (mut npz_cases, mut study_cases, mut valid_kept) = (0u64, 0u64, 0usize);
    let mut valid_paths = Vec::new();
    let mut case = 0u64;
    let mut mutator_panics = 0u64;
    while Instant::now() < deadline && findings.len() < 50 {
        let mut rng = Rng::new(seed, case);
        case += 1;
        // Three NPZ cases for every study case: NPZ judging is the costlier surface.
        if !case.is_multiple_of(4) {
            let seed = &npz_seeds[rng.below(npz_seeds.len())];
            // A panic in the mutator itself is the harness's bug, not the product's: skip
            // the case (counted), never end the run without a word.
            let Ok(input) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                mutate::npz(seed, &mut rng, &npz_seeds)
            })) else {
                mutator_panics += 1;
                continue;
            };
            std::fs::write(&case_npz, &input).context("writing target/fuzz/current.npz")?;
            let mut valid = false;
            let found = measure(&format!("NPZ case {case}"), "npz", &input, || {
                valid = exercise_npz(&case_npz);
            });
            npz_cases += 1;
            if found.is_none()
                && valid
                && valid_kept < MAX_VALID_KEPT
                && !npz_seeds.contains(&input)
            {
                let p = valid_dir.join(format!("case-{case}.npz"));
                std::fs::write(&p, &input)?;
                valid_paths.push(p);
                valid_kept += 1;
            }
            findings.extend(found);
        } else {
            let (seed, json) = &study_seeds[rng.below(study_seeds.len())];
            let Ok(text) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                mutate::study(seed, *json, &mut rng)
            })) else {
                mutator_panics += 1;
                continue;
            };
            std::fs::write(work.join("current.toml"), &text)?;
            let found = measure(
                &format!("study case {case}"),
                "toml",
                text.as_bytes(),
                || exercise_study(&text, *json),
            );
            study_cases += 1;
            findings.extend(found);
        }
    }
    let (worst_bytes, worst_time) = WORST.lock().map_or((0, Duration::ZERO), |w| *w);
    eprintln!(
        "fuzz: {npz_cases} NPZ cases, {study_cases} study cases in {} s (seed {}); {replayed} \
         committed regression(s) replayed; memory {}; worst case {:.1} MiB peak, {:?}",
        seconds,
        seed,
        if counting { "checked" } else { "NOT checked" },
        worst_bytes as f64 / f64::from(1u32 << 20),
        worst_time
    );
    if mutator_panics > 0 {
        eprintln!("fuzz: {mutator_panics} case(s) skipped: the mutator itself panicked");
    }
    findings.extend(numpy_check(root, &valid_paths)?);
    for f in &findings {
        let digest = crate::sha256_hex(&f.input);
        let name = format!("{}-{}.{}", f.kind, &digest[..16], f.ext);
        std::fs::write(findings_dir.join(&name), &f.input)?;
        eprintln!("finding {name}: {}", f.detail);
    }
    if findings.is_empty() {
        eprintln!("fuzz: no findings");
        Ok(false)
    } else {
        eprintln!(
            "fuzz: {} finding(s) in target/fuzz/findings/: fix them, then commit each under \
             tests/fixtures/fuzz-regressions/ (replayed by tests/it/hostile.rs and by this task)",
            findings.len()
        );
        Ok(true)
    }
}

/// The artifacts target for `seconds` (after making its study); whether it found anything.
fn run_artifacts(
    root: &Path,
    work: &Path,
    options: &Options,
    seconds: u64,
    counting: bool,
) -> anyhow::Result<bool> {
    let binary = match &options.binary {
        Some(b) => std::path::absolute(b).with_context(|| format!("resolving {}", b.display()))?,
        None => build_debug(root)?,
    };
    let started = Instant::now();
    let fixture = artifacts::build_fixture(&binary, &work.join("artifacts"))
        .context("making the artifacts target's study")?;
    eprintln!(
        "fuzz: artifacts: study of {} files made in {:.1} s by {}",
        fixture.files.len(),
        started.elapsed().as_secs_f64(),
        binary.display()
    );
    let seed = options.seed;
    let started = Instant::now();
    let summary = artifacts::run_cases(
        &fixture,
        &artifacts::Campaign {
            seed,
            cases: options.case.map_or(0..u64::MAX, |c| c..c + 1),
            deadline: options
                .case
                .is_none()
                .then(|| started + Duration::from_secs(seconds)),
            current: Some(&work.join("current-artifact.txt")),
            commands: &artifacts::COMMANDS,
            time_limit: MAX_CASE_TIME,
        },
    )?;
    let took = started.elapsed().as_secs_f64();
    let per_command: Vec<String> = summary
        .per_command
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    let per_kind: Vec<String> = summary
        .per_kind
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    eprintln!(
        "fuzz: artifacts: {} cases in {took:.1} s ({:.1}/s; commands {:.0} ms of CPU per case; \
         seed {seed}): {}; mutations: {}; memory {}; worst case {:.1} MiB peak, {:?} of CPU",
        summary.cases,
        summary.cases as f64 / took.max(1e-9),
        summary.cpu.as_secs_f64() * 1e3 / summary.cases.max(1) as f64,
        per_command.join(", "),
        per_kind.join(", "),
        if counting { "checked" } else { "NOT checked" },
        summary.worst.0 as f64 / f64::from(1u32 << 20),
        summary.worst.1
    );
    if summary.skipped > 0 {
        eprintln!(
            "fuzz: artifacts: {} case(s) skipped: the mutator could not apply them",
            summary.skipped
        );
    }
    let written =
        artifacts::write_findings(&fixture, seed, &summary.findings, &work.join("findings"))?;
    for (f, dir) in summary.findings.iter().zip(&written) {
        eprintln!(
            "finding {}: {} ({} {}: {})",
            dir.display(),
            f.detail,
            f.mutation.file.display(),
            f.mutation.kind.name(),
            f.mutation.detail.chars().take(200).collect::<String>()
        );
    }
    if summary.findings.is_empty() {
        eprintln!("fuzz: artifacts: no findings");
        Ok(false)
    } else {
        eprintln!(
            "fuzz: artifacts: {} finding(s) in target/fuzz/findings/ (each replays with `cargo \
             xtask fuzz --target artifacts --seed {seed} --case N`): fix them, with a regression \
             test built from the case's root",
            summary.findings.len()
        );
        Ok(true)
    }
}

/// Builds the debug `dose-overlap` (a no-op after `cargo test`) and returns its path.
fn build_debug(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("fuzz: artifacts: building the debug dose-overlap");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Not quiet: a wait for a lock held by another cargo shows.
    let status = std::process::Command::new(cargo)
        .args(["build", "--locked", "--bin", "dose-overlap"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --bin dose-overlap failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    Ok(target.join("debug/dose-overlap"))
}

/// Files `validate` called valid must load in NumPy (numpy_reads.py); skipped with a message
/// when python3 or numpy is missing.
fn numpy_check(root: &Path, valid: &[PathBuf]) -> anyhow::Result<Vec<Finding>> {
    if valid.is_empty() {
        return Ok(Vec::new());
    }
    let script = root.join("tests/fixtures/npz-corpus/numpy_reads.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(valid)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!(
                "fuzz: NumPy check SKIPPED (python3 with numpy needed: python3 -m pip install numpy): {other:?}"
            );
            return Ok(Vec::new());
        }
    };
    let mut findings = Vec::new();
    let text = String::from_utf8_lossy(&out.stdout);
    for (line, path) in text.lines().zip(valid) {
        let verdict: serde_json::Value = serde_json::from_str(line)?;
        if verdict["ok"] != serde_json::Value::Bool(true) {
            findings.push(Finding {
                kind: "numpy",
                detail: format!("valid, but numpy.load fails: {}", verdict["error"]),
                ext: "npz",
                input: std::fs::read(path)?,
            });
        }
    }
    eprintln!(
        "fuzz: {} valid mutant(s) checked with numpy.load, {} unreadable",
        valid.len(),
        findings.len()
    );
    Ok(findings)
}

/// A fresh folder for a unit test of the fuzz harness (its `name` and this process), not under
/// `target/fuzz`: a fuzz run beside the tests would see it as a write outside.
#[cfg(test)]
pub(crate) fn unit_temp(name: &str) -> PathBuf {
    let dir = crate::project_root()
        .join("target/xtask-unit")
        .join(name)
        .join(format!("{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
