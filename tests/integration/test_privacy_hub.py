"""The hub's ``[privacy]``: with ``emotion = false`` a kiosk that does infer emotion leaves no emotion in
the database file, the API, the CSV or the page (real service, broker, hub, SQLite and PostgreSQL);
``min_faces`` withholds the shares of a bin with fewer faces; ``forget`` leaves no row of a device."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request

import pytest

from emocast.cli import main
from emocast.core.errors import ExitCode
from tests.hub_support import HubProcess, published_seqs, run_device  # noqa: E402
from tests.support import Recorder  # noqa: E402

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


from tests.helpers.privacy_hub import all_rows


@pytest.mark.mqtt
@pytest.mark.e2e
def test_a_hub_without_emotion_keeps_none_from_a_kiosk_that_infers_it(mosquitto, db_url, tmp_path, demo_clip):
    conf = tmp_path / "hub.toml"
    conf.write_text("[privacy]\nemotion = false\nmin_faces = 1\n")
    hub = HubProcess(tmp_path, mosquitto.url, db_url, extra=["--config", str(conf)])
    hub.start()
    try:
        ran = run_device(mosquitto.url, "k-emo", demo_clip, tmp_path, "--fast")
        assert ran.returncode == 0, ran.stderr[-2000:]
        sent = published_seqs(tmp_path, "k-emo")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (dev,) = [d for d in hub.get("/api/devices") if d["device"] == "k-emo"] or [{}]
            if dev and dev["events"] + dev["policy_dropped"] >= sent and dev.get("info"):
                break
            time.sleep(0.3)
        assert dev["policy_dropped"] > 0 and dev["events"] + dev["policy_dropped"] == sent, dev
        assert dev["emotion_conflict"] is True  # its info says it infers emotion; the hub forbids it
        assert "labels" not in dev["info"]
        assert hub.health()["privacy"] == {"emotion": False, "min_faces": 1}
        lecture = hub.post("/api/lectures", {"title": "Biology", "devices": ["k-emo"],
                                             "start": time.time() - 600, "end": time.time() + 1})
        data = hub.get(f"/api/lectures/{lecture['id']}/timeline?bin_s=60&per_device=true")
        text = json.dumps(data)
        assert "emotion_shares" not in text and "emotion_swings" not in text and data["privacy"]["emotion"] is False
        assert any(b["attentive_share"] for b in data["bins"]), data["bins"]  # attention still shown
        with urllib.request.urlopen(
                f"http://127.0.0.1:{hub.port}/api/lectures/{lecture['id']}/export.csv") as r:
            header = next(csv.reader(io.StringIO(r.read().decode())))
        assert "attentive_share" in header and not [c for c in header if c.startswith("emotion")]
    finally:
        assert hub.stop() == 0
    rows = all_rows(db_url)
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert rows and not [r for r in rows if "emotion_share" in r or "emocast.emotion/" in r
                         or any(label in r for label in labels)]


def test_forget_clears_the_devices_retained_status_on_the_broker(broker, tmp_path, capsys):
    """Else the broker's retained status and info would bring the device back at the hub's next start."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="kiosk-alice")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    for suffix, payload in (("status", b"online"), ("info", b'{"version": "x"}')):
        pub.publish(f"emocast/alice/{suffix}", payload, qos=1, retain=True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()
    config = tmp_path / "hub.toml"
    config.write_text(f'[mqtt]\nurl = "{broker.url}"\n')
    db = str(tmp_path / "hub.sqlite")
    assert main(["hub", "forget", "--device", "alice", "--db", db, "--config", str(config)]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["retained_cleared"] is True
    check = Recorder(broker.port, "emocast/#")
    check.start()  # retained messages come with the subscription, before anything published after it
    try:
        check.client.publish("emocast/marker/status", b"after", qos=1).wait_for_publish(5)
        assert check.wait_for(lambda msgs: any(t == "emocast/marker/status" for t, _, _ in msgs), 10)
        assert [t for t, _, _ in check.messages] == ["emocast/marker/status"]
    finally:
        check.stop()
