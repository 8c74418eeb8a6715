//! The front door of every algorithm: [`reconstruct`] and its variants pick the engine
//! ([`Engine`] for ePIE and rPIE, [`MlEngine`] for ml), run the epochs, and stop a run that
//! diverges or is cancelled.

use crate::ReconError;
use crate::data::Dataset;
use crate::epie::Engine;
use crate::job::{CoreLender, NoLender};
use crate::ml::{CHUNKS, MlEngine};
use crate::reconstruction::Reconstruction;
use crate::settings::Settings;
use std::ops::ControlFlow;
use study_design::Algorithm;

/// Reconstructs one split: `settings.epochs` epochs from a flat object (ones), calling
/// `on_epoch(epoch, E_F)` after each (epochs count from 1).
pub fn reconstruct(
    data: &Dataset,
    settings: &Settings,
    on_epoch: &mut dyn FnMut(u32, f64),
) -> Result<Reconstruction, ReconError> {
    reconstruct_until(data, settings, &mut |epoch, loss| {
        on_epoch(epoch, loss);
        ControlFlow::Continue(())
    })
}

/// [`reconstruct`] with a callback that may stop the run: [`ReconError::Cancelled`] when it
/// breaks. One thread.
pub fn reconstruct_until(
    data: &Dataset,
    settings: &Settings,
    on_epoch: &mut dyn FnMut(u32, f64) -> ControlFlow<()>,
) -> Result<Reconstruction, ReconError> {
    reconstruct_threads(data, settings, 1, on_epoch)
}

/// E_F above which a run has diverged (and above [`DIVERGE_FACTOR`] times its first epoch's).
/// By the triangle inequality E_F <= (1 + sqrt(E_model / E_data))^2, so E_F > 10 needs a model
/// whose diffraction carries over 4.7 times the measured energy: an object whose amplitude
/// more than doubled on average, which no transmission object does. The zero object has
/// E_F = 1; every working run here ends well below it.
pub const DIVERGE_EF: f64 = 10.0;
/// See [`DIVERGE_EF`]: a start that is bad on purpose (far from the data) is not a divergence
/// until its loss has grown tenfold.
pub const DIVERGE_FACTOR: f64 = 10.0;

/// [`reconstruct_until`] on up to `threads` threads (ml only: ePIE and rPIE are sequential by
/// nature); the bits do not depend on `threads`.
pub fn reconstruct_threads(
    data: &Dataset,
    settings: &Settings,
    threads: usize,
    on_epoch: &mut dyn FnMut(u32, f64) -> ControlFlow<()>,
) -> Result<Reconstruction, ReconError> {
    reconstruct_lent(data, settings, threads, &NoLender, on_epoch)
}

/// [`reconstruct_threads`] where ml takes a core from `lender` between epochs whenever one is
/// free (up to [`CHUNKS`] threads), and gives them all back when it ends; the bits do not
/// depend on it.
pub fn reconstruct_lent(
    data: &Dataset,
    settings: &Settings,
    threads: usize,
    lender: &dyn CoreLender,
    on_epoch: &mut dyn FnMut(u32, f64) -> ControlFlow<()>,
) -> Result<Reconstruction, ReconError> {
    let mut history: Vec<f64> = Vec::with_capacity(settings.epochs as usize);
    let mut check = |epoch: u32, loss: f64| -> Result<(), ReconError> {
        history.push(loss);
        let bound = DIVERGE_EF.max(DIVERGE_FACTOR * history[0]);
        if !loss.is_finite() || loss > bound {
            return Err(ReconError::Diverged {
                epoch,
                loss,
                loss_history: history.clone(),
            });
        }
        if on_epoch(epoch, loss).is_break() {
            return Err(ReconError::Cancelled);
        }
        Ok(())
    };
    if settings.algorithm == Algorithm::Ml {
        let mut engine = MlEngine::new(data, settings, threads)?;
        let mut borrowed = 0;
        let run = (|| {
            for epoch in 1..=settings.epochs {
                if engine.threads() < CHUNKS && lender.borrow() {
                    borrowed += 1;
                    engine.set_threads(engine.threads() + 1);
                }
                let loss = engine.run_epoch();
                check(epoch, loss)?;
                if engine.converged() {
                    engine.mark_stopped();
                    break;
                }
            }
            Ok::<(), ReconError>(())
        })();
        for _ in 0..borrowed {
            lender.give_back();
        }
        run?;
        let (rec, report) = engine.finish();
        return finite_object(
            rec.loss_history.clone(),
            Reconstruction {
                ml: Some(report),
                ..rec
            },
        );
    }
    let mut engine = Engine::new(data, settings)?;
    for epoch in 1..=settings.epochs {
        let loss = engine.run_epoch();
        check(epoch, loss)?;
    }
    let rec = engine.finish();
    finite_object(rec.loss_history.clone(), rec)
}

/// A non-finite pixel anywhere is a divergence too (E_F sees only illuminated pixels).
fn finite_object(history: Vec<f64>, rec: Reconstruction) -> Result<Reconstruction, ReconError> {
    let ok = rec
        .object
        .iter()
        .chain(rec.probe.iter())
        .all(|v| v.re.is_finite() && v.im.is_finite());
    if ok {
        Ok(rec)
    } else {
        Err(ReconError::Diverged {
            epoch: rec.epochs_completed,
            loss: history.last().copied().unwrap_or(f64::NAN),
            loss_history: history,
        })
    }
}
