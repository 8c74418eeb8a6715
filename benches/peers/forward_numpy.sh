#!/usr/bin/env bash
# The NumPy peer of benches/simulate.rs: the same forward model (patch x probe, fft2, fftshift,
# |.|^2 / N^2, Poisson, sqrt) at N = 64 and 128, 2,000 positions, in its own venv (not CI).
# Usage: benches/peers/forward_numpy.sh [runs] [npos]
# Env: PEERS_DIR (default ../shared/peers from the repository root), VENV (default
# target/peers-venv). Run it in the same session as `cargo bench --bench simulate` and quote
# the ratio of medians.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="${PEERS_DIR:-$root/../shared/peers}"
venv="${VENV:-$root/target/peers-venv}"
if [ ! -f "$peers/bench_forward_numpy.py" ]; then
    echo "error: $peers/bench_forward_numpy.py not found; set PEERS_DIR to the peers folder" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet numpy
fi
"$venv/bin/python" -c 'import numpy, os; print("numpy", numpy.__version__, "threads:", os.environ.get("OMP_NUM_THREADS", "default"))'
# synth.py sits beside the script; Python finds it there.
exec "$venv/bin/python" "$peers/bench_forward_numpy.py" "${1:-5}" "${2:-2000}"
