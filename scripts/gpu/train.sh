#!/usr/bin/env bash
# On a lent GPU machine (device tool, `carry: [".gpu"]`): train on Keras' torch backend, resumable
# across calls while the machine stays warm, and hand the run folder back through $OUT.
#   bash scripts/gpu/train.sh RUN_NAME EPOCHS [more `emocast convert train` arguments]
# A call stops itself before the device tool's 10-minute limit (TRAIN_SECONDS, default 540); the next
# call resumes from the last finished epoch (Keras BackupAndRestore in .gpu/runs/RUN_NAME/backup).
# SKIP_WHEELS=1 tries it on a machine that already has Keras (here, with the venv first on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
run_name=$1; epochs=$2; shift 2
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=torch PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
mkdir -p .gpu/fer
for split in train public_test; do
  [ -f ".gpu/fer/$split.npz" ] || python3 -c "import sys; sys.path.insert(0, 'scripts/gpu'); import pack; \
    from pathlib import Path; pack.unpack_split(Path('.gpu/$split.xz'), Path('.gpu/fer/$split.npz'))"
done
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
run=".gpu/runs/$run_name"
timeout "${TRAIN_SECONDS:-540}" python3 -m emocast convert train --data .gpu/fer --run "$run" --epochs "$epochs" "$@" \
  || echo "stopped (exit $?): call again to resume"
out="${OUT:-/tmp/out}"; mkdir -p "$out/$run_name"
cp "$run"/recipe.json "$run"/history.csv "$run"/curves.png "$run"/best.keras "$out/$run_name/" 2>/dev/null || true
ls -la "$out/$run_name"
