"""A box the detector took for a face (hair, a jacket, the back of a head) is not a person: a track
counts only once its landmark check finds a face there (Face Mesh's presence score)."""

from __future__ import annotations

import numpy as np

from emocast.device.config import from_mapping
from emocast.device.perception.capture import Frame
from emocast.device.perception.face_geometry import HeadPose
from emocast.device.perception.face_reading import FaceReading
from emocast.device.perception.pipeline import Analyzer
from tests.support import ScriptedDetector, bodies


class PresenceReader:
    """Frontal, open-eyed readings whose presence score the test scripts per check."""

    eye_signal = "ear"
    reads_lids = False

    def __init__(self, presences: list[float | None]) -> None:
        self.presences = list(presences)
        self.calls = 0

    def read(self, gray, box, previous=None, iris=False, lids_from=None) -> FaceReading:
        presence = self.presences[min(self.calls, len(self.presences) - 1)]
        self.calls += 1
        pose = HeadPose(0.0, 0.0, 0.0, np.zeros(3), np.zeros(3))
        return FaceReading(pose, 0.3, 0.3, None, presence=presence)


def run(presences: list[float | None], frames: int = 30, **faces):
    cfg = from_mapping({"faces": {"detect_hz": 10, "min_hits": 2, **faces}, "emotion": {"emotion_hz": 0},
                        "attention": {"attentive_s": 0.0}})
    reader = PresenceReader(presences)
    an = Analyzer(cfg, ScriptedDetector([[(20, 20, 120, 120)]] * frames), None, reader=reader)
    image = np.zeros((240, 320, 3), np.uint8)
    events, records = [], []
    for i in range(frames):
        frame = Frame(image, i, i / 10, 0.0)
        events.extend(an.process(frame))
        records.extend(an.records(frame))
    events.extend(an.idle(frames / 10 + 5.0))  # the box goes: absent, if it ever counted
    return an, bodies(events, "attention"), records


def test_a_box_with_no_face_in_it_is_never_reported_counted_or_recorded():
    an, events, records = run([0.0])
    assert events == [] and records == []
    summary = an.take_summary(3.0).body()
    assert summary["faces_seen"] == 0
    assert summary["boxes_without_face"] == 1  # not a face, but not hidden either: it may be one behind a hand


def test_a_track_counts_from_the_first_check_that_finds_a_face():
    an, events, records = run([0.02, 0.0, 0.05, 0.97])  # a head bowed, then raised
    assert [e["state"] for e in events] == ["attentive", "absent"]
    first = records[0]["t"]
    assert first >= 0.4  # the fourth check: the second detection confirms, the next three find no face
    summary = an.take_summary(3.0).body()
    assert summary["faces_seen"] == 1 and summary["boxes_without_face"] == 0


def test_a_counted_face_stays_counted_when_its_presence_drops():
    """Asked only before a track's first state: a face bowing or half hidden by a hand stays counted."""
    _, events, records = run([1.0, 0.0])
    assert [e["state"] for e in events] == ["attentive", "absent"]
    assert len(records) > 20


def test_no_presence_score_or_the_rule_off_reports_as_before():
    for presences, faces in (([None], {}), ([0.0], {"min_presence": 0.0})):
        _, events, _ = run(presences, **faces)
        assert [e["state"] for e in events] == ["attentive", "absent"]
