#!/usr/bin/env bash
# The native solver against pty-chi 2.2.0 on CPU, on the peers' shared N = 64 dataset
# (/work/shared/peers/make_dataset.py: 1000 positions, Poisson counts), measured in the same
# run on the same machine. Not part of CI.
#
# Usage: benches/peers/ptychi_compare.sh [WORKDIR]   (default: target/peers)
#        benches/peers/ptychi_compare.sh --study STUDY_DIR [WORKDIR]
#
# --study: pty-chi's LSQML (Poisson noise model, batch 100, 2 threads) against the native ml
# engine on the test split of every dose of a study made by `dose-overlap study --out
# STUDY_DIR` (STUDY_DIR/phase_c/dose_*/patched_test.npz, the baseline view), both from ones
# with the probe fixed, both scored by the toolkit's scoring code (ml_peer score), timed per
# epoch. Env: LSQML_EPOCHS (default 100), ML_EPOCHS (default 300), SMOOTHNESS (default 10),
# DOSES (default: every dose_* folder). Prints per dose: s/epoch of each, the ratio, and the
# Fienup NRMSE of each.
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
if [ "${1:-}" = "--study" ]; then
    study="$(cd "$2" && pwd)"
    work="$(mkdir -p "${3:-$repo/target/peers}" && cd "${3:-$repo/target/peers}" && pwd)"
    if [ ! -x "$work/venv/bin/python" ]; then
        echo "creating $work/venv (numpy, ptychi==2.2.0)" >&2
        python3 -m venv "$work/venv"
        "$work/venv/bin/pip" install --quiet numpy ptychi==2.2.0
    fi
    (cd "$repo" && cargo build --quiet --release -p recon --example ml_peer)
    peer="$repo/target/release/examples/ml_peer"
    out="$work/lsqml_study.jsonl"
    : > "$out"
    for dir in "$study"/phase_c/dose_*; do
        dose="${dir##*/dose_}"
        if [ -n "${DOSES:-}" ] && ! echo " $DOSES " | grep -q " $dose "; then continue; fi
        split="$dir/patched_test.npz"
        echo "dose $dose: pty-chi LSQML (${LSQML_EPOCHS:-100} epochs)" >&2
        "$work/venv/bin/python" "$repo/benches/peers/ptychi_lsqml_study.py" "$split" \
            "$work/lsqml_$dose.npz" "${LSQML_EPOCHS:-100}" 100 2 2>>"$work/ptychi.log" \
            | grep '^RESULT ' | sed "s/^RESULT /{\"peer\": \"lsqml\", \"dose\": $dose, \"r\": /; s/\$/}/" >> "$out"
        "$peer" score "$split" "$work/lsqml_$dose.npz" | grep '^RESULT ' \
            | sed "s/^RESULT /{\"peer\": \"lsqml_score\", \"dose\": $dose, \"r\": /; s/\$/}/" >> "$out"
        echo "dose $dose: ml (${ML_EPOCHS:-300} epochs)" >&2
        "$peer" run "$split" "${ML_EPOCHS:-300}" "${SMOOTHNESS:-10}" 2 | grep '^RESULT ' \
            | sed "s/^RESULT /{\"peer\": \"ml\", \"dose\": $dose, \"r\": /; s/\$/}/" >> "$out"
    done
    python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["dose"], {})[r["peer"]] = r["r"]
print("%8s %14s %14s %8s %12s %12s" % ("dose", "LSQML s/epoch", "ml s/epoch", "ratio", "LSQML NRMSE", "ml NRMSE"))
for dose in sorted(by):
    d = by[dose]
    l, m, ls = d.get("lsqml"), d.get("ml"), d.get("lsqml_score")
    if not (l and m and ls):
        print("%8s incomplete: %s" % (dose, sorted(d)))
        continue
    print("%8s %14.4f %14.4f %7.1fx %12.4f %12.4f   (%d vs %d epochs)" % (
        dose, l["epoch_s_median"], m["epoch_s_median"], l["epoch_s_median"] / m["epoch_s_median"],
        ls["metrics"]["fienup_nrmse"], m["metrics"]["fienup_nrmse"], l["epochs"], m["epochs"]))
PY
    exit 0
fi
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
