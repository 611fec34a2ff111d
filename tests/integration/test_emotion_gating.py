"""Emotion is read on every face that faces the camera, whatever its eyes; faces it cannot read
(turned, too small) are counted in summaries and named in analyze records, never silently dropped."""

from __future__ import annotations

import numpy as np

from emocast.device.config import from_mapping
from emocast.device.perception.attention import EYES_CLOSED
from emocast.device.perception.capture import Frame
from emocast.device.perception.emotion import EmotionModel
from emocast.device.perception.face_geometry import HeadPose
from emocast.device.perception.face_reading import FaceReading
from emocast.device.perception.pipeline import TOO_SMALL, TURNED, Analyzer
from tests.support import ScriptedDetector, bodies


class FixedReader:
    """Readings chosen by the test (the rules and gating are under test, not the landmarks)."""

    eye_signal = "ear"
    reads_lids = False

    def __init__(self, yaw: float, ear: float) -> None:
        self.yaw, self.ear = yaw, ear

    def read(self, gray, box, previous=None, iris=False, lids_from=None) -> FaceReading:
        pose = HeadPose(self.yaw, 0.0, 0.0, np.zeros(3), np.zeros(3))
        return FaceReading(pose, self.ear, self.ear, None)


def run(cfg, script, reader, model, frames: int = 30):
    an = Analyzer(cfg, ScriptedDetector(script), model, reader=reader)
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    events, records = [], []
    for i in range(frames):
        frame = Frame(image, i, i / 10, 0.0)
        events.extend(an.process(frame))
        records.extend(an.records(frame))
    return an, events, records


def test_faces_too_small_for_the_model_are_counted_not_read(shipped_model):
    cfg = from_mapping({"attention": {"checks": False}, "faces": {"detect_hz": 10, "min_hits": 1},
                        "emotion": {"emotion_hz": 10, "min_face_px": 32, "min_confidence": 0.0}})
    boxes = [(20, 20, 80, 80), (200, 40, 20, 20)]
    an, _, records = run(cfg, [boxes] * 30, None, EmotionModel(shipped_model))
    summary = an.take_summary(3.0).body()
    assert summary["faces_seen"] == 2 and summary["faces_read"] == 1
    assert summary["faces_too_small"] == 1 and summary["faces_turned"] == 0
    small = [r for r in records if r["box"][2] == 20]
    big = [r for r in records if r["box"][2] == 80]
    assert small and all(r["emotion"] is None and r["emotion_skipped"] == TOO_SMALL for r in small)
    assert big[-1]["emotion"] is not None and big[-1]["emotion_skipped"] is None
    assert abs(sum(summary["emotion_share"].values()) - 1.0) < 1e-3


def test_closed_eyes_do_not_stop_the_emotion_reading(shipped_model):
    """A laugh squeezes the eyes shut: the face is still read (it faces the camera)."""
    cfg = from_mapping({"faces": {"detect_hz": 10, "min_hits": 1},
                        "attention": {"eyes_closed_s": 0.6, "attentive_s": 0.0},
                        "emotion": {"emotion_hz": 10, "min_confidence": 0.0}})
    an, events, records = run(cfg, [[(20, 20, 120, 120)]] * 30, FixedReader(yaw=0.0, ear=0.05),
                              EmotionModel(shipped_model))
    assert any(b.get("state") == EYES_CLOSED for b in bodies(events, "attention"))
    assert any(e.kind == "emotion" for e in events)
    closed = [r for r in records if r["attention"] == EYES_CLOSED]
    assert closed and all(r["emotion"] is not None for r in closed)
    assert an.take_summary(3.0).body()["faces_read"] == 1


def test_turned_faces_are_counted_as_turned_and_not_read(shipped_model):
    cfg = from_mapping({"faces": {"detect_hz": 10, "min_hits": 1},
                        "emotion": {"emotion_hz": 10, "min_confidence": 0.0}})
    an, events, records = run(cfg, [[(20, 20, 120, 120)]] * 30, FixedReader(yaw=55.0, ear=0.3),
                              EmotionModel(shipped_model))
    assert not any(e.kind == "emotion" for e in events)
    assert records and all(r["emotion_skipped"] == TURNED for r in records)
    summary = an.take_summary(3.0).body()
    assert summary["faces_turned"] == 1 and summary["faces_read"] == 0
    assert all(v == 0.0 for v in summary["emotion_share"].values())


def test_readings_too_unsure_to_call_are_counted_in_summaries_not_credited(shipped_model):
    """The real int8 model on one face: with a bar no reading reaches, every reading is unsure, no
    emotion is published or credited with face time, and the summary counts them; with no bar, none is."""
    def summarise(min_confidence: float):
        cfg = from_mapping({"attention": {"checks": False}, "faces": {"detect_hz": 10, "min_hits": 1},
                            "emotion": {"emotion_hz": 10, "min_confidence": min_confidence}})
        an, events, records = run(cfg, [[(20, 20, 120, 120)]] * 30, None, EmotionModel(shipped_model))
        return an.take_summary(3.0).body(), events, records

    summary, events, records = summarise(0.999)
    assert summary["emotion_readings"] >= 20 and summary["emotion_unsure"] == summary["emotion_readings"]
    assert summary["emotion_unsure_s"] > 2.0 and set(summary["emotion_share"].values()) == {0.0}
    assert not bodies(events, "emotion")
    read = [r for r in records if r["probs"] is not None]
    assert read and all(r["emotion"] is None and r["emotion_unsure"] for r in read)
    summary, events, records = summarise(0.0)
    assert summary["emotion_unsure"] == 0 and summary["emotion_unsure_s"] == 0.0
    assert abs(sum(summary["emotion_share"].values()) - 1.0) < 1e-3
    assert bodies(events, "emotion")


def test_a_reading_the_interpreter_refuses_is_skipped_and_the_analysis_goes_on(shipped_model, caplog):
    """A kernel's own check failing on one face's values (an int8 division by a sum that rounds to zero)
    costs that reading, logged with the count, never the service."""

    class FailsEveryThird(EmotionModel):
        calls = 0

        def classify(self, gray, box):
            type(self).calls += 1
            if self.calls % 3 == 0:
                raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.")
            return super().classify(gray, box)

    cfg = from_mapping({"attention": {"checks": False}, "faces": {"detect_hz": 10, "min_hits": 1},
                        "emotion": {"emotion_hz": 10, "min_confidence": 0.0}})
    an, events, _ = run(cfg, [[(20, 20, 80, 80)]] * 30, None, FailsEveryThird(shipped_model))
    summary = an.take_summary(3.0).body()
    calls = FailsEveryThird.calls
    assert calls >= 20 and summary["emotion_readings"] == calls - calls // 3
    assert bodies(events, "emotion") and abs(sum(summary["emotion_share"].values()) - 1.0) < 1e-3
    assert "the emotion model failed on a face (1 so far; the reading is skipped)" in caplog.text
