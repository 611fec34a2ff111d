#!/usr/bin/env bash
# On a lent GPU machine: several training runs at once, each fitting its epochs into one time budget
# (`convert train --time-budget`), then each run folder packed as $OUT/NAME.tar.xz (the device tool
# returns at most 8 files). Small nets leave an H100 mostly idle, so runs share it.
#   bash scripts/gpu/sweep.sh BUDGET_SECONDS RUNS_FILE
# BUDGET_SECONDS 0 keeps each run's --epochs; RUN_TIMEOUT (seconds) then stops a run that overruns
# (its best epoch is kept). Runs that start together slow each other's first epochs (one's XLA
# compile takes the CPUs from the others), which is why the budget judges the pace again each epoch
# until half of it is spent (convert/train.py, EpochBudget).
# RUNS_FILE: one run a line, `NAME convert-train-arguments...`; `#` starts a comment.
# Back here: tar -xJf NAME.tar.xz -C runs/, then `emocast convert quantize runs/NAME/best.keras`.
set -euo pipefail
budget=$1; runs_file=$(realpath "$2")
source "$(dirname "$0")/setup.sh"
out="${OUT:-/tmp/out}"; mkdir -p "$out" .gpu/runs
n=$(grep -cv '^\s*\(#\|$\)' "$runs_file")
threads=$(( $(nproc) / n )); [ "$threads" -ge 1 ] || threads=1
# JAX takes 75% of the GPU's memory for the first process by default, and the next one then fails
# to start: each run gets its share instead.
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $n, 3))")
pids=(); names=()
while read -r name args; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  # shellcheck disable=SC2086
  timeout "${RUN_TIMEOUT:-$((budget + 90))}" python3 -P -m emocast convert train --data .gpu/fer --run ".gpu/runs/$name" \
    --time-budget "$budget" --threads "$threads" --workers 2 $args > ".gpu/runs/$name.log" 2>&1 &
  pids+=($!); names+=("$name")
  echo "started $name: $args"
done < "$runs_file"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" && echo "${names[$i]}: finished" || echo "${names[$i]}: exit $?"
done
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv || true
for name in "${names[@]}"; do
  run=".gpu/runs/$name"; cp "$run.log" "$run/train.log" 2>/dev/null || true
  # a run cut off by the timeout still has its optimizer state in best.keras: drop it here
  [ -f "$run/DONE" ] || [ ! -f "$run/best.keras" ] || python3 -P -c \
    "from pathlib import Path; from emocast.convert.run_folder import slim_checkpoint; slim_checkpoint(Path('$run/best.keras'))"
  tail -n 3 "$run/history.csv" 2>/dev/null | sed "s/^/$name: /" || true
  XZ_OPT=-1 tar -cJf "$out/$name.tar.xz" -C .gpu/runs --exclude backup "$name"
done
ls -la "$out"
