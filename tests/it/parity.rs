//! NumPy parity: `validate` calls a file valid only if `numpy.load` reads it with the same keys,
//! on the committed corpus of ZIP- and .npy-level cases (tests/fixtures/npz-corpus, made once by
//! make_corpus.py; numpy_reads.py is NumPy's side of the verdict).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use npz_contract::{NpzReader, ValidateOptions, validate};

use crate::common;

fn corpus() -> Vec<PathBuf> {
    let dir = common::project_root().join("tests/fixtures/npz-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
        .collect();
    files.sort();
    files
}

/// NumPy's verdicts, or None (with a message) when python3 or numpy is missing.
fn numpy_verdicts(files: &[PathBuf]) -> Option<Vec<serde_json::Value>> {
    let script = common::project_root().join("tests/fixtures/npz-corpus/numpy_reads.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(files)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        ),
        other => {
            eprintln!(
                "SKIPPED NumPy parity: python3 with numpy is needed (`python3 -m pip install numpy`; \
                 .ci/run installs it): {other:?}"
            );
            None
        }
    }
}

/// The keys numpy.load lists for a file our reader opens: arrays and other members by name
/// (directory entries hold nothing and are left out on both sides).
fn our_keys(path: &Path) -> BTreeSet<String> {
    let reader = NpzReader::open(path).unwrap();
    reader
        .members()
        .iter()
        .map(|m| m.key.clone())
        .chain(reader.rejected().iter().map(|r| r.key.clone()))
        .collect()
}

#[test]
fn validate_calls_valid_only_what_numpy_reads_with_the_same_keys() {
    let files = corpus();
    assert!(files.len() >= 40, "the corpus is missing: {}", files.len());
    let Some(verdicts) = numpy_verdicts(&files) else {
        return;
    };
    let mut disagreements = Vec::new();
    let (mut valid, mut numpy_refused) = (0, 0);
    for (path, numpy) in files.iter().zip(&verdicts) {
        let numpy_ok = numpy["ok"].as_bool().unwrap();
        numpy_refused += usize::from(!numpy_ok);
        let report = validate(path, &ValidateOptions::default());
        if !report.valid {
            continue;
        }
        valid += 1;
        let name = path.file_name().unwrap().to_string_lossy();
        if !numpy_ok {
            disagreements.push(format!(
                "{name}: valid, but numpy.load fails: {}",
                numpy["error"]
            ));
            continue;
        }
        let theirs: BTreeSet<String> = numpy["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .filter(|k| !k.ends_with('/'))
            .collect();
        let ours = our_keys(path);
        if ours != theirs {
            disagreements.push(format!("{name}: keys {ours:?} here, {theirs:?} in NumPy"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both kinds are in the corpus, so the check above is not vacuous.
    assert!(
        valid >= 12 && numpy_refused >= 20,
        "valid {valid}, refused {numpy_refused}"
    );
}
