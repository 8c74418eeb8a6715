//! Planning, running jobs (dry, fake backends, the trainer child process), results and
//! cancellation, on real folder trees.

use super::*;
use job_matrix::JobFilter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use study_design::{Algorithm, Study};

/// An NPZ with 8 positions (`xcoords`): enough for planning, which reads only headers.
fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = npz_contract::NpzWriter::create(path, npz_contract::Compression::Stored).unwrap();
    w.add("xcoords", &ndarray::Array1::<f64>::zeros(8)).unwrap();
    w.finish().unwrap();
}

/// Phase C for every dose of the default design, Phase D with dense views only (the seed's
/// scenario), under a folder with a space in its name.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("study root");
        for dose in ["dose_1000", "dose_10000", "dose_100000"] {
            touch(&root.join("phase_c").join(dose).join("patched_train.npz"));
            touch(&root.join("phase_c").join(dose).join("patched_test.npz"));
            touch(
                &root
                    .join("phase_d")
                    .join(dose)
                    .join("dense/dense_train.npz"),
            );
            touch(&root.join("phase_d").join(dose).join("dense/dense_test.npz"));
        }
        std::fs::create_dir_all(root.join("artifacts")).unwrap();
        Tree { _dir: dir, root }
    }

    fn plan(&self, backend: BackendKind, dry_run: bool, filters: JobFilter) -> Plan {
        let study = Study::default();
        let c = self.root.join("phase_c");
        let d = self.root.join("phase_d");
        let a = self.root.join("artifacts");
        Plan::resolve(&PlanRequest {
            study: &study,
            phase_c_root: &c,
            phase_d_root: &d,
            artifact_root: &a,
            filters,
            backend,
            dry_run,
            strict: false,
            overrides: ConfigOverrides {
                epochs: Some(3),
                ..ConfigOverrides::default()
            },
            trainer: Some(TrainerProgram::resolve(None, None)),
            timestamp: manifest_timestamp(Some("1762245266")).unwrap(),
            pinn: crate::ptychopinn::PinnOverrides::default(),
            python: None,
        })
        .unwrap()
    }
}

fn no_progress(_: &str) {}

/// A run's context with no progress output, one thread a job and nothing lent.
fn quiet_context<'a>(plan_id: &'a str, cancel: &'a CancelToken) -> RunContext<'a> {
    RunContext {
        plan_id,
        cancel,
        progress: &no_progress,
        threads_per_job: 1,
        spare_cores: None,
        limits: JobLimits::default(),
    }
}

/// Runs every job of `plan` with `backend` on `threads` threads; returns the results and the
/// order in which `on_finished` saw the jobs.
fn run_all(plan: &Plan, backend: &dyn Backend, threads: usize) -> (Vec<JobResult>, Vec<usize>) {
    let cancel = CancelToken::new();
    let id = Plan::id_of(plan.to_json().unwrap().as_bytes());
    let ctx = quiet_context(&id, &cancel);
    let seen = Mutex::new(Vec::new());
    let results = execute(plan, threads, backend, &ctx, &|job, _| {
        seen.lock().unwrap().push(job.index)
    });
    (results, seen.into_inner().unwrap())
}

#[test]
fn timestamps() {
    assert_eq!(
        manifest_timestamp(Some("1762245266")).unwrap(),
        "2025-11-04T08:34:26.000000Z"
    );
    assert_eq!(
        manifest_timestamp(Some("0")).unwrap(),
        "1970-01-01T00:00:00.000000Z"
    );
    let now = manifest_timestamp(None).unwrap();
    assert_eq!(now.len(), 27, "{now}");
    assert!(now.ends_with('Z'));
    let err = manifest_timestamp(Some("yesterday")).unwrap_err();
    assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
}

#[test]
fn plan_resolves_configs() {
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Tensorflow, false, JobFilter::default());
    assert_eq!(plan.enumerated_count, 6);
    assert_eq!(plan.jobs.len(), 6);
    assert_eq!(plan.skipped_views.len(), 3);
    assert_eq!(plan.timestamp, "2025-11-04T08:34:26.000000Z");
    let dense = &plan.jobs[1];
    assert_eq!(dense.index, 1);
    let config = &dense.config;
    assert_eq!(config.backend, BackendKind::Tensorflow);
    assert_eq!((config.dose, config.nphotons), (1000.0, 1000.0));
    assert_eq!((config.view.as_str(), config.gridsize), ("dense", 2));
    assert_eq!(config.epochs, 3);
    assert_eq!(config.neighbor_count, 7);
    assert_eq!(config.solver.seed, 123, "defaults to rng_seeds.grouping");
    assert_eq!(config.solver.algorithm, Algorithm::Ml);
    assert_eq!(config.output_dir, dense.job.artifact_dir);
    assert_eq!(config.train_data_file, dense.job.train_data_path);
    assert_eq!(
        config.path(),
        tree.root
            .join("artifacts/dose_1000/dense/gs2/training_config.json")
    );
    assert_eq!(
        config.trainer,
        Some(TrainerProgram {
            program: "ptycho_train".into(),
            source: TrainerSource::Path
        })
    );
    let native = tree.plan(BackendKind::Native, false, JobFilter::default());
    assert_eq!(native.jobs[0].config.trainer, None);
    // Configs survive their own file format.
    let text = config.to_json().unwrap();
    assert_eq!(&TrainingConfig::from_json(&text).unwrap(), config);
}

