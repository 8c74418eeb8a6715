//! A study's Phase C and D on SLURM, dose by dose: which doses the `prep` array runs (those
//! not verified complete, by the local rerun's rules), what one of its tasks does, and the
//! Phase C and D records the `plan` stage writes once every task is done. Each task writes
//! only its own dose's folders and its record in `DIR/slurm/prep`; the phase records, which
//! list every dose's files, are written once, by `plan`, exactly as the local run writes
//! them.

use crate::progress::Progress;
use crate::study_slurm::{self, Prep, remove_if_there};
use crate::{cmd_generate, cmd_overlap, exit, study_resume};
use anyhow::Context;
use reporting::verify::{PhaseRecord, phase_record_file};
use std::path::{Path, PathBuf};
use study_design::{Design, Study};

/// One study folder's Phase C and D.
pub struct Phases<'a> {
    /// The study folder.
    pub out: &'a Path,
    /// SHA-256 of its `study.json`.
    pub study_sha: &'a str,
    /// Phase C's inputs (the base NPZ, if any).
    pub c_inputs: &'a [PathBuf],
}

impl Phases<'_> {
    /// `DIR/slurm/prep/<dose>.record.json`.
    fn dose_record(&self, dose_dir: &str) -> PathBuf {
        study_slurm::prep_dir(self.out).join(format!("{dose_dir}.record.json"))
    }

    /// `Ok` when the study's Phase C and D records verify, as when a local rerun skips both.
    fn phases_verified(&self) -> Result<(), String> {
        study_resume::verified(self.out, "phase_c", self.study_sha, None, self.c_inputs)?;
        let d_inputs = study_resume::files_under(self.out, "phase_c");
        study_resume::verified(self.out, "phase_d", self.study_sha, None, &d_inputs)?;
        Ok(())
    }

    /// The doses the `prep` array runs: none when the phase records verify (and no
    /// `--force`), else each dose whose own record does not verify.
    pub fn prep_to_run(&self, doses: &[f64], force: bool, progress: &Progress) -> Prep {
        let names: Vec<String> = doses.iter().map(|d| Design::dose_dir_name(*d)).collect();
        if force {
            progress.note("== Phase C and D: --force, every dose");
            return Prep {
                todo: (0..names.len()).collect(),
                doses: names,
                keep_records: false,
                keep_phase_c: false,
            };
        }
        match self.phases_verified() {
            Ok(()) => {
                progress.note(&format!(
                    "== Phase C and D: outputs verified against {} and {}, no prep task",
                    phase_record_file("phase_c"),
                    phase_record_file("phase_d")
                ));
                Prep {
                    doses: names,
                    todo: Vec::new(),
                    keep_records: true,
                    keep_phase_c: true,
                }
            }
            Err(why) => {
                let todo: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, name)| {
                        study_resume::dose_verified(
                            self.out,
                            &self.dose_record(name),
                            name,
                            self.study_sha,
                            self.c_inputs,
                        )
                        .is_err()
                    })
                    .map(|(i, _)| i)
                    .collect();
                // Phase C verified as a whole (a local run that stopped in Phase D): kept, and
                // each task redoes only its dose's Phase D.
                let keep_phase_c = !todo.is_empty()
                    && study_resume::verified(
                        self.out,
                        "phase_c",
                        self.study_sha,
                        None,
                        self.c_inputs,
                    )
                    .is_ok();
                progress.note(&format!(
                    "== Phase C and D ({why}): {} of {} dose(s) not verified complete{}",
                    todo.len(),
                    names.len(),
                    if keep_phase_c {
                        format!(
                            "; Phase C verified against {}, kept: their tasks redo Phase D only",
                            phase_record_file("phase_c")
                        )
                    } else {
                        String::new()
                    }
                ));
                Prep {
                    doses: names,
                    todo,
                    keep_records: false,
                    keep_phase_c,
                }
            }
        }
    }

    /// Before submitting: the records of what `prep` will (re)write are removed, so that an
    /// interrupted chain leaves none that would pass for complete.
    pub fn forget_for(&self, prep: &Prep) -> anyhow::Result<()> {
        if !prep.keep_records {
            for phase in ["phase_c", "phase_d"] {
                if phase == "phase_c" && prep.keep_phase_c {
                    continue;
                }
                study_resume::forget(self.out, phase)
                    .with_context(|| format!("removing the {phase} record"))?;
            }
        }
        for &i in &prep.todo {
            remove_if_there(&self.dose_record(&prep.doses[i]))?;
        }
        Ok(())
    }

    /// One `prep` task: `dose`'s Phase C dataset, then its Phase D views, then its record.
    pub fn prep_dose(
        &self,
        study: &Study,
        dose: f64,
        max_memory: Option<u64>,
        progress: &Progress,
    ) -> anyhow::Result<u8> {
        let dose_dir = Design::dose_dir_name(dose);
        let record = self.dose_record(&dose_dir);
        remove_if_there(&record)?;
        let (phase_c, phase_d) = (self.out.join("phase_c"), self.out.join("phase_d"));
        // The submission removed the Phase C record unless it verified then (a local run that
        // stopped in Phase D); this study's record still there means Phase C stays as it is.
        let phase_c_kept = PhaseRecord::read(self.out, "phase_c")
            .is_some_and(|r| r.study_sha256 == self.study_sha);
        if phase_c_kept {
            progress.note(&format!(
                "== {dose_dir}: Phase C verified against {} at submission, kept",
                phase_record_file("phase_c")
            ));
        } else {
            self.generate_dose(study, dose, &phase_c, max_memory, progress)?;
        }
        progress.note(&format!("== {dose_dir}: Phase D (overlap)"));
        let overlap = cmd_overlap::Options {
            phase_c_root: phase_c,
            out: phase_d,
            study: study.clone(),
            dose: Some(dose),
        };
        if cmd_overlap::execute(&overlap, progress)? != exit::OK {
            anyhow::bail!("Phase D (overlap) of {dose_dir} failed; see the messages above");
        }
        study_resume::record_dose(self.out, &record, &dose_dir, self.study_sha, self.c_inputs)
            .with_context(|| format!("recording {dose_dir}'s Phase C and D outputs"))?;
        Ok(exit::OK)
    }

    /// `dose`'s Phase C dataset, into `phase_c`.
    fn generate_dose(
        &self,
        study: &Study,
        dose: f64,
        phase_c: &Path,
        max_memory: Option<u64>,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let dose_dir = Design::dose_dir_name(dose);
        progress.note(&format!("== {dose_dir}: Phase C (generate)"));
        let generate = cmd_generate::Options {
            out: phase_c.to_path_buf(),
            study: study.clone(),
            base_npz: None,
            dose: Some(dose),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_memory,
        };
        if cmd_generate::execute(&generate, progress)? != exit::OK {
            anyhow::bail!("Phase C (generate) of {dose_dir} failed; see the messages above");
        }
        Ok(())
    }

    /// The `plan` stage's start: the Phase C and D records, written once from every dose's
    /// files (as the local run writes them), unless the submission kept them as verified.
    pub fn record_after_prep(&self, doses: &[f64], progress: &Progress) -> anyhow::Result<()> {
        let kept = |phase: &str| {
            PhaseRecord::read(self.out, phase).is_some_and(|r| r.study_sha256 == self.study_sha)
        };
        if kept("phase_c") && kept("phase_d") {
            progress.note("== Phase C and D: verified at submission, records kept");
            return Ok(());
        }
        // `afterok` on the `prep` arrays has this hold; a dose missing here was changed since.
        for dose in doses {
            let dose_dir = Design::dose_dir_name(*dose);
            let path = self.dose_record(&dose_dir);
            let ok = study_resume::read_dose_record(&path, &dose_dir)
                .is_some_and(|r| r.study_sha256 == self.study_sha);
            anyhow::ensure!(
                ok,
                "{dose_dir} has no Phase C and D record of this study ({}): its `prep` task did \
                 not finish; submit the study again",
                path.display()
            );
        }
        progress.note("== Phase C and D: every dose done; recording them");
        study_resume::record(self.out, "phase_c", self.study_sha, None, self.c_inputs)
            .context("recording Phase C's outputs")?;
        let d_inputs = study_resume::files_under(self.out, "phase_c");
        study_resume::record(self.out, "phase_d", self.study_sha, None, &d_inputs)
            .context("recording Phase D's outputs")?;
        Ok(())
    }
}
