#!/usr/bin/env bash
# The installer and the hardened units under a real systemd: a Debian bookworm container
# (debootstrap) booted with systemd-nspawn, this checkout copied in, then
#   1. systemd/install.sh (first install: enabled, not started), start: the demo clip runs to its end
#      under the unit's sandbox (MemoryDenyWriteExecute included) and exits 0 with its events delivered;
#   2. install.sh again while the service runs (a looping clip): a new venv is switched in and the
#      service restarted on it;
#   3. install.sh --hub, start: the hub ingests the kiosk's events; stop: exit 0.
#
#   sudo bash scripts/check_systemd.sh [WORKDIR]     # default /tmp/emocast-systemd; about 5-10 minutes
#
# Needs root, Debian's mirror and PyPI (the container shares the host's network, so its kiosk uses the
# broker on the host's 127.0.0.1:1883 when one runs there). Not part of CI. Result in the README.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/emocast-systemd}"
root="$work/rootfs"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
hub_port="${HUB_PORT:-18091}"

command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null || \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container debootstrap
if [ ! -x "$root/bin/systemctl" ]; then
  echo "== Debian bookworm with systemd into $root"
  mkdir -p "$work"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >/dev/null
fi
# the host's CA bundle (a proxy in between may sign PyPI's certificate) and this checkout
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root/src" && mkdir -p "$root/src"
git -C "$here" ls-files -z | (cd "$here" && xargs -0 tar -c) | tar -x -C "$root/src"

echo "== boot"
systemd-nspawn -D "$root" --machine=emocast-check --register=no --keep-unit -b --console=pipe \
  > "$work/boot.log" 2>&1 &
nspawn=$!
stop_container() {
  kill "$nspawn" 2>/dev/null || return 0  # nspawn asks the container's systemd to halt
  for _ in $(seq 30); do kill -0 "$nspawn" 2>/dev/null || return 0; sleep 1; done
  kill -9 "$nspawn" 2>/dev/null || true
}
trap stop_container EXIT
pid=""
for _ in $(seq 60); do
  pid="$(ps --ppid "$nspawn" -o pid= | tr -d ' ' | head -1 || true)"  # none until nspawn has forked
  [ -n "$pid" ] && nsenter -t "$pid" -m -u -i -n -p -- /bin/systemctl is-system-running --wait >/dev/null 2>&1 \
    && break
  sleep 1
done
in_ct() { nsenter -t "$pid" -m -u -i -n -p -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"; }
prop() { in_ct systemctl show "$1" -p "$2" --value; }

echo "== 1. first install, then the demo clip under the unit"
# a clean first install, also when this folder holds an earlier run's container
in_ct systemctl disable --now emocast emocast-hub >/dev/null 2>&1 || true
rm -rf "$root/etc/emocast" "$root/opt/emocast" "$root/opt/emocast-hub" "$root/var/lib/emocast" \
  "$root/var/lib/emocast-hub" "$root"/etc/systemd/system/emocast*
in_ct systemctl daemon-reload
in_ct bash -c "cd /src && bash systemd/install.sh" > "$work/install1.log" 2>&1
# names of this run's own: the host's broker may keep sessions and seqs of earlier runs
run_id="check-$(date +%s)"
sed -i "s/^id = \"\"/id = \"$run_id\"/" "$root/etc/emocast/emocast.toml"
echo "   enabled: $(in_ct systemctl is-enabled emocast), active: $(in_ct systemctl is-active emocast || true)"
in_ct systemctl start emocast
for _ in $(seq 120); do [ "$(in_ct systemctl is-active emocast || true)" = active ] || break; sleep 1; done
echo "   result $(prop emocast Result), exit $(prop emocast ExecMainStatus), MemoryDenyWriteExecute" \
  "$(prop emocast MemoryDenyWriteExecute)"
in_ct journalctl -b -u emocast --no-pager | grep -E "stopped:|Traceback|ERROR" | sed 's/^/   /'

echo "== 2. upgrade while running"
sed -i 's/^loop = false/loop = true/' "$root/etc/emocast/emocast.toml"
in_ct systemctl start emocast
sleep 5
before="$(readlink "$root/opt/emocast/venv")"
in_ct bash -c "cd /src && bash systemd/install.sh" > "$work/install2.log" 2>&1
sleep 5
echo "   venv $before -> $(readlink "$root/opt/emocast/venv"); active: $(in_ct systemctl is-active emocast)"

echo "== 3. the hub"
in_ct bash -c "cd /src && bash systemd/install.sh --hub" > "$work/install_hub.log" 2>&1
sed -i "s/^listen = \"127.0.0.1:8080\"/listen = \"127.0.0.1:$hub_port\"/; s/^client_id = \"emocast-hub\"/client_id = \"hub-$run_id\"/" \
  "$root/etc/emocast/hub.toml"
in_ct systemctl start emocast-hub
sleep 20
echo "   active: $(in_ct systemctl is-active emocast-hub); MemoryDenyWriteExecute $(prop emocast-hub MemoryDenyWriteExecute)"
in_ct python3 -c "import json, urllib.request; d = json.load(urllib.request.urlopen('http://127.0.0.1:$hub_port/api/devices')); \
print('   devices:', [(x['device'], x['status'], x['events'], x['missing_seq']) for x in d])"
in_ct systemctl stop emocast-hub emocast
echo "   hub stop: result $(prop emocast-hub Result), exit $(prop emocast-hub ExecMainStatus)"