#[test]
fn invalid_overrides_are_reported() {
    let tree = Tree::new();
    let study = Study::default();
    let err = Plan::resolve(&PlanRequest {
        study: &study,
        phase_c_root: &tree.root.join("phase_c"),
        phase_d_root: &tree.root.join("phase_d"),
        artifact_root: &tree.root.join("artifacts"),
        filters: JobFilter::default(),
        backend: BackendKind::Native,
        dry_run: true,
        strict: false,
        overrides: ConfigOverrides {
            epochs: Some(0),
            alpha: Some(2.0),
            ..ConfigOverrides::default()
        },
        trainer: None,
        timestamp: "t".into(),
        pinn: crate::ptychopinn::PinnOverrides::default(),
        python: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("solver.alpha=2 must be in (0, 1]"), "{err}");
    assert!(err.contains("solver.epochs must be at least 1"), "{err}");
}

#[test]
fn trainer_program_resolution_order() {
    let flag = Path::new("/opt/pinn/bin/ptycho_train");
    let env = Some(std::ffi::OsString::from("/env/trainer"));
    assert_eq!(
        TrainerProgram::resolve(Some(flag), env.clone()).source,
        TrainerSource::Flag
    );
    let from_env = TrainerProgram::resolve(None, env);
    assert_eq!(
        (from_env.program.as_path(), from_env.source),
        (Path::new("/env/trainer"), TrainerSource::Env)
    );
    let empty = TrainerProgram::resolve(None, Some("".into()));
    assert_eq!(
        (empty.program.as_path(), empty.source),
        (Path::new("ptycho_train"), TrainerSource::Path)
    );
}

#[test]
fn plan_file_round_trip_and_errors() {
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Pytorch, false, JobFilter::default());
    let id = plan.write().unwrap();
    let (read, read_id) = Plan::read(&plan.path()).unwrap();
    assert_eq!(read, plan);
    assert_eq!(read_id, id);
    assert_eq!(id.len(), 64);
    assert_eq!(plan.job(5, &plan.path()).unwrap().index, 5);
    let err = plan.job(6, &plan.path()).unwrap_err().to_string();
    assert!(err.starts_with("job index 6 is outside the plan "), "{err}");
    assert!(err.ends_with("which has 6 job(s) (0 to 5)"), "{err}");

    let bad = tree.root.join("bad.json");
    std::fs::write(&bad, "{\"format_version\": 99}").unwrap();
    let err = Plan::read(&bad).unwrap_err().to_string();
    assert!(err.contains("format_version 99 is not 1"), "{err}");
    std::fs::write(&bad, &plan.to_json().unwrap()[..200]).unwrap();
    let err = Plan::read(&bad).unwrap_err().to_string();
    assert!(err.contains("is not a usable plan: not JSON"), "{err}");
    let err = Plan::read(&tree.root.join("none.json"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("reading "), "{err}");
}

#[test]
fn dry_run_writes_config_log_and_result() {
    let tree = Tree::new();
    let plan = tree.plan(
        BackendKind::Tensorflow,
        true,
        JobFilter {
            dose: Some(1e3),
            ..JobFilter::default()
        },
    );
    let (results, order) = run_all(&plan, &PanicBackend, 1);
    assert_eq!(order, [0, 1]);
    for (planned, result) in plan.jobs.iter().zip(&results) {
        let JobResult::DryRun(summary) = result else {
            panic!("{result:?}")
        };
        assert_eq!(summary.view, planned.job.view);
        assert_eq!(summary.log_path, planned.job.log_path);
        let config = std::fs::read_to_string(planned.config.path()).unwrap();
        assert_eq!(TrainingConfig::from_json(&config).unwrap(), planned.config);
        let log = std::fs::read_to_string(&planned.job.log_path).unwrap();
        assert!(log.contains(LOG_MARKER), "{log}");
        assert!(log.contains("Resolved config: "), "{log}");
        assert!(log.contains("DRY RUN"), "{log}");
        let record = std::fs::read_to_string(planned.job.artifact_dir.join(RESULT_FILE)).unwrap();
        let record = ResultRecord::from_json(&record).unwrap();
        assert_eq!(&record.result, result);
        assert_eq!(record.index, planned.index);
    }
}

/// Regression: a file where one job's artifact dir should be stopped the whole run (clearing
/// earlier results failed with "Not a directory") instead of failing that job alone.
#[test]
fn a_blocked_artifact_dir_fails_only_its_job() {
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Tensorflow, true, JobFilter::default());
    let blocked = &plan.jobs[1].job.artifact_dir;
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    touch(blocked);
    clear_results(&plan).unwrap();
    let (results, _) = run_all(&plan, &PanicBackend, 2);
    let statuses: Vec<&str> = results.iter().map(JobResult::status).collect();
    assert_eq!(
        statuses,
        [
            "dry_run", "failed", "dry_run", "dry_run", "dry_run", "dry_run"
        ]
    );
    assert_eq!(
        results[1].error().unwrap(),
        format!(
            "cannot create the artifact dir {}: File exists (os error 17); a file is in the way: \
             move it, or give another --artifact-root",
            blocked.display()
        )
    );
}

