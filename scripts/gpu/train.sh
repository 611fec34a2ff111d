#!/usr/bin/env bash
# On a lent GPU machine (device tool, `carry: [".gpu"]`, or the parts pack.py names): train on Keras' JAX backend, resumable
# across calls while the machine stays warm, and hand the run folder back through $OUT.
#   bash scripts/gpu/train.sh RUN_NAME EPOCHS [more `emocast convert train` arguments]
# A call stops itself before the device tool's 10-minute limit (TRAIN_SECONDS, default 540); the next
# call resumes from the last finished epoch (Keras BackupAndRestore in .gpu/runs/RUN_NAME/backup).
# SKIP_WHEELS=1 tries it on a machine that already has Keras (here, with the venv first on PATH).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
run_name=$1; epochs=$2; shift 2
run=".gpu/runs/$run_name"
timeout "${TRAIN_SECONDS:-540}" python3 -P -m emocast convert train --data .gpu/fer --run "$run" --epochs "$epochs" "$@" \
  || echo "stopped (exit $?): call again to resume"
out="${OUT:-/tmp/out}"; mkdir -p "$out/$run_name"
cp "$run"/recipe.json "$run"/history.csv "$run"/curves.png "$run"/best.keras "$out/$run_name/" 2>/dev/null || true
ls -la "$out/$run_name"
