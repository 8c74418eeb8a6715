//! `study --executor slurm`: the whole study as SLURM jobs chained by dependencies.
//!
//! The command checks the design and the flags, writes `DIR/study.json` as a local study does,
//! and three batch scripts under `DIR/slurm/`, each running this same command line with a
//! hidden `--stage`:
//!
//! 1. `prep`: an array with one task per dose (`--dose-index`), each writing that dose's
//!    Phase C dataset, then its Phase D views, and a record of them
//!    (`DIR/slurm/prep/dose_<int>.record.json`). Only doses not verified complete are
//!    submitted (none when the study's Phase C and D records verify, as a local rerun skips
//!    them; only their Phase D when the Phase C record alone verifies); each task writes only
//!    its own dose's folders;
//! 2. `plan` (`afterok` on every `prep` array): writes the Phase C and D records (the local
//!    run's, once, from the files the tasks wrote), then each method's `train --executor
//!    slurm` (with its own resources; a job the job check verifies complete is not submitted
//!    again), then submits `finish` with `afterany` on every training array, so that a failed
//!    job is reported, not hidden;
//! 3. `finish`: each method's `collect` and report, then the comparison.
//!
//! Phase D is in the dose's task rather than an array of its own: it reads only that dose's
//! Phase C files, so a second array (`aftercorr`) would double the jobs and add a dependency
//! for nothing.
//!
//! A stage that fails stops the stages after it (`--kill-on-invalid-dep=yes`): one failed dose
//! stops `plan`. Each stage leaves its exit status in `DIR/slurm/<stage>.exit` (each `prep`
//! task in `DIR/slurm/prep/<dose index>.exit`) and its output in `DIR/slurm/<stage>_<job>.log`
//! (`DIR/slurm/prep/<job>_<task>.log`); `DIR/slurm/stages.json` holds the job ids, from which
//! `study --out DIR --status` (and `--wait`) tell where the study stands, and which dose
//! failed.

use crate::exit;
use crate::progress::Progress;
use anyhow::Context;
use runner::shell::{shell_path, single_quoted};
use runner::slurm::{
    ArrayRequest, DEFAULT_MAX_ARRAY_SIZE, Resources, SlurmCli, SlurmSettings, Submission,
    array_chunks,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `DIR/slurm`: the stage scripts, logs, exit statuses and `stages.json`.
pub const STUDY_SLURM_DIR: &str = "slurm";
/// `DIR/slurm/stages.json`.
pub const STAGES_FILE: &str = "stages.json";
/// `DIR/slurm/prep`: each `prep` task's log, exit status and dose record.
pub const PREP_DIR: &str = "prep";

/// One stage of a study on SLURM (the hidden `--stage` flag).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Phase C and Phase D of one dose (an array task per dose).
    Prep,
    /// The Phase C and D records, each method's training array(s), then `finish`.
    Plan,
    /// Collect, report and comparison.
    Finish,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Prep, Stage::Plan, Stage::Finish];

    /// Its name in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prep => "prep",
            Stage::Plan => "plan",
            Stage::Finish => "finish",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Stage::Prep => "Phase C and Phase D, one task per dose",
            Stage::Plan => "submits the training arrays",
            Stage::Finish => "collect, report and comparison",
        }
    }
}

/// `DIR/slurm/stages.json`: the job id of each submitted stage and each method's arrays.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// Stage name -> job id (`prep`: its arrays' ids, comma-separated; absent when every dose
    /// was verified complete).
    pub jobs: BTreeMap<String, String>,
    /// The design's dose folders (`dose_1000`), by dose index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doses: Vec<String>,
    /// The `prep` arrays, in dose order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prep: Vec<PrepArray>,
    /// Each method's training, in the study's order (written by the `plan` stage).
    pub training: Vec<Training>,
}

/// One submitted `prep` array: task `t` runs dose index `first_index + t`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepArray {
    /// SLURM's array job id.
    pub job_id: String,
    /// The dose index of task 0.
    pub first_index: usize,
    /// The task ids submitted, ascending.
    pub tasks: Vec<usize>,
}

/// One method's training arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// The method's name.
    pub method: String,
    /// Its artifact root (absolute).
    pub artifact_root: PathBuf,
}

