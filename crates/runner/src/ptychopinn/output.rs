//! What PtychoPINN's trainer says about its run: in its output (the last `Epoch N/M`, the
//! training loss, a loss of inf or nan, the device it names), read line by line as it runs
//! ([`TrainerScanner`]), and in PyTorch Lightning's `metrics.csv` ([`lightning_metrics`]).

use crate::external::{Lines, OutputScanner};
use std::io::{self, Read};
use std::path::Path;

/// What the trainer's output says about its progress: the last `Epoch N/M` and the last
/// training loss (`loss: 0.12` as Keras prints it, `loss=0.12` / `train_loss=0.12` as
/// Lightning does; `val_loss` is not the training loss).
#[derive(Debug, Default, PartialEq)]
pub struct TrainerProgress {
    /// N of the last `Epoch N/M`.
    pub last_epoch: Option<u32>,
    /// The last training loss printed.
    pub final_loss: Option<f64>,
    /// The epoch (the last `Epoch N/M` before it, else 1) where a training loss was printed
    /// as `nan` or `inf`: the training diverged.
    pub diverged_at: Option<u32>,
}

/// Scans trainer output (progress bars use `\r` and backspaces; both are separators here).
pub fn parse_trainer_output(text: &str) -> TrainerProgress {
    let mut progress = TrainerProgress::default();
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let number_at = |start: usize| -> Option<f64> {
        let rest = &text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().ok().filter(|v| v.is_finite())
    };
    // Keras prints `loss: nan`, Lightning `loss=inf`.
    let non_finite_at = |start: usize| {
        let rest = text[start..].trim_start_matches(['+', '-']);
        let word = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(rest, |end| &rest[..end]);
        ["nan", "inf", "infinity"]
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w))
    };
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("Epoch ") && (i == 0 || !is_word(bytes[i - 1])) {
            let rest = &text[i + 6..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits > 0
                && rest[digits..].starts_with('/')
                && let Ok(n) = rest[..digits].parse()
            {
                progress.last_epoch = Some(n);
            }
        }
        if text[i..].starts_with("loss") && !(i + 4 < bytes.len() && is_word(bytes[i + 4])) {
            let mut start = i;
            while start > 0 && is_word(bytes[start - 1]) {
                start -= 1;
            }
            let key = &text[start..i + 4];
            if key == "loss" || key == "train_loss" {
                let mut j = i + 4;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if j < bytes.len() && (bytes[j] == b':' || bytes[j] == b'=') {
                    j += 1;
                    while j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    if let Some(value) = number_at(j) {
                        progress.final_loss = Some(value);
                    } else if progress.diverged_at.is_none() && non_finite_at(j) {
                        progress.diverged_at = Some(progress.last_epoch.unwrap_or(1));
                    }
                }
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    progress
}

/// The device a line of trainer output says the trainer runs on (`"cpu"` or `"gpu"`):
/// PtychoPINN's TensorFlow path prints `No GPU found, using CPU instead.` when TensorFlow sees
/// none (`ptycho/tf_helper.py`), and TensorFlow logs `Created device .../device:GPU:0` when it
/// takes one; Lightning (the PyTorch path) prints `GPU available: True (cuda), used: True`.
pub fn device_in_line(line: &str) -> Option<&'static str> {
    if line.contains("No GPU found, using CPU instead") {
        return Some("cpu");
    }
    if line.contains("Created device") && line.contains("device:GPU:") {
        return Some("gpu");
    }
    let rest = &line[line.find("GPU available: ")?..];
    let used = &rest[rest.find("used: ")? + "used: ".len()..];
    if used.starts_with("True") {
        Some("gpu")
    } else if used.starts_with("False") {
        Some("cpu")
    } else {
        None
    }
}

/// The device the trainer's output named, with the line that named it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSeen {
    /// `"cpu"` or `"gpu"`.
    pub device: &'static str,
    /// The line, trimmed (at most 200 characters).
    pub evidence: String,
}

