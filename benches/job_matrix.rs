//! Phase E planning and dry runs at scale: enumerate (existence checks, skip events, config
//! resolution) and dry-run (per job: artifact dir, log, `training_config.json`, `result.json`;
//! then `plan.json`, the manifest and the skip summary) matrices of 1,250 to 10,000 jobs made of
//! many doses. Target: 10,000 jobs in under 1 s on one core, cost linear in the job count.
//!
//! The trees live on tmpfs (`/dev/shm`) when there is one, so that the figure is the toolkit's
//! own cost, not the file system's: a job writes three small files (no `fsync`), and creating,
//! renaming and truncating files on this machine's ext4 (a VM disk) takes 5 to 10 times the
//! whole tmpfs figure. `JOB_MATRIX_BENCH_DIR` overrides the location (e.g. a disk folder).
//!
//! ```text
//! cargo bench --bench job_matrix
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use job_matrix::JobFilter;
use reporting::manifest::TrainingManifest;
use runner::{BackendKind, CancelToken, ConfigOverrides, Plan, PlanRequest, RunContext};
use study_design::{Design, NamedValues, Study};

/// Variants per dose: the baseline and three views, one of which (`sparse`) is missing at
/// every fourth dose, as Phase D rejects views.
const VIEWS: [&str; 3] = ["dense", "mid", "sparse"];

fn bench_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("JOB_MATRIX_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("dose-overlap-job-matrix-{}", std::process::id()))
    } else {
        std::env::temp_dir().join(format!("dose-overlap-job-matrix-{}", std::process::id()))
    }
}

/// A study of `doses` doses (100, 101, ... photons) and its Phase C/D tree of empty files
/// (enumeration only checks existence).
fn make_tree(root: &Path, doses: usize) -> Study {
    let study = Study {
        design: Design {
            dose_list: (0..doses).map(|i| 100.0 + i as f64).collect(),
            overlap_views: NamedValues(
                VIEWS
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.to_string(), 0.7 - 0.2 * i as f64))
                    .collect(),
            ),
            ..Design::default()
        },
        ..Study::default()
    };
    for (i, &dose) in study.design.dose_list.iter().enumerate() {
        let dose_dir = Design::dose_dir_name(dose);
        let c = root.join("phase_c").join(&dose_dir);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("patched_train.npz"), b"").unwrap();
        std::fs::write(c.join("patched_test.npz"), b"").unwrap();
        for view in VIEWS {
            if view == "sparse" && i % 4 == 0 {
                continue;
            }
            let d = root.join("phase_d").join(&dose_dir).join(view);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{view}_train.npz")), b"").unwrap();
            std::fs::write(d.join(format!("{view}_test.npz")), b"").unwrap();
        }
    }
    study
}

fn plan(study: &Study, root: &Path) -> Plan {
    Plan::resolve(&PlanRequest {
        study,
        phase_c_root: &root.join("phase_c"),
        phase_d_root: &root.join("phase_d"),
        artifact_root: &root.join("artifacts"),
        filters: JobFilter::default(),
        backend: BackendKind::Tensorflow,
        dry_run: true,
        strict: false,
        overrides: ConfigOverrides::default(),
        trainer: None,
        timestamp: "2025-11-04T08:34:26.000000Z".to_string(),
        pinn: Default::default(),
        python: None,
    })
    .expect("the bench tree enumerates")
}

/// The whole of `train --dry-run` after argument parsing, on one thread.
fn dry_run(study: &Study, root: &Path) -> usize {
    let plan = plan(study, root);
    std::fs::create_dir_all(&plan.artifact_root).unwrap();
    runner::clear_results(&plan).unwrap();
    let plan_id = plan.write().unwrap();
    let cancel = CancelToken::new();
    let ctx = RunContext {
        plan_id: &plan_id,
        cancel: &cancel,
        progress: &|_| {},
        threads_per_job: 1,
        spare_cores: None,
        limits: runner::JobLimits::default(),
    };
    let backend = runner::backend_for(plan.backend);
    let results = runner::execute(&plan, 1, backend.as_ref(), &ctx, &|_, _| {});
    let manifest = TrainingManifest::assemble(&plan, &results).unwrap();
    manifest.write().unwrap();
    assert!(results.iter().all(|r| r.status() == "dry_run"));
    results.len()
}

fn bench(c: &mut Criterion) {
    let base = bench_root();
    let mut group = c.benchmark_group("job_matrix");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(8));
    // 4 variants per dose, 1 in 16 skipped: doses * 3.75 jobs.
    for doses in [334, 667, 1334, 2667] {
        let root = base.join(format!("{doses}"));
        let study = make_tree(&root, doses);
        let jobs = plan(&study, &root).jobs.len();
        group.throughput(Throughput::Elements(jobs as u64));
        group.bench_function(format!("enumerate/{jobs}_jobs"), |b| {
            b.iter(|| black_box(plan(&study, &root).jobs.len()))
        });
        group.bench_function(format!("dry_run/{jobs}_jobs"), |b| {
            b.iter(|| black_box(dry_run(&study, &root)))
        });
        std::fs::remove_dir_all(&root).ok();
    }
    group.finish();
    std::fs::remove_dir_all(&base).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
