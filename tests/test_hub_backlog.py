"""The broker set-up the docs give keeps what it acknowledged: a backlog of many kiosks sent while the hub
is stopped (after a network outage, say) is stored whole when the hub comes back, with docs/kiosk.md's
queue lines on a real Mosquitto; with Mosquitto's defaults the same backlog loses all but 1,000 (the
reason for those lines, shown so this test could fail)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from emocast.contract.events import SCHEMAS, utc_timestamp
from tests.hub_support import HubProcess
from tests.support import REPO, Broker, free_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")
pytestmark = [pytest.mark.mqtt, pytest.mark.e2e, pytest.mark.slow]

KIOSKS, EVENTS = 10, 250  # 2,500 queued for the hub: over Mosquitto's default of 1,000
QUEUE_KEYS = ("autosave_interval", "max_queued_messages", "max_queued_bytes", "message_size_limit")


def documented_queue_lines() -> str:
    """The broker lines docs/kiosk.md gives for keeping an offline hub's queue (not its auth lines)."""
    text = (REPO / "docs" / "kiosk.md").read_text()
    block = text.split("# mosquitto.conf", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(QUEUE_KEYS)]
    assert any(line.startswith("max_queued_messages") for line in lines), block
    return "\n".join(lines) + "\n"


def send_backlog(port: int) -> None:
    """Each kiosk sends its events at QoS 1 and waits for every PUBACK: all of them acknowledged."""
    def kiosk(k: int) -> None:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"kiosk-{k}")
        c.max_inflight_messages_set(50)
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            infos = [c.publish(f"emocast/k{k}/events/attention", json.dumps({
                "schema": SCHEMAS["attention"], "id": uuid.uuid4().hex, "seq": seq, "ts": utc_timestamp(time.time()),
                "device": f"k{k}", "track": 1, "state": "attentive", "previous": None, "previous_duration_s": 0.0,
                "source_t": float(seq)}), qos=1) for seq in range(1, EVENTS + 1)]
            for info in infos:
                info.wait_for_publish(60)
                assert info.is_published()
        finally:
            c.loop_stop()
            c.disconnect()

    threads = [threading.Thread(target=kiosk, args=(k,)) for k in range(KIOSKS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


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
    broker = Broker(tmp_path, free_port(), extra_conf=extra, persistent=True)
    broker.start()
    hub = HubProcess(tmp_path, broker.url, str(tmp_path / "hub.sqlite"))
    try:
        hub.start()  # the hub's persistent session and subscriptions now exist on the broker
        assert hub.stop() == 0
        send_backlog(broker.port)  # every event acknowledged to its kiosk while the hub is away
        hub.start()
        n = stored(hub)
        if documented:
            assert n == KIOSKS * EVENTS, hub.log_text()
        else:
            assert n <= 1000 + KIOSKS * 20 < KIOSKS * EVENTS  # the default queue: the rest dropped after PUBACK
    finally:
        hub.stop()
        broker.stop()
