//! `cargo xtask fuzz --target artifacts` on a fixed number of cases: the real commands find
//! nothing wrong in them, and a bug planted in a command is found.

use std::time::Duration;
use xtask::fuzz::artifacts::{COMMANDS, Campaign, CaseDirs, Command, build_fixture, run_cases};

const BIN: &str = env!("CARGO_BIN_EXE_dose-overlap");

/// Time is the xtask's own check (1 s of CPU per case, on its own process): here the other
/// tests share the process and its CPU clock, so only a case far beyond it counts.
const LENIENT: Duration = Duration::from_secs(120);

fn campaign<'a>(
    cases: std::ops::Range<u64>,
    commands: &'a [(&'static str, Command)],
) -> Campaign<'a> {
    Campaign {
        seed: 13,
        cases,
        deadline: None,
        current: None,
        commands,
        time_limit: LENIENT,
    }
}

/// 30 cases of seed 13 through verify, report, diff and compare: no panic, no write outside
/// the case's root, every command run on every case.
#[test]
fn thirty_artifact_cases_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = build_fixture(BIN.as_ref(), &dir.path().join("work")).unwrap();
    assert!(fixture.files.len() > 100, "{} files", fixture.files.len());
    let summary = run_cases(&fixture, &campaign(0..30, &COMMANDS)).unwrap();
    let found: Vec<String> = summary
        .findings
        .iter()
        .map(|f| format!("case {} {}: {}", f.case, f.kind, f.detail))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
    assert_eq!(summary.cases, 30);
    assert_eq!(summary.skipped, 0);
    assert_eq!(
        summary.per_command,
        [
            ("verify", 30),
            ("report", 30),
            ("diff", 30),
            ("compare", 30)
        ]
    );
    assert!(summary.per_kind.len() >= 10, "{:?}", summary.per_kind);
}

/// A command that panics, and one that writes into the pristine twin, are found in the
/// cases they run in; the real commands beside them are not.
#[test]
fn a_planted_bug_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = build_fixture(BIN.as_ref(), &dir.path().join("work")).unwrap();
    let commands: [(&str, Command); 3] = [
        ("verify", COMMANDS[0].1),
        ("panics", |_: &CaseDirs| panic!("planted")),
        ("writes-outside", |c: &CaseDirs| {
            std::fs::write(c.twin.join("planted.txt"), b"x")?;
            Ok(())
        }),
    ];
    let summary = run_cases(&fixture, &campaign(0..2, &commands)).unwrap();
    let mut kinds: Vec<(u64, &str)> = summary.findings.iter().map(|f| (f.case, f.kind)).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [(0, "escape"), (0, "panic"), (1, "escape"), (1, "panic")],
        "{:#?}",
        summary.findings
    );
    let escape = summary
        .findings
        .iter()
        .find(|f| f.kind == "escape")
        .unwrap();
    assert!(escape.detail.contains("planted.txt"), "{}", escape.detail);
}
