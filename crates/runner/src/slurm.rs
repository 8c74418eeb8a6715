//! Running a plan as a SLURM job array: the batch script (one array task per job, each calling
//! `dose-overlap run-job`), submission with `sbatch --parsable`, and what `squeue` and
//! `scontrol` say about tasks. Programs are run directly with their arguments, never through
//! a shell.

use crate::plan::Plan;
// Always quoted in the script: its bytes then do not depend on which characters a path holds.
use crate::shell::single_quoted as sh_quote;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Folder under the artifact root for the script, the submission record and task logs.
pub const SLURM_DIR: &str = "slurm";
/// The batch script, in [`SLURM_DIR`].
pub const SCRIPT_FILE: &str = "submit.sbatch";
/// The submission record, in [`SLURM_DIR`].
pub const SUBMISSION_FILE: &str = "submission.json";
/// Version of the submission record's format.
pub const SUBMISSION_FORMAT_VERSION: u32 = 1;
/// SLURM's default `MaxArraySize`, used when the cluster's cannot be read.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// What one SLURM job (or each task of an array) asks for. Every value is written as it is
/// given into an `#SBATCH` line (double-quoted there), so SLURM's own formats apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (SLURM's formats: `30`, `1:00:00`, `1-00:00:00`).
    pub time_limit: Option<String>,
    /// `--mem`: memory per node (`16G`, `4000M`).
    pub mem: Option<String>,
    /// `--gres`: generic resources per node (`gpu:1`).
    pub gres: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
}

/// How to submit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// What each task asks for.
    pub resources: Resources,
    /// At most this many tasks of an array run at once (`%LIMIT`).
    pub array_limit: u32,
    /// Extra `sbatch` arguments, passed as they are.
    pub extra_args: Vec<String>,
    /// `--job-name`.
    pub job_name: String,
}

/// Absolute paths the script needs (tasks may start anywhere on the cluster).
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptPaths {
    /// The `dose-overlap` binary.
    pub exe: PathBuf,
    /// The plan.
    pub plan: PathBuf,
    /// `<artifact_root>/slurm`.
    pub slurm_dir: PathBuf,
    /// The folder `train` ran in: the plan's relative paths are relative to it.
    pub workdir: PathBuf,
}

/// `"text"` for an `#SBATCH` line (sbatch reads double-quoted values).
pub fn directive_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', r"\\").replace('"', "\\\""))
}

/// The `--array` value for `count` tasks with at most `limit` at once.
pub fn array_spec(count: usize, limit: u32) -> String {
    let last = count.saturating_sub(1);
    if limit == 0 {
        format!("0-{last}")
    } else {
        format!("0-{last}%{limit}")
    }
}

/// The batch script: one array task per job of `plan`; task `i` of a submission with offset
/// `o` (the script's first argument, 0 by default) runs job `i + o`. Each task also leaves its
/// exit status beside its log, for `collect`.
pub fn render_script(plan: &Plan, settings: &SlurmSettings, paths: &ScriptPaths) -> String {
    let lossy = |p: &Path| p.to_string_lossy().into_owned();
    let slurm_dir = lossy(&paths.slurm_dir);
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    s.push_str(&format!(
        "# Written by `dose-overlap train --executor slurm`: one array task per job of the plan\n\
         # ({} job(s)). Resubmit by hand with: sbatch [--array=0-K] {SCRIPT_FILE} [OFFSET]\n",
        plan.jobs.len()
    ));
    s.push_str(&header_directives(&Header {
        job_name: &settings.job_name,
        array: Some(&array_spec(plan.jobs.len(), settings.array_limit)),
        log_dir: &slurm_dir,
        log_name: "%A_%a.log",
        workdir: &lossy(&paths.workdir),
        resources: &settings.resources,
    }));
    s.push_str("\noffset=\"${1:-0}\"\n");
    s.push_str("index=$((SLURM_ARRAY_TASK_ID + offset))\n");
    s.push_str(&format!(
        "{} run-job --plan {} --index \"$index\"\n",
        sh_quote(&lossy(&paths.exe)),
        sh_quote(&lossy(&paths.plan))
    ));
    s.push_str(&exit_status_lines(&slurm_dir));
    s.push_str("exit \"$status\"\n");
    s
}

