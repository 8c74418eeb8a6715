#!/usr/bin/env bash
# Builds the virtual environment of PtychoPINN's real trainer from the pins in
# ../shared/peers/ptychopinn/ (relative to the project root), writes a `ptycho_train` wrapper
# into it, and prints the variables to export. A second run with the same pins reuses it.
#
#   scripts/setup-ptychopinn-venv.sh            TensorFlow path (about 2.8 GB, 6-7 min of pip)
#   scripts/setup-ptychopinn-venv.sh --torch    also the PyTorch path (about 3 GB more, 11 min)
#   scripts/setup-ptychopinn-venv.sh --gpu      TensorFlow that can use an NVIDIA GPU: the pins
#                                                with tensorflow[and-cuda] in place of
#                                                tensorflow-cpu (same version), in its own venv
#
# Where: $PTYCHO_VENV, else target/ptychopinn-venv (target/ptychopinn-venv-gpu with --gpu;
# the PyTorch venv is that name with -torch; PyPI's torch wheel is already the CUDA build).
# PtychoPINN itself is GPL-3.0 and is never copied: the venv sees ../shared/peers/ptychopinn/src
# through a .pth file, and the wrapper runs its scripts/training/train.py from there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peer="${PTYCHOPINN_PEER:-$root/../shared/peers/ptychopinn}"
torch=0
gpu=0
for arg in "$@"; do
  case "$arg" in
    --torch) torch=1 ;;
    --gpu) gpu=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--torch] [--gpu]" >&2; exit 2 ;;
  esac
done
if [ ! -f "$peer/requirements-tf.txt" ] || [ ! -f "$peer/src/scripts/training/train.py" ]; then
  echo "error: no PtychoPINN snapshot at $peer (expected requirements-tf.txt and" \
       "src/scripts/training/train.py); set PTYCHOPINN_PEER to its folder" >&2
  exit 2
fi
peer="$(cd "$peer" && pwd)"
python="${PYTHON:-python3}"
if [ "$gpu" = 1 ]; then
  venv="${PTYCHO_VENV:-$root/target/ptychopinn-venv-gpu}"
else
  venv="${PTYCHO_VENV:-$root/target/ptychopinn-venv}"
fi
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
# The TensorFlow requirements: the pins, or with --gpu the same version's CUDA build (the pins
# name tensorflow-cpu, which never sees a GPU).
req_tf="$peer/requirements-tf.txt"
if [ "$gpu" = 1 ]; then
  grep -q '^tensorflow-cpu==' "$req_tf" \
    || { echo "error: $req_tf pins no tensorflow-cpu to swap for its CUDA build" >&2; exit 2; }
  mkdir -p "$venv.req"
  sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' "$req_tf" > "$venv.req/requirements-tf.txt"
  req_tf="$venv.req/requirements-tf.txt"
fi
# No wheel cache: it would hold a second copy of every wheel (GBs) on a machine that builds
# the venv once.
pip_quiet=(--disable-pip-version-check --quiet --no-cache-dir)

# The pins (and this script) as a stamp: a venv built from the same ones is reused.
stamp_of() { cat "$@" "$0" | sha256sum | cut -d' ' -f1; }

# A full disk half way through pip leaves a broken venv and a bare OSError: say it first.
need_free_gb() {
  local free_kb; free_kb="$(df -Pk "$(dirname "$1")" | awk 'NR == 2 { print $4 }')"
  if [ "${free_kb:-0}" -lt $(($2 * 1024 * 1024)) ]; then
    echo "error: $1 needs about $2 GB in $(dirname "$1"), which has $((free_kb / 1024)) MB" \
         "free; free some space or set PTYCHO_VENV to a folder on a larger disk" >&2
    exit 1
  fi
}

site_packages() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

# A `ptycho_train` in the venv: a Python script (so its `#!` names the venv's interpreter,
# which dose-overlap then uses for its inference adapter) that runs the peer's train.py.
write_wrapper() {
  cat > "$1/bin/ptycho_train" <<WRAP
#!$1/bin/python
"""PtychoPINN's trainer (ptycho_train), run from $peer/src (written by dose-overlap's
scripts/setup-ptychopinn-venv.sh)."""
import runpy
import sys

TRAIN = "$peer/src/scripts/training/train.py"
sys.argv[0] = TRAIN
runpy.run_path(TRAIN, run_name="__main__")
WRAP
  chmod +x "$1/bin/ptycho_train"
}

build_tf() {
  local stamp; stamp="$(stamp_of "$req_tf")"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.dose-overlap-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== TensorFlow venv up to date: $venv" >&2
  else
    echo "== building the TensorFlow venv in $venv (pip, several minutes)" >&2
    rm -rf "$venv"
    need_free_gb "$venv" 3
    "$python" -m venv "$venv"
    "$venv/bin/pip" install "${pip_quiet[@]}" -r "$req_tf"
    echo "$stamp" > "$venv/.dose-overlap-stamp"
  fi
  # `import ptycho` works in the venv (the inference adapter needs it) without copying it.
  echo "$peer/src" > "$(site_packages "$venv")/dose-overlap-ptychopinn.pth"
  write_wrapper "$venv"
  "$venv/bin/python" -c 'import ptycho, tensorflow, tf_keras' 2>/dev/null \
    || { echo "error: the venv $venv cannot import ptycho/tensorflow/tf_keras" >&2; exit 1; }
}

build_torch() {
  local tv="${venv}-torch" stamp
  stamp="$(stamp_of "$req_tf" "$peer/requirements-torch.txt")"
  if [ -x "$tv/bin/python" ] && [ "$(cat "$tv/.dose-overlap-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== PyTorch venv up to date: $tv" >&2
  else
    echo "== building the PyTorch venv in $tv (pip, about 11 minutes)" >&2
    rm -rf "$tv"
    need_free_gb "$tv" 5
    "$python" -m venv "$tv"
    # It sees the TensorFlow venv's packages (train.py imports TensorFlow first).
    site_packages "$venv" > "$(site_packages "$tv")/dose-overlap-tf-venv.pth"
    "$tv/bin/pip" install "${pip_quiet[@]}" -r "$peer/requirements-torch.txt"
    # triton's LLVM aborts the process once TensorFlow is loaded ("LLVM ERROR:
    # inconsistency in registered CommandLine options"); CPU training does not need it.
    "$tv/bin/pip" uninstall "${pip_quiet[@]}" -y triton || true
    echo "$stamp" > "$tv/.dose-overlap-stamp"
  fi
  echo "$peer/src" > "$(site_packages "$tv")/dose-overlap-ptychopinn.pth"
  write_wrapper "$tv"
}

build_tf
if [ "$torch" = 1 ]; then build_torch; fi

echo "== ready. Export these (or pass --trainer):" >&2
echo "export PTYCHO_TRAIN=$venv/bin/ptycho_train"
echo "export PTYCHO_PYTHON=$venv/bin/python"
if [ "$torch" = 1 ]; then
  echo "# PyTorch backend (--backend pytorch):"
  echo "#   export PTYCHO_TRAIN=${venv}-torch/bin/ptycho_train PTYCHO_PYTHON=${venv}-torch/bin/python"
fi
