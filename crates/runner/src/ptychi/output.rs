//! What the pty-chi adapter says: its progress lines (`<split> epoch E/N loss L`, read as they
//! come), and its facts file (what pty-chi used and reported), typed at the boundary.

use crate::external::OutputScanner;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reads the adapter's progress lines: the last epoch seen per split, and the first line with
/// a loss that is not a finite number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PtychiScanner {
    /// The last `epoch E/N` per split.
    pub epochs: BTreeMap<String, u32>,
    /// The first progress line whose loss is inf or nan.
    pub diverged: Option<String>,
}

/// `train epoch 3/100 loss 0.0123` -> (`train`, 3, 0.0123).
pub fn parse_progress(line: &str) -> Option<(&str, u32, f64)> {
    let mut words = line.split_whitespace();
    let split = words.next().filter(|s| matches!(*s, "train" | "test"))?;
    (words.next()? == "epoch").then_some(())?;
    let epoch = words.next()?.split('/').next()?.parse().ok()?;
    (words.next()? == "loss").then_some(())?;
    let loss = words.next()?.parse().ok()?;
    Some((split, epoch, loss))
}

impl OutputScanner for PtychiScanner {
    fn line(&mut self, line: &str) {
        if let Some((split, epoch, loss)) = parse_progress(line) {
            self.epochs.insert(split.to_string(), epoch);
            if !loss.is_finite() && self.diverged.is_none() {
                self.diverged = Some(line.trim().chars().take(200).collect());
            }
        }
    }
}

/// The adapter's facts file (`ptychi_facts.json`). The times and the thread count stay in that
/// file and the log: `result.json` holds no wall-clock figure ([`PtychiFacts::for_result`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PtychiFacts {
    /// `pty-chi`.
    pub engine: String,
    /// pty-chi's version.
    pub ptychi_version: Option<String>,
    /// torch's version.
    pub torch_version: String,
    /// `cpu` or `gpu`: where pty-chi ran.
    pub device: String,
    /// The device's name (`cpu`, `cuda:0 NVIDIA H100 ...`).
    pub device_name: String,
    /// torch's thread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_threads: Option<u32>,
    /// The engine (`lsqml`).
    pub algorithm: String,
    /// `flat` or `truth`.
    pub init: String,
    /// `fixed` or `refine`.
    pub probe: String,
    /// LSQML's noise model (null for the other engines).
    pub noise: Option<String>,
    /// Per split (`train`, `test`).
    pub splits: BTreeMap<String, PtychiSplit>,
}

/// What the adapter reports of one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PtychiSplit {
    /// Positions reconstructed.
    pub positions: u64,
    /// pty-chi's loss per epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<f64>,
    /// Seconds to set the task up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_s: Option<f64>,
    /// Median seconds per epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_s_median: Option<f64>,
    /// Seconds in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_s: Option<f64>,
    /// pty-chi's settings, read back from its options.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// pty-chi's forward model on the truth against the counts and against NumPy's model.
    pub forward_check: ForwardCheck,
}

/// The conventions check of one split (see the adapter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardCheck {
    /// Positions checked (all of them).
    pub positions: u64,
    /// Sum of pty-chi's predicted counts over the file's.
    pub predicted_over_measured: f64,
    /// The smallest per-position ratio.
    pub per_position_min: Option<f64>,
    /// The largest per-position ratio.
    pub per_position_max: Option<f64>,
    /// Largest difference between pty-chi's and NumPy's model, relative to each pattern's peak.
    pub numpy_model_max_rel_diff: f64,
}

impl PtychiFacts {
    /// The facts as `result.json`'s `solver` records them: without the losses (they are its
    /// `loss_history`), the times and the thread count (run conditions, not results).
    pub fn for_result(&self) -> serde_json::Value {
        let mut facts = self.clone();
        facts.torch_threads = None;
        for split in facts.splits.values_mut() {
            split.losses.clear();
            split.setup_s = None;
            split.epoch_s_median = None;
            split.total_s = None;
        }
        serde_json::to_value(facts).unwrap_or_default()
    }

    /// The loss history in the native backend's shape: `{"train": [...], "test": [...]}`.
    pub fn loss_history(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .splits
            .iter()
            .map(|(name, s)| (name.clone(), serde_json::json!(s.losses)))
            .collect();
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_and_divergence() {
        assert_eq!(
            parse_progress("train epoch 3/100 loss 0.0123"),
            Some(("train", 3, 0.0123))
        );
        assert_eq!(parse_progress("val epoch 3/100 loss 1"), None);
        assert_eq!(parse_progress("train epoch x/100 loss 1"), None);
        let mut scanner = PtychiScanner::default();
        for line in [
            "WARNING:root:whatever",
            "train epoch 1/2 loss 0.5",
            "train epoch 2/2 loss 0.25",
            "test epoch 1/2 loss nan",
            "test epoch 2/2 loss inf",
        ] {
            scanner.line(line);
        }
        assert_eq!(scanner.epochs["train"], 2);
        assert_eq!(scanner.epochs["test"], 2);
        assert_eq!(scanner.diverged.as_deref(), Some("test epoch 1/2 loss nan"));
    }
}
