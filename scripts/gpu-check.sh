#!/usr/bin/env bash
# For a person with an NVIDIA GPU: checks that PtychoPINN jobs train on it through
# dose-overlap. Builds the release binary and the GPU venvs (scripts/setup-ptychopinn-venv.sh
# --gpu --torch: TensorFlow's CUDA build of the pinned version, and PyTorch), simulates the
# pinn-small study, trains its dose-1e4 baseline job once per backend with --accelerator gpu,
# and prints, per backend, the job's status, the device its trainer reported and the times.
#
#   scripts/gpu-check.sh [--epochs N]     (default: the study's 50; work in target/gpu-check)
#
# Without a GPU it stops at once (exit 2) and says so: nothing is built or downloaded.
# Exit 0 when both jobs trained on the GPU, 1 otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
epochs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=(--epochs "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--epochs N]" >&2; exit 2 ;;
  esac
done

gpus="$(nvidia-smi -L 2>/dev/null | grep '^GPU ' || true)"
if [ -z "$gpus" ]; then
  echo "gpu-check: no NVIDIA GPU on this machine (\`nvidia-smi -L\` lists none), so there is" \
       "nothing to check; run it where a GPU is. Nothing was built or downloaded." >&2
  exit 2
fi
echo "gpu-check: $gpus" >&2

cd "$root"
cargo build --release --locked >&2
bin="$root/target/release/dose-overlap"
# The TensorFlow venv's exports come first; the PyTorch venv is the same name with -torch.
exports="$(scripts/setup-ptychopinn-venv.sh --gpu --torch)"
eval "$(grep '^export ' <<< "$exports")"
tf_train="$PTYCHO_TRAIN" tf_python="$PTYCHO_PYTHON"
tf_venv="$(dirname "$(dirname "$tf_python")")"
torch_train="$tf_venv-torch/bin/ptycho_train" torch_python="$tf_venv-torch/bin/python"

work="$root/target/gpu-check"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$bin" -q generate --preset pinn-small --out phase_c
"$bin" -q overlap --preset pinn-small --phase-c-root phase_c --out phase_d

status=0
summary=()
for backend in tensorflow pytorch; do
  if [ "$backend" = tensorflow ]; then
    train="$tf_train" python="$tf_python"
  else
    train="$torch_train" python="$torch_python"
  fi
  start=$(date +%s)
  PTYCHO_TRAIN="$train" PTYCHO_PYTHON="$python" "$bin" train --preset pinn-small \
    --phase-c-root phase_c --phase-d-root phase_d --artifact-root "$backend" \
    --backend "$backend" --accelerator gpu --dose 1e4 --view baseline "${epochs[@]}" >&2 || true
  seconds=$(( $(date +%s) - start ))
  line="$(python3 - "$backend/dose_10000/baseline/gs1/result.json" "$seconds" <<'PY'
import json, sys
path, seconds = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))["result"]
except (OSError, ValueError, KeyError) as e:
    print(f"no result ({e})")
    sys.exit(1)
pinn = r.get("pinn") or {}
scale = (pinn.get("intensity_scale") or {}).get("status", "unknown")
test = ((r.get("metrics") or {}).get("test") or {}).get("fienup_nrmse")
print(f"status {r['status']}, device {pinn.get('device')}, {r.get('epochs_completed', '-')} "
      f"epoch(s) in {seconds} s (training and scoring), test Fienup NRMSE {test}, intensity "
      f"scale {scale}" + (f"; error: {r['error']}" if r.get("error") else "")
      + (f"; evidence: `{pinn['device_evidence']}`" if pinn.get("device_evidence") else ""))
sys.exit(0 if r["status"] == "success" and pinn.get("device") == "gpu" else 1)
PY
)" || status=1
  summary+=("$backend: $line")
done
echo "== gpu-check ($gpus)"
printf '%s\n' "${summary[@]}"
echo "(job logs: $work/<backend>/dose_10000/baseline/gs1/train.log)"
exit $status
