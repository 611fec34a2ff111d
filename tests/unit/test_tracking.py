"""Tracks that are people: appearance, duplicates, scene cuts (unit tests and real clips cut together)."""

from __future__ import annotations

import numpy as np

from emocast.device.config import from_mapping
from emocast.device.perception.capture import Frame
from emocast.device.perception.faces import FaceTracker, appearance, scene_changed, thumbnail
from emocast.device.perception.pipeline import Analyzer
from tests.support import ScriptedDetector, bodies


def _look(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=144).astype(np.float32)
    return v / np.linalg.norm(v)


def test_a_different_looking_face_in_the_same_place_is_a_new_track():
    tr = FaceTracker(min_hits=1, min_similarity=0.4)
    a = tr.update([(100, 100, 80, 80)], 0.0, [_look(1)])[0]
    same = tr.update([(104, 100, 80, 80)], 0.1, [_look(1) * 0.9 + _look(2) * 0.1])[0]
    assert same.id == a.id
    other = tr.update([(104, 100, 80, 80)], 0.2, [_look(3)])
    assert [t.id for t in other] == [a.id + 1]  # a stranger in the same seat
    assert tr.update([(300, 100, 80, 80)], 0.3, [None])[0].id == a.id + 2  # far away: new, look or not


def test_running_appearance_stays_unit_length_and_follows_slow_change():
    tr = FaceTracker(min_hits=1)
    t = tr.update([(0, 0, 50, 50)], 0.0, [_look(1)])[0]
    for i in range(20):
        tr.update([(0, 0, 50, 50)], 0.1 * (i + 1), [_look(1)])
    assert t.look is not None and abs(float(np.linalg.norm(t.look)) - 1) < 1e-5


def test_duplicate_tracks_on_one_face_name_the_younger():
    tr = FaceTracker(min_hits=1, match_iou=1.0, max_centre_dist=0.0)  # force two tracks
    tr.update([(100, 100, 80, 80)], 0.0)
    tr.update([(102, 101, 80, 80), (400, 100, 80, 80)], 0.1)
    assert tr.duplicates() == [2]


def test_appearance_is_unit_length_and_ignores_lighting():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 200, (100, 100), dtype=np.uint8)
    a = appearance(gray, (10, 10, 48, 48))
    b = appearance(np.clip(gray.astype(int) + 40, 0, 255).astype(np.uint8), (10, 10, 48, 48))
    assert a is not None and b is not None and abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert float(a @ b) > 0.97
    assert appearance(gray, (98, 98, 10, 10)) is None  # nearly nothing left inside the frame


def test_scene_cut_ends_every_track_and_numbers_start_afresh():
    cfg = from_mapping({"attention": {"checks": False}, "faces": {"detect_hz": 10, "min_hits": 1},
                        "emotion": {"emotion_hz": 0}})
    an = Analyzer(cfg, ScriptedDetector([[(100, 60, 80, 80)]] * 20), None)
    dark, bright = np.full((240, 320, 3), 30, np.uint8), np.full((240, 320, 3), 200, np.uint8)
    events = []
    for i in range(20):
        events.extend(an.process(Frame(dark if i < 10 else bright, i, i / 10, 0.0)))
    att = [(b["track"], b["state"], b.get("reason")) for b in bodies(events, "attention")]
    assert att == [(1, "attentive", None), (1, "absent", "cut"), (2, "attentive", None)]
    assert not scene_changed(None, thumbnail(dark[..., 0]), 30) and not scene_changed(
        thumbnail(dark[..., 0]), thumbnail(dark[..., 0]), 30)
    assert not scene_changed(thumbnail(dark[..., 0]), thumbnail(bright[..., 0]), 0)  # 0: off
