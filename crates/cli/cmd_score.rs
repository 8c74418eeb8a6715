//! `dose-overlap score`: scores any reconstruction NPZ against a DATA-001 truth file with the
//! same code and conventions as every job of a study, and prints the `metrics` object.

use crate::output::{emit, outln};
use anyhow::Context;
use recon::{EvalOptions, FrcCrossing, ImageMetrics, Metrics, Split};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Arguments of `dose-overlap score`.
#[derive(clap::Args)]
pub struct Args {
    /// The ground truth: a DATA-001 NPZ whose objectGuess, probeGuess and xcoords/ycoords
    /// define the scored region (e.g. a view's `<view>_test.npz`).
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,
    /// The reconstruction: an NPZ holding a complex 2-D `object` on the truth's objectGuess
    /// grid, or `train_object`/`test_object` (native bundle, PtychoPINN reconstruction) with
    /// --split.
    #[arg(long, value_name = "FILE")]
    recon: PathBuf,
    /// Score `<split>_object` instead of `object`.
    #[arg(long, value_parser = parse_split, value_name = "train|test")]
    split: Option<Split>,
    /// Gaussian sigma of the SSIM window, pixels (a study's metrics_config.ms_ssim_sigma).
    #[arg(long, value_name = "SIGMA")]
    ssim_sigma: Option<f64>,
    /// Print exactly the JSON object a job result holds under `metrics.<split>`.
    #[arg(long)]
    json: bool,
}

fn parse_split(s: &str) -> Result<Split, String> {
    match s {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        other => Err(format!("`{other}` is not a split: use train or test")),
    }
}

/// Runs the command: exit 0 with the scores, 2 when the files cannot be scored.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut options = EvalOptions::default();
    if let Some(sigma) = args.ssim_sigma {
        anyhow::ensure!(
            sigma.is_finite() && sigma > 0.0,
            "--ssim-sigma must be a positive number of pixels, got {sigma}"
        );
        options.ssim_sigma = sigma;
    }
    let metrics =
        recon::score_files(&args.truth, &args.recon, args.split, &options).with_context(|| {
            format!(
                "cannot score {} against {}",
                args.recon.display(),
                args.truth.display()
            )
        })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        emit(&render(&metrics));
    }
    Ok(crate::exit::OK)
}

/// A readable table of the scores.
fn render(m: &Metrics) -> String {
    let mut out = String::new();
    let r = &m.region;
    let _ = writeln!(
        out,
        "region: {} pixels, rows {}..{}, columns {}..{} ({})",
        r.pixels, r.rows[0], r.rows[1], r.cols[0], r.cols[1], r.rule
    );
    let _ = writeln!(
        out,
        "view: {} positions, {:.2} exposures per region pixel on average",
        r.positions, r.mean_exposures
    );
    let _ = writeln!(
        out,
        "Fienup NRMSE: {:.4} (flat start {:.4})",
        m.fienup_nrmse, m.fienup_nrmse_initial
    );
    let p = &m.phase_plane;
    let _ = writeln!(
        out,
        "phase plane removed: {:.4} rad + {:.3e} rad/px x + {:.3e} rad/px y\n",
        p.offset_rad, p.slope_x_rad_per_px, p.slope_y_rad_per_px
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>16} {:>16}",
        "image", "MAE", "PSNR dB", "range", "SSIM", "MS-SSIM", "FRC 0.5 px", "FRC half-bit px"
    );
    for (name, im) in [("amplitude", &m.amplitude), ("phase", &m.phase)] {
        let _ = writeln!(out, "{}", row(name, im));
    }
    out
}

fn row(name: &str, im: &ImageMetrics) -> String {
    format!(
        "{:<10} {:>10.4} {:>10.2} {:>10.4} {:>8.4} {:>8.4} {:>16} {:>16}",
        name,
        im.mae,
        im.psnr_db,
        im.data_range,
        im.ssim,
        im.ms_ssim,
        frc_cell(&im.frc_05),
        frc_cell(&im.frc_half_bit)
    )
}

fn frc_cell(c: &FrcCrossing) -> String {
    match (c.resolution_px, c.crossed) {
        (None, _) => "not resolved".into(),
        (Some(px), true) => format!("{px:.1}"),
        (Some(px), false) => format!("<= {px:.1}"),
    }
}
