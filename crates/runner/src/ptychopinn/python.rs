//! The Python of PtychoPINN's environment, which runs the inference adapter, the GPU probe and
//! the supervised baseline's adapter: `$PTYCHO_PYTHON` as planned, else the interpreter of the
//! trainer's `#!` line.

use crate::config::{TrainerProgram, TrainingConfig};
use std::io;
use std::path::{Path, PathBuf};

/// The interpreter of the adapter, when set.
pub const PYTHON_ENV_VAR: &str = "PTYCHO_PYTHON";

/// The program `name` names: a path as is, a bare name looked up on PATH.
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The interpreter of a script's `#!` line when it is a Python (`#!/x/python3`, `#!/usr/bin/env
/// python3`, `#!/usr/bin/env -S python3 -u`).
pub fn shebang_python(script_head: &[u8]) -> Option<PathBuf> {
    let line = script_head.strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|&b| b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let program = if Path::new(first).file_name()? == "env" {
        words.find(|w| !w.starts_with('-'))?
    } else {
        first
    };
    let name = Path::new(program).file_name()?.to_string_lossy();
    name.starts_with("python").then(|| PathBuf::from(program))
}

/// The interpreter of the trainer program's `#!` line, when it is a Python script.
pub(crate) fn trainer_python(trainer: &TrainerProgram) -> Option<PathBuf> {
    let head = locate(&trainer.program).and_then(|path| {
        let mut buf = vec![0u8; 512];
        let n = io::Read::read(&mut std::fs::File::open(path).ok()?, &mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    });
    head.as_deref().and_then(shebang_python)
}

/// The adapter's interpreter: `$PTYCHO_PYTHON` as planned, else the trainer's `#!` Python.
pub(crate) fn interpreter(
    config: &TrainingConfig,
    trainer: &TrainerProgram,
) -> Result<PathBuf, String> {
    if let Some(python) = config.pinn.as_ref().and_then(|p| p.python.clone()) {
        return Ok(python);
    }
    trainer_python(trainer).ok_or_else(|| {
        format!(
            "no Python to run the inference adapter: ${PYTHON_ENV_VAR} is not set and the \
             trainer {} is not a Python script with a `#!` line; set ${PYTHON_ENV_VAR} to the \
             interpreter of PtychoPINN's environment (e.g. `export {PYTHON_ENV_VAR}=V/bin/python`, \
             see scripts/setup-ptychopinn-venv.sh) and rerun this job",
            trainer.describe()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_that_name_a_python() {
        let py = |s: &str| shebang_python(s.as_bytes());
        assert_eq!(py("#!/v/bin/python3\nx"), Some("/v/bin/python3".into()));
        assert_eq!(py("#!/usr/bin/env python\n"), Some("python".into()));
        assert_eq!(
            py("#!/usr/bin/env -S python3.11 -u\n"),
            Some("python3.11".into())
        );
        assert_eq!(py("#!/bin/sh\nexec python x"), None);
        assert_eq!(py("print('no shebang')"), None);
    }
}