/// A backend that must never be called.
struct PanicBackend;
impl Backend for PanicBackend {
    fn name(&self) -> &'static str {
        "panic"
    }
    fn train(
        &self,
        _: &TrainingConfig,
        _: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        panic!("a dry run must not reach the backend")
    }
}

/// A backend that checks its config is on disk, writes a bundle of `size` bytes named after
/// the job, and fails the jobs of `fail_view`.
struct FakeBackend {
    fail_view: Option<&'static str>,
    size: usize,
}

impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let on_disk = std::fs::read_to_string(config.path())
            .map_err(|e| BackendError::failed(format!("config not written first: {e}")))?;
        assert_eq!(&TrainingConfig::from_json(&on_disk).unwrap(), config);
        ctx.log_line("fake training");
        if Some(config.view.as_str()) == self.fail_view {
            return Err(BackendError::failed(format!(
                "bad data in {}",
                config.train_data_file.display()
            )));
        }
        let bundle = config.output_dir.join("bundle.zip");
        let bytes: Vec<u8> = format!("{}{}", config.view, config.dose)
            .bytes()
            .cycle()
            .take(self.size)
            .collect();
        std::fs::write(&bundle, bytes).unwrap();
        Ok(BackendOutcome {
            bundle,
            final_loss: Some(0.125),
            epochs_completed: config.epochs,
            loss_history: Some(serde_json::json!([0.5, 0.25, 0.125])),
            metrics: Some(serde_json::json!({})),
            solver: None,
            reconstruction: None,
            scoring_error: None,
            pinn: None,
        })
    }
}

#[test]
fn failing_job_does_not_stop_the_others_and_threads_do_not_change_results() {
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let backend = FakeBackend {
        fail_view: Some("dense"),
        size: 70_000,
    };
    let (one, order_one) = run_all(&plan, &backend, 1);
    let logs_one: Vec<String> = plan
        .jobs
        .iter()
        .map(|j| std::fs::read_to_string(&j.job.log_path).unwrap())
        .collect();
    let (two, order_two) = run_all(&plan, &backend, 2);
    assert_eq!(one, two);
    assert_eq!(order_one, [0, 1, 2, 3, 4, 5]);
    assert_eq!(order_two, order_one);
    for (planned, result) in plan.jobs.iter().zip(&one) {
        match (planned.job.view.as_str(), result) {
            ("baseline", JobResult::Success(r)) => {
                assert_eq!(r.bundle_path, "bundle.zip");
                assert_eq!(r.bundle_size_bytes, 70_000);
                let bytes = std::fs::read(planned.job.artifact_dir.join("bundle.zip")).unwrap();
                assert_eq!(r.bundle_sha256, sha256_bytes(&bytes));
                assert_eq!(r.epochs_completed, 3);
                assert_eq!(r.final_loss, Some(0.125));
            }
            ("dense", JobResult::Failed(r)) => {
                assert!(r.error.starts_with("bad data in "), "{}", r.error);
                assert_eq!(r.backend, "native");
            }
            other => panic!("{other:?}"),
        }
    }
    for (planned, log) in plan.jobs.iter().zip(&logs_one) {
        assert!(log.contains("fake training"), "{log}");
        let outcome = if planned.job.view == "dense" {
            "Outcome: failed — bad data"
        } else {
            "Outcome: success — bundle bundle.zip (70000 bytes"
        };
        assert!(log.contains(outcome), "{log}");
        assert_eq!(
            &std::fs::read_to_string(&planned.job.log_path).unwrap(),
            log,
            "logs are deterministic"
        );
    }
}

/// Jobs start largest first (by their two input files' bytes, ties in matrix order), so that
/// a large job does not start last and run alone while the other cores idle; results are
/// still reported in matrix order.
#[test]
fn the_largest_jobs_start_first_and_results_keep_matrix_order() {
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let n = plan.jobs.len();
    let big = plan
        .jobs
        .iter()
        .position(|j| j.job.view == "dense" && j.job.dose == 1e4)
        .unwrap();
    for path in [
        &plan.jobs[big].job.train_data_path,
        &plan.jobs[big].job.test_data_path,
    ] {
        let mut w =
            npz_contract::NpzWriter::create(path, npz_contract::Compression::Stored).unwrap();
        w.add("xcoords", &ndarray::Array1::<f64>::zeros(512))
            .unwrap();
        w.finish().unwrap();
    }
    let backend = FakeBackend {
        fail_view: None,
        size: 1_000,
    };
    let cancel = CancelToken::new();
    let id = Plan::id_of(plan.to_json().unwrap().as_bytes());
    let ctx = quiet_context(&id, &cancel);
    let (started, seen) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
    execute_resumed(
        &plan,
        1,
        &backend,
        &ctx,
        vec![None; n],
        &|i| started.lock().unwrap().push(i),
        &|job, _| seen.lock().unwrap().push(job.index),
    );
    let mut want = vec![big];
    want.extend((0..n).filter(|&i| i != big));
    assert_eq!(started.into_inner().unwrap(), want);
    assert_eq!(seen.into_inner().unwrap(), (0..n).collect::<Vec<_>>());
}

