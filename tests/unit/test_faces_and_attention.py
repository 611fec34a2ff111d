from __future__ import annotations

import cv2
import pytest

from emocast.device.perception.attention import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY, AttentionStateMachine
from emocast.device.perception.demo_clip import SEGMENTS, render_frames
from emocast.device.perception.detectors import make_detector
from emocast.device.perception.faces import FaceTracker, detect_faces, iou


@pytest.fixture(scope="module")
def frames():
    return list(render_frames())


@pytest.mark.parametrize("name", ["haar", "hog", "hog+haar"])
def test_detectors_find_the_one_face_and_nothing_in_empty_frames(frames, name):
    det = make_detector(name)
    fps = 15.0
    first_empty = int(SEGMENTS[0].seconds * fps) + 5
    face_frame = cv2.cvtColor(frames[10], cv2.COLOR_BGR2GRAY)
    empty_frame = cv2.cvtColor(frames[first_empty], cv2.COLOR_BGR2GRAY)
    boxes = detect_faces(det, face_frame, 320, 40)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    # full-frame coordinates, inside the frame, face-sized
    assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
    assert 60 <= w <= 300
    assert detect_faces(det, empty_frame, 320, 40) == []


def test_downscaled_detection_matches_full_resolution(frames):
    det = make_detector("haar")
    gray = cv2.cvtColor(frames[10], cv2.COLOR_BGR2GRAY)
    small = detect_faces(det, gray, 320, 40)
    full = detect_faces(det, gray, 640, 40)
    assert len(small) == len(full) == 1
    assert iou(small[0], full[0]) > 0.6


def test_tracker_keeps_its_number_through_motion_and_confirms_after_min_hits():
    tr = FaceTracker(min_hits=2)
    t1 = tr.update([(100, 100, 80, 80)], 0.0)[0]
    assert not t1.confirmed
    t1b = tr.update([(130, 104, 80, 80)], 0.1)[0]  # moved 30 px: IoU low-ish, centre close
    assert t1b.id == t1.id and t1b.confirmed and t1b.hits == 2
    both = tr.update([(135, 104, 80, 80), (400, 100, 80, 80)], 0.2)
    assert sorted(t.id for t in both) == [t1.id, t1.id + 1]


def test_tracker_does_not_swap_two_faces():
    tr = FaceTracker(min_hits=1)
    a, b = tr.update([(100, 100, 80, 80), (300, 100, 80, 80)], 0.0)
    moved = {t.id: t.box for t in tr.update([(310, 102, 80, 80), (95, 101, 80, 80)], 0.1)}
    assert moved[a.id][0] == 95 and moved[b.id][0] == 310


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_state_machine_first_state_is_immediate():
    sm = AttentionStateMachine()
    ch = sm.observe(ATTENTIVE, 1.0)
    assert ch is not None and ch.state == ATTENTIVE and ch.previous is None and ch.previous_duration_s == 0


def test_state_machine_hysteresis_and_durations():
    sm = AttentionStateMachine({LOOKING_AWAY: 1.5})
    sm.observe(ATTENTIVE, 0.0)
    assert sm.observe(LOOKING_AWAY, 2.0) is None
    assert sm.observe(ATTENTIVE, 2.5) is None  # a short glance away never becomes an event
    assert sm.observe(LOOKING_AWAY, 3.0) is None
    assert sm.observe(LOOKING_AWAY, 4.0) is None
    ch = sm.observe(LOOKING_AWAY, 4.6)
    assert ch is not None and ch.state == LOOKING_AWAY and ch.previous == ATTENTIVE
    assert ch.t == 3.0 and ch.previous_duration_s == 3.0
    assert sm.time_in_state(5.0) == 2.0


def test_state_machine_blink_is_not_eyes_closed():
    sm = AttentionStateMachine({EYES_CLOSED: 1.0})
    sm.observe(ATTENTIVE, 0.0)
    for t in (1.0, 1.1, 1.2):
        assert sm.observe(EYES_CLOSED, t) is None
    assert sm.observe(ATTENTIVE, 1.3) is None
    assert sm.state == ATTENTIVE


def test_state_machine_absent_with_zero_dwell_is_immediate():
    sm = AttentionStateMachine({ABSENT: 0.0})
    sm.observe(ATTENTIVE, 0.0)
    ch = sm.observe(ABSENT, 5.0)
    assert ch is not None and ch.previous_duration_s == 5.0
