"""The analyzer on the demo clip, and its real payloads held against the shipped JSON Schemas."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from emocast.contract.events import SCHEMAS, Topics, load_schema
from emocast.device import config as cfgmod
from emocast.device.delivery.outbox import Outbox
from emocast.device.perception.capture import Frame
from emocast.device.perception.demo_clip import SEGMENTS, render_frames
from emocast.device.perception.detectors import make_detector
from emocast.device.perception.emotion import EmotionModel
from emocast.device.perception.pipeline import Analyzer
from tests.support import bodies

FPS = 15.0


def analyse(model, **emotion):
    cfg = cfgmod.load(None)
    cfg = dataclasses.replace(cfg, emotion=dataclasses.replace(cfg.emotion, **emotion))
    an = Analyzer(cfg, make_detector("haar"), model)
    events = []
    for i, img in enumerate(render_frames(fps=FPS)):
        events.extend(an.process(Frame(img, i, i / FPS, 1_700_000_000 + i / FPS)))
    return an, events


@pytest.fixture(scope="module")
def run(shipped_model):
    return analyse(EmotionModel(shipped_model), min_confidence=0.0)


def test_attention_follows_the_clip(run):
    _, events = run
    att = bodies(events, "attention")
    assert [(b["track"], b["state"]) for b in att] == [
        (1, "attentive"), (1, "absent"), (2, "attentive"), (2, "absent"), (3, "attentive"),
    ]
    # the face leaves at the end of the first segment; it is reported absent from its last sighting
    first_gap = SEGMENTS[0].seconds
    assert att[1]["source_t"] == pytest.approx(first_gap, abs=0.25)
    assert att[1]["previous"] == "attentive" and att[1]["previous_duration_s"] == pytest.approx(first_gap, abs=0.3)
    assert att[0]["source_t"] == pytest.approx(0.0, abs=0.01)


def test_emotion_is_sampled_per_face_at_emotion_hz(run):
    an, events = run
    emo = bodies(events, "emotion")
    assert {b["track"] for b in emo} == {1, 2, 3}
    face_seconds = sum(s.seconds for s in SEGMENTS if s.face)
    # 2 Hz per face over ~9.5 s of face time, less the first detections before a track confirms
    assert 0.7 * 2 * face_seconds <= an.take_metrics(16.0, run=True)["inferences"] <= 2 * face_seconds + 3
    for b in emo:
        assert abs(sum(b["probs"].values()) - 1.0) < 0.01
        assert b["emotion"] == max(b["probs"], key=b["probs"].get)


def test_the_analysis_events_read_back_from_their_bodies(run):
    """The contract's typed events and their payload bodies are one thing: each event of the clip,
    read back from its body (as a hub or a tool reading the topic would), is the same event."""
    from emocast.contract.events import AttentionChange, EmotionChange

    _, events = run
    kinds = {type(e) for e in events}
    assert kinds == {AttentionChange, EmotionChange}
    for e in events:
        again = type(e).from_body(e.body())
        assert again.body() == e.body() and again.kind == e.kind


def test_summary_shares(run):
    an, _ = run
    summary = an.take_summary(16.0, {"final": True, "dropped_frames": 0, "dropped_events": 0})
    kind, body = summary.kind, summary.body()
    assert kind == "summary"
    # the default 60 s window spans the whole 16 s clip: three tracks, attentive whenever seen
    assert body["faces_seen"] == 3 and body["attentive_share"] == 1.0
    face_seconds = sum(s.seconds for s in SEGMENTS if s.face)
    # face time is counted only while a face is seen: not in the absent_s before it is declared gone
    assert face_seconds - 0.6 <= body["face_time_s"] <= face_seconds + 0.3
    assert abs(sum(body["emotion_share"].values()) - 1.0) < 0.01


def test_emotion_off_gives_attention_only(shipped_model):
    an, events = analyse(None, emotion_hz=0.0)
    assert events and all(e.kind == "attention" for e in events)
    assert "inferences" not in an.take_metrics(16.0, run=True) and "emotion" not in an.timers


def test_real_payloads_validate_against_the_schemas(run, tmp_path):
    an, events = run
    ob = Outbox(tmp_path / "o.sqlite", Topics("emocast", "kiosk1"))
    summary = an.take_summary(20.0, {"final": True, "dropped_frames": 3, "dropped_events": 0})
    payloads = [ob.append(e.kind, e.body(), wall=1_700_000_000.5) for e in [*events, summary]]
    validators = {kind: jsonschema.Draft202012Validator(load_schema(kind)) for kind in SCHEMAS}
    kinds = set()
    for p in payloads:
        kind = p["schema"].split(".")[1].split("/")[0]
        validators[kind].validate(p)
        kinds.add(kind)
    assert kinds == {"attention", "emotion", "summary"}
    assert [p["seq"] for p in payloads] == list(range(1, len(payloads) + 1))
    assert len({p["id"] for p in payloads}) == len(payloads)


def test_no_payload_carries_pixels_boxes_or_landmarks(run):
    _, events = run
    forbidden = {"box", "image", "crop", "landmarks", "face", "pixels", "name", "identity"}
    for body in (e.body() for e in events):
        assert not forbidden & set(body), body
        assert len(json.dumps(body)) < 600