/// Issue 25: resume and `verify` once checked a job with two copies of the same rules, which
/// disagreed. Now one job check returns every finding of a job with several faults (here its
/// config changed and its bundle was tampered with), and resume reruns it for the first.
#[test]
fn the_job_check_finds_every_fault_and_resume_acts_on_the_first() {
    use crate::check::{Depth, Expected, Finding, check_job};
    use crate::resume::{Decision, decide};
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let backend = FakeBackend {
        fail_view: None,
        size: 1000,
    };
    let (results, _) = run_all(&plan, &backend, 1);
    let JobResult::Success(trained) = &results[0] else {
        panic!("{:?}", results[0]);
    };
    let dir = &plan.jobs[0].job.artifact_dir;
    let bundle = dir.join(&trained.bundle_path);
    std::fs::write(&bundle, b"tampered").unwrap();
    // The same plan with other epochs for this job: its config changed too.
    let mut changed = plan.clone();
    changed.jobs[0].config.epochs = 4;
    let recorded_config = sha256_bytes(plan.jobs[0].config.to_json().unwrap().as_bytes());
    let new_text = changed.jobs[0].config.to_json().unwrap();
    let config = &changed.jobs[0].config;
    let expected = Expected {
        dir,
        dose: config.dose,
        view: &config.view,
        gridsize: config.gridsize,
        claimed: None,
        config: Ok(new_text.as_bytes()),
        inputs: [Ok(&config.train_data_file), Ok(&config.test_data_file)],
        threads: 1,
    };
    let all = check_job(&expected, Depth::All);
    assert_eq!(
        all.findings,
        [
            Finding::ConfigDiffers {
                recorded: recorded_config
            },
            Finding::BundleAltered {
                path: bundle.clone(),
                recorded: (trained.bundle_sha256.clone(), 1000),
                now: (sha256_bytes(b"tampered"), 8),
            },
        ]
    );
    assert_eq!(all.hashed, 3, "both inputs and the bundle");
    assert_eq!(all.record.as_ref().map(|r| &r.result), Some(&results[0]));
    // Resume stops at the first finding, hashing nothing, and says it in its words.
    let first = check_job(&expected, Depth::First);
    assert_eq!(first.findings, all.findings[..1]);
    assert_eq!(first.hashed, 0);
    let decisions = decide(&changed, false, 1);
    assert_eq!(
        decisions[0],
        Decision::Run("config changed (epochs 3 -> 4)".to_string())
    );
    assert!(
        decisions[1..].iter().all(Decision::is_skip),
        "{decisions:?}"
    );
    // With the config it ran with, the next finding is the first.
    assert_eq!(
        decide(&plan, false, 1)[0],
        Decision::Run("bundle altered".to_string())
    );
}

#[test]
fn bad_bundles_fail_the_job() {
    let tree = Tree::new();
    let plan = tree.plan(
        BackendKind::Native,
        false,
        JobFilter {
            dose: Some(1e3),
            view: Some("baseline".into()),
            gridsize: None,
        },
    );
    let (results, _) = run_all(
        &plan,
        &FakeBackend {
            fail_view: None,
            size: 0,
        },
        1,
    );
    let error = results[0].error().unwrap();
    assert!(error.contains("wrote an empty bundle"), "{error}");

    struct Outside;
    impl Backend for Outside {
        fn name(&self) -> &'static str {
            "outside"
        }
        fn train(
            &self,
            config: &TrainingConfig,
            _: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            let bundle = config.output_dir.parent().unwrap().join("elsewhere.zip");
            std::fs::write(&bundle, b"x").unwrap();
            Ok(BackendOutcome {
                bundle,
                final_loss: None,
                epochs_completed: 1,
                loss_history: None,
                metrics: None,
                solver: None,
                reconstruction: None,
                scoring_error: None,
                pinn: None,
            })
        }
    }
    let (results, _) = run_all(&plan, &Outside, 1);
    let error = results[0].error().unwrap();
    assert!(error.contains("outside the job's artifact dir"), "{error}");

    struct Crashes;
    impl Backend for Crashes {
        fn name(&self) -> &'static str {
            "crashes"
        }
        fn train(
            &self,
            _: &TrainingConfig,
            _: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            panic!("index out of bounds")
        }
    }
    let (results, _) = run_all(&plan, &Crashes, 1);
    let error = results[0].error().unwrap();
    assert!(
        error.starts_with("the crashes backend crashed (a bug"),
        "{error}"
    );
    assert!(error.ends_with("index out of bounds"), "{error}");
}

#[test]
fn native_placeholder_fails_clearly() {
    let tree = Tree::new();
    let plan = tree.plan(
        BackendKind::Native,
        false,
        JobFilter {
            dose: Some(1e4),
            view: Some("dense".into()),
            gridsize: None,
        },
    );
    let backend = backend_for(BackendKind::Native);
    let (results, _) = run_all(&plan, backend.as_ref(), 1);
    assert_eq!(results[0].status(), "failed");
}