fn slurm_dir(out: &Path) -> PathBuf {
    out.join(STUDY_SLURM_DIR)
}

/// `DIR/slurm/prep`.
pub fn prep_dir(out: &Path) -> PathBuf {
    slurm_dir(out).join(PREP_DIR)
}

impl Stages {
    /// Reads `DIR/slurm/stages.json` (`None`: no SLURM study was submitted there).
    pub fn read(out: &Path) -> anyhow::Result<Option<Stages>> {
        let path = slurm_dir(out).join(STAGES_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is not a study's SLURM record", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes it (atomically).
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        npz_contract::atomic::write_atomic(&slurm_dir(out).join(STAGES_FILE), text.as_bytes())
            .context("writing the study's SLURM record")
    }
}

/// What the stage jobs run and ask for.
pub struct Chain<'a> {
    /// The study folder.
    pub out: &'a Path,
    /// What each stage job asks for ([`crate::slurm_resources::StudyResources::for_stages`]).
    pub resources: Resources,
    /// Extra `sbatch` arguments (`--sbatch-arg`), for every job.
    pub extra_args: &'a [String],
    /// `--array-limit`, for the `prep` arrays as for training's.
    pub array_limit: u32,
    /// `--max-array-size` (`None`: the cluster's).
    pub max_array_size: Option<usize>,
}

/// The `prep` stage's work: which doses of the design its array runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Prep {
    /// Every dose folder of the design, by dose index.
    pub doses: Vec<String>,
    /// The dose indices to run (ascending): those not verified complete.
    pub todo: Vec<usize>,
    /// Whether the study's Phase C and D records verified and stay (nothing to run).
    pub keep_records: bool,
    /// Whether the Phase C record alone verified and stays: each `prep` task then writes only
    /// its dose's Phase D (a local run stopped in Phase D, resubmitted to SLURM).
    pub keep_phase_c: bool,
}

/// The batch script of `stage`: this command line with `--stage <stage>` (and, for `prep`,
/// `--dose-index`: the array task's id plus the script's first argument).
fn stage_script(
    stage: Stage,
    chain: &Chain<'_>,
    exe: &Path,
    argv: &[String],
) -> anyhow::Result<String> {
    use runner::slurm::{Header, header_directives};
    let out = chain
        .out
        .canonicalize()
        .with_context(|| format!("cannot resolve the study folder {}", chain.out.display()))?;
    let dir = slurm_dir(&out).to_string_lossy().into_owned();
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let name = stage.name();
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    s.push_str(&format!(
        "# Written by `dose-overlap study --executor slurm`: the `{name}` stage ({}).\n",
        stage.what()
    ));
    if stage == Stage::Prep {
        s.push_str(
            "# Task i of a submission with offset o (the first argument, 0 by default) runs \
             dose index i + o.\n",
        );
    }
    let (log_dir, log_name) = match stage {
        Stage::Prep => (format!("{dir}/{PREP_DIR}"), "%A_%a.log".to_string()),
        _ => (dir.clone(), format!("{name}_%A.log")),
    };
    s.push_str(&header_directives(&Header {
        job_name: &format!("dose-overlap-study-{name}"),
        array: None,
        log_dir: &log_dir,
        log_name: &log_name,
        workdir: &workdir.to_string_lossy(),
        resources: &chain.resources,
    }));
    s.push('\n');
    let mut words = vec![single_quoted(&exe.to_string_lossy())];
    words.extend(argv.iter().map(|a| single_quoted(a)));
    words.push("--stage".into());
    words.push(name.into());
    if stage == Stage::Prep {
        s.push_str("offset=\"${1:-0}\"\n");
        s.push_str("index=$((SLURM_ARRAY_TASK_ID + offset))\n");
        words.push("--dose-index".into());
        words.push("\"$index\"".into());
    }
    s.push_str(&words.join(" "));
    s.push('\n');
    s.push_str("status=$?\n");
    let (exit_dir, exit_name) = match stage {
        Stage::Prep => (format!("{dir}/{PREP_DIR}"), "$index".to_string()),
        _ => (dir, name.to_string()),
    };
    s.push_str(&format!("dir={}\n", single_quoted(&exit_dir)));
    s.push_str(&format!(
        "echo \"$status\" > \"$dir/.{exit_name}.exit.tmp\" && mv -f \"$dir/.{exit_name}.exit.tmp\" \"$dir/{exit_name}.exit\"\n"
    ));
    s.push_str("exit \"$status\"\n");
    Ok(s)
}

