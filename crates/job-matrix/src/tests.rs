//! Enumeration, skips and filters on real folder trees (placeholder files: only existence counts).

use super::*;
use proptest::prelude::*;
use std::path::Path;
use study_design::{Design, NamedValues};

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"placeholder").unwrap();
}

/// A Phase C tree for every dose, and Phase D views as `has(dose, view) -> (train, test)` says.
fn tree(design: &Design, has: impl Fn(f64, &str) -> (bool, bool)) -> (tempfile::TempDir, Roots) {
    let dir = tempfile::tempdir().unwrap();
    let roots = Roots {
        phase_c: dir.path().join("phase c"),
        phase_d: dir.path().join("phase d"),
        artifacts: dir.path().join("artifacts"),
    };
    std::fs::create_dir_all(&roots.phase_c).unwrap();
    std::fs::create_dir_all(&roots.phase_d).unwrap();
    for &dose in &design.dose_list {
        let dose_dir = Design::dose_dir_name(dose);
        touch(&roots.phase_c.join(&dose_dir).join("patched_train.npz"));
        touch(&roots.phase_c.join(&dose_dir).join("patched_test.npz"));
        for view in design.overlap_views.names() {
            let (train, test) = has(dose, view);
            let folder = roots.phase_d.join(&dose_dir).join(view);
            if train {
                touch(&folder.join(format!("{view}_train.npz")));
            }
            if test {
                touch(&folder.join(format!("{view}_test.npz")));
            }
        }
    }
    (dir, roots)
}

const EXPECTED_REASON: &str = "NPZ files not found (train=False, test=False). This is expected \
    when Phase D overlap filtering rejected the view due to spacing threshold.";

#[test]
fn seed_scenario_dense_only() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, view| {
        let dense = view == "dense";
        (dense, dense)
    });
    let matrix = enumerate(&design, &roots, false).unwrap();
    let summary: Vec<(f64, &str, u32)> = matrix
        .jobs
        .iter()
        .map(|j| (j.dose, j.view.as_str(), j.gridsize))
        .collect();
    assert_eq!(
        summary,
        [
            (1e3, "baseline", 1),
            (1e3, "dense", 2),
            (1e4, "baseline", 1),
            (1e4, "dense", 2),
            (1e5, "baseline", 1),
            (1e5, "dense", 2),
        ]
    );
    assert_eq!(
        matrix.skipped,
        [1e3, 1e4, 1e5]
            .iter()
            .map(|&dose| SkipEvent {
                dose,
                view: "sparse".into(),
                reason: EXPECTED_REASON.into()
            })
            .collect::<Vec<_>>()
    );
    let dense = &matrix.jobs[1];
    assert_eq!(
        dense.train_data_path,
        roots.phase_d.join("dose_1000/dense/dense_train.npz")
    );
    assert_eq!(
        dense.test_data_path,
        roots.phase_d.join("dose_1000/dense/dense_test.npz")
    );
    assert_eq!(
        dense.artifact_dir,
        roots.artifacts.join("dose_1000/dense/gs2")
    );
    assert_eq!(
        dense.log_path,
        roots.artifacts.join("dose_1000/dense/gs2/train.log")
    );
    let baseline = &matrix.jobs[4];
    assert_eq!(
        baseline.train_data_path,
        roots.phase_c.join("dose_100000/patched_train.npz")
    );
    assert_eq!(
        baseline.artifact_dir,
        roots.artifacts.join("dose_100000/baseline/gs1")
    );
    assert_eq!(baseline.label(), "baseline/dose=1e+05");
}

#[test]
fn full_tree_is_nine_jobs() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, _| (true, true));
    let matrix = enumerate(&design, &roots, true).unwrap();
    assert_eq!(matrix.jobs.len(), 9);
    assert!(matrix.skipped.is_empty());
}

#[test]
fn one_split_present_is_named_in_the_reason() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, view| (true, view == "dense"));
    let matrix = enumerate(&design, &roots, false).unwrap();
    assert_eq!(matrix.skipped.len(), 3);
    assert!(
        matrix.skipped[0]
            .reason
            .starts_with("NPZ files not found (train=True, test=False). This is expected"),
        "{}",
        matrix.skipped[0].reason
    );
}

