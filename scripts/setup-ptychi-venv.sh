#!/usr/bin/env bash
# Builds the virtual environment of the `ptychi:<algorithm>` methods (pty-chi 2.2 and NumPy)
# and prints the variable to export. A second run with the same pins reuses it.
#
#   scripts/setup-ptychi-venv.sh          CPU and GPU (about 6.2 GB)
#   scripts/setup-ptychi-venv.sh --cpu    CPU only: without Triton, pty-chi's optional GPU
#                                          kernels (about 5.2 GB; 5.35 GB at its peak)
#
# Where: $PTYCHI_VENV, else target/ptychi-venv. PyPI's torch, which pty-chi pulls, is the CUDA
# build and will not import without its CUDA libraries (about 3 GB), even on a CPU; pip took
# 165 s on a 2-core machine with a fast network, and keeps no wheel cache here (it would double
# the disk). Exit status 3: too little free disk (nothing was changed). dose-overlap selects the CPU unless --accelerator says otherwise
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
# Peak use while installing, measured: 5.35 GB with --cpu (one pip call for everything peaked
# at 9.3 GB), about 1 GB more with Triton.
need_mb=6600
[ "$cpu_only" = 1 ] && need_mb=5600
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.dose-overlap-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "== pty-chi venv up to date: $venv" >&2
else
  echo "== building the pty-chi venv in $venv (pip, about $((need_mb / 1000)) GB with torch's CUDA wheels)" >&2
  # A full disk half way through pip leaves a broken venv and a bare OSError: say it first
  # (counting what an outdated venv here would give back).
  free_kb="$(df -Pk "$(dirname "$venv")" | awk 'NR == 2 { print $4 }')"
  old_kb="$( (du -sk "$venv" 2>/dev/null || true) | cut -f1)"
  if [ $(( ${free_kb:-0} + ${old_kb:-0} )) -lt $((need_mb * 1024)) ]; then
    echo "error: the pty-chi venv needs about $need_mb MB in $(dirname "$venv"), which has" \
         "$((free_kb / 1024)) MB free; free some space or set PTYCHI_VENV to a folder on a larger disk" >&2
    exit 3
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  pip_quiet=(--disable-pip-version-check --quiet --no-cache-dir)
  # One `pip install` downloads every wheel before it installs any: with torch's CUDA wheels
  # that held about 3 GB of downloads beside the 6 GB it installs. So resolve once, then install
  # the large wheels one at a time (each download is gone before the next), the rest together.
  "$venv/bin/pip" install "${pip_quiet[@]}" --dry-run --ignore-installed \
    --report "$venv/resolved.json" "${pins[@]}"
  # Triton compiles pty-chi's optional GPU patch kernels; on a CPU pty-chi never imports it.
  skip='^$'
  [ "$cpu_only" = 1 ] && skip='^triton$'
  resolved="$("$venv/bin/python" - "$venv/resolved.json" "$skip" <<'PY'
import json, re, sys
report, skip = sys.argv[1], re.compile(sys.argv[2])
large = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")
small = []
for item in json.load(open(report))["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if skip.match(name.lower()):
        continue
    if large.match(name.lower()):
        print(f"{name}=={version}")
    else:
        small.append(f"{name}=={version}")
print(" ".join(small))
PY
)"
  while read -r group; do
    # shellcheck disable=SC2086 # a group is a space-separated list of name==version
    [ -n "$group" ] && "$venv/bin/pip" install "${pip_quiet[@]}" --no-deps $group
  done <<< "$resolved"
  echo "$stamp" > "$venv/.dose-overlap-stamp"
fi
"$venv/bin/python" -c 'import numpy, torch, ptychi.api' 2>/dev/null \
  || { echo "error: the venv $venv cannot import numpy/torch/ptychi.api" >&2; exit 1; }
echo "== ready. Export this:" >&2
echo "export PTYCHI_PYTHON=$venv/bin/python"