fn script_path(out: &Path, stage: Stage) -> PathBuf {
    slurm_dir(out).join(format!("{}.sbatch", stage.name()))
}

/// `DIR/slurm/prep/<index>.exit`.
fn prep_exit_file(out: &Path, index: usize) -> PathBuf {
    prep_dir(out).join(format!("{index}.exit"))
}

/// Removes `path`; a missing file is no error.
pub fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Under the study's lock: forgets the previous submission's stage statuses and writes the
/// three stage scripts (`argv`: this command line after the program, [`stage_argv`]).
/// Returns the scripts' text, for `--dry-run`.
pub fn prepare(chain: &Chain<'_>, argv: &[String]) -> anyhow::Result<Vec<String>> {
    let dir = slurm_dir(chain.out);
    std::fs::create_dir_all(prep_dir(chain.out))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for stage in Stage::ALL {
        remove_if_there(&dir.join(format!("{}.exit", stage.name())))?;
    }
    // Every earlier `prep` task's status: `--status` reads those of this submission only.
    let entries = std::fs::read_dir(prep_dir(chain.out))
        .with_context(|| format!("reading {}", prep_dir(chain.out).display()))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".exit") {
            remove_if_there(&entry.path())?;
        }
    }
    Stages::default().write(chain.out)?;
    let exe = std::env::current_exe().context("cannot find the dose-overlap binary")?;
    let mut scripts = Vec::new();
    for stage in Stage::ALL {
        let script = stage_script(stage, chain, &exe, argv)?;
        npz_contract::atomic::write_atomic(&script_path(chain.out, stage), script.as_bytes())?;
        scripts.push(script);
    }
    Ok(scripts)
}

/// This process's arguments after the program's name (global flags, `study` and its flags),
/// minus what only the submitting command uses (`--wait`, `--poll-interval`, `--dry-run`).
pub fn stage_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::with_capacity(all.len());
    let mut iter = all.into_iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            // A dry run's scripts are the real run's.
            "--wait" | "--dry-run" => {}
            "--poll-interval" => {
                iter.next();
            }
            _ if arg.starts_with("--poll-interval=") => {}
            _ => out.push(arg),
        }
    }
    out
}

fn settings(chain: &Chain<'_>, stage: Stage) -> SlurmSettings {
    SlurmSettings {
        resources: chain.resources.clone(),
        array_limit: if stage == Stage::Prep {
            chain.array_limit
        } else {
            0
        },
        extra_args: chain.extra_args.to_vec(),
        job_name: format!("dose-overlap-study-{}", stage.name()),
    }
}

/// Submits one stage (a one-task array, so that its job id names its task as training's do).
fn submit_stage(
    chain: &Chain<'_>,
    stage: Stage,
    dependency: Option<&str>,
) -> anyhow::Result<String> {
    let settings = settings(chain, stage);
    SlurmCli
        .submit_array(&ArrayRequest {
            script: &script_path(chain.out, stage),
            tasks: &[0],
            settings: &settings,
            dependency,
            script_args: &[],
        })
        .with_context(|| format!("submitting the study's `{}` stage", stage.name()))
}

