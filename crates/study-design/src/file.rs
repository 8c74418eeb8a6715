//! A whole study: the design plus `[simulation]`, `[solver]` and `[pinn]`, from a preset or a TOML/JSON
//! file that overrides a preset key by key.

use crate::design::{Design, MetricsConfig, RngSeeds, SplitAxis};
use crate::named::NamedValues;
use crate::peers::{Ptychi, Supervised};
use crate::simulation::Simulation;
use crate::solver::{Pinn, Solver};
use crate::views::{RawViews, ViewsExport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Built-in studies: `default` (the fly64 design, sized for minutes on 2 cores), `tiny`
/// (seconds; tests and goldens; N = 32, so native only) and `pinn-small` (N = 64, the smallest
/// study PtychoPINN's model accepts; quick real-trainer studies and CI) and `pinn-1k` (N = 64 at
/// PtychoPINN's data size: more than 1,024 training patterns per split) and `fly64-full` (the
/// original study's scale: N = 128, 10,304 positions per dose on the 464 px object) and `map`
/// (the dose x overlap map: 6 doses from 1e2 to 1e6, 5 overlap targets from 0.8 to 0.1 on a
/// hex scan, gridsize 1, native `ml`; N = 32, minutes on 2 cores).
pub const PRESETS: &[&str] = &[
    "default",
    "tiny",
    "pinn-small",
    "pinn-1k",
    "fly64-full",
    "map",
];

/// Most replicates a study may ask for: each is a whole study.
pub const MAX_REPLICATES: u32 = 99;

/// Replicate `r`'s seed from a design seed: SplitMix64's finaliser of `seed + r * golden
/// gamma`, so nearby seeds and indices give unrelated streams. Replicate 1 keeps `seed`.
pub fn derive_seed(seed: u64, r: u32) -> u64 {
    if r <= 1 {
        return seed;
    }
    let mut z = seed.wrapping_add(u64::from(r).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Largest study file read (1 MiB): the largest study the limits allow is a few kB, and a file
/// of a million doses is refused before it is parsed.
pub const MAX_STUDY_FILE_BYTES: u64 = 1 << 20;

/// Why a study could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The file could not be read.
    // The cause is part of the message, not a `source`: an error chain printed in full
    // (`{:#}`) would otherwise say it twice.
    #[error("cannot read study file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file is not valid TOML/JSON of a study (unknown key, wrong type, ...).
    #[error("study file {path} is not a valid study: {message}")]
    Parse {
        /// The file (or `<string>`).
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A `preset = "..."` names no preset.
    #[error("unknown preset '{name}': use one of {}", PRESETS.join(", "))]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// The study parsed but fails validation.
    #[error("study {path} is invalid:\n  {}", problems.join("\n  "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// A whole study.
#[derive(Clone, Debug, PartialEq)]
pub struct Study {
    /// A short name (reports and evidence use it).
    pub name: String,
    /// The nine-key design.
    pub design: Design,
    /// Phase C settings.
    pub simulation: Simulation,
    /// Native solver settings.
    pub solver: Solver,
    /// PtychoPINN settings (the tensorflow and pytorch methods).
    pub pinn: Pinn,
    /// pty-chi settings (the `ptychi:<algorithm>` methods).
    pub ptychi: Ptychi,
    /// PtychoPINN's supervised baseline (`tensorflow:supervised`).
    pub supervised: Supervised,
    /// Independent realisations of the data (scan positions and Poisson noise), each a whole
    /// study of its own (`replicate_NN/`), aggregated with intervals (issue 22). 1: one run.
    pub replicates: u32,
    /// Set in the study of one replicate (`replicate_NN/study.json`): its index, 1-based.
    /// Its seeds are already the replicate's ([`Study::replicate_study`]).
    pub replicate: Option<u32>,
}

/// The file form: every key optional, overriding the preset it starts from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: Option<String>,
    preset: Option<String>,
    dose_list: Option<Vec<f64>>,
    gridsizes: Option<Vec<u32>>,
    neighbor_count: Option<u32>,
    patch_size_pixels: Option<u32>,
    overlap_views: Option<RawViews>,
    spacing_thresholds: Option<NamedValues>,
    cross_gridsizes: Option<bool>,
    train_test_split_axis: Option<SplitAxis>,
    rng_seeds: Option<serde_json::Value>,
    metrics_config: Option<serde_json::Value>,
    simulation: Option<serde_json::Value>,
    solver: Option<serde_json::Value>,
    pinn: Option<serde_json::Value>,
    ptychi: Option<serde_json::Value>,
    supervised: Option<serde_json::Value>,
    replicates: Option<u32>,
    replicate: Option<u32>,
    // Read by [`Study::slurm_table`]: how a cluster runs the study, not what it computes, so
    // it is not part of the study (nor of `study.json`, whose digest the phase records hold).
    #[serde(rename = "slurm")]
    _slurm: Option<serde::de::IgnoredAny>,
}

/// The `[slurm]` table of a study file, as it is (`crates/cli` gives it meaning).
#[derive(Deserialize)]
struct SlurmOnly {
    slurm: Option<serde_json::Value>,
}

/// The full file form written by [`Study::to_study_json`].
#[derive(Serialize)]
struct StudyExport<'a> {
    name: &'a str,
    dose_list: &'a [f64],
    gridsizes: &'a [u32],
    neighbor_count: u32,
    patch_size_pixels: u32,
    overlap_views: ViewsExport<'a>,
    spacing_thresholds: NamedValues,
    // Only when set: the study file (and digest) of a study without it is what it was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cross_gridsizes: bool,
    train_test_split_axis: SplitAxis,
    rng_seeds: &'a RngSeeds,
    metrics_config: &'a MetricsConfig,
    simulation: &'a Simulation,
    solver: &'a Solver,
    pinn: &'a Pinn,
    // The peers' tables only when they differ from the defaults: the study file of a study
    // that never names them reads as it did before they existed (its digest too).
    #[serde(skip_serializing_if = "default_ptychi")]
    ptychi: &'a Ptychi,
    #[serde(skip_serializing_if = "default_supervised")]
    supervised: &'a Supervised,
    // Only when more than one / in a replicate's study: a study without replicates reads
    // (and digests) as it did before they existed.
    #[serde(skip_serializing_if = "one")]
    replicates: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicate: Option<u32>,
}

fn one(n: &u32) -> bool {
    *n == 1
}

fn default_ptychi(p: &&Ptychi) -> bool {
    p.is_default()
}

fn default_supervised(s: &&Supervised) -> bool {
    s.is_default()
}

impl Default for Study {
    fn default() -> Self {
        Study::preset("default").expect("the default preset exists")
    }
}

impl Study {
    /// A built-in study by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Option<Study> {
        match name {
            "default" => Some(Study {
                name: "default".into(),
                design: Design::default(),
                simulation: Simulation::default_study(),
                solver: Solver::default(),
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            "tiny" => Some(Study {
                name: "tiny".into(),
                design: Design {
                    patch_size_pixels: 32,
                    ..Design::default()
                },
                simulation: Simulation::tiny(),
                solver: Solver {
                    epochs: 20,
                    ..Solver::default()
                },
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            // PtychoPINN's model takes N = 64, 128 or 256 only; this is the default study
            // (doses, views, K, seeds) at N = 64 with a few hundred positions.
            "pinn-small" => Some(Study {
                name: "pinn-small".into(),
                design: Design {
                    patch_size_pixels: 64,
                    ..Design::default()
                },
                simulation: Simulation::pinn_small(),
                solver: Solver::default(),
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            // PtychoPINN at the data size it is built for (its default is 512 groups, its
            // paper's data-efficiency claim 1,024 training images): 2,200 positions give 1,077
            // train and 1,123 test patterns (a 5 % validation split of 53), and views that hold
            // groups at gridsize 2: dense (f = 0.7) 265 and 269 per split, sparse (f = 0.6, not
            // the fly64 0.2, whose 51 px spacing leaves too few positions here) 174 and 171.
            "pinn-1k" => Some(Study {
                name: "pinn-1k".into(),
                design: Design {
                    patch_size_pixels: 64,
                    overlap_views: NamedValues(vec![("dense".into(), 0.7), ("sparse".into(), 0.6)]),
                    ..Design::default()
                },
                simulation: Simulation::pinn_1k(),
                solver: Solver::default(),
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            // The original fly64 study at its own scale: 5,088 + 5,216 positions per dose there;
            // 10,304 here, split along y into 5,137 train and 5,167 test (seed 42), with the
            // default study's doses, views, K and seeds (dense 43 / 42 kept, sparse rejected).
            "fly64-full" => Some(Study {
                name: "fly64-full".into(),
                design: Design::default(),
                simulation: Simulation::fly64_full(),
                solver: Solver::default(),
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            // The dose x overlap map (issue 21): the tiny geometry (N = 32, 112 px object,
            // probe D about 18 px) with a 2,000-position hex scan, whose sub-lattices hold
            // every level at the same field of view and dose per pattern; doses evenly spaced
            // in log10 (0.8 apart). Gridsize 1 and native ml only: the map's axis is overlap,
            // not grouping.
            "map" => Some(Study {
                name: "map".into(),
                design: Design {
                    dose_list: vec![1e2, 630.0, 4e3, 2.5e4, 1.6e5, 1e6],
                    gridsizes: vec![1],
                    patch_size_pixels: 32,
                    overlap_views: NamedValues(
                        [0.8, 0.6, 0.4, 0.2, 0.1]
                            .iter()
                            .map(|o| (format!("o{}", (o * 100.0f64).round()), *o))
                            .collect(),
                    ),
                    overlap_targets: [0.8, 0.6, 0.4, 0.2, 0.1]
                        .iter()
                        .map(|o| {
                            (
                                format!("o{}", (o * 100.0f64).round()),
                                crate::OverlapTarget {
                                    overlap: *o,
                                    tolerance: crate::DEFAULT_OVERLAP_TOLERANCE,
                                },
                            )
                        })
                        .collect(),
                    ..Design::default()
                },
                simulation: Simulation {
                    n_positions: 2000,
                    scan_pattern: crate::ScanPattern::Hex,
                    ..Simulation::tiny()
                },
                solver: Solver::default(),
                pinn: Pinn::default(),
                ptychi: Ptychi::default(),
                supervised: Supervised::default(),
                replicates: 1,
                replicate: None,
            }),
            _ => None,
        }
    }

    /// Reads a study file: `.json` as JSON, anything else as TOML. A relative `base_npz` is
    /// taken relative to the file's folder. The study is validated.
    pub fn from_path(path: &Path) -> Result<Study, StudyError> {
        let (text, json) = read_study_text(path)?;
        let mut study = Study::parse(&text, json, path)?;
        if let Some(base) = &study.simulation.base_npz
            && base.is_relative()
        {
            let dir = path.parent().unwrap_or(Path::new("."));
            // Absolute, so that the study as recorded (`study.json` in a study folder, read
            // back from there) still names the same file.
            let joined = std::path::absolute(dir.join(base)).unwrap_or_else(|_| dir.join(base));
            // The resolved study is written as JSON (study.json): its paths must be UTF-8.
            if joined.to_str().is_none() {
                return Err(StudyError::Invalid {
                    path: path.to_path_buf(),
                    problems: vec![format!(
                        "simulation.base_npz {} is relative to the study file's folder, whose path \
                         is not valid UTF-8: give an absolute base_npz or move the study file",
                        joined.display()
                    )],
                });
            }
            study.simulation.base_npz = Some(joined);
        }
        study.check(path)?;
        Ok(study)
    }

    /// The `[slurm]` table of a study file (`None` when it has none), read with the same
    /// limits as [`Study::from_path`]; its meaning is the cluster executor's.
    pub fn slurm_table(path: &Path) -> Result<Option<serde_json::Value>, StudyError> {
        let (text, json) = read_study_text(path)?;
        let parse_err = |message: String| StudyError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let only: SlurmOnly = if json {
            serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| parse_err(e.to_string().trim_end().to_string()))?
        };
        Ok(only.slurm)
    }
}

/// A study file's text (a regular file of at most [`MAX_STUDY_FILE_BYTES`], UTF-8) and
/// whether it is JSON (by its extension).
fn read_study_text(path: &Path) -> Result<(String, bool), StudyError> {
    let read_err = |cause| StudyError::Read {
        path: path.to_path_buf(),
        cause,
    };
    // A regular file of bounded size: /dev/zero or a FIFO would be read without end.
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(std::io::Error::other(
            "it is not a regular file (a directory, device or pipe)",
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(read_err)?,
            MAX_STUDY_FILE_BYTES + 1,
        ),
        &mut bytes,
    )
    .map_err(read_err)?;
    if bytes.len() as u64 > MAX_STUDY_FILE_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "it is larger than {MAX_STUDY_FILE_BYTES} bytes, the limit for a study file \
                 (a study of the largest allowed size is a few kB)"
        ))));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| read_err(std::io::Error::other("it is not UTF-8 text")))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok((text, json))
}

impl Study {
    /// Parses study text (TOML, or JSON when `json`) without validating it.
    pub fn parse(text: &str, json: bool, path: &Path) -> Result<Study, StudyError> {
        let parse_err = |message: String| StudyError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawStudy = if json {
            serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| parse_err(e.to_string().trim_end().to_string()))?
        };
        let preset = raw.preset.as_deref().unwrap_or("default");
        let base = Study::preset(preset).ok_or_else(|| StudyError::UnknownPreset {
            name: preset.to_string(),
        })?;
        let d = base.design;
        // A file's views replace the preset's, targets included.
        let (overlap_views, overlap_targets) = match raw.overlap_views {
            Some(views) => views.split(),
            None => (d.overlap_views, d.overlap_targets),
        };
        let design = Design {
            dose_list: raw.dose_list.unwrap_or(d.dose_list),
            gridsizes: raw.gridsizes.unwrap_or(d.gridsizes),
            neighbor_count: raw.neighbor_count.unwrap_or(d.neighbor_count),
            patch_size_pixels: raw.patch_size_pixels.unwrap_or(d.patch_size_pixels),
            overlap_views,
            overlap_targets,
            spacing_overrides: raw.spacing_thresholds.or(d.spacing_overrides),
            cross_gridsizes: raw.cross_gridsizes.unwrap_or(d.cross_gridsizes),
            train_test_split_axis: raw.train_test_split_axis.unwrap_or(d.train_test_split_axis),
            rng_seeds: overlay(&d.rng_seeds, raw.rng_seeds, "rng_seeds").map_err(parse_err)?,
            metrics_config: overlay(&d.metrics_config, raw.metrics_config, "metrics_config")
                .map_err(parse_err)?,
        };
        Ok(Study {
            name: raw.name.unwrap_or(base.name),
            design,
            simulation: overlay(&base.simulation, raw.simulation, "simulation")
                .map_err(parse_err)?,
            solver: overlay(&base.solver, raw.solver, "solver").map_err(parse_err)?,
            pinn: overlay(&base.pinn, raw.pinn, "pinn").map_err(parse_err)?,
            ptychi: overlay(&base.ptychi, raw.ptychi, "ptychi").map_err(parse_err)?,
            supervised: overlay(&base.supervised, raw.supervised, "supervised")
                .map_err(parse_err)?,
            replicates: raw.replicates.unwrap_or(base.replicates),
            replicate: raw.replicate,
        })
    }

    /// Every problem with the study: design, simulation, solver and pinn.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.design.validate();
        problems.extend(self.simulation.validate(self.design.patch_size_pixels));
        problems.extend(self.solver.validate());
        problems.extend(self.pinn.validate(&self.design.gridsizes));
        problems.extend(self.ptychi.validate());
        problems.extend(self.supervised.validate());
        if !(1..=MAX_REPLICATES).contains(&self.replicates) {
            problems.push(format!(
                "replicates={} must be in 1..={MAX_REPLICATES} (each replicate is a whole \
                 study: Phase C, D and every job again)",
                self.replicates
            ));
        }
        if let Some(r) = self.replicate {
            if !(1..=MAX_REPLICATES).contains(&r) {
                problems.push(format!("replicate={r} must be in 1..={MAX_REPLICATES}"));
            }
            if self.replicates != 1 {
                problems.push(format!(
                    "replicate={r} names one replicate's study, which has replicates = 1, not {}",
                    self.replicates
                ));
            }
        }
        problems
    }

    /// The study of replicate `r` (1-based) of this one: replicate 1 draws with the study's
    /// own seeds (so it is the study without replicates, run again); replicate r > 1 draws
    /// scan positions, noise, grouping and subsampling from seeds derived from the study's
    /// seeds and `r` ([`derive_seed`]), and the built-in object from the study's simulation
    /// seed, so every replicate images the same object. The count is not part of it: adding
    /// replicates leaves the studies (and digests) of the earlier ones as they were.
    pub fn replicate_study(&self, r: u32) -> Study {
        let mut study = self.clone();
        study.replicates = 1;
        study.replicate = Some(r);
        if r > 1 {
            let s = &self.design.rng_seeds;
            study.design.rng_seeds = RngSeeds {
                simulation: derive_seed(s.simulation, r),
                grouping: derive_seed(s.grouping, r),
                subsampling: derive_seed(s.subsampling, r),
                object: Some(s.object_seed()),
            };
        }
        study
    }

    /// [`Study::validate`] as a `Result` naming `path`.
    pub fn check(&self, path: &Path) -> Result<(), StudyError> {
        let problems = self.validate();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StudyError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    /// The whole study as a JSON study file that [`Study::from_path`] reads back unchanged.
    pub fn to_study_json(&self) -> String {
        let d = &self.design;
        let export = StudyExport {
            name: &self.name,
            dose_list: &d.dose_list,
            gridsizes: &d.gridsizes,
            neighbor_count: d.neighbor_count,
            patch_size_pixels: d.patch_size_pixels,
            overlap_views: ViewsExport(d),
            spacing_thresholds: d.spacing_thresholds(),
            cross_gridsizes: d.cross_gridsizes,
            train_test_split_axis: d.train_test_split_axis,
            rng_seeds: &d.rng_seeds,
            metrics_config: &d.metrics_config,
            simulation: &self.simulation,
            solver: &self.solver,
            pinn: &self.pinn,
            ptychi: &self.ptychi,
            supervised: &self.supervised,
            replicates: self.replicates,
            replicate: self.replicate,
        };
        serde_json::to_string_pretty(&export).expect("a study always serialises")
    }
}

/// `base` with the keys of `table` replaced; unknown keys and wrong types are errors that name
/// the table and the key.
fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    table: Option<serde_json::Value>,
    name: &str,
) -> Result<T, String> {
    let Some(table) = table else {
        return Ok(
            serde_json::from_value(serde_json::to_value(base).expect("serialisable"))
                .expect("settings round-trip"),
        );
    };
    let serde_json::Value::Object(overrides) = table else {
        return Err(format!("`{name}` must be a table"));
    };
    let mut merged = serde_json::to_value(base).expect("settings serialise");
    let fields = merged.as_object_mut().expect("settings are a struct");
    for (key, value) in overrides {
        fields.insert(key, value);
    }
    serde_json::from_value(merged).map_err(|e| format!("in `{name}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Study, StudyError> {
        Study::parse(text, false, Path::new("study.toml"))
    }

    #[test]
    fn empty_file_is_the_default_study() {
        assert_eq!(parse("").unwrap(), Study::default());
    }

    #[test]
    fn keys_override_the_preset_and_keep_view_order() {
        let study = parse(
            "preset = 'tiny'\ndose_list = [500.0]\noverlap_views = { sparse = 0.2, dense = 0.7 }\n\
             [rng_seeds]\nsimulation = 7\n[solver]\nepochs = 3\n[pinn]\nepochs = 12\n",
        )
        .unwrap();
        assert_eq!(study.design.dose_list, vec![500.0]);
        assert_eq!(
            study.design.overlap_views.names().collect::<Vec<_>>(),
            ["sparse", "dense"]
        );
        assert_eq!(study.design.rng_seeds.simulation, 7);
        assert_eq!(study.design.rng_seeds.grouping, 123);
        assert_eq!(study.design.patch_size_pixels, 32);
        assert_eq!(study.solver.epochs, 3);
        assert_eq!(study.pinn.epochs, 12);
        let problems = parse("[pinn]\nepochs = 0").unwrap().validate();
        assert_eq!(problems, ["pinn.epochs=0 must be in 1..=100000"]);
        // The default gridsizes are 1 and 2: 16 merges gridsize-2 groups, 8 keeps them apart.
        let problems = parse("[pinn]\nbatch_size = 16").unwrap().validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("pinn.batch_size=16 would merge groups at gridsize 2"));
        assert!(
            parse("[pinn]\nbatch_size = 8")
                .unwrap()
                .validate()
                .is_empty()
        );
        let study = parse("gridsizes = [1]\n[pinn]\nbatch_size = 16\naccelerator = 'gpu'").unwrap();
        assert!(study.validate().is_empty());
        assert_eq!(study.pinn.accelerator, crate::Accelerator::Gpu);
        let err = parse("[pinn]\naccelerator = 'tpu'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `tpu`"), "{err}");
    }

    #[test]
    fn replicates_round_trip_validate_and_derive_their_seeds() {
        // At R = 1 the study file says nothing of replicates (its bytes as before issue 22).
        let one = parse("preset = 'tiny'").unwrap();
        assert_eq!(one.replicates, 1);
        assert!(!one.to_study_json().contains("replicate"));
        let three = parse("preset = 'tiny'\nreplicates = 3").unwrap();
        assert!(three.validate().is_empty());
        // (A resolved study.json spells out what a preset implies; it reads back as itself.)
        let back = Study::parse(&three.to_study_json(), true, Path::new("study.json")).unwrap();
        assert_eq!(back.replicates, 3);
        assert_eq!(back.to_study_json(), three.to_study_json());
        for bad in ["replicates = 0", "replicates = 100"] {
            let problems = parse(bad).unwrap().validate();
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(problems[0].contains("must be in 1..=99"), "{problems:?}");
        }
        let problems = parse("replicates = 3\nreplicate = 2").unwrap().validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("names one replicate's study"),
            "{problems:?}"
        );

        // Replicate 1 draws as the study does; later ones from derived, distinct seeds with
        // the object of the study's own simulation seed.
        let seeds = three.design.rng_seeds.clone();
        let r1 = three.replicate_study(1);
        assert_eq!(r1.design.rng_seeds, seeds);
        assert_eq!((r1.replicates, r1.replicate), (1, Some(1)));
        let r2 = three.replicate_study(2);
        let r3 = three.replicate_study(3);
        for r in [&r2, &r3] {
            let s = &r.design.rng_seeds;
            assert_ne!(s.simulation, seeds.simulation);
            assert_ne!(s.grouping, seeds.grouping);
            assert_eq!(s.object_seed(), seeds.simulation);
            assert!(r.validate().is_empty(), "{:?}", r.validate());
            // A replicate's study.json reads back as itself.
            let back = Study::parse(&r.to_study_json(), true, Path::new("study.json")).unwrap();
            assert_eq!(back.to_study_json(), r.to_study_json());
            assert_eq!(back.design.rng_seeds, s.clone());
        }
        assert_ne!(
            r2.design.rng_seeds.simulation,
            r3.design.rng_seeds.simulation
        );
        // Adding replicates leaves the earlier replicates' studies as they were.
        let mut five = three.clone();
        five.replicates = 5;
        assert_eq!(five.replicate_study(2), r2);
        // Nearby seeds and indices give unrelated seeds, never a collision among 99.
        let derived: std::collections::BTreeSet<u64> = (1..=99)
            .map(|r| derive_seed(0, r))
            .chain((1..=99).map(|r| derive_seed(1, r)))
            .collect();
        assert_eq!(derived.len(), 2 * 99, "no collisions");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("dose_lst = [1.0]").unwrap_err().to_string();
        assert!(err.contains("unknown field `dose_lst`"), "{err}");
        let err = parse("[pinn]\nepoch = 3").unwrap_err().to_string();
        assert!(err.contains("in `pinn`: unknown field `epoch`"), "{err}");
        let err = parse("[solver]\nepoch = 3").unwrap_err().to_string();
        assert!(err.contains("in `solver`: unknown field `epoch`"), "{err}");
        let err = parse("preset = 'huge'").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown preset 'huge': use one of default, tiny, pinn-small, pinn-1k, fly64-full, map"
        );
    }

    #[test]
    fn json_round_trip_of_every_preset() {
        for name in PRESETS {
            let study = Study::preset(name).unwrap();
            assert!(
                study.validate().is_empty(),
                "{name}: {:?}",
                study.validate()
            );
            let back = Study::parse(&study.to_study_json(), true, Path::new("s.json")).unwrap();
            // Thresholds come back as explicit values equal to the derived ones.
            assert_eq!(
                back.design.spacing_thresholds(),
                study.design.spacing_thresholds()
            );
            assert_eq!(back.simulation, study.simulation);
            assert_eq!(back.solver, study.solver);
            assert_eq!(back.design.dose_list, study.design.dose_list);
        }
    }

    #[test]
    fn peer_tables_override_defaults_and_round_trip_only_when_set() {
        use crate::{PtychiInit, PtychiNoise, PtychiProbe};
        let default_json = Study::default().to_study_json();
        assert!(!default_json.contains("ptychi") && !default_json.contains("supervised"));
        let study = parse(
            "[ptychi]\ninit = 'truth'\nnoise = 'gaussian'\nprobe = 'refine'\nstep = 0.5\n\
             [supervised]\nepochs = 3\n",
        )
        .unwrap();
        assert_eq!(study.ptychi.init, PtychiInit::Truth);
        assert_eq!(study.ptychi.noise, PtychiNoise::Gaussian);
        assert_eq!(study.ptychi.probe, PtychiProbe::Refine);
        assert_eq!(study.ptychi.epochs, 100);
        assert_eq!(study.supervised.epochs, 3);
        assert_eq!(study.supervised.batch_size, 16);
        let back = Study::parse(&study.to_study_json(), true, Path::new("s.json")).unwrap();
        assert_eq!(back.ptychi, study.ptychi);
        assert_eq!(back.supervised, study.supervised);
        let err = parse("[ptychi]\ninit = 'guess'").unwrap_err().to_string();
        assert!(
            err.contains("in `ptychi`: unknown variant `guess`"),
            "{err}"
        );
        let problems = parse("[ptychi]\nbatch_size = 0").unwrap().validate();
        assert_eq!(problems, ["ptychi.batch_size=0 must be in 1..=100000"]);
    }

    /// Issue 21: a view given by the overlap it must have, beside fraction views; bad values
    /// and both forms at once are named.
    #[test]
    fn overlap_target_views() {
        let study = parse(
            "overlap_views = { dense = 0.7, o60 = { overlap = 0.6 }, o10 = { overlap = 0.1, \
             tolerance = 0.02 } }\ncross_gridsizes = true\n[simulation]\nscan_pattern = 'hex'\n",
        )
        .unwrap();
        assert!(study.validate().is_empty(), "{:?}", study.validate());
        let d = &study.design;
        assert_eq!(
            d.overlap_views.names().collect::<Vec<_>>(),
            ["dense", "o60", "o10"]
        );
        assert_eq!(d.spacing_thresholds().0, [("dense".to_string(), 38.4)]);
        assert_eq!(d.overlap_target("o60").unwrap().tolerance, 0.05);
        assert_eq!(d.overlap_target("o10").unwrap().tolerance, 0.02);
        assert!(d.overlap_target("dense").is_none());
        assert!(d.cross_gridsizes);
        assert_eq!(study.simulation.scan_pattern, crate::ScanPattern::Hex);
        // Written back and read again, unchanged.
        let back = Study::parse(&study.to_study_json(), true, Path::new("s.json")).unwrap();
        assert_eq!(back.design.overlap_targets, d.overlap_targets);
        assert_eq!(back.design.overlap_views, d.overlap_views);
        assert!(back.design.cross_gridsizes);
        assert_eq!(back.simulation.scan_pattern, crate::ScanPattern::Hex);
        let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(json["overlap_views"]["o60"]["overlap"], 0.6);
        assert_eq!(json["overlap_views"]["dense"], 0.7);
        assert_eq!(json["cross_gridsizes"], true);

        let problems = |text: &str| parse(text).unwrap().validate();
        assert_eq!(
            problems("overlap_views = { a = { overlap = 1.0 }, b = { overlap = 0.0 } }"),
            [
                "overlap_views['a'].overlap=1 must be in (0, 1): the mean nearest-neighbour disc \
                 overlap of the view's positions",
                "overlap_views['b'].overlap=0 must be in (0, 1): the mean nearest-neighbour disc \
                 overlap of the view's positions",
            ]
        );
        assert_eq!(
            problems("overlap_views = { a = { overlap = nan, tolerance = -0.1 } }"),
            [
                "overlap_views['a'].overlap=NaN must be in (0, 1): the mean nearest-neighbour \
                 disc overlap of the view's positions",
                "overlap_views['a'].tolerance=-0.1 must be in (0, 0.5]",
            ]
        );
        assert_eq!(
            problems("overlap_views = { a = { overlap = 0.5 } }\nspacing_thresholds = { a = 9.0 }"),
            [
                "overlap_views['a'] gives an overlap target and spacing_thresholds a spacing for \
              it: give one or the other"
            ]
        );
        let err = parse("overlap_views = { a = { overlap = 0.5, fraction = 0.5 } }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("overlap_views['a']: a view gives both `overlap` and `fraction`"),
            "{err}"
        );
        let err = parse("[simulation]\nscan_pattern = 'spiral'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `spiral`"), "{err}");
        // A study without the new keys writes exactly what it wrote before they existed.
        let default_json = Study::default().to_study_json();
        assert!(
            !default_json.contains("cross_gridsizes") && !default_json.contains("scan_pattern")
        );
    }
}
