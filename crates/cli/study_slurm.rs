//! `study --executor slurm`: the whole study as SLURM jobs chained by dependencies.
//!
//! The command checks the design and the flags, writes `DIR/study.json` as a local study does,
//! and three batch scripts under `DIR/slurm/`, each running this same command line with a
//! hidden `--stage`:
//!
//! 1. `prep`: Phase C and Phase D (with the local study's resume rules);
//! 2. `plan` (`afterok:prep`): each method's `train --executor slurm` (with its own resources;
//!    a job the job check verifies complete is not submitted again), then submits `finish`
//!    with `afterany` on every training array, so that a failed job is reported, not hidden;
//! 3. `finish`: each method's `collect` and report, then the comparison.
//!
//! A stage that fails stops the stages after it (`--kill-on-invalid-dep=yes`). Each stage
//! leaves its exit status in `DIR/slurm/<stage>.exit` and its output in
//! `DIR/slurm/<stage>_<job>.log`; `DIR/slurm/stages.json` holds the job ids, from which
//! `study --out DIR --status` (and `--wait`) tell where the study stands.

use crate::exit;
use crate::progress::Progress;
use anyhow::Context;
use runner::shell::{shell_path, single_quoted};
use runner::slurm::{ArrayRequest, Resources, SlurmCli, SlurmSettings, Submission};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `DIR/slurm`: the stage scripts, logs, exit statuses and `stages.json`.
pub const STUDY_SLURM_DIR: &str = "slurm";
/// `DIR/slurm/stages.json`.
pub const STAGES_FILE: &str = "stages.json";

/// One stage of a study on SLURM (the hidden `--stage` flag).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Phase C and Phase D.
    Prep,
    /// Submits each method's training array(s), then `finish`.
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
            Stage::Prep => "Phase C and Phase D",
            Stage::Plan => "submits the training arrays",
            Stage::Finish => "collect, report and comparison",
        }
    }
}

/// `DIR/slurm/stages.json`: the job id of each submitted stage and each method's arrays.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// Stage name -> job id.
    pub jobs: BTreeMap<String, String>,
    /// Each method's training, in the study's order (written by the `plan` stage).
    pub training: Vec<Training>,
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
}

/// The batch script of `stage`: this command line with `--stage <stage>`.
fn stage_script(
    stage: Stage,
    chain: &Chain<'_>,
    exe: &Path,
    argv: &[String],
) -> anyhow::Result<String> {
    use runner::slurm::{directive_quote, resource_directives};
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
    s.push_str(&format!(
        "#SBATCH --job-name={}\n",
        directive_quote(&format!("dose-overlap-study-{name}"))
    ));
    // sbatch expands `%` patterns in the file name: a `%` of the path itself is spelled `%%`.
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        directive_quote(&format!("{}/{name}_%A.log", dir.replace('%', "%%")))
    ));
    s.push_str(&format!(
        "#SBATCH --chdir={}\n",
        directive_quote(&workdir.to_string_lossy())
    ));
    s.push_str(&resource_directives(&chain.resources));
    s.push('\n');
    let mut words = vec![single_quoted(&exe.to_string_lossy())];
    words.extend(argv.iter().map(|a| single_quoted(a)));
    words.push("--stage".into());
    words.push(name.into());
    s.push_str(&words.join(" "));
    s.push('\n');
    s.push_str("status=$?\n");
    s.push_str(&format!("dir={}\n", single_quoted(&dir)));
    s.push_str(&format!(
        "echo \"$status\" > \"$dir/.{name}.exit.tmp\" && mv -f \"$dir/.{name}.exit.tmp\" \"$dir/{name}.exit\"\n"
    ));
    s.push_str("exit \"$status\"\n");
    Ok(s)
}

fn script_path(out: &Path, stage: Stage) -> PathBuf {
    slurm_dir(out).join(format!("{}.sbatch", stage.name()))
}