/// Submits the `prep` arrays: one task per dose of `prep.todo`, in arrays no larger than the
/// cluster's MaxArraySize (each array's first dose index its script's argument).
fn submit_prep(
    chain: &Chain<'_>,
    prep: &Prep,
    progress: &Progress,
) -> anyhow::Result<Vec<PrepArray>> {
    if prep.todo.is_empty() {
        return Ok(Vec::new());
    }
    let max = match chain.max_array_size {
        Some(n) => n,
        None => SlurmCli.max_array_size().unwrap_or_else(|e| {
            progress.note(&format!(
                "note: {e}; assuming SLURM's default MaxArraySize {DEFAULT_MAX_ARRAY_SIZE}"
            ));
            DEFAULT_MAX_ARRAY_SIZE
        }),
    };
    let settings = settings(chain, Stage::Prep);
    let script = script_path(chain.out, Stage::Prep);
    let mut arrays = Vec::new();
    for (first, count) in array_chunks(prep.doses.len(), max) {
        let tasks: Vec<usize> = prep
            .todo
            .iter()
            .filter(|&&i| (first..first + count).contains(&i))
            .map(|&i| i - first)
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let submitted = SlurmCli.submit_array(&ArrayRequest {
            script: &script,
            tasks: &tasks,
            settings: &settings,
            dependency: None,
            script_args: &[first.to_string()],
        });
        match submitted {
            Ok(job_id) => arrays.push(PrepArray {
                job_id,
                first_index: first,
                tasks,
            }),
            Err(e) => {
                // What did go out is recorded, so that `--status` names it.
                let stages = Stages {
                    jobs: prep_jobs(&arrays),
                    doses: prep.doses.clone(),
                    prep: arrays,
                    training: Vec::new(),
                };
                stages.write(chain.out)?;
                return Err(e).context(format!(
                    "submitting the study's `prep` stage (doses {first}-{})",
                    first + count - 1
                ));
            }
        }
    }
    Ok(arrays)
}

/// `jobs` with the `prep` arrays' ids (none: no entry).
fn prep_jobs(arrays: &[PrepArray]) -> BTreeMap<String, String> {
    let ids: Vec<&str> = arrays.iter().map(|a| a.job_id.as_str()).collect();
    let mut jobs = BTreeMap::new();
    if !ids.is_empty() {
        jobs.insert("prep".to_string(), ids.join(","));
    }
    jobs
}

/// After [`prepare`] (and with the study's lock released: each stage takes it): submits the
/// `prep` arrays and `plan` (`afterok` on every `prep` array); with `wait`, follows the study
/// to its end.
pub fn submit(
    chain: &Chain<'_>,
    prep: &Prep,
    wait: Option<u64>,
    progress: &Progress,
) -> anyhow::Result<u8> {
    let arrays = submit_prep(chain, prep, progress)?;
    let dependency = (!arrays.is_empty()).then(|| {
        let ids: Vec<&str> = arrays.iter().map(|a| a.job_id.as_str()).collect();
        format!("afterok:{}", ids.join(":"))
    });
    let plan = submit_stage(chain, Stage::Plan, dependency.as_deref());
    let mut stages = Stages {
        jobs: prep_jobs(&arrays),
        doses: prep.doses.clone(),
        prep: arrays,
        training: Vec::new(),
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            stages.write(chain.out)?;
            return Err(e);
        }
    };
    stages.jobs.insert("plan".to_string(), plan.clone());
    stages.write(chain.out)?;
    let prep_line = match stages.jobs.get("prep") {
        Some(ids) => format!(
            "prep job {ids} ({} of {} dose(s): Phase C, D)",
            prep.todo.len(),
            prep.doses.len()
        ),
        None => "no prep job (every dose's Phase C and D verified complete)".to_string(),
    };
    crate::output::outln!(
        "→ Submitted the study to SLURM: {prep_line}, plan job {plan} (training arrays, then \
         finish)"
    );
    let Some(poll) = wait else {
        crate::output::outln!(
            "→ Where it stands: dose-overlap study --out {} --status",
            shell_path(chain.out)
        );
        return Ok(exit::OK);
    };
    follow(chain.out, poll, progress)
}

/// The `plan` stage's end: records each method's artifact root and submits `finish` after
/// every training array (`afterany`: a failed job is collected and reported, as locally).
pub fn submit_finish(chain: &Chain<'_>, training: Vec<Training>) -> anyhow::Result<String> {
    let mut arrays = Vec::new();
    for t in &training {
        if let Some(submission) = Submission::read(&t.artifact_root)? {
            arrays.extend(submission.arrays.into_iter().map(|a| a.job_id));
        }
    }
    let dependency = (!arrays.is_empty()).then(|| format!("afterany:{}", arrays.join(":")));
    let finish = submit_stage(chain, Stage::Finish, dependency.as_deref())?;
    let mut stages = Stages::read(chain.out)?.unwrap_or_default();
    stages.jobs.insert("finish".into(), finish.clone());
    stages.training = training;
    stages.write(chain.out)?;
    Ok(finish)
}

