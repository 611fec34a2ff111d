"""A classroom on one board: faces read by schedule, on workers, with the rates said and warned of."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from emocast.device.config import from_mapping
from emocast.device.perception.attention import ATTENTIVE, EYES_CLOSED, LOOKING_AWAY, AttentionStateMachine
from emocast.device.perception.capture import Frame, VideoCaptureSource
from emocast.device.perception.detectors import make_detector
from emocast.device.perception.pipeline import Analyzer
from emocast.device.perception.stages.scheduler import Candidate, pick
from emocast.device.perception.stages.timing import RateWindow
from tests.support import REPO


def simulate(faces: int, per_frame: int, seconds: float, hz: float = 10.0, fps: float = 30.0,
             arrivals: dict[int, float] | None = None) -> dict[int, list[float]]:
    """Read times of each face when each frame affords ``per_frame`` readings (budget = per_frame ms
    at 1 ms a reading). ``arrivals``: face -> when it comes in (default: all there from the start)."""
    arrivals = arrivals or {}
    last: dict[int, float | None] = {k: None for k in range(faces)}
    reads: dict[int, list[float]] = {k: [] for k in range(faces)}
    for i in range(int(seconds * fps)):
        t = i / fps
        cands = [Candidate(k, last[k], hz) for k in range(faces) if arrivals.get(k, 0.0) <= t]
        for c in pick(cands, t, float(per_frame), 1.0):
            last[c.key] = t
            reads[c.key].append(t)
    return reads


def test_a_room_too_big_for_its_targets_is_read_in_turns_evenly():
    """30 faces, 3 readings a frame at 30 fps (90 a second) against a target of 10 a face: every face
    is read 3 times a second, none waits more than its turn (10 frames)."""
    reads = simulate(30, 3, 10.0)
    rates = [len(r) / 10.0 for r in reads.values()]
    assert min(rates) >= 2.9 and max(rates) <= 3.1
    gaps = [b - a for r in reads.values() for a, b in zip(r, r[1:], strict=False)]
    assert max(gaps) <= 10 / 30 + 1e-9


def test_faces_under_their_target_are_read_at_it_and_no_faster():
    reads = simulate(3, 3, 5.0, hz=5.0)  # room to spare: each face at its own target
    for r in reads.values():
        assert 24 <= len(r) <= 26
        assert min(b - a for a, b in zip(r, r[1:], strict=False)) >= 0.999 / 5.0 - 1e-9


def test_a_new_face_is_read_first():
    reads = simulate(30, 3, 3.0, arrivals={29: 1.5})
    assert reads[29][0] == pytest.approx(1.5, abs=1e-9)  # the frame it came in, ahead of the room


def test_as_fast_as_it_can_reads_every_frame_when_the_room_allows():
    reads = simulate(2, 4, 2.0, hz=0.0)
    assert all(len(r) == 60 for r in reads.values())


def test_without_a_budget_every_due_face_is_read():
    cands = [Candidate(k, None if k % 2 else 0.0, 10.0) for k in range(40)]
    assert len(pick(cands, 0.1, None, 5.0)) == 40
    assert [c.key for c in pick(cands, 0.05, None, 5.0)] == list(range(1, 40, 2))  # read 50 ms ago: not due


def test_a_face_away_for_a_while_is_not_counted_as_slow():
    w = RateWindow(0.0)
    for i in range(120):  # 4 s of frames at 30 fps, the face hidden for the second second
        t = i / 30
        if not 1.0 <= t < 2.0:
            w.present(7, t)
            if i % 10 == 0:
                w.read(7)
    (rate,) = w.rates()
    assert rate == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("hz", [10.0, 3.0, 2.0])
def test_dwell_times_are_time_and_hold_at_lower_reading_rates(hz):
    """Eyes shut for 2 s with one odd reading in the middle: reported eyes_closed about 1.0 s after they
    shut, whatever the rate; back to attentive within the attentive dwell of their opening."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0})
    changes = []
    step = 1.0 / hz
    sm.pace(step)  # as the reading stage tells it
    times = [i * step for i in range(int(5.0 / step) + 1)]
    glitch = min((t for t in times if t >= 1.3), key=lambda t: t)  # one reading the eyes read open
    for t in times:
        proposed = EYES_CLOSED if 1.0 <= t < 3.0 and t != glitch else ATTENTIVE
        ch = sm.observe(proposed, t)
        if ch is not None:
            changes.append((ch.state, ch.t, t))
    states = [c[0] for c in changes]
    assert states == [ATTENTIVE, EYES_CLOSED, ATTENTIVE], changes
    _, since, reported = changes[1]
    assert since == pytest.approx(min(t for t in times if t >= 1.0))  # dated from its first reading
    assert reported - since == pytest.approx(1.0, abs=step + 1e-9)  # a second of time, not N readings


