#!/bin/sh
# Creates the virtualenv for the NumPy peer of benches/npz_io.rs (not used by CI).
# Usage: benches/peers/setup_numpy_venv.sh [VENV_DIR]   (default: <repo>/target/peers-venv)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-"$root/target/peers-venv"}
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet numpy
"$venv/bin/python" -c 'import numpy; print("numpy", numpy.__version__, "in", "'"$venv"'")'
echo "run: $venv/bin/python $root/benches/peers/npz_numpy.py"
