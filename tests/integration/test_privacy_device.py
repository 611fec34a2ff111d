"""``[privacy] emotion = false`` on the kiosk, against the real service and a real Mosquitto: no model
file is opened (its path does not even exist), nothing emotional is published, logged, printed or
written by ``analyze``; the retained ``info`` says so; the installer's ``--no-emotion`` writes the key."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from emocast.core.errors import ExitCode
from emocast.device import config as cfgmod
from tests.helpers.service import config, run_cli, validate
from tests.support import REPO, schema_validator

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


EMOTION_KEYS = {"emotion", "probs", "emotion_share", "emotion_readings", "emotion_unsure", "emotion_unsure_s",
                "emotion_skipped", "inferences", "confidence", "emotion_reads_per_face_s"}


def keys_of(payload) -> set[str]:
    """Every key at any depth of a JSON payload."""
    if isinstance(payload, dict):
        return set(payload) | {k for v in payload.values() for k in keys_of(v)}
    if isinstance(payload, list):
        return {k for v in payload for k in keys_of(v)}
    return set()


def test_a_kiosk_without_emotion_publishes_nothing_emotional(broker, recorder_factory, short_clip, tmp_path):
    rec = recorder_factory(broker.port)
    cfg = config(tmp_path, privacy={"emotion": False},
                 emotion={"model": str(tmp_path / "no-such-model.tflite")}, events={"summary_s": 2.0})
    res = run_cli(["--log-level", "DEBUG", "run", "--config", str(cfg), "--source", str(short_clip), "--fast",
                   "--metrics-s", "0.2", "--broker", broker.url, "--device-id", "calm1",
                   "--outbox", str(tmp_path / "o.sqlite"), "--print"])
    assert res.returncode == ExitCode.OK, res.stderr[-3000:]
    assert "[privacy] emotion = false wins" in res.stderr
    assert rec.wait_for(lambda m: any(t == "emocast/calm1/status" and p == b"offline" for t, p, _ in m), 20)
    topics = {t for t, _, _ in rec.messages}
    assert "emocast/calm1/events/emotion" not in topics and "emocast/calm1/events/attention" in topics
    (info,) = rec.payloads("calm1/info")[:1]
    validate(info)
    assert info["privacy"] == {"emotion": False} and info["model"] is None and info["labels"] == []
    assert info["capabilities"]["emotion"] is False
    published = [p for suffix in ("events/attention", "summary", "metrics") for p in rec.payloads(f"calm1/{suffix}")]
    assert rec.payloads("calm1/summary") and rec.payloads("calm1/metrics")
    for p in published:
        validate(p)
        assert not keys_of(p) & EMOTION_KEYS, p
    assert "emotion" not in rec.payloads("calm1/metrics")[-1]["stage_ms"]
    printed = [json.loads(line) for line in res.stdout.splitlines()]
    assert printed and not any(keys_of(p) & EMOTION_KEYS for p in printed)
    assert "no-such-model" not in res.stderr  # never even looked for


def test_run_no_emotion_and_emotion_hz_0_are_the_same_switch(tmp_path):
    cfg = cfgmod.from_mapping({"privacy": {"emotion": False}})
    assert not cfg.emotion_on
    assert not cfgmod.from_mapping({"emotion": {"emotion_hz": 0.0}}).emotion_on  # the older switch, an alias
    assert cfgmod.from_mapping({}).emotion_on
    assert not cfgmod.with_overrides(cfgmod.from_mapping({}), "privacy", emotion=False).emotion_on


def test_analyze_without_emotion_writes_no_emotion(tmp_path, short_clip):
    out, table = tmp_path / "records.jsonl", tmp_path / "records.csv"
    cfg = config(tmp_path, privacy={"emotion": False})
    res = run_cli(["analyze", str(short_clip), "--config", str(cfg), "--out", str(out), "--csv", str(table),
                   "--quiet"])
    assert res.returncode == ExitCode.OK, res.stderr[-2000:]
    header = table.read_text().splitlines()[0].split(",")
    assert "attention" in header and "emotion" not in header and "confidence" not in header
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and not any(keys_of(r) & EMOTION_KEYS for r in records)

    for r in records:
        schema_validator("analyze_record").validate(r)


def test_a_config_with_both_says_which_wins(caplog):
    with caplog.at_level(logging.WARNING):
        cfgmod.from_mapping({"privacy": {"emotion": False}, "emotion": {"emotion_hz": 5.0}}, origin="k.toml")
    assert "k.toml: [privacy] emotion = false wins: the [emotion] settings are ignored" in caplog.text


@pytest.mark.parametrize("start", ["[privacy]\nemotion = true\n", "[mqtt]\nurl = \"mqtt://b\"\n"])
def test_the_installers_no_emotion_writes_the_key(tmp_path, start):
    conf = tmp_path / "emocast.toml"
    conf.write_text(start)
    script = REPO / "systemd" / "install.sh"
    fn = subprocess.run(["sed", "-n", "/^privacy_off() {/,/^}/p", str(script)], capture_output=True, text=True,
                        check=True).stdout
    subprocess.run(["bash", "-c", f"{fn}\nprivacy_off {conf}\nprivacy_off {conf}"], check=True)
    cfg = cfgmod.load(conf)
    assert cfg.privacy.emotion is False and conf.read_text().count("[privacy]") == 1
