"""Per-kiosk calibration: what "looking at the screen" looks like from where this camera sits.

A camera above a screen sees a person who reads the screen with the head tilted down a little, and
the iris of someone reading the left edge of the screen sits elsewhere than on a laptop. So a kiosk
records, once, the head pose and iris ratios of a person who looks at the screen's centre and its
four corners (``emocast calibrate``), and the attention rules use those instead of the defaults:

- the pose offsets are the head pose while looking at the centre;
- the gaze ranges span the iris ratios seen on the corners, widened by a margin (the corners are the
  edge of "on the screen", and the iris estimate is noisy by a few hundredths).

The file is plain JSON and holds only these few numbers: no image, no landmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emocast.core.errors import EmocastError, ExitCode

SCHEMA = "emocast.calibration/1"
TARGETS = ("centre", "top-left", "top-right", "bottom-right", "bottom-left")
GAZE_MARGIN = 0.05  # added on each side of the span seen on the corners
MIN_SAMPLES = 3  # per target


class CalibrationError(EmocastError):
    """A calibration that cannot be made (too few readable faces for a target) or read (a bad file:
    ``config.py`` reports that one as a config error, naming the key)."""

    exit_code = ExitCode.CALIBRATION


@dataclass(frozen=True)
class Calibration:
    yaw_offset_deg: float
    pitch_offset_deg: float
    gaze_h: tuple[float, float]
    gaze_v: tuple[float, float]
    samples: int
    recorded: str

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, **asdict(self)}, indent=2) + "\n"


@dataclass(frozen=True)
class Sample:
    """One reading while the person looks at a target."""

    yaw: float
    pitch: float
    gaze_h: float | None
    gaze_v: float | None


def fit(samples: Mapping[str, Sequence[Sample]]) -> Calibration:
    """Medians per target, then offsets from the centre and gaze ranges from all targets."""
    missing = [t for t in TARGETS if len(samples.get(t, ())) < MIN_SAMPLES]
    if missing:
        raise CalibrationError(f"too few face readings for {', '.join(missing)} (need {MIN_SAMPLES} each): "
                               "was a face in view, with open eyes, for each target?")
    centre = samples["centre"]
    per_target_h, per_target_v = [], []
    for target in TARGETS:
        hs = [s.gaze_h for s in samples[target] if s.gaze_h is not None]
        vs = [s.gaze_v for s in samples[target] if s.gaze_v is not None]
        if len(hs) < MIN_SAMPLES:
            raise CalibrationError(f"the irises could not be read while looking at the {target}")
        per_target_h.append(float(np.median(hs)))
        per_target_v.append(float(np.median(vs)))
    clip = lambda x: float(min(1.0, max(0.0, x)))  # noqa: E731
    h = (clip(min(per_target_h) - GAZE_MARGIN), clip(max(per_target_h) + GAZE_MARGIN))
    v = (clip(min(per_target_v) - GAZE_MARGIN), clip(max(per_target_v) + GAZE_MARGIN))
    return Calibration(
        yaw_offset_deg=round(float(np.median([s.yaw for s in centre])), 2),
        pitch_offset_deg=round(float(np.median([s.pitch for s in centre])), 2),
        gaze_h=(round(h[0], 3), round(h[1], 3)),
        gaze_v=(round(v[0], 3), round(v[1], 3)),
        samples=sum(len(v) for v in samples.values()),
        recorded=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def load(path: str | Path) -> Calibration:
    """Read a calibration file; every problem names the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"{p}: calibration file not found (write one with `emocast calibrate`)") from None
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{p}: not a readable calibration file: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CalibrationError(f"{p}: not an emocast calibration (schema must be {SCHEMA!r})")
    try:
        cal = Calibration(
            yaw_offset_deg=float(data["yaw_offset_deg"]),
            pitch_offset_deg=float(data["pitch_offset_deg"]),
            gaze_h=(float(data["gaze_h"][0]), float(data["gaze_h"][1])),
            gaze_v=(float(data["gaze_v"][0]), float(data["gaze_v"][1])),
            samples=int(data.get("samples", 0)),
            recorded=str(data.get("recorded", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CalibrationError(f"{p}: missing or malformed key {exc}") from None
    for name, (lo, hi) in (("gaze_h", cal.gaze_h), ("gaze_v", cal.gaze_v)):
        if not 0.0 <= lo < hi <= 1.0:
            raise CalibrationError(f"{p}: {name} must be two ratios 0 <= low < high <= 1, got {[lo, hi]}")
    return cal
