"""The hub's privacy rules (``[privacy]``) in one place: every path that stores or shows something
(ingest, import, the API and pages, exports, compare) asks ``Privacy``.

- ``emotion = false`` (EU AI Act Art. 5(1)(f): no emotion inference in schools and workplaces):
  emotion events are not read (only counted), emotion fields are left out of what is stored, a
  refused message that may quote emotion keeps no excerpt, a device's info shows no labels, and no
  timeline carries an emotion key.
- ``min_faces``: no share of fewer faces is shown (``shown_bins``), nor can one be computed as the
  difference of two shown views (``binning`` counts a device in a bin only where it never had fewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emocast.contract.events import EMOTION, EMOTION_FIELDS, PRESENT_STATES, without_emotion

from .stories import KINDS


@dataclass(frozen=True)
class Privacy:
    emotion: bool = True
    min_faces: int = 1  # 1: nothing withheld

    @classmethod
    def of(cls, section: Any) -> Privacy:
        """From the config's ``[privacy]`` section."""
        return cls(bool(section.emotion), int(section.min_faces))

    def as_dict(self) -> dict[str, Any]:
        return {"emotion": self.emotion, "min_faces": self.min_faces}

    # -- what is stored ----------------------------------------------------------------------------
    def reads(self, kind: str) -> bool:
        """Whether a message of ``kind`` is read at all (emotion off: emotion events are not)."""
        return self.emotion or kind != EMOTION

    def stored(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as it may be stored: with emotion off, without its emotion fields."""
        if self.emotion or not any(k in payload for k in EMOTION_FIELDS.get(kind, ())):
            return payload
        return without_emotion(kind, payload)

    def refusal(self, kind: str, error: str, excerpt: str) -> tuple[str, str]:
        """What a refused message keeps in quarantine (its error, an excerpt): with emotion off, nothing
        of a kind that may quote emotion."""
        if not self.emotion and kind in EMOTION_FIELDS:
            return f"invalid {kind} (details not kept: [privacy] emotion = false)", ""
        return error, excerpt

    # -- what is shown -----------------------------------------------------------------------------
    def timeline_kinds(self) -> tuple[str, ...]:
        """The stored kinds a timeline reads: those read at all."""
        return tuple(kind for kind in KINDS if self.reads(kind))

    def device(self, row: dict[str, Any]) -> dict[str, Any]:
        """A device as the API shows it: with emotion off, its info without the model's labels, and
        ``emotion_conflict`` where its info says it infers emotion all the same (its emotion is dropped
        here, but it still infers it)."""
        info = row.get("info") or {}
        infers = (info.get("privacy") or {}).get("emotion", (info.get("capabilities") or {}).get("emotion", False))
        row["emotion_conflict"] = bool(not self.emotion and infers)
        if not self.emotion and info:
            row["info"] = {k: v for k, v in info.items() if k not in ("labels",)}
        return row

    def shown_moments(self, found: dict[str, Any]) -> dict[str, Any]:
        """A timeline's moments as shown: with emotion off, no emotion swings (nor why there are none)."""
        if not self.emotion:
            found.pop("emotion_swings", None)
            found["none_because"].pop("emotion_swings", None)
        return found

    def shown_bins(self, timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The bins as the hub may show them: a bin where fewer than ``min_faces`` faces were present
        (their mean over the bin: two faces glimpsed beside one that stays are that one's record) keeps
        its face count and says why, but shows no share, so no one's own minute-by-minute record
        appears (nor, ``binning.Tally.counted`` sees to it, from a difference of two shown views). With
        emotion off no bin carries an emotion key."""
        shares = [f"{k}_share" for k in PRESENT_STATES]
        for b in timeline:
            few = b["faces"] + 1e-6 < self.min_faces
            left_out = b["faces"] > 0 and b["face_time_s"] <= 0  # every device had too few faces
            if self.min_faces > 1 and (left_out or (few and b["face_time_s"] > 0)):
                b.update(dict.fromkeys(shares), blinks_per_min=None, emotion_shares={}, emotion_face_time_s=0.0,
                         withheld=f"fewer than {self.min_faces} faces present"
                         + ("" if few else " at any one device"))
            if not self.emotion:
                b.pop("emotion_shares", None)
                b.pop("emotion_face_time_s", None)
        return timeline