/// What the `#SBATCH` header of a batch script says.
pub struct Header<'a> {
    /// `--job-name`.
    pub job_name: &'a str,
    /// `--array`, when the script names its own array.
    pub array: Option<&'a str>,
    /// The folder of the task logs, as it is (a `%` in it is escaped here).
    pub log_dir: &'a str,
    /// The log file's name, with sbatch's `%` patterns (`%A_%a.log`).
    pub log_name: &'a str,
    /// `--chdir`: where the tasks run.
    pub workdir: &'a str,
    /// Partition, time, memory, GPUs, CPUs.
    pub resources: &'a Resources,
}

/// The `#SBATCH` header every batch script here starts with: job name, array, log file,
/// working folder, then the resources. One writer, so `train`'s array and `study`'s stages
/// quote and escape alike.
pub fn header_directives(h: &Header) -> String {
    let mut s = format!("#SBATCH --job-name={}\n", directive_quote(h.job_name));
    if let Some(array) = h.array {
        s.push_str(&format!("#SBATCH --array={array}\n"));
    }
    // sbatch expands `%` patterns in the file name: a `%` of the folder itself is spelled `%%`.
    let log = format!("{}/{}", h.log_dir.replace('%', "%%"), h.log_name);
    s.push_str(&format!("#SBATCH --output={}\n", directive_quote(&log)));
    s.push_str(&format!("#SBATCH --chdir={}\n", directive_quote(h.workdir)));
    s.push_str(&resource_directives(h.resources));
    s
}

/// The `#SBATCH` lines of `resources`, in a fixed order (nothing for what is not set).
pub fn resource_directives(resources: &Resources) -> String {
    let mut s = String::new();
    let mut line = |flag: &str, value: &str| {
        s.push_str(&format!("#SBATCH --{flag}={}\n", directive_quote(value)));
    };
    if let Some(partition) = &resources.partition {
        line("partition", partition);
    }
    if let Some(time) = &resources.time_limit {
        line("time", time);
    }
    if let Some(mem) = &resources.mem {
        line("mem", mem);
    }
    if let Some(gres) = &resources.gres {
        line("gres", gres);
    }
    if let Some(cpus) = resources.cpus_per_task {
        line("cpus-per-task", &cpus.to_string());
    }
    s
}

/// The end of a batch script after its command: the command's exit status kept in `status`
/// and written beside the task's log as `<slurm_dir>/<job>_<task>.exit` (to a temporary name,
/// then renamed, so that a reader never sees half of it).
pub fn exit_status_lines(slurm_dir: &str) -> String {
    let mut s = String::new();
    s.push_str("status=$?\n");
    s.push_str(&format!("dir={}\n", sh_quote(slurm_dir)));
    s.push_str("task=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n");
    s.push_str(
        "echo \"$status\" > \"$dir/.$task.exit.tmp\" && mv -f \"$dir/.$task.exit.tmp\" \"$dir/$task.exit\"\n",
    );
    s
}

/// The `--array` value for exactly `tasks` (ascending task ids), with at most `limit` at
/// once: `0-3,5,7-9%8`.
pub fn task_list_spec(tasks: &[usize], limit: u32) -> String {
    let mut ranges: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        ranges.push(if i == j {
            tasks[i].to_string()
        } else {
            format!("{}-{}", tasks[i], tasks[j])
        });
        i = j + 1;
    }
    let list = ranges.join(",");
    if limit == 0 {
        list
    } else {
        format!("{list}%{limit}")
    }
}

/// `(first job index, task count)` of each array, none larger than `max_array_size`.
pub fn array_chunks(jobs: usize, max_array_size: usize) -> Vec<(usize, usize)> {
    let size = max_array_size.max(1);
    (0..jobs)
        .step_by(size)
        .map(|first| (first, size.min(jobs - first)))
        .collect()
}

/// One submitted array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedArray {
    /// SLURM's array job id.
    pub job_id: String,
    /// Plan index of the array's task 0.
    pub first_index: usize,
    /// Plan jobs the array spans: `first_index..first_index + count`.
    pub count: usize,
    /// The task ids submitted, when not every job of the span was (a rerun submits only the
    /// jobs that are not verified complete); `None`: tasks `0..count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<usize>>,
}

/// `<artifact_root>/slurm/submission.json`: which arrays run which jobs of which plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// [`SUBMISSION_FORMAT_VERSION`].
    pub format_version: u32,
    /// The plan's id.
    pub plan_id: String,
    /// The arrays, in plan order.
    pub arrays: Vec<SubmittedArray>,
}

