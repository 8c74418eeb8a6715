//! Methods on the command line: `--backend`, `--algorithm` and `--accelerator` values (`train`
//! and `study`), the methods of a comparison (`native`, `native:<algorithm>` (epie, rpie, ml),
//! `tensorflow`, `pytorch`, `ptychi:<algorithm>` (lsqml, epie, rpie, pie, dm),
//! `tensorflow:supervised`), and where each method's artifacts go in a study folder.

use clap::ValueEnum;
use runner::BackendKind;
use std::path::{Path, PathBuf};
use study_design::PtychiAlgorithm;

/// `--accelerator auto|cpu|gpu`.
pub fn parse_accelerator(s: &str) -> Result<study_design::Accelerator, String> {
    s.parse()
}

/// Backends on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// PtychoPINN's TensorFlow trainer (`ptycho_train`), as a child process.
    Tensorflow,
    /// PtychoPINN's PyTorch trainer (`ptycho_train --backend pytorch`).
    Pytorch,
    /// The built-in ePIE/rPIE solver (no Python, no GPU).
    Native,
    /// pty-chi 2.2's LSQML, through its adapter ($PTYCHI_PYTHON; `[ptychi]` settings).
    #[value(name = "ptychi:lsqml")]
    PtychiLsqml,
    /// pty-chi 2.2's ePIE.
    #[value(name = "ptychi:epie")]
    PtychiEpie,
    /// pty-chi 2.2's rPIE.
    #[value(name = "ptychi:rpie")]
    PtychiRpie,
    /// pty-chi 2.2's PIE.
    #[value(name = "ptychi:pie")]
    PtychiPie,
    /// pty-chi 2.2's difference map.
    #[value(name = "ptychi:dm")]
    PtychiDm,
    /// PtychoPINN's supervised baseline (`ptycho.baselines`), trained on ground-truth patches
    /// ($PTYCHO_PYTHON; `[supervised]` settings).
    #[value(name = "tensorflow:supervised")]
    Supervised,
}

impl From<BackendArg> for BackendKind {
    fn from(arg: BackendArg) -> BackendKind {
        let ptychi = |algorithm| BackendKind::Ptychi {
            algorithm,
            truth_init: false,
        };
        match arg {
            BackendArg::Tensorflow => BackendKind::Tensorflow,
            BackendArg::Pytorch => BackendKind::Pytorch,
            BackendArg::Native => BackendKind::Native,
            BackendArg::PtychiLsqml => ptychi(PtychiAlgorithm::Lsqml),
            BackendArg::PtychiEpie => ptychi(PtychiAlgorithm::Epie),
            BackendArg::PtychiRpie => ptychi(PtychiAlgorithm::Rpie),
            BackendArg::PtychiPie => ptychi(PtychiAlgorithm::Pie),
            BackendArg::PtychiDm => ptychi(PtychiAlgorithm::Dm),
            BackendArg::Supervised => BackendKind::Supervised,
        }
    }
}

/// Native solver algorithms on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgorithmArg {
    /// ePIE (Maiden & Rodenburg 2009).
    Epie,
    /// rPIE (Maiden, Johnson & Li 2017).
    Rpie,
    /// Poisson maximum likelihood (full-batch, preconditioned gradient with momentum).
    Ml,
}

impl From<AlgorithmArg> for study_design::Algorithm {
    fn from(arg: AlgorithmArg) -> study_design::Algorithm {
        match arg {
            AlgorithmArg::Epie => study_design::Algorithm::Epie,
            AlgorithmArg::Rpie => study_design::Algorithm::Rpie,
            AlgorithmArg::Ml => study_design::Algorithm::Ml,
        }
    }
}

/// Native algorithms a method may name. `ml` is accepted here ahead of the engine: it runs
/// when `train --algorithm` knows it.
const ALGORITHMS: &[&str] = &["epie", "rpie", "ml"];

/// One method: a backend and, for the native one, an algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// The backend.
    pub backend: BackendArg,
    /// `epie`, `rpie`, `ml` (native only; `None`: the study's).
    pub algorithm: Option<String>,
}

impl Method {
    /// `native:rpie`, `tensorflow`.
    pub fn name(&self) -> String {
        let backend = self
            .backend
            .to_possible_value()
            .expect("backends have names")
            .get_name()
            .to_string();
        match &self.algorithm {
            Some(a) => format!("{backend}:{a}"),
            None => backend,
        }
    }

