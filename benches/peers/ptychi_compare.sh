#!/usr/bin/env bash
# The native solver against pty-chi 2.2.0 on CPU, on the peers' shared N = 64 dataset
# (/work/shared/peers/make_dataset.py: 1000 positions, Poisson counts), measured in the same
# run on the same machine. Not part of CI.
#
# Usage: benches/peers/ptychi_compare.sh [WORKDIR]   (default: target/peers)
# Env:   PEERS_DIR (default /work/shared/peers), EPOCHS (default 5: pty-chi's epochs; the
#        native solver runs twice as many, to find the epoch where it reaches each peer's
#        final loss), REUSE_PTYCHI=1 (keep WORKDIR/ptychi.jsonl from an earlier run).
#
# It creates WORKDIR/venv (numpy, ptychi==2.2.0: pulls torch, about 6 GB, a minute or two the
# first time), makes the dataset, runs bench_ptychi.py for ePIE batch 1, ePIE batch 100
# (step 0.5, 2 threads), rPIE batch 1 and LSQML batch 100, then the native solver
# (crates/recon/examples/native_peer.rs: ePIE, alpha 1, fixed probe, one thread) and the FFT
# bound, and prints the figures and the ratios (ptychi_compare.py).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mkdir -p "${1:-$repo/target/peers}" && cd "${1:-$repo/target/peers}" && pwd)"
peers="${PEERS_DIR:-/work/shared/peers}"
epochs="${EPOCHS:-5}"
export PEERS_DATA="$work/data_N64_n1000.npz"

if [ ! -x "$work/venv/bin/python" ]; then
    echo "creating $work/venv (numpy, ptychi==2.2.0)" >&2
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet numpy ptychi==2.2.0
fi
py="$work/venv/bin/python"

if [ ! -f "$PEERS_DATA" ]; then
    (cd "$work" && "$py" "$peers/make_dataset.py" >&2)
fi

echo "building the native solver's peer program" >&2
(cd "$repo" && cargo build --quiet --release -p recon --example native_peer)
native="$repo/target/release/examples/native_peer"

peer_out="$work/ptychi.jsonl"
run_ptychi() {
    echo "pty-chi $*" >&2
    (cd "$work" && "$py" "$peers/bench_ptychi.py" "$@" 2>>"$work/ptychi.log") \
        | grep '^RESULT ' | sed 's/^RESULT /{"peer": "ptychi", "r": /; s/$/}/' >> "$peer_out"
}
if [ "${REUSE_PTYCHI:-0}" != 1 ] || [ ! -s "$peer_out" ]; then
    : > "$peer_out"
    run_ptychi epie 1 "$epochs" 1
    run_ptychi epie 100 "$epochs" 2 0.5
    run_ptychi rpie 1 "$epochs" 1
    run_ptychi lsqml 100 "$epochs" 2
fi

out="$work/native.jsonl"
: > "$out"
echo "native solver" >&2
for _ in 1 2 3; do
    "$native" "$PEERS_DATA" "$((2 * epochs))" | grep '^RESULT ' \
        | sed 's/^RESULT /{"peer": "native", "r": /; s/$/}/' >> "$out"
done
"$native" --fft 64 | grep '^RESULT ' | sed 's/^RESULT /{"peer": "fft", "r": /; s/$/}/' >> "$out"

"$py" "$repo/benches/peers/ptychi_compare.py" "$peer_out" "$out"
