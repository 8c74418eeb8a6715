//! `dose-overlap design`: prints the study design, after checking it.

use crate::output::outln;
use crate::study_args::StudyArgs;

/// Arguments of `dose-overlap design`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    study: StudyArgs,
    /// Print exactly the nine design keys as JSON.
    #[arg(long, conflicts_with = "study_file")]
    json: bool,
    /// Print the whole study (design, simulation, solver) as a JSON study file.
    #[arg(long)]
    study_file: bool,
    /// As `study --replicates R`: the study with R replicates (the estimate is R times one).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=i64::from(study_design::MAX_REPLICATES)))]
    replicates: Option<u32>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut study = args.study.load()?;
    if let Some(r) = args.replicates {
        study.replicates = r;
    }
    if args.json {
        outln!("{}", study.design.to_json());
        return Ok(crate::exit::OK);
    }
    if args.study_file {
        outln!("{}", study.to_study_json());
        return Ok(crate::exit::OK);
    }
    let d = &study.design;
    let list = |v: &[String]| v.join(", ");
    let doses: Vec<String> = d.dose_list.iter().map(|x| format!("{x:e}")).collect();
    let grids: Vec<String> = d.gridsizes.iter().map(|g| g.to_string()).collect();
    let spacings = d.spacing_thresholds();
    let views: Vec<String> = d
        .overlap_views
        .iter()
        .map(
            |(name, f)| match (d.overlap_target(name), spacings.get(name)) {
                (Some(t), _) => format!(
                    "{name} (overlap {} ± {}, spacing chosen by Phase D from the probe)",
                    t.overlap, t.tolerance
                ),
                (None, Some(s)) => format!("{name} (f = {f}, spacing >= {s} px)"),
                (None, None) => format!("{name} (f = {f})"),
            },
        )
        .collect();
    let s = &d.rng_seeds;
    let m = &d.metrics_config;
    let sim = &study.simulation;
    let sol = &study.solver;
    outln!("study: {}", study.name);
    outln!("  doses (photons):     {}", list(&doses));
    outln!("  gridsizes:           {}", list(&grids));
    outln!("  neighbor_count (K):  {}", d.neighbor_count);
    outln!("  patch size (N):      {} px", d.patch_size_pixels);
    outln!("  overlap views:       {}", list(&views));
    if d.cross_gridsizes {
        outln!("  training:            every variant at every gridsize (cross_gridsizes)");
    }
    outln!(
        "  split axis:          {}",
        d.train_test_split_axis.as_str()
    );
    outln!(
        "  seeds:               simulation {}, grouping {}, subsampling {}",
        s.simulation,
        s.grouping,
        s.subsampling
    );
    outln!(
        "  metrics:             ms_ssim_sigma {}, emphasize_phase {}, report_amplitude {}",
        m.ms_ssim_sigma,
        m.emphasize_phase,
        m.report_amplitude
    );
    let source = sim
        .base_npz
        .as_ref()
        .map_or("built-in".to_string(), |p| p.display().to_string());
    // The pattern only when not the default, so the default study prints what it did.
    let pattern = match sim.scan_pattern {
        study_design::ScanPattern::Random => String::new(),
        other => format!(" ({} scan)", other.as_str()),
    };
    outln!(
        "  simulation:          {} positions{pattern}, object {} ({} px), {}",
        sim.n_positions,
        source,
        sim.object_size,
        if sim.compress { "deflated" } else { "stored" }
    );
    outln!(
        "  solver:              {}, alpha {}, beta {}, {}, probe {}{}",
        sol.algorithm.as_str(),
        sol.alpha,
        sol.beta,
        if sol.algorithm == study_design::Algorithm::Ml && sol.tolerance > 0.0 {
            format!(
                "up to {} epochs (stops when the object changes by less than {} over 25)",
                sol.epochs, sol.tolerance
            )
        } else {
            format!("{} epochs", sol.epochs)
        },
        if sol.refine_probe { "refined" } else { "fixed" },
        if sol.algorithm == study_design::Algorithm::Ml {
            format!(", smoothness {}", sol.smoothness)
        } else {
            String::new()
        }
    );
    let pinn = &study.pinn;
    let batches: Vec<String> = d
        .gridsizes
        .iter()
        .map(|&g| match pinn.batch_size_for(g) {
            Some((b, _)) => format!("{b} at gridsize {g}"),
            None => format!("none at gridsize {g}"),
        })
        .collect();
    let groups = pinn
        .n_groups
        .map_or("the smaller split's positions".to_string(), |n| {
            n.to_string()
        });
    outln!(
        "  pinn:                {} epochs, batch {}, groups {}, accelerator {} (tensorflow, pytorch)",
        pinn.epochs,
        batches.join(", "),
        groups,
        pinn.accelerator
    );
    // Estimated from the study alone (a base NPZ's own sizes are used by generate's check).
    let e = study.estimate(None, study_design::SceneSize::default());
    let human = study_design::human_bytes;
    outln!(
        "  estimate:            Phase C needs about {} of memory and writes {}; Phase D writes at most {}",
        human(e.memory),
        human(e.disk_phase_c),
        human(e.disk_phase_d_max)
    );
    let r = study.replicates;
    if r > 1 {
        let times = |b: u128| human(b.saturating_mul(u128::from(r)));
        outln!(
            "  replicates:          {r}, each the whole study on its own draw of positions and noise \
             (DIR/replicate_NN): Phase C, Phase D and every job {r} times; writes about {} (Phase C) \
             and at most {} (Phase D), trains {r} times as long; Phase C's memory is one \
             replicate's (they run one after another)",
            times(e.disk_phase_c),
            times(e.disk_phase_d_max)
        );
    }
    Ok(crate::exit::OK)
}
