//! The supervised baseline's facts file (`supervised_facts.json`), typed at the boundary.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the adapter reports. The times stay in that file and the log: `result.json` holds no
/// wall-clock figure ([`SupervisedFacts::for_result`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupervisedFacts {
    /// What was trained (`ptycho.baselines ...`).
    pub model: String,
    /// TensorFlow's version.
    pub tensorflow_version: String,
    /// `cpu` or `gpu`: where it trained.
    pub device: String,
    /// GPUs TensorFlow saw.
    pub gpus_seen: u32,
    /// `nepochs` given.
    pub epochs_asked: u32,
    /// Epochs run (early stopping may end training sooner).
    pub epochs_run: u32,
    /// Whether early stopping ended it.
    pub early_stopped: bool,
    /// Patterns per batch.
    pub batch_size: u32,
    /// The U-Net's width factor.
    pub n_filters_scale: u32,
    /// Keras's seed.
    pub seed: u64,
    /// Training loss per epoch (MAE of amplitude plus phase).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss: Vec<f64>,
    /// Validation loss per epoch (PtychoPINN's 5 % validation split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_loss: Vec<f64>,
    /// Seconds of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_s: Option<f64>,
    /// Seconds of inference on both splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infer_s: Option<f64>,
    /// The factor each split's diffraction was normalised by (`normalize_data`).
    pub x_norm: BTreeMap<String, f64>,
    /// Training patterns.
    pub train_positions: u64,
    /// Test patterns.
    pub test_positions: u64,
}

impl SupervisedFacts {
    /// The facts as `result.json`'s `solver` records them: without the losses (they are its
    /// `loss_history`) and the times (run conditions, not results).
    pub fn for_result(&self) -> serde_json::Value {
        let facts = SupervisedFacts {
            loss: Vec::new(),
            val_loss: Vec::new(),
            train_s: None,
            infer_s: None,
            ..self.clone()
        };
        serde_json::to_value(facts).unwrap_or_default()
    }

    /// `{"train": [...], "validation": [...]}`: the training loss, and the loss on
    /// PtychoPINN's validation split (5 % of the train split held out).
    pub fn loss_history(&self) -> serde_json::Value {
        serde_json::json!({"train": self.loss, "validation": self.val_loss})
    }
}