#[test]
fn cancellation_interrupts_running_and_pending_jobs() {
    struct CancelsDuringFirst;
    impl Backend for CancelsDuringFirst {
        fn name(&self) -> &'static str {
            "cancels"
        }
        fn train(
            &self,
            _: &TrainingConfig,
            ctx: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            ctx.cancel_for_test();
            assert!(ctx.is_cancelled());
            Err(BackendError::Interrupted)
        }
    }
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let (results, order) = run_all(&plan, &CancelsDuringFirst, 1);
    assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    let started: Vec<bool> = results
        .iter()
        .map(|r| match r {
            JobResult::Interrupted(i) => i.started,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(started, [true, false, false, false, false, false]);
    let error = results[0].error().unwrap();
    assert!(
        error.starts_with("interrupted by a cancellation while it was running"),
        "{error}"
    );
    // The command to resume with runs as shown: the plan's path has a space, so it is quoted.
    assert!(
        error.ends_with(&format!(
            "this job alone with `dose-overlap run-job --plan '{}' --index 0`",
            plan.path().display()
        )),
        "{error}"
    );
    // The interrupted job recorded its result; the ones never started did not run at all.
    assert!(plan.jobs[0].job.artifact_dir.join(RESULT_FILE).is_file());
    assert!(!plan.jobs[1].job.artifact_dir.exists());
}

#[test]
fn results_round_trip_in_every_shape() {
    let results = [
        JobResult::DryRun(DryRunSummary {
            dose: 1000.0,
            view: "dense".into(),
            gridsize: 2,
            train_data_path: "c/a b.npz".into(),
            test_data_path: "c/t.npz".into(),
            artifact_dir: "x".into(),
            log_path: "x/train.log".into(),
            backend: "tensorflow".into(),
        }),
        JobResult::Success(TrainedResult {
            backend: "native".into(),
            final_loss: Some(0.1 + 0.2),
            epochs_completed: 20,
            bundle_path: "recon.zip".into(),
            bundle_sha256: "ab".repeat(32),
            bundle_size_bytes: 1,
            loss_history: Some(serde_json::json!({"train": [1.0, 1.0 / 3.0]})),
            metrics: Some(
                serde_json::json!({"test": {"phase": {"ssim": 0.987_654_321_012_345_6}}}),
            ),
            solver: Some(serde_json::json!({"algorithm": "ml"})),
            reconstruction_path: None,
            scoring_error: None,
            pinn: None,
        }),
        JobResult::Success(TrainedResult {
            backend: "tensorflow".into(),
            final_loss: None,
            epochs_completed: 5,
            bundle_path: "wts.h5.zip".into(),
            bundle_sha256: "0".repeat(64),
            bundle_size_bytes: 10,
            loss_history: None,
            metrics: None,
            solver: None,
            reconstruction_path: Some("pinn_reconstruction.npz".into()),
            scoring_error: Some("no Python".into()),
            pinn: None,
        }),
        JobResult::Failed(FailedResult {
            backend: "pytorch".into(),
            error: "no".into(),
            loss_history: None,
        }),
        JobResult::Failed(FailedResult {
            backend: "native".into(),
            error: "diverged at epoch 2".into(),
            loss_history: Some(serde_json::json!([0.5, 40.0])),
        }),
        JobResult::Interrupted(InterruptedResult {
            backend: "native".into(),
            started: false,
            error: "stop".into(),
        }),
    ];
    for result in results {
        let record = ResultRecord {
            format_version: RESULT_FORMAT_VERSION,
            plan_id: "p".into(),
            index: 3,
            dose: 1e4,
            view: "dense".into(),
            gridsize: 2,
            result,
            config_sha256: None,
            inputs: None,
        };
        let text = record.to_json().unwrap();
        assert!(
            text.contains(&format!("\"status\": \"{}\"", record.result.status())),
            "{text}"
        );
        let back = ResultRecord::from_json(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.to_json().unwrap(), text);
    }
    let err = ResultRecord::from_json(r#"{"format_version": 2}"#).unwrap_err();
    assert!(err.contains("format_version 2 is not 1"), "{err}");
    let err = ResultRecord::from_json(
        r#"{"format_version": 1, "plan_id": "p", "index": 0, "dose": 1.0, "view": "v", "gridsize": 1,
            "result": {"status": "success", "backend": "b", "surprise": 1}}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("surprise") || err.contains("missing field"),
        "{err}"
    );
}

#[cfg(unix)]
mod child_process {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn plan_with(tree: &Tree, trainer: TrainerProgram) -> Plan {
        let mut plan = tree.plan(
            BackendKind::Pytorch,
            false,
            JobFilter {
                dose: Some(1e3),
                ..JobFilter::default()
            },
        );
        for job in &mut plan.jobs {
            job.config.trainer = Some(trainer.clone());
        }
        plan
    }

    #[test]
    fn fake_trainer_success() {
        let tree = Tree::new();
        // Prints Keras-style progress on both streams, checks its config was written first,
        // and writes the bundle where --output_dir says.
        let trainer = script(
            &tree.root,
            "fake trainer.sh",
            r#"
while [ $# -gt 0 ]; do
  case "$1" in --output_dir) out="$2";; --nepochs) n="$2";; --backend) b="$2";; esac; shift 2
done
test -f "$out/training_config.json" || { echo "no config" >&2; exit 7; }
echo "backend $b"
echo "Epoch 1/$n"; echo " - loss: 0.5000 - val_loss: 0.9" >&2
echo "Epoch $n/$n"; echo " - loss: 0.2500"
printf 'weights' > "$out/wts.h5.zip"
"#,
        );
        let plan = plan_with(
            &tree,
            TrainerProgram {
                program: trainer,
                source: TrainerSource::Flag,
            },
        );
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 2);
        for (planned, result) in plan.jobs.iter().zip(&results) {
            let JobResult::Success(r) = result else {
                panic!("{result:?}")
            };
            assert_eq!(
                (r.backend.as_str(), r.bundle_path.as_str()),
                ("pytorch", "wts.h5.zip")
            );
            assert_eq!((r.epochs_completed, r.final_loss), (3, Some(0.25)));
            assert_eq!(r.bundle_sha256, sha256_bytes(b"weights"));
            assert_eq!(r.bundle_size_bytes, 7);
            let log = std::fs::read_to_string(&planned.job.log_path).unwrap();
            assert!(
                log.contains("backend pytorch\nEpoch 1/3\n - loss: 0.5000"),
                "{log}"
            );
            assert!(log.contains("--nphotons 1000.0 --nepochs 3"), "{log}");
            // The design's subsampling seed, PtychoPINN's one seed (issue 22).
            assert!(log.contains("--subsample_seed 456 "), "{log}");
            // Regression: the real trainer rejects --torch-accelerator without a learning rate.
            assert!(
                log.contains("--torch-accelerator auto --torch-learning-rate 0.001"),
                "{log}"
            );
            assert!(log.find(LOG_MARKER).unwrap() < log.find("backend pytorch").unwrap());
            assert!(
                log.trim_end().ends_with("epoch(s), final loss 0.25"),
                "{log}"
            );
        }
    }

    #[test]
    fn trainer_failures_are_actionable() {
        let tree = Tree::new();
        let missing = TrainerProgram::resolve(None, None);
        let mut plan = plan_with(&tree, missing);
        for job in &mut plan.jobs {
            job.config.trainer.as_mut().unwrap().program = "ptycho_train_not_installed_here".into();
        }
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 1);
        let error = results[0].error().unwrap();
        assert!(error.starts_with("cannot start the PtychoPINN trainer `ptycho_train_not_installed_here` (looked up on PATH): not found; install PtychoPINN"), "{error}");
        assert!(
            error.contains("--trainer PATH") && error.contains("--backend native"),
            "{error}"
        );

        let crash = script(
            &tree.root,
            "crash.sh",
            "echo 'ValueError: bad npz' >&2\nexit 3\n",
        );
        let plan = plan_with(
            &tree,
            TrainerProgram {
                program: crash,
                source: TrainerSource::Env,
            },
        );
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 1);
        let error = results[0].error().unwrap();
        assert!(error.contains("(from $PTYCHO_TRAIN) ended with exit status 3; its last output line: `ValueError: bad npz`; see the job log "), "{error}");

        let lazy = script(&tree.root, "lazy.sh", "exit 0\n");
        let plan = plan_with(
            &tree,
            TrainerProgram {
                program: lazy,
                source: TrainerSource::Flag,
            },
        );
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 1);
        let error = results[0].error().unwrap();
        assert!(
            error.contains("exited 0 but wrote no wts.h5.zip"),
            "{error}"
        );

        let not_exec = tree.root.join("plain.txt");
        std::fs::write(&not_exec, "x").unwrap();
        let plan = plan_with(
            &tree,
            TrainerProgram {
                program: not_exec,
                source: TrainerSource::Flag,
            },
        );
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 1);
        let error = results[0].error().unwrap();
        assert!(
            error.contains("permission denied (is it executable?"),
            "{error}"
        );
    }

    #[test]
    fn stale_bundle_is_not_taken_for_a_new_one() {
        let tree = Tree::new();
        let fails = script(&tree.root, "fails.sh", "exit 0\n");
        let plan = plan_with(
            &tree,
            TrainerProgram {
                program: fails,
                source: TrainerSource::Flag,
            },
        );
        let dir = &plan.jobs[0].job.artifact_dir;
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("wts.h5.zip"), b"old weights").unwrap();
        let (results, _) = run_all(&plan, &PtychoPinnBackend::new(BackendKind::Pytorch), 1);
        assert_eq!(results[0].status(), "failed");
        assert!(!dir.join("wts.h5.zip").exists());
    }
}

