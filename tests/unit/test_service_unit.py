"""The service in-process, for failure paths that are hard to provoke from outside."""

from __future__ import annotations

import threading

import numpy as np

from emocast.core.errors import ExitCode
from emocast.device import config as cfgmod
from emocast.device import service


class ExplodingCamera:
    """A live source whose driver throws after a few frames (not a clean 'no frame')."""

    live = True
    name = "exploding"

    def __init__(self) -> None:
        self.reads = 0

    def open(self) -> None:
        pass

    def read(self):
        self.reads += 1
        if self.reads > 3:
            raise RuntimeError("driver fault")
        return np.zeros((48, 64, 3), np.uint8)

    def close(self) -> None:
        pass

    @property
    def fps(self) -> float:
        return 30.0


def run_in_thread(svc: service.Service) -> int:
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(svc.run()))  # off the main thread: no signal handlers
    t.start()
    t.join(60)
    assert result, "the service did not stop"
    return result[0]


def test_a_capture_crash_is_a_source_failure_not_a_clean_stop(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(service, "open_source", lambda *a, **k: ExplodingCamera())
    cfg = cfgmod.with_overrides(cfgmod.load(None), "mqtt", url="mqtt://127.0.0.1:1", drain_timeout_s=0.0)
    cfg = cfgmod.with_overrides(cfg, "outbox", path=str(tmp_path / "o.sqlite"))
    code = run_in_thread(service.Service(cfg))
    assert code == ExitCode.SOURCE
    assert "driver fault" in caplog.text


def test_a_missing_password_file_is_a_config_error_before_anything_opens(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(service, "open_source", lambda *a, **k: opened.append(1))
    cfg = cfgmod.with_overrides(cfgmod.load(None), "mqtt", password_file=str(tmp_path / "absent"))
    try:
        service.Service(cfg).run()
        raise AssertionError("no ConfigError")
    except cfgmod.ConfigError as exc:
        assert "password_file" in str(exc) and "absent" in str(exc)
    assert opened == []


def test_reconnect_backoff_grows_with_jitter_and_resets():
    import random

    from emocast.core.broker import Backoff

    b = Backoff(1.0, 30.0, random.Random(7))
    waits = [b.next() for _ in range(8)]
    caps = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(cap / 2 <= w <= cap for w, cap in zip(waits, caps, strict=True))
    fleet = [Backoff(1.0, 30.0, random.Random(seed)) for seed in range(20)]
    for k in fleet:
        for _ in range(4):
            k.next()
    fifth = sorted(k.next() for k in fleet)
    assert fifth[-1] - fifth[0] > 3.0  # twenty kiosks do not knock at the same instant
    b.reset()
    assert b.next() <= 1.0
