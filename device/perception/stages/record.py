"""The offline record: what ``emocast analyze`` writes for each face on each frame it read.

Records stay on the machine that made them (a file an engineer asked for); the service never builds
them. A record is the reading stage's view of a face (box, head pose, eyes, gaze, attention and its
reason) plus each optional stage's fields (emotion's, where emotion is on: with it off, no emotion
key at all, not even a null).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..faces import Track
from .faces import FaceStage
from .optional import OptionalStage
from .reading import ReadingStage


def face_record(tr: Track, t: float, index: int, reading: ReadingStage,
                optional: Sequence[OptionalStage]) -> dict[str, Any]:
    """One face's record on one processed frame."""
    st = reading.faces[tr.id]
    r = st.reading
    angles = st.angles
    record: dict[str, Any] = {
        "t": round(t, 3),
        "frame": index,
        "track": tr.id,
        "box": [int(v) for v in tr.box],
        "head_pose": None if angles is None else dict(zip(("yaw", "pitch", "roll"),
                                                          (round(float(a), 1) for a in angles), strict=True)),
        "eye_openness": None if r is None else round(st.eyes.openness(r.ear, r.iris_openness, r.closed_p), 3),
        "ear": None if r is None else round(r.ear, 3),
        "eyes_closed": None if r is None else st.eyes.closed,
        "gaze": None if r is None or r.gaze is None or st.eyes.closed else r.gaze.as_dict(),
        "attention": st.attention.state,
        "reason": st.reason,
    }
    for stage in optional:
        record.update(stage.record_fields(tr.id))
    return record


def frame_records(t: float, index: int, faces: FaceStage, reading: ReadingStage,
                  optional: Sequence[OptionalStage]) -> list[dict[str, Any]]:
    """The records of a frame just processed: every confirmed face with a state that was seen or read
    on it (a face tracked but neither detected nor read there has nothing new to say)."""
    out = []
    for tr in faces.confirmed():
        st = reading.state(tr.id)
        if st is not None and (tr.last_seen_t == t or st.checked_t == t):
            out.append(face_record(tr, t, index, reading, optional))
    return out


class LatestRecords:
    """Each track's latest record until it has gone unread for ``absent_s`` (as the device declares a
    face absent): what a frame shows of faces read on earlier frames (the annotated video; attention
    scored against people, frame by frame)."""

    def __init__(self, absent_s: float) -> None:
        self.absent_s = absent_s
        self.latest: dict[int, Mapping[str, Any]] = {}

    def update(self, t: float, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Take this frame's records; every track's latest record younger than ``absent_s`` at ``t``."""
        for rec in records:
            self.latest[int(rec["track"])] = rec
        self.latest = {k: r for k, r in self.latest.items() if t - float(r["t"]) < self.absent_s}
        return list(self.latest.values())
