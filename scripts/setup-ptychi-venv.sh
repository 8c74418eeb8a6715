#!/usr/bin/env bash
# Builds the virtual environment of the `ptychi:<algorithm>` methods (pty-chi 2.2 and NumPy)
# and prints the variable to export. A second run with the same pins reuses it.
#
#   scripts/setup-ptychi-venv.sh          CPU and GPU (about 6.0 GB)
#   scripts/setup-ptychi-venv.sh --cpu    CPU only: without Triton, pty-chi's optional GPU
#                                          kernels (about 5.0 GB)
#
# Where: $PTYCHI_VENV, else target/ptychi-venv. PyPI's torch, which pty-chi pulls, is the CUDA
# build and will not import without its CUDA libraries (about 3 GB), even on a CPU; pip took
# 94 s on a 2-core machine with a fast network, and keeps no wheel cache here (it would double
# the disk). dose-overlap selects the CPU unless --accelerator says otherwise
# (CUDA_VISIBLE_DEVICES= for cpu), so the full venv serves CPU and GPU runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
cpu_only=0
case "${1:-}" in
  "") ;;
  --cpu) cpu_only=1 ;;
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--cpu]" >&2; exit 2 ;;
esac
venv="${PTYCHI_VENV:-$root/target/ptychi-venv}"
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
# The pins: pty-chi 2.2 (its engines and option names are what the adapter uses) and NumPy.
pins=("ptychi==2.2.0" "numpy>=1.26,<3")
stamp="$(printf '%s\n' "${pins[@]}" "cpu_only=$cpu_only" | cat - "$0" | sha256sum | cut -d' ' -f1)"
need_gb=6
[ "$cpu_only" = 1 ] && need_gb=5
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.dose-overlap-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "== pty-chi venv up to date: $venv" >&2
else
  echo "== building the pty-chi venv in $venv (pip, about $need_gb GB with torch's CUDA wheels)" >&2
  rm -rf "$venv"
  # A full disk half way through pip leaves a broken venv and a bare OSError: say it first.
  free_kb="$(df -Pk "$(dirname "$venv")" | awk 'NR == 2 { print $4 }')"
  if [ "${free_kb:-0}" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "error: the pty-chi venv needs about $need_gb GB in $(dirname "$venv"), which has" \
         "$((free_kb / 1024)) MB free; free some space or set PTYCHI_VENV to a folder on a larger disk" >&2
    exit 1
  fi
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet --no-cache-dir "${pins[@]}"
  if [ "$cpu_only" = 1 ]; then
    # Triton compiles pty-chi's optional GPU patch kernels; on a CPU pty-chi never imports it.
    "$venv/bin/pip" uninstall --disable-pip-version-check --quiet -y triton
  fi
  echo "$stamp" > "$venv/.dose-overlap-stamp"
fi
"$venv/bin/python" -c 'import numpy, torch, ptychi.api' 2>/dev/null \
  || { echo "error: the venv $venv cannot import numpy/torch/ptychi.api" >&2; exit 1; }
echo "== ready. Export this:" >&2
echo "export PTYCHI_PYTHON=$venv/bin/python"
