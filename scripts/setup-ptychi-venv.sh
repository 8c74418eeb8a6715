#!/usr/bin/env bash
# Builds the virtual environment of the `ptychi:<algorithm>` methods (pty-chi 2.2 and NumPy)
# and prints the variable to export. A second run with the same pins reuses it.
#
#   scripts/setup-ptychi-venv.sh
#
# Where: $PTYCHI_VENV, else target/ptychi-venv. PyPI's torch, which pty-chi pulls, is the CUDA
# build: the venv is about 6.0 GB and pip took 94 s on a 2-core machine with a fast network.
# dose-overlap selects the CPU unless --accelerator says otherwise (CUDA_VISIBLE_DEVICES= for
# cpu), so the same venv serves CPU and GPU runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0" >&2; exit 2 ;;
esac
venv="${PTYCHI_VENV:-$root/target/ptychi-venv}"
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
# The pins: pty-chi 2.2 (its engines and option names are what the adapter uses) and NumPy.
pins=("ptychi==2.2.0" "numpy>=1.26,<3")
stamp="$(printf '%s\n' "${pins[@]}" | cat - "$0" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.dose-overlap-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "== pty-chi venv up to date: $venv" >&2
else
  echo "== building the pty-chi venv in $venv (pip, about 6 GB with torch's CUDA wheels)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet "${pins[@]}"
  echo "$stamp" > "$venv/.dose-overlap-stamp"
fi
"$venv/bin/python" -c 'import numpy, torch, ptychi.api' 2>/dev/null \
  || { echo "error: the venv $venv cannot import numpy/torch/ptychi.api" >&2; exit 1; }
echo "== ready. Export this:" >&2
echo "export PTYCHI_PYTHON=$venv/bin/python"
