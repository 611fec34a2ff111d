"""A box the detector took for a face (hair, a jacket, the back of a head) is not a person: a track
counts only once its landmark check finds a face there (Face Mesh's presence score)."""

from __future__ import annotations

from emocast.device.config import from_mapping
from tests.support import MEDIA, needs_media


@needs_media("videos", "facenet_pytorch_crowd_multiface.mp4")
def test_the_crowd_clips_hair_and_jackets_are_not_people():
    """With the rule off, the crowd clip's records name 14 tracks, 7 of them boxes on hair, jackets,
    a hand over a face (Face Mesh presence 0.00 at their checks); with it, 7 remain, all faces."""
    from emocast.device.analyze import analyze

    tracks = {}
    for name, faces in (("on", {}), ("off", {"min_presence": 0.0})):
        records: list[dict] = []
        cfg = from_mapping({"emotion": {"emotion_hz": 0}, "faces": faces})
        analyze(MEDIA / "videos" / "facenet_pytorch_crowd_multiface.mp4", cfg, None, records.append, progress=False)
        tracks[name] = {r["track"] for r in records}
    assert tracks["on"] < tracks["off"]  # the same track numbers: the rule changes what is reported only
    assert len(tracks["off"]) - len(tracks["on"]) >= 5 and len(tracks["on"]) >= 5