#[test]
fn skip_reason_quotes_the_overlap_report() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, view| {
        let dense = view == "dense";
        (dense, dense)
    });
    let report = |accepted: &str, reason: &str| {
        format!(
            r#"{{"dose": 1000.0, "phase_c_dir": "x", "views": [
                {{"view": "dense", "spacing_threshold": 38.4, "accepted": true, "reason": null}},
                {{"view": "sparse", "spacing_threshold": 102.4, "accepted": {accepted},
                  "reason": {reason}, "splits": {{}}}}]}}"#
        )
    };
    let write = |dose_dir: &str, text: &str| {
        std::fs::create_dir_all(roots.phase_d.join(dose_dir)).unwrap();
        std::fs::write(
            roots.phase_d.join(dose_dir).join("overlap_report.json"),
            text,
        )
        .unwrap();
    };
    write(
        "dose_1000",
        &report(
            "false",
            r#""kept 3 of 300 positions, needed 8 (OVERSAMPLING-001)""#,
        ),
    );
    write("dose_10000", &report("true", "null"));
    write("dose_100000", "{ not json");
    let matrix = enumerate(&design, &roots, false).unwrap();
    let reasons: Vec<&str> = matrix.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons[0],
        format!(
            "{EXPECTED_REASON} Phase D rejected the view: kept 3 of 300 positions, needed 8 \
             (OVERSAMPLING-001)"
        )
    );
    // Regression: an accepted view's missing files were also called "expected when Phase D
    // rejected the view".
    assert_eq!(
        reasons[1],
        "NPZ files not found (train=False, test=False). Phase D's overlap_report.json lists the \
         view as accepted, so its files should exist: rerun `dose-overlap overlap` or check \
         --phase-d-root."
    );
    assert!(
        reasons[2].starts_with(EXPECTED_REASON)
            && reasons[2].contains("overlap_report.json for this dose could not be used"),
        "{}",
        reasons[2]
    );
}

#[test]
fn missing_phase_c_names_every_dose_and_file() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, _| (true, true));
    std::fs::remove_file(roots.phase_c.join("dose_10000/patched_test.npz")).unwrap();
    std::fs::remove_file(roots.phase_c.join("dose_100000/patched_train.npz")).unwrap();
    for strict in [false, true] {
        let err = enumerate(&design, &roots, strict).unwrap_err().to_string();
        assert!(err.starts_with("2 missing training input(s):"), "{err}");
        assert!(
            err.contains("Phase C data for dose 10000 is missing"),
            "{err}"
        );
        assert!(
            err.contains(
                &roots
                    .phase_c
                    .join("dose_10000/patched_test.npz")
                    .display()
                    .to_string()
            ),
            "{err}"
        );
        assert!(
            err.contains("Phase C data for dose 100000 is missing"),
            "{err}"
        );
        assert!(err.contains("dose_100000/patched_train.npz"), "{err}");
    }
}

#[test]
fn strict_mode_names_the_view_and_paths() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |dose, view| {
        let ok = view == "dense" || dose != 1e4;
        (ok, ok)
    });
    let err = enumerate(&design, &roots, true).unwrap_err().to_string();
    assert!(err.starts_with("1 missing training input(s):"), "{err}");
    assert!(
        err.contains("Phase D view `sparse` for dose 10000 is missing"),
        "{err}"
    );
    let train = roots.phase_d.join("dose_10000/sparse/sparse_train.npz");
    let test = roots.phase_d.join("dose_10000/sparse/sparse_test.npz");
    assert!(err.contains(&train.display().to_string()), "{err}");
    assert!(err.contains(&test.display().to_string()), "{err}");
    // Non-strict: the same tree enumerates with one skip.
    let matrix = enumerate(&design, &roots, false).unwrap();
    assert_eq!((matrix.jobs.len(), matrix.skipped.len()), (8, 1));
}

#[test]
fn missing_roots_are_named() {
    let design = Design::default();
    let (_dir, mut roots) = tree(&design, |_, _| (true, true));
    let good_c = roots.phase_c.clone();
    roots.phase_c = roots.phase_c.join("nope");
    let err = enumerate(&design, &roots, false).unwrap_err().to_string();
    assert!(err.starts_with("Phase C root "), "{err}");
    assert!(err.contains("nope does not exist"), "{err}");
    roots.phase_c = good_c.join("dose_1000/patched_train.npz");
    let err = enumerate(&design, &roots, false).unwrap_err().to_string();
    assert!(err.contains("is not a folder"), "{err}");
    roots.phase_c = good_c;
    roots.phase_d = roots.phase_d.join("nope");
    let err = enumerate(&design, &roots, false).unwrap_err().to_string();
    assert!(err.starts_with("Phase D root "), "{err}");
}

fn filter(dose: Option<&str>, view: Option<&str>, gridsize: Option<u32>) -> JobFilter {
    JobFilter {
        dose: dose.map(|d| d.parse().unwrap()),
        view: view.map(str::to_string),
        gridsize,
    }
}