/// A SLURM array task: `<array job id>_<task id>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId {
    /// The array's job id.
    pub job_id: String,
    /// The task's index in its array.
    pub task: usize,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.job_id, self.task)
    }
}

impl Submission {
    /// The task that runs plan job `index`, if it was submitted.
    pub fn task_of(&self, index: usize) -> Option<TaskId> {
        self.arrays
            .iter()
            .find(|a| {
                (a.first_index..a.first_index + a.count).contains(&index)
                    && a.tasks
                        .as_ref()
                        .is_none_or(|t| t.binary_search(&(index - a.first_index)).is_ok())
            })
            .map(|a| TaskId {
                job_id: a.job_id.clone(),
                task: index - a.first_index,
            })
    }

    /// `<slurm_dir>/submission.json`.
    pub fn path(artifact_root: &Path) -> PathBuf {
        artifact_root.join(SLURM_DIR).join(SUBMISSION_FILE)
    }

    /// Writes the record atomically.
    pub fn write(&self, artifact_root: &Path) -> Result<(), SlurmError> {
        let path = Submission::path(artifact_root);
        let text = crate::artifact::artifact_json(self).map_err(|e| SlurmError::Record {
            path: path.clone(),
            message: e.to_string(),
        })?;
        npz_contract::atomic::write_atomic(&path, text.as_bytes()).map_err(|e| SlurmError::Record {
            path,
            message: e.to_string(),
        })
    }

    /// Reads the record, if there is one (`Ok(None)`: this plan was not run through SLURM).
    pub fn read(artifact_root: &Path) -> Result<Option<Submission>, SlurmError> {
        let path = Submission::path(artifact_root);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SlurmError::Record {
                    path,
                    message: e.to_string(),
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SlurmError::Record {
                path,
                message: e.to_string(),
            })
    }
}

/// Why talking to SLURM failed.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The program could not be started.
    #[error(
        "cannot run `{program}`: {cause}; run this where the SLURM cluster's commands are \
         (a login node, with sbatch, squeue and scontrol on PATH)"
    )]
    Start {
        /// `sbatch`, `squeue`, `scontrol`.
        program: &'static str,
        /// The cause (in the message, not a `source`: a full error chain would say it twice).
        cause: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its output was not what was expected.
    #[error("`{command}` printed something unexpected: {output:?}")]
    Unexpected {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The submission record could not be read or written.
    #[error("submission record {}: {message}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// `program args...` as a person would type it (arguments quoted where the shell needs it).
fn command_line(program: &str, args: &[String]) -> String {
    let mut words = vec![program.to_string()];
    words.extend(args.iter().map(|a| crate::shell::shell_word(a)));
    words.join(" ")
}

fn run(program: &'static str, args: &[String]) -> Result<String, SlurmError> {
    let command = command_line(program, args);
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|cause| SlurmError::Start { program, cause })?;
    if !output.status.success() {
        return Err(SlurmError::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `MaxArraySize` from `scontrol show config` output.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The job id `sbatch --parsable` printed (`12345` or `12345;cluster`).
pub fn parse_sbatch_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// Task id -> state from `squeue -h -r -o %i|%T` output.
pub fn parse_squeue(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once('|')?;
            Some((id.trim().to_string(), state.trim().to_string()))
        })
        .collect()
}

/// `(JobState, ExitCode)` from `scontrol -o show job` output.
pub fn parse_scontrol_job(stdout: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).map(str::to_string))
    };
    Some((field("JobState=")?, field("ExitCode=")?))
}

/// What a scheduler says about tasks; [`SlurmCli`] asks the real one.
pub trait Scheduler {
    /// Tasks of these array jobs still queued or running: task id (`123_4`) -> state.
    fn queued(&self, job_ids: &[String]) -> Result<BTreeMap<String, String>, SlurmError>;
    /// State and exit code of a finished task, while SLURM still remembers it.
    fn task_state(&self, task: &TaskId) -> Option<(String, String)>;
}

/// The cluster, through `sbatch`, `squeue` and `scontrol`.
#[derive(Debug, Default)]
pub struct SlurmCli;

