//! `--accelerator gpu`: the trainer's framework, in PtychoPINN's Python, is asked for a GPU
//! before the trainer starts (TensorFlow has no flag that makes it refuse the CPU).

use super::invocation::trainer_env;
use super::python::{PYTHON_ENV_VAR, interpreter};
use crate::backend::{BackendError, JobContext};
use crate::config::{BackendKind, TrainerProgram, TrainingConfig};
use crate::external::run_contained;
use std::process::Command;

/// Exit status of the GPU probe when the framework sees no GPU.
const NO_GPU: i32 = 3;

/// `--accelerator gpu`: fails the job before the trainer starts unless the trainer's framework
/// (TensorFlow or PyTorch, in the adapter's interpreter) sees a GPU. TensorFlow has no flag
/// that makes it refuse the CPU, so the toolkit asks it first.
pub(crate) fn require_gpu(
    config: &TrainingConfig,
    trainer: &TrainerProgram,
    ctx: &mut JobContext<'_>,
) -> Result<(), BackendError> {
    let python = interpreter(config, trainer).map_err(|e| {
        BackendError::failed(format!("--accelerator gpu cannot check for a GPU: {e}"))
    })?;
    let (framework, probe) = match config.backend {
        BackendKind::Pytorch => (
            "PyTorch",
            "import sys, torch\n\
             n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n\
             print(f'dose-overlap GPU probe: PyTorch {torch.__version__} sees {n} CUDA GPU(s)')\n\
             sys.exit(0 if n else 3)\n",
        ),
        _ => (
            "TensorFlow",
            "import sys, tensorflow as tf\n\
             gpus = tf.config.list_physical_devices('GPU')\n\
             print(f'dose-overlap GPU probe: TensorFlow {tf.__version__} sees {len(gpus)} GPU(s)')\n\
             sys.exit(0 if gpus else 3)\n",
        ),
    };
    ctx.log_line(&format!(
        "--accelerator gpu: asking {framework} ({}) for a GPU before training:",
        python.display()
    ));
    let mut command = Command::new(&python);
    command
        .args(["-c", probe])
        .envs(trainer_env(config))
        .current_dir(&config.output_dir);
    let contained = run_contained(command, ctx, &mut ()).map_err(|e| {
        BackendError::failed(format!(
            "--accelerator gpu cannot run {} to check for a GPU: {e}; set ${PYTHON_ENV_VAR} to \
             PtychoPINN's interpreter",
            python.display()
        ))
    })?;
    if contained.stopped.is_some() {
        return Err(BackendError::Interrupted);
    }
    match contained.status.code() {
        Some(0) => Ok(()),
        Some(NO_GPU) => Err(BackendError::failed(format!(
            "--accelerator gpu, but {framework} in {} sees no GPU (CUDA_VISIBLE_DEVICES={}); the \
             trainer was not started. Run this job where a GPU is{}, or use --accelerator auto \
             (a GPU when there is one, else the CPU) or cpu",
            python.display(),
            std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".to_string()),
            if config.backend == BackendKind::Pytorch {
                ""
            } else {
                " with a TensorFlow that can use it (the pins install tensorflow-cpu: \
                 scripts/setup-ptychopinn-venv.sh --gpu builds their CUDA build)"
            }
        ))),
        _ => Err(BackendError::failed(format!(
            "--accelerator gpu: the GPU check with {} ended with {}{}; the trainer was not \
             started (can it import {framework}? see the job log)",
            python.display(),
            contained.status,
            contained
                .last_line
                .map(|l| format!(" (`{l}`)"))
                .unwrap_or_default()
        ))),
    }
}
