"""Tracks that are people: appearance, duplicates, scene cuts (unit tests and real clips cut together)."""

from __future__ import annotations

import cv2

from emocast.device.config import from_mapping
from emocast.device.perception.capture import Frame
from emocast.device.perception.pipeline import Analyzer
from tests.support import MEDIA, bodies, needs_media


@needs_media("videos")
def test_real_clips_cut_together_never_share_a_track_number():
    """Four people's clips back to back (and the first again): every clip gets its own tracks and
    each cut ends the one before."""
    clips = ["edtalk_uncrop_obama_talking.mp4", "lp_d12_desk_expressions_headturn.mp4",
             "lp_d14_wink_gaze_aversion.mp4", "fer_woman_looking_down_phone.mp4",
             "edtalk_uncrop_obama_talking.mp4"]
    cfg = from_mapping({"emotion": {"emotion_hz": 0}, "attention": {"checks": False}})
    from emocast.device.perception.detectors import make_detector

    an = Analyzer(cfg, make_detector("blazeface"), None)
    seen: list[set[int]] = []
    events = []
    t = 0.0
    for clip in clips:
        cap = cv2.VideoCapture(str(MEDIA / "videos" / clip))
        ids: set[int] = set()
        for n in range(60):
            ok, frame = cap.read()
            if not ok:
                break
            f = Frame(cv2.resize(frame, (480, 480)), n, t, 0.0)
            events.extend(an.process(f))
            ids.update(r["track"] for r in an.records(f))
            t += 0.04
        cap.release()
        seen.append(ids)
    assert all(seen), seen
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not seen[i] & seen[j], seen
    cuts = [b for b in bodies(events, "attention") if b.get("reason") == "cut"]
    assert len(cuts) >= 4