    /// The name as the study settles it: a pty-chi method started from the truth (`[ptychi]
    /// init = "truth"`) is `ptychi:lsqml+truth-init` in its folder, report and comparison.
    pub fn name_in(&self, study: &study_design::Study) -> String {
        match BackendKind::from(self.backend).for_study(study) {
            kind @ BackendKind::Ptychi { .. } => kind.as_str().to_string(),
            _ => self.name(),
        }
    }

    /// The native algorithm this method names, as `train --algorithm` takes it (`None`: the
    /// study's); an error when this build lacks it.
    pub fn algorithm(&self) -> anyhow::Result<Option<study_design::Algorithm>> {
        let Some(a) = &self.algorithm else {
            return Ok(None);
        };
        let Ok(arg) = AlgorithmArg::from_str(a, false) else {
            anyhow::bail!(
                "method `{}`: this build of dose-overlap has no `{a}` solver algorithm yet \
                 (available: {})",
                self.name(),
                AlgorithmArg::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        Ok(Some(arg.into()))
    }
}

/// Parses one method.
pub fn parse_method(text: &str) -> Result<Method, String> {
    // A backend whose name has a colon (`ptychi:lsqml`).
    if let Ok(backend) = BackendArg::from_str(text, false) {
        return Ok(Method {
            backend,
            algorithm: None,
        });
    }
    let (backend, algorithm) = match text.split_once(':') {
        Some((b, a)) => (b, Some(a)),
        None => (text, None),
    };
    let backend = BackendArg::from_str(backend, false).map_err(|_| {
        format!(
            "unknown method `{text}`: use native, native:<algorithm>, tensorflow, pytorch, \
             ptychi:<algorithm> (lsqml, epie, rpie, pie, dm) or tensorflow:supervised"
        )
    })?;
    match algorithm {
        None => Ok(Method {
            backend,
            algorithm: None,
        }),
        Some(_) if backend != BackendArg::Native => Err(format!(
            "`{text}`: only the native backend takes an algorithm (native:epie, native:rpie, \
             native:ml)"
        )),
        Some(a) if ALGORITHMS.contains(&a) => Ok(Method {
            backend,
            algorithm: Some(a.to_string()),
        }),
        Some(a) => Err(format!(
            "`{text}`: unknown native algorithm `{a}`: use one of {}",
            ALGORITHMS.join(", ")
        )),
    }
}

/// A comma-separated list of methods (one clap value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodList(pub Vec<Method>);

/// Parses a comma-separated list; a method named twice is an error.
pub fn parse_methods(text: &str) -> Result<MethodList, String> {
    let mut out: Vec<Method> = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("`{text}`: an empty method in the list"));
        }
        let m = parse_method(part)?;
        if out.contains(&m) {
            return Err(format!("`{text}`: method `{part}` is named twice"));
        }
        out.push(m);
    }
    Ok(MethodList(out))
}

/// Where each method's artifact root goes in a study folder: `DIR/artifacts` for one method (as
/// before there were several), `DIR/artifacts/<slug>` for each of several.
pub fn artifact_root(study_dir: &Path, method_name: &str, several: bool) -> PathBuf {
    let base = study_dir.join("artifacts");
    if several {
        base.join(reporting::compare::slug(method_name))
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_and_name_themselves() {
        let ms = parse_methods("native:epie, native:ml,tensorflow,native,ptychi:lsqml").unwrap();
        let names: Vec<String> = ms.0.iter().map(Method::name).collect();
        assert_eq!(
            names,
            [
                "native:epie",
                "native:ml",
                "tensorflow",
                "native",
                "ptychi:lsqml"
            ]
        );
        // The study's `[ptychi] init` names the pty-chi method.
        let mut study = study_design::Study::default();
        assert_eq!(ms.0[4].name_in(&study), "ptychi:lsqml");
        study.ptychi.init = study_design::PtychiInit::Truth;
        assert_eq!(ms.0[4].name_in(&study), "ptychi:lsqml+truth-init");
        assert_eq!(ms.0[0].name_in(&study), "native:epie");
        for bad in [
            "nat",
            "tensorflow:epie",
            "native:sgd",
            "ptychi:sgd",
            "ptychi",
            "ptychi:lsqml,ptychi:lsqml",
            "native,native",
            "native,,pytorch",
        ] {
            assert!(parse_methods(bad).is_err(), "{bad}");
        }
    }
}