mod collecting {
    use super::*;
    use crate::slurm::{Scheduler, SlurmError, Submission, SubmittedArray, TaskId};
    use std::collections::BTreeMap;

    /// A scheduler that reports fixed queue states and task states.
    struct FakeScheduler {
        queued: BTreeMap<String, String>,
        states: BTreeMap<String, (String, String)>,
    }

    impl Scheduler for FakeScheduler {
        fn queued(&self, _: &[String]) -> Result<BTreeMap<String, String>, SlurmError> {
            Ok(self.queued.clone())
        }
        fn task_state(&self, task: &TaskId) -> Option<(String, String)> {
            self.states.get(&task.to_string()).cloned()
        }
    }

    fn finished_plan(tree: &Tree) -> (Plan, String, Vec<JobResult>) {
        let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
        let id = plan.write().unwrap();
        let cancel = CancelToken::new();
        let ctx = quiet_context(&id, &cancel);
        let backend = FakeBackend {
            fail_view: Some("dense"),
            size: 10,
        };
        let results = execute(&plan, 2, &backend, &ctx, &|_, _| {});
        (plan, id, results)
    }

    #[test]
    fn results_read_back_equal_the_ones_returned() {
        let tree = Tree::new();
        let (plan, id, results) = finished_plan(&tree);
        let none = FakeScheduler {
            queued: BTreeMap::new(),
            states: BTreeMap::new(),
        };
        let collected = collect(&plan, &id, None, &none).unwrap();
        assert_eq!(collected.results, results);
        assert!(collected.pending.is_empty());
        // Results of another plan are not this plan's.
        let other = collect(&plan, &"0".repeat(64), None, &none).unwrap();
        let error = other.results[0].error().unwrap();
        assert!(error.starts_with("no result ("), "{error}");
        assert!(
            error.contains("belongs to another plan (an earlier run)"),
            "{error}"
        );
    }