def test_a_looking_away_spell_is_reported_after_its_dwell_at_three_readings_a_second():
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0})
    sm.pace(1 / 3)
    times = [i / 3 for i in range(16)]
    out = [sm.observe(LOOKING_AWAY if t >= 1.0 else ATTENTIVE, t) for t in times]
    away = next(c for c in out if c is not None and c.state == LOOKING_AWAY)
    assert away.t == pytest.approx(1.0) and times[out.index(away)] == pytest.approx(2.667, abs=0.01)


def test_a_blink_is_counted_only_where_a_face_is_read_often_enough(demo_clip):
    """The summary says over how much face-time blinks could be seen: all of it at 10 readings a second,
    none at 2 (and then no blink rate, rather than a rate of zero)."""
    def summary(hz: float) -> dict:
        cfg = from_mapping({"faces": {"detect_hz": hz}, "attention": {"read_hz": hz}, "emotion": {"emotion_hz": 0}})
        an = Analyzer(cfg, make_detector("blazeface"), None)
        src = VideoCaptureSource(str(demo_clip))
        src.open()
        i = 0
        while (img := src.read()) is not None and i < 150:
            an.process(Frame(img, i, i / src.fps, 0.0))
            i += 1
        src.close()
        return an.take_summary(i / src.fps).body()

    fast, slow = summary(10.0), summary(2.0)
    assert fast["face_time_s"] > 1.0 and fast["blink_face_time_s"] == pytest.approx(fast["face_time_s"], rel=0.05)
    assert slow["face_time_s"] > 1.0 and slow["blink_face_time_s"] == 0.0 and slow["blink_rate_per_min"] is None


def test_the_warning_names_the_room_the_workers_and_the_frame(caplog):
    from emocast.device.service import Service

    cfg = from_mapping({"attention": {"checks": False}, "emotion": {"emotion_hz": 0}})
    an = Analyzer(cfg, make_detector("haar"), None)
    an.process(Frame(np.zeros((1080, 1920, 3), np.uint8), 0, 0.0, 0.0))
    svc = Service(cfg)
    payload = {"attention_reads_per_face_s": 1.2, "faces_tracked": 28.0, "stage_ms": {"detect": {"p50": 40.0}}}
    with caplog.at_level(logging.WARNING):
        svc._warn_if_slow_reads(payload, an)
        svc._warn_if_slow_reads(payload, an)  # at most every ten minutes
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "1.20 times a second, under half of [attention] read_hz (10)" in warnings[0]
    assert "28.0 faces tracked on 1 worker, frames 1920x1080" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Service(cfg)._warn_if_slow_reads({**payload, "attention_reads_per_face_s": 6.0}, an)
    assert not caplog.records


def test_the_classroom_benchmark_builds_its_room_only_from_the_clips_it_is_given(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import classroom_mosaic

    with pytest.raises(RuntimeError, match="no .mp4 clips"):
        classroom_mosaic.build(Path(tmp_path), seconds=1.0, cache=tmp_path / "cache")