/// Under the study's lock: forgets the previous submission's stage statuses and writes the
/// three stage scripts (`argv`: this command line after the program, [`stage_argv`]).
/// Returns the scripts' text, for `--dry-run`.
pub fn prepare(chain: &Chain<'_>, argv: &[String]) -> anyhow::Result<Vec<String>> {
    let dir = slurm_dir(chain.out);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for stage in Stage::ALL {
        let exit_file = dir.join(format!("{}.exit", stage.name()));
        match std::fs::remove_file(&exit_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", exit_file.display()));
            }
            _ => {}
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
        array_limit: 0,
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

/// After [`prepare`] (and with the study's lock released: each stage takes it): submits
/// `prep` and `plan`; with `wait`, follows the study to its end.
pub fn submit(chain: &Chain<'_>, wait: Option<u64>, progress: &Progress) -> anyhow::Result<u8> {
    let prep = submit_stage(chain, Stage::Prep, None)?;
    let plan = submit_stage(chain, Stage::Plan, Some(&format!("afterok:{prep}")))?;
    let stages = Stages {
        jobs: BTreeMap::from([
            ("prep".to_string(), prep.clone()),
            ("plan".to_string(), plan.clone()),
        ]),
        training: Vec::new(),
    };
    stages.write(chain.out)?;
    crate::output::outln!(
        "→ Submitted the study to SLURM: prep job {prep} (Phase C, D), plan job {plan} (training \
         arrays, then finish)"
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

/// Where one stage stands.
#[derive(Clone, Debug, PartialEq)]
enum StageState {
    /// Not submitted (yet).
    NotSubmitted,
    /// Listed by SLURM, not ended: its state and reason (`PENDING`, `Dependency`).
    Queued(String, String),
    /// Ended with this exit status.
    Ended(i32),
    /// Ended without an exit status: cancelled, killed, or never started.
    Vanished(Option<String>),
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

/// Each stage's state, in order (SLURM is asked first, then the exit file read: a stage
/// writes its exit status before it ends).
fn stage_states(
    out: &Path,
    stages: &Stages,
) -> anyhow::Result<Vec<(Stage, Option<String>, StageState)>> {
    let ids: Vec<String> = stages.jobs.values().cloned().collect();
    let listed = SlurmCli.job_states(&ids)?;
    let mut states = Vec::new();
    for stage in Stage::ALL {
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

fn describe(state: &StageState) -> String {
    match state {
        StageState::NotSubmitted => "not submitted yet".into(),
        StageState::Queued(state, reason) if reason.is_empty() || reason == "None" => state.clone(),
        StageState::Queued(state, reason) => format!("{state} ({reason})"),
        StageState::Ended(0) => "done".into(),
        StageState::Ended(code) => format!("failed (exit {code})"),
        StageState::Vanished(Some(state)) => format!("{state}, without an exit status"),
        StageState::Vanished(None) => "gone from the queue without an exit status".into(),
    }
}

fn log_of(out: &Path, stage: Stage, id: &str) -> String {
    shell_path(&slurm_dir(out).join(format!("{}_{id}.log", stage.name())))
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

/// `study --out DIR --status`: each stage with its job id and state, and each method's tasks.
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
        failed |= matches!(state, StageState::Ended(c) if c != 0)
            || matches!(state, StageState::Vanished(_));
        if stage == Stage::Plan {
            for t in &stages.training {
                crate::output::outln!("  {}", training_line(t)?);
            }
        }
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}

/// Polls the stages until `finish` ends (its exit status) or a stage fails (its log named).
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
                        log_of(out, *stage, id)
                    );
                    return Ok(u8::try_from(*code).unwrap_or(exit::FAILURE));
                }
                StageState::Ended(0) | StageState::Queued(..) | StageState::NotSubmitted => {}
                StageState::Ended(_) | StageState::Vanished(_) => {
                    progress.clear();
                    eprintln!(
                        "error: the study's `{}` stage ({}; job {id}) {}: see {}; the stages \
                         after it do not run. Rerun the same command to resume.",
                        stage.name(),
                        stage.what(),
                        describe(state),
                        log_of(out, *stage, id)
                    );
                    return Ok(match state {
                        StageState::Ended(code) => u8::try_from(*code).unwrap_or(exit::FAILURE),
                        _ => exit::FAILURE,
                    });
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