    #[test]
    fn slurm_tasks_pending_failed_and_missing() {
        let tree = Tree::new();
        let (plan, id, _) = finished_plan(&tree);
        let submission = Submission {
            format_version: 1,
            plan_id: id.clone(),
            arrays: vec![
                SubmittedArray {
                    job_id: "41".into(),
                    first_index: 0,
                    count: 4,
                    tasks: None,
                },
                SubmittedArray {
                    job_id: "42".into(),
                    first_index: 4,
                    count: 2,
                    tasks: None,
                },
            ],
        };
        // Job 0 lost its result; job 5 is still queued (its old result must not count).
        std::fs::remove_file(plan.jobs[0].job.artifact_dir.join(RESULT_FILE)).unwrap();
        let scheduler = FakeScheduler {
            queued: BTreeMap::from([("42_1".to_string(), "PENDING".to_string())]),
            states: BTreeMap::from([
                (
                    "41_0".to_string(),
                    ("TIMEOUT".to_string(), "0:15".to_string()),
                ),
                (
                    "41_1".to_string(),
                    ("FAILED".to_string(), "1:0".to_string()),
                ),
            ]),
        };
        let collected = collect(&plan, &id, Some(&submission), &scheduler).unwrap();
        assert_eq!(
            collected.pending,
            [PendingTask {
                index: 5,
                task: "42_1".into(),
                state: "PENDING".into()
            }]
        );
        let error = collected.results[0].error().unwrap();
        let root = tree.root.join("artifacts");
        assert_eq!(
            error,
            format!(
                "SLURM task 41_0 ended without a result (no result.json): state TIMEOUT, exit \
                 code 0:15; see its log {}",
                root.join("slurm/41_0.log").display()
            )
        );
        let dense = collected.results[1].error().unwrap();
        assert!(dense.starts_with("bad data in "), "{dense}");
        assert!(
            dense.ends_with(&format!(
                "(SLURM task 41_1: state FAILED, exit code 1:0; log {})",
                root.join("slurm/41_1.log").display()
            )),
            "{dense}"
        );
        assert_eq!(collected.results[2].status(), "success");
        assert_eq!(collected.results[4].status(), "success");
    }
}

#[test]
fn backends_see_their_share_of_threads() {
    struct Threads(Mutex<Vec<usize>>);
    impl Backend for Threads {
        fn name(&self) -> &'static str {
            "threads"
        }
        fn train(
            &self,
            _: &TrainingConfig,
            ctx: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            self.0.lock().unwrap().push(ctx.threads());
            Err(BackendError::failed("counted"))
        }
    }
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let cancel = CancelToken::new();
    let backend = Threads(Mutex::new(Vec::new()));
    for (given, seen) in [(3, 3), (0, 1)] {
        let ctx = RunContext {
            plan_id: "p",
            cancel: &cancel,
            progress: &no_progress,
            threads_per_job: given,
            spare_cores: None,
            limits: JobLimits::default(),
        };
        run_job(&plan, 0, &backend, &ctx);
        assert_eq!(backend.0.lock().unwrap().pop(), Some(seen));
    }
}

/// Issue 27, item 3: a worker that finds no job left lends its cores to the jobs still
/// running, and every core lent comes back.
#[test]
fn workers_with_no_job_left_lend_their_cores_to_the_running_ones() {
    struct Borrower(Mutex<Vec<bool>>);
    impl Backend for Borrower {
        fn name(&self) -> &'static str {
            "borrower"
        }
        fn train(
            &self,
            config: &TrainingConfig,
            ctx: &mut JobContext<'_>,
        ) -> Result<BackendOutcome, BackendError> {
            // The first job waits (up to 20 s) for the other worker to run out of jobs.
            if config.output_dir.ends_with("gs1") && config.dose == 1e3 {
                let lender = ctx.lender();
                let start = std::time::Instant::now();
                let mut got = false;
                while !got && start.elapsed() < Duration::from_secs(20) {
                    got = lender.borrow();
                    std::thread::sleep(Duration::from_millis(5));
                }
                if got {
                    lender.give_back();
                }
                self.0.lock().unwrap().push(got);
            }
            Err(BackendError::failed("counted"))
        }
    }
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    assert!(plan.jobs.len() >= 2);
    let cancel = CancelToken::new();
    let spare = crate::SpareCores::new();
    let ctx = RunContext {
        plan_id: "p",
        cancel: &cancel,
        progress: &no_progress,
        threads_per_job: 1,
        spare_cores: Some(&spare),
        limits: JobLimits::default(),
    };
    let backend = Borrower(Mutex::new(Vec::new()));
    execute(&plan, 2, &backend, &ctx, &|_, _| {});
    assert_eq!(*backend.0.lock().unwrap(), [true]);
    assert_eq!(spare.free(), 2, "each worker's core, and the lent one back");
}

