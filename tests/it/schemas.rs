//! The JSON Schemas in `schemas/`: every golden artifact and every artifact a real run writes
//! conforms, and the schemas reject what the contracts forbid.

use crate::common::{self, cli, project_root, read_json, schema_errors, validate_artifacts};

#[test]
fn every_golden_conforms() {
    let checked = validate_artifacts(&project_root().join("golden/baseline"));
    // dry + native manifests and skip summaries, and the Phase D report.
    assert!(checked >= 5, "only {checked} golden artifact(s) found");
}

#[test]
fn every_artifact_of_a_real_study_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let output = cli()
        .args(["--quiet", "study", "--preset", "tiny", "-j", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    common::succeeded(&output);
    // A dry run beside it (its results are dry_run summaries).
    let dry = cli()
        .args(["--quiet", "train", "--dry-run", "--preset", "tiny"])
        .arg("--phase-c-root")
        .arg(out.join("phase_c"))
        .arg("--phase-d-root")
        .arg(out.join("phase_d"))
        .arg("--artifact-root")
        .arg(dir.path().join("dry"))
        .output()
        .unwrap();
    common::succeeded(&dry);
    // 6 jobs x (result + config) + manifest + skip summary + plan + 3 overlap reports.
    assert_eq!(validate_artifacts(&out), 6 * 2 + 3 + 3);
    assert_eq!(validate_artifacts(&dir.path().join("dry")), 6 * 2 + 3);
}

#[test]
fn schemas_reject_what_the_contract_forbids() {
    let golden = project_root().join("golden/baseline/native");
    let manifest = read_json(&golden.join("training_manifest.json"));
    assert_eq!(
        schema_errors("training_manifest.schema.json", &manifest),
        Ok(())
    );
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut m = manifest.clone();
        edit(&mut m);
        schema_errors("training_manifest.schema.json", &m)
    };
    // An uppercase digest, an absolute bundle path, a missing timestamp, an unknown status.
    assert!(broken(&|m| m["jobs"][0]["result"]["bundle_sha256"] = "AB".repeat(32).into()).is_err());
    assert!(broken(&|m| m["jobs"][0]["result"]["bundle_path"] = "/etc/passwd".into()).is_err());
    assert!(
        broken(&|m| {
            m.as_object_mut().unwrap().remove("timestamp");
        })
        .is_err()
    );
    assert!(broken(&|m| m["jobs"][0]["result"]["status"] = "done".into()).is_err());
    assert!(broken(&|m| m["jobs"][0]["result"]["bundle_size_bytes"] = 0.into()).is_err());
    // Fields other tools add to a success result are allowed.
    assert!(broken(&|m| m["jobs"][0]["result"]["reconstruction_path"] = "x.npz".into()).is_ok());
    let summary = read_json(&golden.join("skip_summary.json"));
    let mut no_version = summary.clone();
    no_version.as_object_mut().unwrap().remove("format_version");
    assert!(schema_errors("skip_summary.schema.json", &no_version).is_err());
}
