#!/usr/bin/env bash
# Does the new venv's TFLite runtime run the shipped model on this CPU? Called by install.sh.
#   bash systemd/check_runtime.sh VENV
# emocast picks its runtime by loading a model (device/perception/emotion.py), but a runtime that
# crashes the process (ai-edge-litert 2.3 died with SIGSEGV inside Interpreter() on an emulated
# Cortex-A72, README, Boards) cannot be passed over from inside it; a child process tries it here.
# On a crash the 1.x line is installed in its place (cp39-cp312 wheels; none for Python 3.13) and tried
# again. Exit 0: a runtime runs (said on stdout); 4: none does (the message says what to do).
set -uo pipefail
venv=$1
probe='from emocast.device.perception.emotion import EmotionModel, default_model_path
m = EmotionModel(default_model_path(), threads=1)
print(m.runtime)'
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
# run from / : install.sh runs in a checkout, whose emocast/ folder would shadow the installed package
try() { (cd / && "$venv/bin/python" -c "$probe" 2>"$err"); }
runtime=$(try)
code=$?
if [ "$code" = 0 ]; then
  echo "TFLite runtime: $runtime"
  exit 0
fi
echo "the TFLite runtime cannot run the emotion model here (exit $code):" >&2
tail -n 3 "$err" >&2
echo "trying ai-edge-litert<2" >&2
if "$venv/bin/pip" install -q "ai-edge-litert<2" && runtime=$(try); then
  echo "TFLite runtime: $runtime (ai-edge-litert<2: the current release does not run on this CPU)"
  exit 0
fi
tail -n 3 "$err" >&2
echo "no TFLite runtime runs the emotion model on this CPU; see docs/boards.md" >&2
exit 4