impl SlurmCli {
    /// The cluster's `MaxArraySize`.
    pub fn max_array_size(&self) -> Result<usize, SlurmError> {
        let args = vec!["show".to_string(), "config".to_string()];
        let out = run("scontrol", &args)?;
        parse_max_array_size(&out).ok_or_else(|| SlurmError::Unexpected {
            command: "scontrol show config".into(),
            output: "no MaxArraySize line".into(),
        })
    }

    /// Submits `script` as an array of `count` tasks whose task 0 runs plan job `first`;
    /// returns the array's job id.
    pub fn submit(
        &self,
        script: &Path,
        first: usize,
        count: usize,
        settings: &SlurmSettings,
    ) -> Result<String, SlurmError> {
        let tasks: Vec<usize> = (0..count).collect();
        self.submit_array(&ArrayRequest {
            script,
            tasks: &tasks,
            settings,
            dependency: None,
            script_args: &[first.to_string()],
        })
    }

    /// Submits `request.script` as an array of exactly `request.tasks`; returns the array's
    /// job id. With a dependency, SLURM cancels the array when the dependency can never be
    /// satisfied (`--kill-on-invalid-dep=yes`): a failed stage stops what depends on it.
    pub fn submit_array(&self, request: &ArrayRequest<'_>) -> Result<String, SlurmError> {
        let mut args = vec![
            "--parsable".to_string(),
            format!(
                "--array={}",
                task_list_spec(request.tasks, request.settings.array_limit)
            ),
        ];
        if let Some(dependency) = request.dependency {
            args.push(format!("--dependency={dependency}"));
            args.push("--kill-on-invalid-dep=yes".to_string());
        }
        args.extend(request.settings.extra_args.iter().cloned());
        args.push(request.script.to_string_lossy().into_owned());
        args.extend(request.script_args.iter().cloned());
        let out = run("sbatch", &args)?;
        parse_sbatch_job_id(&out).ok_or_else(|| SlurmError::Unexpected {
            command: command_line("sbatch", &args),
            output: out,
        })
    }

    /// Every task of these jobs that SLURM still lists (queued, running, or just ended):
    /// task id (`123_4`) -> (state, reason), from `squeue -h -r -t all -o %i|%T|%r`.
    pub fn job_states(
        &self,
        job_ids: &[String],
    ) -> Result<BTreeMap<String, (String, String)>, SlurmError> {
        let mut states = BTreeMap::new();
        for id in job_ids {
            let args: Vec<String> = ["-h", "-r", "-t", "all", "-j", id, "-o", "%i|%T|%r"]
                .map(String::from)
                .to_vec();
            match run("squeue", &args) {
                Ok(out) => states.extend(parse_squeue_reasons(&out)),
                // A job SLURM has forgotten is not listed.
                Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(states)
    }

    /// Cancels these jobs (`scancel`), every task of each.
    pub fn cancel(&self, job_ids: &[String]) -> Result<(), SlurmError> {
        if job_ids.is_empty() {
            return Ok(());
        }
        run("scancel", job_ids).map(|_| ())
    }
}

/// One array to submit: [`SlurmCli::submit_array`].
#[derive(Clone, Debug)]
pub struct ArrayRequest<'a> {
    /// The batch script.
    pub script: &'a Path,
    /// The task ids, ascending (each below the cluster's MaxArraySize).
    pub tasks: &'a [usize],
    /// Array limit and extra `sbatch` arguments (resources are in the script).
    pub settings: &'a SlurmSettings,
    /// `--dependency` (`afterok:12`, `aftercorr:12`, `afterany:12:13`).
    pub dependency: Option<&'a str>,
    /// Arguments after the script.
    pub script_args: &'a [String],
}

/// Task id -> (state, reason) from `squeue -h -r -o %i|%T|%r` output.
pub fn parse_squeue_reasons(stdout: &str) -> BTreeMap<String, (String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(3, '|');
            let id = parts.next()?.trim();
            let state = parts.next()?.trim();
            let reason = parts.next().unwrap_or("").trim();
            (!id.is_empty()).then(|| (id.to_string(), (state.to_string(), reason.to_string())))
        })
        .collect()
}