#[test]
fn filters_select_and_explain() {
    let design = Design::default();
    let (_dir, roots) = tree(&design, |_, view| {
        let dense = view == "dense";
        (dense, dense)
    });
    let matrix = enumerate(&design, &roots, false).unwrap();
    let labels = |f: JobFilter| -> Vec<String> {
        matrix
            .select(&f)
            .unwrap()
            .iter()
            .map(|j| format!("{}/gs{}", j.label(), j.gridsize))
            .collect()
    };
    for dose in ["1000", "1e3", "1000.0", "1.0E+03"] {
        assert_eq!(
            labels(filter(Some(dose), None, None)),
            ["baseline/dose=1e+03/gs1", "dense/dose=1e+03/gs2"]
        );
    }
    assert_eq!(
        labels(filter(None, Some("dense"), None)),
        [
            "dense/dose=1e+03/gs2",
            "dense/dose=1e+04/gs2",
            "dense/dose=1e+05/gs2"
        ]
    );
    assert_eq!(
        labels(filter(Some("1e4"), None, Some(1))),
        ["baseline/dose=1e+04/gs1"]
    );

    let err = matrix
        .select(&filter(Some("5000"), Some("dense"), None))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no job matches --dose 5000 --view dense: the matrix holds 6 job(s): doses 1000, \
         10000, 100000; views baseline, dense; gridsizes 1, 2"
    );
    let err = matrix
        .select(&filter(Some("1000"), Some("sparse"), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no job matches --dose 1000 --view sparse: the matrix holds 6 job(s)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "\n  sparse at dose 1000 was skipped: {EXPECTED_REASON}"
        )),
        "{err}"
    );
    let err = matrix
        .select(&filter(None, Some("baseline"), Some(2)))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no job matches --view baseline --gridsize 2"),
        "{err}"
    );
}