/// What the trainer printed ([`scan_trainer_output`]): its progress, the device it trained on
/// and its last non-empty line (for an error message).
#[derive(Debug, Default, PartialEq)]
pub struct TrainerOutput {
    /// The last `Epoch N/M` and training loss.
    pub progress: TrainerProgress,
    /// The device its output named; a GPU named anywhere wins over a CPU named elsewhere.
    pub device: Option<DeviceSeen>,
    /// The last non-empty line, trimmed.
    pub last_line: Option<String>,
}

/// Reads the trainer's output line by line (the output scanner of the `external` protocol):
/// its progress and the device it names.
#[derive(Debug, Default, PartialEq)]
pub struct TrainerScanner {
    /// The last `Epoch N/M` and training loss.
    pub progress: TrainerProgress,
    /// The device its output named; a GPU named anywhere wins over a CPU named elsewhere.
    pub device: Option<DeviceSeen>,
}

impl OutputScanner for TrainerScanner {
    fn line(&mut self, text: &str) {
        let found = parse_trainer_output(text);
        let progress = &mut self.progress;
        progress.last_epoch = found.last_epoch.or(progress.last_epoch);
        progress.final_loss = found.final_loss.or(progress.final_loss);
        if found.diverged_at.is_some() && progress.diverged_at.is_none() {
            progress.diverged_at = Some(progress.last_epoch.unwrap_or(1));
        }
        let trimmed = text.trim();
        // The first line that names a device is the evidence, unless a later one names a GPU.
        if let Some(device) = device_in_line(trimmed)
            && match &self.device {
                None => true,
                Some(seen) => seen.device == "cpu" && device == "gpu",
            }
        {
            self.device = Some(DeviceSeen {
                device,
                evidence: trimmed.chars().take(200).collect(),
            });
        }
    }
}

/// Scans trainer output from `reader` in 64 KiB chunks ([`TrainerScanner`]), as it is scanned
/// while the trainer runs.
pub fn scan_trainer_output(reader: impl Read) -> io::Result<TrainerOutput> {
    let mut scanner = TrainerScanner::default();
    let mut lines = Lines::new(&mut scanner);
    crate::digest::read_chunks(reader, |chunk| lines.feed(chunk))?;
    let last_line = lines.finish();
    Ok(TrainerOutput {
        progress: scanner.progress,
        device: scanner.device,
        last_line,
    })
}

/// What PyTorch Lightning's CSV log says about a training run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LightningLog {
    /// The last finite training loss.
    pub final_loss: Option<f64>,
    /// Epochs trained.
    pub epochs: u32,
    /// The first epoch (1-based) whose training loss is `inf` or `nan`: the training
    /// diverged there.
    pub diverged_at: Option<u32>,
}

/// [`LightningLog`] of `<output_dir>/lightning_logs/version_<highest>/metrics.csv`.
pub fn lightning_metrics(output_dir: &Path) -> Option<LightningLog> {
    let logs = output_dir.join("lightning_logs");
    let version = std::fs::read_dir(&logs)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n: u64 = name.strip_prefix("version_")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)?
        .1;
    parse_lightning_csv(&std::fs::read_to_string(version.join("metrics.csv")).ok()?)
}

