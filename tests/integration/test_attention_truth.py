"""Attention against people: the scorer on a hand-made label file, and the defaults on the shared labels."""

from __future__ import annotations

from emocast.device.analyze import analyze
from emocast.device.attention_truth import (
    Totals,
    device_states,
    dwell_of,
    load_labels,
    score_clip,
)
from emocast.device.config import from_mapping
from tests.support import MEDIA, bodies, needs_media


@needs_media("attention_labels.json")
def test_the_defaults_agree_with_people_on_the_shared_clips():
    """Issue aims on the labelled clips: agreement >= 0.90, looking_away recall >= 0.85, attentive recall
    >= 0.90, eyes_closed precision >= 0.80, attentive share within 0.10 on average."""
    labels = load_labels(MEDIA / "attention_labels.json")
    cfg = from_mapping({"emotion": {"emotion_hz": 0}})
    scores = []
    for name, clip_labels in labels.items():
        records: list[dict] = []
        analyze(MEDIA / "videos" / name, cfg, None, records.append, progress=False)
        states = device_states(records, clip_labels.fps, clip_labels.frames, cfg.attention.absent_s)
        scores.append(score_clip(clip_labels, states, dwell_of(cfg.attention)))
    total = Totals(scores)
    assert total.agreement >= 0.90
    assert total.recall("looking_away") >= 0.85 and total.recall("attentive") >= 0.90
    assert total.precision("eyes_closed") >= 0.80
    assert total.share_error <= 0.10


@needs_media("videos", "lp_d14_wink_gaze_aversion.mp4")
def test_eyes_that_reopen_darting_aside_are_a_look_away_though_the_cue_flickers():
    """lp_d14 6.9-8.5 s: eyes reopen from a closure and dart right and left, read on the screen now and
    then as they cross the centre; people call it looking_away. Each flicker once restarted the dwell."""
    events = analyze(MEDIA / "videos" / "lp_d14_wink_gaze_aversion.mp4", from_mapping({"emotion": {"emotion_hz": 0}}),
                     None, lambda r: None, progress=False).events
    away = [b for b in bodies(events, "attention") if b["state"] == "looking_away" and 6.8 <= b["source_t"] <= 7.6]
    assert away and away[0]["reason"] == "gaze"