#[test]
fn job_and_skip_serialise_with_doses_as_numbers() {
    let job = TrainingJob {
        dose: 1000.0,
        view: "dense".into(),
        gridsize: 2,
        train_data_path: "c/d t.npz".into(),
        test_data_path: "c/d.npz".into(),
        artifact_dir: "a".into(),
        log_path: "a/train.log".into(),
    };
    let json = serde_json::to_string(&job).unwrap();
    assert!(
        json.starts_with(r#"{"dose":1000.0,"view":"dense","gridsize":2,"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<TrainingJob>(&json).unwrap(), job);
    let skip = SkipEvent {
        dose: 1e5,
        view: "sparse".into(),
        reason: "r".into(),
    };
    let json = serde_json::to_string(&skip).unwrap();
    assert_eq!(json, r#"{"dose":100000.0,"view":"sparse","reason":"r"}"#);
}

/// A random design: distinct integer doses in random order, 1-3 views, gridsizes {1, g}.
fn designs() -> impl Strategy<Value = Design> {
    (
        proptest::sample::subsequence(vec![10.0, 100.0, 1e3, 2e3, 5e3, 1e4, 1e5, 1e6], 1..5),
        proptest::sample::subsequence(vec!["dense", "mid", "sparse"], 1..=3),
        2u32..=3,
        any::<bool>(),
    )
        .prop_map(|(doses, views, g, reverse)| {
            let mut dose_list = doses;
            if reverse {
                dose_list.reverse();
            }
            Design {
                dose_list,
                gridsizes: vec![1, g],
                neighbor_count: 9,
                overlap_views: NamedValues(
                    views
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.to_string(), 0.1 + 0.2 * i as f64))
                        .collect(),
                ),
                ..Design::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn enumeration_invariants(
        design in designs(),
        presence in proptest::collection::vec((any::<bool>(), any::<bool>()), 32),
        dose_pick in 0usize..8,
        view_pick in 0usize..5,
        gridsize_pick in 0u32..4,
    ) {
        let views: Vec<String> = design.overlap_views.names().map(str::to_string).collect();
        let slot = |dose: f64, view: &str| {
            let d = design.dose_list.iter().position(|x| *x == dose).unwrap();
            let v = views.iter().position(|x| x == view).unwrap();
            presence[(d * 3 + v) % presence.len()]
        };
        let (_dir, roots) = tree(&design, slot);
        let matrix = enumerate(&design, &roots, false).unwrap();

        // Count: doses x variants - skipped; a job or a skip for every (dose, view), never both.
        let variants = 1 + views.len();
        prop_assert_eq!(
            matrix.jobs.len(),
            design.dose_list.len() * variants - matrix.skipped.len()
        );
        for skip in &matrix.skipped {
            prop_assert!(!matrix.jobs.iter().any(|j| j.dose == skip.dose && j.view == skip.view));
            prop_assert!(slot(skip.dose, &skip.view) != (true, true));
        }

        // Paths unique, under the artifact root, log inside the artifact dir.
        let mut dirs: Vec<&Path> = matrix.jobs.iter().map(|j| j.artifact_dir.as_path()).collect();
        dirs.sort();
        dirs.dedup();
        prop_assert_eq!(dirs.len(), matrix.jobs.len());
        for job in &matrix.jobs {
            prop_assert!(job.artifact_dir.starts_with(&roots.artifacts));
            prop_assert_eq!(job.log_path.parent(), Some(job.artifact_dir.as_path()));
            prop_assert!(job.train_data_path.is_file() && job.test_data_path.is_file());
            let expected = if job.view == BASELINE { 1 } else { design.gridsizes[1] };
            prop_assert_eq!(job.gridsize, expected);
        }

        // Order: design dose order, then baseline and the views in design order.
        let rank = |dose: f64, view: &str| {
            let d = design.dose_list.iter().position(|x| *x == dose).unwrap();
            let v = if view == BASELINE { 0 } else { 1 + views.iter().position(|x| x == view).unwrap() };
            d * variants + v
        };
        let ranks: Vec<usize> = matrix.jobs.iter().map(|j| rank(j.dose, &j.view)).collect();
        prop_assert!(ranks.windows(2).all(|w| w[0] < w[1]));
        let skip_ranks: Vec<usize> = matrix.skipped.iter().map(|s| rank(s.dose, &s.view)).collect();
        prop_assert!(skip_ranks.windows(2).all(|w| w[0] < w[1]));

        // Stable: the same tree gives the same matrix.
        prop_assert_eq!(&enumerate(&design, &roots, false).unwrap(), &matrix);

        // Filtering is restriction to the predicate, and never touches the skips.
        let all_views: Vec<&str> = ["baseline", "dense", "mid", "sparse", "nope"].to_vec();
        let f = JobFilter {
            dose: design.dose_list.get(dose_pick).copied().or(if dose_pick == 7 { Some(3.0) } else { None }),
            view: all_views.get(view_pick).map(|v| v.to_string()),
            gridsize: if gridsize_pick == 0 { None } else { Some(gridsize_pick) },
        };
        let expected: Vec<TrainingJob> = matrix.jobs.iter().filter(|j| {
            f.dose.is_none_or(|d| d == j.dose)
                && f.view.as_ref().is_none_or(|v| *v == j.view)
                && f.gridsize.is_none_or(|g| g == j.gridsize)
        }).cloned().collect();
        match matrix.select(&f) {
            Ok(selected) => prop_assert_eq!(selected, expected),
            Err(err) => {
                prop_assert!(expected.is_empty());
                prop_assert!(err.to_string().starts_with("no job matches "));
            }
        }
        prop_assert_eq!(&enumerate(&design, &roots, false).unwrap().skipped, &matrix.skipped);
    }
}

/// `cross_gridsizes`: every variant, the full scan too, at every gridsize (issue 21), so that
/// overlap and grouping can be read apart; a rejected view is still one skip per dose.
#[test]
fn cross_gridsizes_enumerates_every_view_at_every_gridsize() {
    let design = Design {
        gridsizes: vec![1, 2, 3],
        neighbor_count: 9,
        cross_gridsizes: true,
        ..Design::default()
    };
    let (_dir, roots) = tree(&design, |_, view| (view == "dense", view == "dense"));
    let matrix = enumerate(&design, &roots, false).unwrap();
    let mut expected = Vec::new();
    for dose in [1e3, 1e4, 1e5] {
        for view in ["baseline", "dense"] {
            for g in [1, 2, 3] {
                expected.push((dose, view.to_string(), g));
            }
        }
    }
    let got: Vec<(f64, String, u32)> = matrix
        .jobs
        .iter()
        .map(|j| (j.dose, j.view.clone(), j.gridsize))
        .collect();
    assert_eq!(got, expected);
    let dirs: std::collections::HashSet<_> = matrix.jobs.iter().map(|j| &j.artifact_dir).collect();
    assert_eq!(dirs.len(), matrix.jobs.len());
    assert_eq!(matrix.skipped.len(), 3);
    assert!(matrix.skipped.iter().all(|s| s.view == "sparse"));
    // Without it, the original pairing: the full scan at 1, the views at the largest.
    let plain = Design {
        cross_gridsizes: false,
        ..design
    };
    let matrix = enumerate(&plain, &roots, false).unwrap();
    let got: Vec<(&str, u32)> = matrix
        .jobs
        .iter()
        .take(2)
        .map(|j| (j.view.as_str(), j.gridsize))
        .collect();
    assert_eq!(got, [("baseline", 1), ("dense", 3)]);
}
