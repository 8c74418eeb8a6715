//! `cargo xtask baseline`: reruns the committed baseline study with the release binary,
//! compares its artifacts byte for byte with `golden/baseline/`, and writes an evidence folder
//! (`collect/`, `green/`, `real_run/`, `summary.md`) a reviewer can read.

use crate::{capture, project_root, textdiff};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to do with the goldens.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    /// Compare and write the evidence folder (the default).
    Write,
    /// Compare only; write nothing but the run folder under `target/`.
    Check,
    /// Rewrite the goldens from this run and say what changed.
    Bless,
}

/// Parsed command line.
#[derive(Debug)]
pub struct Options {
    /// Write, check or bless.
    pub mode: Mode,
    /// Also run the test groups into `green/`.
    pub with_tests: bool,
    /// The evidence folder.
    pub out: PathBuf,
    /// A prebuilt `dose-overlap` instead of building the release binary.
    pub binary: Option<PathBuf>,
    /// The golden folder to compare with.
    pub golden: PathBuf,
}

/// What a baseline run found.
#[derive(Debug)]
pub struct Outcome {
    /// 0 when every command ran and every golden artifact is equal, else 1.
    pub code: u8,
    /// One readable diff per drifted (or re-blessed) artifact.
    pub drift: Vec<String>,
    /// Commands that did not exit as expected.
    pub failures: Vec<String>,
}