mod filtering {
    use super::*;
    use proptest::prelude::*;

    fn resolve(tree: &Tree, filters: JobFilter) -> Result<Plan, PlanError> {
        let study = Study::default();
        Plan::resolve(&PlanRequest {
            study: &study,
            phase_c_root: &tree.root.join("phase_c"),
            phase_d_root: &tree.root.join("phase_d"),
            artifact_root: &tree.root.join("artifacts"),
            filters,
            backend: BackendKind::Native,
            dry_run: true,
            strict: false,
            overrides: ConfigOverrides::default(),
            trainer: None,
            timestamp: "t".into(),
            pinn: crate::ptychopinn::PinnOverrides::default(),
            python: None,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever the filters, a plan carries the whole matrix's skip events and count, and
        /// its jobs are the unfiltered plan's jobs that pass the filters, renumbered in order.
        #[test]
        fn skips_and_configs_do_not_depend_on_filters(
            dose in proptest::option::of(proptest::sample::select(vec![1e3, 1e4, 1e5, 5e3])),
            view in proptest::option::of(proptest::sample::select(vec!["baseline", "dense", "sparse"])),
            gridsize in proptest::option::of(1u32..=3),
        ) {
            let tree = Tree::new();
            let all = resolve(&tree, JobFilter::default()).unwrap();
            let filters = JobFilter { dose, view: view.map(str::to_string), gridsize };
            let expected: Vec<&PlannedJob> = all.jobs.iter().filter(|p| filters.matches(&p.job)).collect();
            match resolve(&tree, filters.clone()) {
                Ok(plan) => {
                    prop_assert_eq!(&plan.skipped_views, &all.skipped_views);
                    prop_assert_eq!(plan.enumerated_count, all.enumerated_count);
                    prop_assert_eq!(plan.jobs.len(), expected.len());
                    for (i, (got, want)) in plan.jobs.iter().zip(&expected).enumerate() {
                        prop_assert_eq!(got.index, i);
                        prop_assert_eq!(&got.job, &want.job);
                        prop_assert_eq!(&got.config, &want.config);
                    }
                }
                Err(err) => {
                    prop_assert!(expected.is_empty());
                    prop_assert!(err.to_string().starts_with("no job matches "), "{}", err);
                }
            }
        }
    }
}

/// Regression: a `%` in the artifact root was expanded by sbatch in `--output` (`%x` is the
/// job name), so every task failed to open its log and never ran.
#[test]
fn batch_script_escapes_percent_in_the_task_log_path() {
    use crate::slurm::{ScriptPaths, SlurmSettings, render_script};
    let tree = Tree::new();
    let plan = tree.plan(BackendKind::Native, false, JobFilter::default());
    let settings = SlurmSettings {
        resources: Default::default(),
        array_limit: 2,
        extra_args: Vec::new(),
        job_name: "dose-overlap-train".into(),
    };
    let paths = ScriptPaths {
        exe: "/opt/dose overlap/bin/dose-overlap".into(),
        plan: "/runs/100%x done/plan.json".into(),
        slurm_dir: "/runs/100%x done/slurm".into(),
        workdir: "/runs".into(),
    };
    let script = render_script(&plan, &settings, &paths);
    assert!(
        script.contains("\n#SBATCH --output=\"/runs/100%%x done/slurm/%A_%a.log\"\n"),
        "{script}"
    );
    assert!(script.contains("\n#SBATCH --array=0-5%2\n"), "{script}");
    // In the shell part a `%` is an ordinary character.
    assert!(
        script.contains("run-job --plan '/runs/100%x done/plan.json' --index \"$index\"\n"),
        "{script}"
    );
}

/// Issue 26, finding 5: `train --dry-run` printed `config changed (pinn {...} -> null)` for
/// every verified PtychoPINN job: the dry-run plan carried no `pinn` section, so its configs
/// were never the real run's. Each dry-run config is now byte for byte the real one.
#[test]
fn a_dry_run_plans_the_configs_a_real_run_would() {
    let tree = Tree::new();
    let filters = JobFilter {
        gridsize: Some(1),
        ..JobFilter::default()
    };
    let real = tree.plan(BackendKind::Tensorflow, false, filters.clone());
    let dry = tree.plan(BackendKind::Tensorflow, true, filters);
    assert!(!real.jobs.is_empty());
    assert_eq!(dry.jobs.len(), real.jobs.len());
    for (d, r) in dry.jobs.iter().zip(&real.jobs) {
        assert!(r.config.pinn.is_some(), "{}", r.job.label());
        assert_eq!(
            d.config.to_json().unwrap(),
            r.config.to_json().unwrap(),
            "{}",
            d.job.label()
        );
    }
}
