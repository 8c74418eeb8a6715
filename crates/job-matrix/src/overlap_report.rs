//! Reading why Phase D rejected a view, from `<phase_d_root>/dose_<int>/overlap_report.json`.
//!
//! Only `views[].view`, `views[].accepted` and `views[].reason` are relied on; other fields
//! are ignored so that Phase D can add to its report freely.

use serde::Deserialize;
use std::path::Path;

/// The file Phase D writes per dose.
pub const OVERLAP_REPORT: &str = "overlap_report.json";

#[derive(Deserialize)]
struct Report {
    views: Vec<ReportView>,
}

#[derive(Deserialize)]
struct ReportView {
    view: String,
    accepted: Option<bool>,
    reason: Option<String>,
}

/// What one dose's overlap report says about its views.
pub enum ReportLookup {
    /// No report for this dose.
    Absent,
    /// The report exists but cannot be used; the message says why.
    Unreadable(String),
    /// The parsed report.
    Read(Vec<(String, Option<bool>, Option<String>)>),
}

/// Reads the report at `path`, if there is one.
pub fn read_report(path: &Path) -> ReportLookup {
    if !path.is_file() {
        return ReportLookup::Absent;
    }
    // A regular file (checked above; a FIFO or a device is not one), read up to a cap.
    const CAP: u64 = 64 << 20;
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|file| {
        std::io::Read::read_to_string(&mut std::io::Read::take(file, CAP + 1), &mut text)
    });
    match read {
        Ok(n) if n as u64 > CAP => {
            return ReportLookup::Unreadable(format!("it is larger than {CAP} bytes"));
        }
        Ok(_) => {}
        Err(err) => return ReportLookup::Unreadable(format!("cannot read it: {err}")),
    }
    match serde_json::from_str::<Report>(&text) {
        Ok(report) => ReportLookup::Read(
            report
                .views
                .into_iter()
                .map(|v| (v.view, v.accepted, v.reason))
                .collect(),
        ),
        Err(err) => ReportLookup::Unreadable(format!("not a valid overlap report: {err}")),
    }
}

impl ReportLookup {
    /// Whether the report lists `view` as accepted (then its files were expected to exist).
    pub fn accepted(&self, view: &str) -> bool {
        match self {
            ReportLookup::Read(views) => views
                .iter()
                .any(|(name, accepted, _)| name == view && *accepted == Some(true)),
            _ => false,
        }
    }

    /// The sentence to add to a skip reason for `view`, if the report has something to say.
    pub fn explain(&self, view: &str) -> Option<String> {
        match self {
            ReportLookup::Absent => None,
            ReportLookup::Unreadable(why) => Some(format!(
                "Phase D's {OVERLAP_REPORT} for this dose could not be used ({why})."
            )),
            ReportLookup::Read(views) => {
                let (_, accepted, reason) = views.iter().find(|(name, _, _)| name == view)?;
                Some(match (accepted, reason) {
                    (Some(false), Some(reason)) => format!("Phase D rejected the view: {reason}"),
                    (Some(false), None) => {
                        "Phase D's overlap report marks the view rejected (no reason given)."
                            .to_string()
                    }
                    (Some(true), _) => format!(
                        "Phase D's {OVERLAP_REPORT} lists the view as accepted, so its files \
                         should exist: rerun `dose-overlap overlap` or check --phase-d-root."
                    ),
                    (None, Some(reason)) => format!("Phase D: {reason}"),
                    (None, None) => return None,
                })
            }
        }
    }
}