/// A `prep` task that failed: its dose, task, what happened and its log.
#[derive(Clone, Debug, PartialEq)]
struct DoseFailure {
    /// `dose_1000`.
    dose: String,
    /// `123_4`.
    task: String,
    /// `exit 2`, or SLURM's state when the task left no exit status.
    what: String,
    /// Its log.
    log: PathBuf,
    /// Its exit status, when it left one.
    code: Option<i32>,
}

/// Where one stage stands.
#[derive(Clone, Debug, PartialEq)]
enum StageState {
    /// Not submitted (yet).
    NotSubmitted,
    /// `prep`: every dose was verified complete; no array was submitted.
    NothingToDo,
    /// Listed by SLURM, not ended: its state and reason (`PENDING`, `Dependency`).
    Queued(String, String),
    /// `prep`: tasks not all ended, none failed: how many ended well, of how many, and the
    /// others' states.
    Doses {
        done: usize,
        total: usize,
        queued: BTreeMap<String, usize>,
    },
    /// Ended with this exit status (`prep`: every task, 0).
    Ended(i32),
    /// `prep`: these doses' tasks failed (the others may still run).
    DosesFailed(Vec<DoseFailure>),
    /// Ended without an exit status: cancelled, killed, or never started.
    Vanished(Option<String>),
}

impl StageState {
    fn failed(&self) -> bool {
        matches!(self, StageState::Ended(c) if *c != 0)
            || matches!(self, StageState::Vanished(_) | StageState::DosesFailed(_))
    }
}

const TERMINAL: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
];

/// The `prep` stage's state from its tasks' exit files and what SLURM lists.
fn prep_state(
    out: &Path,
    stages: &Stages,
    listed: &BTreeMap<String, (String, String)>,
) -> StageState {
    if stages.prep.is_empty() {
        return match stages.jobs.contains_key("plan") {
            true => StageState::NothingToDo,
            false => StageState::NotSubmitted,
        };
    }
    let (mut done, mut total) = (0, 0);
    let mut queued: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    for array in &stages.prep {
        for &task in &array.tasks {
            total += 1;
            let index = array.first_index + task;
            let id = format!("{}_{task}", array.job_id);
            let failure = |what: String, code: Option<i32>| DoseFailure {
                dose: stages
                    .doses
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| format!("dose index {index}")),
                task: id.clone(),
                what,
                log: prep_dir(out).join(format!("{id}.log")),
                code,
            };
            match std::fs::read_to_string(prep_exit_file(out, index)) {
                Ok(text) => match text.trim().parse::<i32>() {
                    Ok(0) => done += 1,
                    Ok(code) => failed.push(failure(format!("exit {code}"), Some(code))),
                    Err(_) => failed.push(failure("an unreadable exit status".into(), None)),
                },
                Err(_) => match listed.get(&id) {
                    Some((state, _)) if !TERMINAL.contains(&state.as_str()) => {
                        *queued.entry(state.clone()).or_default() += 1;
                    }
                    Some((state, _)) => {
                        failed.push(failure(format!("{state}, without an exit status"), None))
                    }
                    None => failed.push(failure(
                        "gone from the queue without an exit status".into(),
                        None,
                    )),
                },
            }
        }
    }
    if !failed.is_empty() {
        StageState::DosesFailed(failed)
    } else if done == total {
        StageState::Ended(0)
    } else {
        StageState::Doses {
            done,
            total,
            queued,
        }
    }
}