impl Scheduler for SlurmCli {
    fn queued(&self, job_ids: &[String]) -> Result<BTreeMap<String, String>, SlurmError> {
        let mut queued = BTreeMap::new();
        // One array at a time: squeue fails the whole query when one id is already purged.
        for id in job_ids {
            let args = vec![
                "-h".to_string(),
                "-r".to_string(),
                "-j".to_string(),
                id.clone(),
                "-o".to_string(),
                "%i|%T".to_string(),
            ];
            match run("squeue", &args) {
                Ok(out) => queued.extend(parse_squeue(&out)),
                // A job SLURM has forgotten is not queued.
                Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(queued)
    }

    fn task_state(&self, task: &TaskId) -> Option<(String, String)> {
        let args = vec![
            "-o".to_string(),
            "show".to_string(),
            "job".to_string(),
            task.to_string(),
        ];
        run("scontrol", &args)
            .ok()
            .and_then(|out| parse_scontrol_job(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_array_size() {
        assert_eq!(array_chunks(6, 1001), [(0, 6)]);
        assert_eq!(
            array_chunks(2500, 1001),
            [(0, 1001), (1001, 1001), (2002, 498)]
        );
        assert_eq!(array_chunks(4, 2), [(0, 2), (2, 2)]);
        assert_eq!(array_chunks(0, 10), []);
        let chunks = array_chunks(10_001, 7);
        assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), 10_001);
        assert!(chunks.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
    }

    #[test]
    fn parses_what_slurm_prints() {
        assert_eq!(
            parse_max_array_size("Foo = 1\nMaxArraySize            = 10001\n"),
            Some(10001)
        );
        assert_eq!(parse_max_array_size("nothing"), None);
        assert_eq!(parse_sbatch_job_id("12345\n").as_deref(), Some("12345"));
        assert_eq!(
            parse_sbatch_job_id("12345;cluster\n").as_deref(),
            Some("12345")
        );
        assert_eq!(parse_sbatch_job_id("Submitted batch job 1"), None);
        let queued = parse_squeue("3_2|RUNNING\n3_3|PENDING\n");
        assert_eq!(queued.get("3_3").map(String::as_str), Some("PENDING"));
        assert_eq!(
            parse_scontrol_job(
                "JobId=2 ArrayJobId=1 ArrayTaskId=0 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0"
            ),
            Some(("FAILED".to_string(), "3:0".to_string()))
        );
    }

    #[test]
    fn tasks_of_split_submissions() {
        let submission = Submission {
            format_version: SUBMISSION_FORMAT_VERSION,
            plan_id: "p".into(),
            arrays: vec![
                SubmittedArray {
                    job_id: "7".into(),
                    first_index: 0,
                    count: 2,
                    tasks: None,
                },
                SubmittedArray {
                    job_id: "9".into(),
                    first_index: 2,
                    count: 3,
                    tasks: Some(vec![0, 2]),
                },
            ],
        };
        let names: Vec<String> = (0..6)
            .map(|i| submission.task_of(i).map_or("-".into(), |t| t.to_string()))
            .collect();
        // Job 3 was verified complete: not submitted, so no task runs it.
        assert_eq!(names, ["7_0", "7_1", "9_0", "-", "9_2", "-"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(directive_quote(r#"a "b"\c"#), r#""a \"b\"\\c""#);
        assert_eq!(array_spec(6, 4), "0-5%4");
        assert_eq!(array_spec(1, 0), "0-0");
        assert_eq!(task_list_spec(&[0, 1, 2, 3], 4), array_spec(4, 4));
        assert_eq!(task_list_spec(&[0, 1, 2, 5, 7, 8, 9], 8), "0-2,5,7-9%8");
        assert_eq!(task_list_spec(&[4], 0), "4");
        let states = parse_squeue_reasons("5_1|PENDING|Dependency\n5_2|RUNNING|None\n");
        assert_eq!(
            states.get("5_1"),
            Some(&("PENDING".to_string(), "Dependency".to_string()))
        );
    }

    #[test]
    fn resources_become_directives() {
        let resources = Resources {
            partition: Some("gpu".into()),
            time_limit: Some("4:00:00".into()),
            mem: Some("32G".into()),
            gres: Some("gpu:1".into()),
            cpus_per_task: Some(8),
        };
        assert_eq!(
            resource_directives(&resources),
            "#SBATCH --partition=\"gpu\"\n#SBATCH --time=\"4:00:00\"\n#SBATCH --mem=\"32G\"\n\
             #SBATCH --gres=\"gpu:1\"\n#SBATCH --cpus-per-task=\"8\"\n"
        );
        assert_eq!(resource_directives(&Resources::default()), "");
    }
}
