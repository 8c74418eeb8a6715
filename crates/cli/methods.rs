//! Methods on the command line: `--backend`, `--algorithm` and `--accelerator` values (`train`
//! and `study`), the methods of a comparison (`native`, `native:<algorithm>` (epie, rpie, ml),
//! `tensorflow`, `pytorch`), and where each method's artifacts go in a study folder.

use clap::ValueEnum;
use runner::BackendKind;
use std::path::{Path, PathBuf};

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
}

impl From<BackendArg> for BackendKind {
    fn from(arg: BackendArg) -> BackendKind {
        match arg {
            BackendArg::Tensorflow => BackendKind::Tensorflow,
            BackendArg::Pytorch => BackendKind::Pytorch,
            BackendArg::Native => BackendKind::Native,
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
    let (backend, algorithm) = match text.split_once(':') {
        Some((b, a)) => (b, Some(a)),
        None => (text, None),
    };
    let backend = BackendArg::from_str(backend, false).map_err(|_| {
        format!("unknown method `{text}`: use native, native:<algorithm>, tensorflow or pytorch")
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
        let ms = parse_methods("native:epie, native:ml,tensorflow,native").unwrap();
        let names: Vec<String> = ms.0.iter().map(Method::name).collect();
        assert_eq!(names, ["native:epie", "native:ml", "tensorflow", "native"]);
        for bad in [
            "nat",
            "tensorflow:epie",
            "native:sgd",
            "native,native",
            "native,,pytorch",
        ] {
            assert!(parse_methods(bad).is_err(), "{bad}");
        }
    }
}
