//! `dose-overlap design`: the default study, study files, and their validation messages.

use crate::cli_snapshot;
use crate::common::{self, cli};

#[test]
fn default_design_as_text() {
    let dir = tempfile::tempdir().unwrap();
    cli_snapshot!("design_default", cli().arg("design"), dir.path());
}

#[test]
fn json_export_has_exactly_the_nine_keys() {
    let output = cli().args(["design", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = [
        "dose_list",
        "gridsizes",
        "neighbor_count",
        "patch_size_pixels",
        "overlap_views",
        "spacing_thresholds",
        "train_test_split_axis",
        "rng_seeds",
        "metrics_config",
    ];
    assert_eq!(json.as_object().unwrap().len(), expected.len());
    // In the design's order, at the top level (two-space indent).
    let positions: Vec<usize> = expected
        .iter()
        .map(|k| {
            text.find(&format!("\n  \"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(json["spacing_thresholds"]["dense"], 38.4);
    assert_eq!(json["spacing_thresholds"]["sparse"], 102.4);
    assert_eq!(
        json["dose_list"],
        serde_json::json!([1000.0, 10000.0, 100000.0])
    );
}

#[test]
fn invalid_study_file_exits_2_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my study.toml");
    std::fs::write(
        &path,
        "dose_list = [1000.0, -5.0]\nneighbor_count = 3\noverlap_views = { dense = 0.7, sparse = 1.5 }\n",
    )
    .unwrap();
    cli_snapshot!(
        "design_invalid_file",
        cli().args(["design", "--design"]).arg(&path),
        dir.path()
    );
}

#[test]
fn unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.toml");
    std::fs::write(&path, "[simulation]\nn_positons = 10\n").unwrap();
    cli_snapshot!(
        "design_unknown_key",
        cli().args(["design", "--design"]).arg(&path),
        dir.path()
    );
}

#[test]
fn json_study_file_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let exported = cli()
        .args(["design", "--preset", "tiny", "--study-file"])
        .output()
        .unwrap();
    assert_eq!(exported.status.code(), Some(0));
    let path = dir.path().join("tiny.json");
    std::fs::write(&path, &exported.stdout).unwrap();
    let again = cli()
        .args(["design", "--study-file", "--design"])
        .arg(&path)
        .output()
        .unwrap();
    common::succeeded(&again);
    assert_eq!(again.stdout, exported.stdout);
}

#[test]
fn missing_file_and_unknown_preset_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli()
        .args(["design", "--design"])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The whole message: the cause once (a full error chain used to repeat it).
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: loading the study design: cannot read study file {}: No such file or \
             directory (os error 2)\n",
            dir.path().join("none.toml").display()
        )
    );
    let out = cli().args(["design", "--preset", "huge"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown preset 'huge': use one of default, tiny")
    );
}