/// Each stage's state, in order (SLURM is asked first, then the exit files read: a stage
/// writes its exit status before it ends).
fn stage_states(
    out: &Path,
    stages: &Stages,
) -> anyhow::Result<Vec<(Stage, Option<String>, StageState)>> {
    let mut ids: Vec<String> = stages.prep.iter().map(|a| a.job_id.clone()).collect();
    ids.extend(
        stages
            .jobs
            .iter()
            .filter(|(stage, _)| *stage != "prep")
            .map(|(_, id)| id.clone()),
    );
    let listed = SlurmCli.job_states(&ids)?;
    let mut states = Vec::new();
    for stage in Stage::ALL {
        if stage == Stage::Prep {
            let id = stages.jobs.get("prep").cloned();
            states.push((stage, id, prep_state(out, stages, &listed)));
            continue;
        }
        let Some(id) = stages.jobs.get(stage.name()) else {
            states.push((stage, None, StageState::NotSubmitted));
            continue;
        };
        let squeue = listed
            .get(&format!("{id}_0"))
            .or_else(|| listed.get(id.as_str()))
            .cloned();
        let exit_file = slurm_dir(out).join(format!("{}.exit", stage.name()));
        let state = match std::fs::read_to_string(&exit_file) {
            Ok(text) => StageState::Ended(text.trim().parse().unwrap_or(-1)),
            Err(_) => match squeue {
                Some((state, reason)) if !TERMINAL.contains(&state.as_str()) => {
                    StageState::Queued(state, reason)
                }
                Some((state, _)) => StageState::Vanished(Some(state)),
                None => StageState::Vanished(None),
            },
        };
        states.push((stage, Some(id.clone()), state));
    }
    Ok(states)
}

/// At most this many failed doses are named in one line; the rest are counted.
const NAMED_FAILURES: usize = 5;

fn describe(state: &StageState) -> String {
    match state {
        StageState::NotSubmitted => "not submitted yet".into(),
        StageState::NothingToDo => "every dose verified complete, nothing submitted".into(),
        StageState::Queued(state, reason) if reason.is_empty() || reason == "None" => state.clone(),
        StageState::Queued(state, reason) => format!("{state} ({reason})"),
        StageState::Doses {
            done,
            total,
            queued,
        } => {
            let others: Vec<String> = queued.iter().map(|(s, n)| format!("{n} {s}")).collect();
            format!(
                "{done} of {total} dose(s) done; {}",
                if others.is_empty() {
                    "the others not listed yet".to_string()
                } else {
                    others.join(", ")
                }
            )
        }
        StageState::Ended(0) => "done".into(),
        StageState::Ended(code) => format!("failed (exit {code})"),
        StageState::DosesFailed(failures) => {
            let named: Vec<String> = failures
                .iter()
                .take(NAMED_FAILURES)
                .map(|f| format!("{} (task {}, {})", f.dose, f.task, f.what))
                .collect();
            let more = failures.len().saturating_sub(NAMED_FAILURES);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("failed for {}{more}", named.join(", "))
        }
        StageState::Vanished(Some(state)) => format!("{state}, without an exit status"),
        StageState::Vanished(None) => "gone from the queue without an exit status".into(),
    }
}

/// The log of a stage (`prep`: of its first failed task).
fn log_of(out: &Path, stage: Stage, id: &str, state: &StageState) -> String {
    match state {
        StageState::DosesFailed(failures) if !failures.is_empty() => shell_path(&failures[0].log),
        _ => shell_path(&slurm_dir(out).join(format!("{}_{id}.log", stage.name()))),
    }
}