impl Options {
    /// Parses `--check | --bless`, `--with-tests`, `--out DIR`, `--binary PATH`, `--golden DIR`.
    pub fn parse(args: &[String]) -> anyhow::Result<Options> {
        let root = project_root();
        let mut options = Options {
            mode: Mode::Write,
            with_tests: false,
            out: root.join("target/baseline-evidence"),
            binary: None,
            golden: root.join("golden/baseline"),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .map(PathBuf::from)
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--check" if options.mode != Mode::Bless => options.mode = Mode::Check,
                "--bless" if options.mode != Mode::Check => options.mode = Mode::Bless,
                "--check" | "--bless" => bail!("--check and --bless exclude each other"),
                "--with-tests" => options.with_tests = true,
                "--out" => options.out = value("--out")?,
                "--binary" => options.binary = Some(value("--binary")?),
                "--golden" => options.golden = value("--golden")?,
                other => bail!("unknown option `{other}`\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

/// Golden artifacts: path inside the run folder -> path inside the golden folder.
const GOLDEN_FILES: &[&str] = &[
    "design.json",
    "dry/training_manifest.json",
    "dry/skip_summary.json",
    "native/training_manifest.json",
    "native/skip_summary.json",
    "native/report/summary.md",
    "comparison/comparison_manifest.json",
    "comparison/comparison_metrics.csv",
    "comparison/comparison.md",
    "phase_d/dose_1000/overlap_report.json",
    "map/report/map.csv",
    "map/report/summary.md",
    "map/report/maps/map_test_fienup_nrmse.svg",
    "map/phase_d/dose_1000/overlap_report.json",
    "replicated/replicate_02/study.json",
    "replicated/replicates/metrics.csv",
    "replicated/replicates/comparison_metrics.csv",
    "replicated/replicates/summary.md",
    "replicated/replicates/comparison.md",
    "data_sha256.txt",
];

/// One command of the baseline run.
struct Step {
    name: &'static str,
    args: Vec<String>,
    /// Exit codes that count as success for this step.
    ok: &'static [i32],
}

fn steps(study: &str, map_study: &str) -> Vec<Step> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // `train` on the study's Phase C and D into `root`, with `extra` flags.
    let train = |name, root, extra: &[&str]| Step {
        name,
        args: s(&[
            &[
                "--quiet",
                "train",
                "--design",
                study,
                "--phase-c-root",
                "phase_c",
                "--phase-d-root",
                "phase_d",
                "--artifact-root",
                root,
            ],
            extra,
        ]
        .concat()),
        ok: &[0],
    };
    vec![
        Step {
            name: "design",
            args: s(&["design", "--design", study, "--json"]),
            ok: &[0],
        },
        Step {
            name: "generate",
            args: s(&["--quiet", "generate", "--design", study, "--out", "phase_c"]),
            ok: &[0],
        },
        Step {
            name: "overlap",
            args: s(&[
                "--quiet",
                "overlap",
                "--design",
                study,
                "--phase-c-root",
                "phase_c",
                "--out",
                "phase_d",
            ]),
            ok: &[0],
        },
        train("train_dry_run", "dry", &["--dry-run"]),
        train(
            "train_native",
            "native",
            &["--backend", "native", "-j", "2"],
        ),
        Step {
            name: "report",
            args: s(&["report", "native", "--out", "native/report"]),
            ok: &[0],
        },
        // The golden run must verify: bundles and inputs re-hash to what the results record.
        Step {
            name: "verify_native",
            args: s(&["verify", "native"]),
            ok: &[0],
        },
        // Two more methods on the same data, and the comparison phase over the three.
        train(
            "train_native_epie",
            "native_epie",
            &["--backend", "native", "--algorithm", "epie", "-j", "2"],
        ),
        train(
            "train_native_ml",
            "native_ml",
            &["--backend", "native", "--algorithm", "ml", "-j", "2"],
        ),
        Step {
            name: "compare",
            args: s(&[
                "compare",
                "native",
                "native_epie",
                "native_ml",
                "--out",
                "comparison",
            ]),
            ok: &[0],
        },
        // The study with three replicates of two methods: intervals and paired tests.
        Step {
            name: "study_replicates",
            args: s(&[
                "--quiet",
                "study",
                "--design",
                study,
                "--replicates",
                "3",
                "--backends",
                "native:epie,native:ml",
                "--out",
                "replicated",
            ]),
            ok: &[0],
        },
        Step {
            name: "verify_replicates",
            args: s(&["verify", "replicated"]),
            ok: &[0],
        },
        // The small dose x overlap map: overlap targets realised on a hex scan, map.csv, the
        // heatmaps with the success boundary, the fixed-budget table.
        Step {
            name: "study_map",
            args: s(&[
                "--quiet",
                "study",
                "--design",
                map_study,
                "--success-nrmse",
                "0.2",
                "--out",
                "map",
            ]),
            ok: &[0],
        },
    ]
}

/// Runs the baseline: 0 when all golden files are equal, 1 on drift or a failed command.
pub fn run(options: Options) -> anyhow::Result<Outcome> {
    let root = project_root();
    let binary = match &options.binary {
        // Commands run inside the run folder: a relative path must not change meaning there.
        Some(path) => std::path::absolute(path)
            .with_context(|| format!("resolving --binary {}", path.display()))?,
        None => build_release(&root)?,
    };
    let study = root.join("golden/baseline/study.toml");
    let evidence = &options.out;
    let run_dir = evidence.join("real_run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("clearing {}", run_dir.display()))?;
    }
    std::fs::create_dir_all(run_dir.join("logs"))
        .with_context(|| format!("creating {}", run_dir.display()))?;

    eprintln!("baseline: running the study in {}", run_dir.display());
    let study_arg = study.display().to_string();
    let map_arg = root.join("golden/baseline/map.toml").display().to_string();
    let mut commands = Vec::new();
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for step in steps(&study_arg, &map_arg) {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        let t = std::time::Instant::now();
        let output = std::process::Command::new(&binary)
            .args(&args)
            .current_dir(&run_dir)
            .env("SOURCE_DATE_EPOCH", "1762245266")
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        let code = output.status.code().unwrap_or(-1);
        write(
            &run_dir.join(format!("logs/{}.stdout.log", step.name)),
            &output.stdout,
        )?;
        write(
            &run_dir.join(format!("logs/{}.stderr.log", step.name)),
            &output.stderr,
        )?;
        if step.name == "design" {
            write(&run_dir.join("design.json"), &output.stdout)?;
        }
        eprintln!(
            "  {:<14} exit {code} ({:.1} s)",
            step.name,
            t.elapsed().as_secs_f64()
        );
        if !step.ok.contains(&code) {
            failures.push(format!(
                "`dose-overlap {}` exited {code}; see real_run/logs/{}.stderr.log:\n{}",
                step.args.join(" "),
                step.name,
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        commands.push((
            format!("dose-overlap {}", step.args.join(" ")),
            code,
            t.elapsed(),
        ));
    }
    let elapsed = started.elapsed();
    write(
        &run_dir.join("data_sha256.txt"),
        data_hashes(&run_dir)?.as_bytes(),
    )?;

    // Compare every golden artifact.
    let mut drift = Vec::new();
    for rel in GOLDEN_FILES {
        let actual = std::fs::read_to_string(run_dir.join(rel)).unwrap_or_default();
        let golden_path = options.golden.join(rel);
        let expected = std::fs::read_to_string(&golden_path).ok();
        match (&expected, options.mode) {
            (_, Mode::Bless) if expected.as_deref() != Some(actual.as_str()) => {
                let diff = textdiff::unified(expected.as_deref().unwrap_or(""), &actual, 2);
                drift.push(format!("{rel}: re-blessed\n{diff}"));
                if let Some(parent) = golden_path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write(&golden_path, actual.as_bytes())?;
            }
            (_, Mode::Bless) => {}
            (None, _) => drift.push(format!(
                "{rel}: no golden file at {}",
                golden_path.display()
            )),
            (Some(expected), _) if *expected != actual => drift.push(format!(
                "{rel}:\n{}",
                textdiff::unified(expected, &actual, 2)
            )),
            _ => {}
        }
    }

    if options.mode != Mode::Check {
        write_evidence(
            &options, &root, &binary, &run_dir, &commands, &failures, &drift, elapsed,
        )?;
    }

    for failure in &failures {
        eprintln!("FAILED: {failure}");
    }
    if drift.is_empty() {
        eprintln!(
            "baseline: all {} golden artifacts equal ({:.1} s)",
            GOLDEN_FILES.len(),
            elapsed.as_secs_f64()
        );
    } else if options.mode == Mode::Bless {
        eprintln!("baseline: blessed {} changed artifact(s):", drift.len());
        for d in &drift {
            eprintln!("--- {d}");
        }
    } else {
        eprintln!("baseline: {} golden artifact(s) differ:", drift.len());
        for d in &drift {
            eprintln!("--- {d}");
        }
        eprintln!(
            "If the change is intended, re-bless with `cargo xtask baseline --bless` and review the diff."
        );
    }
    let drifted = !drift.is_empty() && options.mode != Mode::Bless;
    let code = if failures.is_empty() && !drifted {
        0
    } else {
        1
    };
    Ok(Outcome {
        code,
        drift,
        failures,
    })
}

pub(crate) fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("baseline: building the release binary");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "dose-overlap"])
        .current_dir(root)
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    Ok(target.join("release/dose-overlap"))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// SHA-256 of every NPZ, bundle and picture under the run folder, sorted by path: the data
/// goldens.
fn data_hashes(run_dir: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    collect_files(run_dir, &mut files)?;
    let mut out = String::new();
    for file in files {
        let rel = file.strip_prefix(run_dir).unwrap_or(&file);
        let name = rel.to_string_lossy().replace('\\', "/");
        // Pictures too: their bytes are deterministic, and a change in them is a change in
        // what a reader sees.
        if name.ends_with(".npz")
            || name.ends_with(".zip")
            || name.ends_with(".png")
            || name.ends_with("overlap_report.json")
        {
            writeln!(out, "{}  {name}", sha256_file(&file)?)?;
        }
    }
    Ok(out)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_evidence(
    options: &Options,
    root: &Path,
    binary: &Path,
    run_dir: &Path,
    commands: &[(String, i32, std::time::Duration)],
    failures: &[String],
    drift: &[String],
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let evidence = &options.out;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo = PathBuf::from(cargo);

    // collect/: the list of tests.
    let (_, list, list_err) = capture(
        &cargo,
        &[
            "test",
            "--workspace",
            "--locked",
            "--",
            "--list",
            "--format",
            "terse",
        ],
        root,
    )?;
    write(&evidence.join("collect/test_list.txt"), list.as_bytes())?;
    if list.trim().is_empty() {
        write(
            &evidence.join("collect/test_list.stderr.log"),
            list_err.as_bytes(),
        )?;
    }
    let test_count = list.lines().filter(|l| l.ends_with(": test")).count();

    // green/: the test groups that cover the baseline's contracts.
    let mut green = Vec::new();
    if options.with_tests {
        for (group, filter) in [
            ("design", "design"),
            ("validate", "validate"),
            ("generate", "generate"),
            ("overlap", "overlap"),
            ("train", "train"),
            ("native", "native"),
            ("study", "study"),
        ] {
            let (ok, out, err) = capture(
                &cargo,
                &["test", "--locked", "--test", "it", "--", filter],
                root,
            )?;
            write(
                &evidence.join(format!("green/{group}.log")),
                format!("{out}\n{err}").as_bytes(),
            )?;
            let line = out
                .lines()
                .rev()
                .find(|l| l.starts_with("test result"))
                .unwrap_or("no result line")
                .to_string();
            green.push((group, ok, line));
        }
    }

    let mut s = String::new();
    writeln!(s, "# Baseline evidence\n")?;
    let verdict = match (failures.is_empty(), drift.is_empty(), options.mode) {
        (false, _, _) => "FAIL",
        (true, false, Mode::Bless) => "PASS (goldens re-blessed)",
        (true, false, _) => "FAIL (golden drift)",
        (true, true, _) => "PASS",
    };
    writeln!(s, "Verdict: **{verdict}**\n")?;
    writeln!(s, "## Inputs\n")?;
    let study = root.join("golden/baseline/study.toml");
    writeln!(
        s,
        "- study: `golden/baseline/study.toml` (sha256 `{}`)",
        sha256_file(&study)?
    )?;
    writeln!(s, "- binary: sha256 `{}`", sha256_file(binary)?)?;
    let rev = capture(Path::new("git"), &["rev-parse", "HEAD"], root)
        .map(|r| r.1.trim().to_string())
        .unwrap_or_default();
    let dirty = capture(Path::new("git"), &["status", "--porcelain"], root)
        .map(|r| !r.1.trim().is_empty())
        .unwrap_or(false);
    writeln!(
        s,
        "- git revision: `{rev}`{}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    )?;
    for (tool, args) in [("rustc", ["-V"]), ("cargo", ["-V"])] {
        let version = capture(Path::new(tool), &args, root)
            .map(|r| r.1.trim().to_string())
            .unwrap_or_default();
        writeln!(s, "- {tool}: {version}")?;
    }
    writeln!(
        s,
        "\n## Commands (run in `real_run/`, SOURCE_DATE_EPOCH=1762245266)\n"
    )?;
    for (cmd, code, _) in commands {
        writeln!(s, "- `{cmd}` -> exit {code}")?;
    }
    writeln!(s, "\n## Data digests (`real_run/data_sha256.txt`)\n\n```")?;
    s.push_str(&std::fs::read_to_string(run_dir.join("data_sha256.txt")).unwrap_or_default());
    writeln!(s, "```\n")?;
    for (label, dir) in [("Dry run", "dry"), ("Native run", "native")] {
        writeln!(s, "## {label} (`real_run/{dir}/training_manifest.json`)\n")?;
        manifest_section(&mut s, &run_dir.join(dir).join("training_manifest.json"))?;
    }
    writeln!(s, "## Tests\n")?;
    writeln!(
        s,
        "- collected: {test_count} tests (`collect/test_list.txt`)"
    )?;
    for (group, ok, line) in &green {
        writeln!(
            s,
            "- {group}: {} — {line} (`green/{group}.log`)",
            if *ok { "green" } else { "RED" }
        )?;
    }
    if green.is_empty() {
        writeln!(s, "- groups not run (pass `--with-tests` for `green/`)")?;
    }
    writeln!(s, "\n## Exit criteria\n")?;
    let tick = |ok: bool| if ok { "✅" } else { "❌" };
    writeln!(
        s,
        "- {} every command exited as expected",
        tick(failures.is_empty())
    )?;
    writeln!(
        s,
        "- {} every golden artifact equal byte for byte ({} files)",
        tick(drift.is_empty() || options.mode == Mode::Bless),
        GOLDEN_FILES.len()
    )?;
    for (group, ok, _) in &green {
        writeln!(s, "- {} test group `{group}` green", tick(*ok))?;
    }
    for d in drift {
        writeln!(s, "\n```diff\n{d}```")?;
    }
    writeln!(s, "\n## Volatile (not compared)\n")?;
    writeln!(
        s,
        "- wall time of the study: {:.1} s",
        elapsed.as_secs_f64()
    )?;
    for (cmd, _, t) in commands {
        writeln!(s, "- {:.2} s `{cmd}`", t.as_secs_f64())?;
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    writeln!(s, "- host: {}", host.trim())?;
    write(&evidence.join("summary.md"), s.as_bytes())?;
    eprintln!("baseline: evidence written to {}", evidence.display());
    Ok(())
}

/// Job counts, skips, digests and metrics of one manifest, for the evidence summary.
fn manifest_section(s: &mut String, path: &Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        writeln!(s, "(missing: {})\n", path.display())?;
        return Ok(());
    };
    let manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let jobs = manifest["jobs"].as_array().cloned().unwrap_or_default();
    writeln!(
        s,
        "- jobs: {}, skipped views: {}",
        jobs.len(),
        manifest["skipped_count"]
    )?;
    for skip in manifest["skipped_views"].as_array().into_iter().flatten() {
        writeln!(
            s,
            "  - skip {} dose {}: {}",
            skip["view"], skip["dose"], skip["reason"]
        )?;
    }
    writeln!(
        s,
        "\n| dose | view | gs | status | final loss | bundle sha256 |\n|---|---|---|---|---|---|"
    )?;
    for job in &jobs {
        let r = &job["result"];
        writeln!(
            s,
            "| {} | {} | {} | {} | {} | `{}` |",
            job["dose"],
            job["view"].as_str().unwrap_or("?"),
            job["gridsize"],
            r["status"].as_str().unwrap_or("?"),
            r["final_loss"],
            r["bundle_sha256"].as_str().unwrap_or("-")
        )?;
    }
    writeln!(s)?;
    Ok(())
}
