"""The broker set-up the docs give keeps what it acknowledged: a backlog of many kiosks sent while the hub
is stopped (after a network outage, say) is stored whole when the hub comes back, with docs/kiosk.md's
queue lines on a real Mosquitto; with Mosquitto's defaults the same backlog loses all but 1,000 (the
reason for those lines, shown so this test could fail), and the hub's health then warns, from the
broker's own count of what it dropped."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.hub_support import HubProcess, documented_queue_lines, send_backlog
from tests.support import Broker, free_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e, pytest.mark.slow]


KIOSKS, EVENTS = 10, 250  # 2,500 queued for the hub: over Mosquitto's default of 1,000


def stored(hub: HubProcess, settle_s: float = 3.0, timeout: float = 120.0) -> int:
    """Events stored once nothing more arrives for ``settle_s``."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        n = sum(d["events"] for d in hub.get("/api/devices"))
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return n
        time.sleep(0.3)
    return last


@pytest.mark.parametrize("documented", [True, False], ids=["docs-config", "mosquitto-defaults"])
def test_a_backlog_of_many_kiosks_survives_a_stopped_hub(tmp_path, documented):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    extra = documented_queue_lines() if documented else ""  # the Broker writes persistence itself
    extra += "\nsys_interval 1\n"  # $SYS counts published each second (Mosquitto's default: 10 s)
    broker = Broker(tmp_path, free_port(), extra_conf=extra, persistent=True)
    broker.start()
    hub = HubProcess(tmp_path, broker.url, str(tmp_path / "hub.sqlite"))
    try:
        hub.start()  # the hub's persistent session and subscriptions now exist on the broker
        assert hub.stop() == 0
        send_backlog(broker.port, KIOSKS, EVENTS)  # every event acknowledged to its kiosk while the hub is away
        hub.start()
        n = stored(hub)
        time.sleep(2.5)  # past the broker's next $SYS update
        health = hub.get("/api/health")
        if documented:
            assert n == KIOSKS * EVENTS, hub.log_text()
            assert health["ingest"]["broker_dropped"] == 0 and health["warnings"] == []
        else:
            assert n <= 1000 + KIOSKS * 20 < KIOSKS * EVENTS  # the default queue: the rest dropped after PUBACK
            # the broker's count is what it dropped for the hub's queue: every event not stored
            assert health["ingest"]["broker_dropped"] == KIOSKS * EVENTS - n, health
            assert health["ok"] is True and "max_queued_messages 0" in health["warnings"][0], health
    finally:
        hub.stop()
        broker.stop()