/// Training progress of one method: `6 task(s): 4 done, 1 failed, 1 RUNNING`.
fn training_line(t: &Training) -> anyhow::Result<String> {
    let Some(submission) = Submission::read(&t.artifact_root)? else {
        return Ok(format!("train {}: nothing submitted", t.method));
    };
    let ids: Vec<String> = submission.arrays.iter().map(|a| a.job_id.clone()).collect();
    if ids.is_empty() {
        return Ok(format!(
            "train {}: every job verified complete, nothing submitted",
            t.method
        ));
    }
    let listed = SlurmCli.job_states(&ids)?;
    let dir = t.artifact_root.join(runner::slurm::SLURM_DIR);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for array in &submission.arrays {
        let tasks: Vec<usize> = match &array.tasks {
            Some(tasks) => tasks.clone(),
            None => (0..array.count).collect(),
        };
        for task in tasks {
            total += 1;
            let name = format!("{}_{task}", array.job_id);
            let key = match std::fs::read_to_string(dir.join(format!("{name}.exit"))) {
                Ok(text) if text.trim() == "0" => "done".to_string(),
                Ok(_) => "failed".to_string(),
                Err(_) => match listed.get(&name) {
                    Some((state, _)) if !TERMINAL.contains(&state.as_str()) => state.clone(),
                    _ => "ended without an exit status".to_string(),
                },
            };
            *counts.entry(key).or_default() += 1;
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    Ok(format!(
        "train {} (job {}): {total} task(s): {}",
        t.method,
        ids.join(", "),
        parts.join(", ")
    ))
}

/// `study --out DIR --status`: each stage with its job id and state (each failed dose's task
/// and log), and each method's tasks.
pub fn status(out: &Path) -> anyhow::Result<u8> {
    let Some(stages) = Stages::read(out)? else {
        anyhow::bail!(
            "{} holds no study submitted to SLURM ({} is missing): run `dose-overlap study \
             --executor slurm --out {}` first",
            out.display(),
            slurm_dir(out).join(STAGES_FILE).display(),
            shell_path(out)
        );
    };
    let mut failed = false;
    for (stage, id, state) in stage_states(out, &stages)? {
        let job = id
            .as_deref()
            .map_or("-".to_string(), |i| format!("job {i}"));
        crate::output::outln!("{:<7} {job:<12} {}", stage.name(), describe(&state));
        failed |= state.failed();
        if let StageState::DosesFailed(failures) = &state {
            for f in failures {
                crate::output::outln!(
                    "  {} failed (task {}, {}): {}",
                    f.dose,
                    f.task,
                    f.what,
                    shell_path(&f.log)
                );
            }
        }
        if stage == Stage::Plan {
            for t in &stages.training {
                crate::output::outln!("  {}", training_line(t)?);
            }
        }
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}

/// Polls the stages until `finish` ends (its exit status) or a stage fails (its log named;
/// for `prep`, the failed doses).
pub fn follow(out: &Path, poll: u64, progress: &Progress) -> anyhow::Result<u8> {
    let cancel = crate::signals::token()?;
    let mut last = String::new();
    loop {
        let stages = Stages::read(out)?.unwrap_or_default();
        let states = stage_states(out, &stages)?;
        let summary: Vec<String> = states
            .iter()
            .map(|(stage, _, state)| format!("{} {}", stage.name(), describe(state)))
            .collect();
        let summary = format!("SLURM: {}", summary.join("; "));
        if summary != last {
            progress.note(&summary);
            last = summary;
        }
        for (stage, id, state) in &states {
            let id = id.as_deref().unwrap_or("-");
            match state {
                StageState::Ended(code) if *stage == Stage::Finish => {
                    progress.clear();
                    crate::output::outln!(
                        "study finished on SLURM (finish job {id}, exit {code}); its output: {}",
                        log_of(out, *stage, id, state)
                    );
                    return Ok(u8::try_from(*code).unwrap_or(exit::FAILURE));
                }
                StageState::Ended(0)
                | StageState::Queued(..)
                | StageState::Doses { .. }
                | StageState::NothingToDo
                | StageState::NotSubmitted => {}
                StageState::Ended(_) | StageState::Vanished(_) | StageState::DosesFailed(_) => {
                    progress.clear();
                    eprintln!(
                        "error: the study's `{}` stage ({}; job {id}) {}: see {}; the stages \
                         after it do not run. Rerun the same command to resume.",
                        stage.name(),
                        stage.what(),
                        describe(state),
                        log_of(out, *stage, id, state)
                    );
                    let code = match state {
                        StageState::Ended(code) => Some(*code),
                        StageState::DosesFailed(failures) => failures.iter().find_map(|f| f.code),
                        _ => None,
                    };
                    return Ok(code
                        .and_then(|c| u8::try_from(c).ok())
                        .unwrap_or(exit::FAILURE));
                }
            }
        }
        for _ in 0..poll * 10 {
            if cancel.is_cancelled() {
                progress.clear();
                eprintln!(
                    "stopped waiting ({}); the study keeps running on the cluster: see \
                     `dose-overlap study --out {} --status`",
                    cancel.cause(),
                    shell_path(out)
                );
                return Ok(exit::FAILURE);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_states_read_as_words() {
        assert_eq!(describe(&StageState::Ended(0)), "done");
        assert_eq!(describe(&StageState::Ended(2)), "failed (exit 2)");
        assert_eq!(
            describe(&StageState::Queued("PENDING".into(), "Dependency".into())),
            "PENDING (Dependency)"
        );
        assert_eq!(
            describe(&StageState::Queued("RUNNING".into(), "None".into())),
            "RUNNING"
        );
    }
}