/// [`lightning_metrics`] on the CSV text: the loss column is `train_loss_epoch`, else
/// `train_loss`, else the first `*loss_epoch` that is not a validation loss; divergence is a
/// non-finite value in any training-loss column (per step or per epoch).
pub fn parse_lightning_csv(text: &str) -> Option<LightningLog> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').map(str::trim).collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let epoch_col = col("epoch")?;
    let loss_col = col("train_loss_epoch")
        .or_else(|| col("train_loss"))
        .or_else(|| {
            header
                .iter()
                .position(|h| h.ends_with("loss_epoch") && !h.starts_with("val"))
        });
    let train_loss_cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.contains("loss") && !h.starts_with("val"))
        .map(|(i, _)| i)
        .collect();
    let (mut last_loss, mut max_epoch, mut diverged_at) = (None, None::<u32>, None);
    for line in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let epoch = cells
            .get(epoch_col)
            .and_then(|c| c.parse::<f64>().ok())
            .map(|e| e as u32);
        if let Some(e) = epoch {
            max_epoch = Some(max_epoch.map_or(e, |m| m.max(e)));
        }
        let non_finite = train_loss_cols.iter().any(|&c| {
            cells
                .get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| !v.is_finite())
        });
        if non_finite && diverged_at.is_none() {
            diverged_at = Some(epoch.unwrap_or(0) + 1);
        }
        if let Some(v) = loss_col
            .and_then(|c| cells.get(c))
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        {
            last_loss = Some(v);
        }
    }
    Some(LightningLog {
        final_loss: last_loss,
        epochs: max_epoch? + 1,
        diverged_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::MAX_LINE;

    #[test]
    fn the_device_named_by_each_trainer() {
        for (line, device) in [
            ("No GPU found, using CPU instead.", Some("cpu")),
            (
                "I0000 00:00:1 gpu_device.cc:2022] Created device \
                 /job:localhost/replica:0/task:0/device:GPU:0 with 79100 MB memory",
                Some("gpu"),
            ),
            ("INFO: GPU available: True (cuda), used: True", Some("gpu")),
            ("INFO: GPU available: True (cuda), used: False", Some("cpu")),
            (
                "2026 - INFO - GPU available: False, used: False",
                Some("cpu"),
            ),
            (
                "Created device /job:localhost/replica:0/task:0/device:CPU:0",
                None,
            ),
            ("Epoch 1/3", None),
        ] {
            assert_eq!(device_in_line(line), device, "{line}");
        }
        // A GPU named anywhere wins; the first CPU line stays the evidence otherwise.
        let mut scanner = TrainerScanner::default();
        let mut lines = Lines::new(&mut scanner);
        lines.feed(b"No GPU found, using CPU instead.\nINFO: GPU available: True (cuda), used: True\nNo GPU found, using CPU instead.\n");
        lines.finish();
        let seen = scanner.device.unwrap();
        assert_eq!(seen.device, "gpu");
        assert!(seen.evidence.starts_with("INFO: GPU available"));
    }

    #[test]
    fn keras_output() {
        let text = "Epoch 1/3\n\r 1/10 [=>...] - ETA: 1s - loss: 0.9\r10/10 [====] - 1s - loss: \
                    0.5000 - val_loss: 0.7\nEpoch 2/3\n10/10 - loss: 0.25 - val_loss: 0.3\n";
        assert_eq!(
            parse_trainer_output(text),
            TrainerProgress {
                last_epoch: Some(2),
                final_loss: Some(0.25),
                diverged_at: None,
            }
        );
    }

    #[test]
    fn a_nan_or_inf_training_loss_is_divergence_at_its_epoch() {
        let text = "Epoch 1/5\n10/10 - loss: 0.9 - val_loss: 0.8\nEpoch 2/5\n10/10 - loss: nan - \
                    val_loss: nan\nEpoch 3/5\n10/10 - loss: nan\n";
        let progress = parse_trainer_output(text);
        assert_eq!(progress.diverged_at, Some(2));
        assert_eq!(progress.final_loss, Some(0.9));
        // Line by line, as the scanner reads a live trainer.
        let scanned = scan_trainer_output(text.as_bytes()).unwrap();
        assert_eq!(scanned.progress.diverged_at, Some(2));
        assert_eq!(
            parse_trainer_output("Epoch 1: train_loss=inf").diverged_at,
            Some(1)
        );
        // Only the training loss counts, and a word merely starting with `inf` is no number.
        assert_eq!(
            parse_trainer_output("loss: 0.3 - val_loss: nan").diverged_at,
            None
        );
        assert_eq!(parse_trainer_output("loss: information").diverged_at, None);
    }

    #[test]
    fn lightning_output() {
        let text = "Epoch 4: 100%|####| 8/8 [00:01<00:00, train_loss=1.5e-02, val_loss=0.3]\n";
        assert_eq!(
            parse_trainer_output(text),
            TrainerProgress {
                last_epoch: None,
                final_loss: Some(0.015),
                diverged_at: None,
            }
        );
    }

    /// A reader that hands out at most `step` bytes a call (line ends fall between reads).
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_output_reads_like_the_whole_text() {
        let text = "Epoch 1/3\n\r 1/10 [=>...] - ETA: 1s - loss: 0.9\r10/10 [====] - 1s - loss: \
                    0.5000 - val_loss: 0.7\nEpoch 2/3\n10/10 - loss: 0.25 - val_loss: 0.3\n\
                    Traceback (most recent call last):\n  ValueError: bad shape  \n\n";
        for step in [1, 3, 7, 64 * 1024] {
            let out = scan_trainer_output(Trickle(text.as_bytes(), step)).unwrap();
            assert_eq!(out.progress, parse_trainer_output(text), "step {step}");
            assert_eq!(out.last_line.as_deref(), Some("ValueError: bad shape"));
        }
        assert_eq!(
            scan_trainer_output(&b""[..]).unwrap(),
            TrainerOutput::default()
        );
    }

    /// Regression: the whole trainer output was read back into memory (a 300 MB log took
    /// 300 MB); now a line is kept up to 2 MiB, and what ends it is still found.
    #[test]
    fn a_line_without_end_is_bounded() {
        let mut text = vec![b'#'; 5 * MAX_LINE];
        text.extend_from_slice(b" Epoch 7/9 - loss: 0.125");
        let out = scan_trainer_output(&text[..]).unwrap();
        assert_eq!(out.progress.last_epoch, Some(7));
        assert_eq!(out.progress.final_loss, Some(0.125));
        let last = out.last_line.unwrap();
        assert!(last.len() <= 2 * MAX_LINE && last.ends_with("loss: 0.125"));
    }

    #[test]
    fn nothing_to_parse() {
        assert_eq!(
            parse_trainer_output("loading data…\nlosses are fine\nval_loss: 3\n"),
            TrainerProgress::default()
        );
    }

    #[test]
    fn lightning_csv_gives_the_last_training_loss_and_the_epochs() {
        let csv = "epoch,step,train_loss_step,train_loss_epoch,val_loss\n\
                   0,3,0.9,,\n0,7,,0.8,0.95\n1,11,0.5,,\n1,15,,0.45,0.6\n";
        let log = |final_loss, epochs, diverged_at| {
            Some(LightningLog {
                final_loss,
                epochs,
                diverged_at,
            })
        };
        assert_eq!(parse_lightning_csv(csv), log(Some(0.45), 2, None));
        let only_val = "epoch,step,val_loss\n0,1,0.3\n";
        assert_eq!(parse_lightning_csv(only_val), log(None, 1, None));
        assert_eq!(parse_lightning_csv("step,loss\n1,2\n"), None);
        // What the pinned PyTorch trainer wrote at gridsize 2 (dose 1e5): inf at its first
        // step, then nan; a nan validation loss alone is not the training's.
        let diverged = "epoch,learning_rate,poisson_train_loss_epoch,poisson_train_loss_step,\
                        poisson_val_loss,step\n0,,,inf,,0\n0,,,nan,,1\n0,,,,nan,1\n\
                        0,0.001,nan,,,1\n";
        assert_eq!(parse_lightning_csv(diverged), log(None, 1, Some(1)));
        let val_only_nan = "epoch,train_loss_epoch,val_loss\n0,0.5,nan\n";
        assert_eq!(parse_lightning_csv(val_only_nan), log(Some(0.5), 1, None));
    }
}
