"""`emocast calibrate`: the procedure that records a kiosk's calibration (look at the screen's
centre, then its corners) and fits it; the file's format and the fit live in
``perception/calibration.py``, which the attention rules read."""

from __future__ import annotations

import time

from .perception.calibration import TARGETS, Calibration, CalibrationError, Sample, fit


def record(cfg, source, settle_s: float = 2.0, record_s: float = 3.0, announce=print) -> Calibration:
    """Walk a person through the targets with a live camera (or a recording, for tests) and fit.

    For each target: announce it, let ``settle_s`` pass while the eyes move there, then keep the
    largest face's readings for ``record_s``. Time is the source's own: media time for a file, the
    monotonic clock for a camera. The same Analyzer as the service reads the faces."""
    from .config import with_overrides
    from .perception.capture import Frame
    from .perception.detectors import make_detector
    from .perception.pipeline import Analyzer

    # readings only: the pose is read raw (no old calibration or offsets), and no emotion is needed
    cfg = with_overrides(cfg, "attention", calibration="", yaw_offset_deg=0.0, pitch_offset_deg=0.0)
    cfg = with_overrides(cfg, "emotion", emotion_hz=0.0)
    analyzer = Analyzer(cfg, make_detector(cfg.faces.detector), None)
    samples: dict[str, list[Sample]] = {t: [] for t in TARGETS}
    fps = source.fps or 25.0
    index = 0
    start: float | None = None

    def clock() -> float:
        return time.monotonic() if source.live else index / fps

    for target in TARGETS:
        announce(f"look at the screen's {target}" + (" and hold still" if target == "centre" else ""))
        begin = clock()
        while clock() - begin < settle_s + record_s:
            image = source.read()
            if image is None:
                if source.live:
                    continue
                raise CalibrationError(f"{source.name}: the source ended during the {target} target")
            t = clock()
            start = t if start is None else start
            frame = Frame(image=image, index=index, t=t - start, wall=time.time())
            analyzer.process(frame)
            index += 1
            records = analyzer.records(frame)
            if t - begin < settle_s or not records:
                continue
            face = max(records, key=lambda r: r["box"][2] * r["box"][3])
            if face["head_pose"] is None:
                continue
            gaze = face["gaze"] or {}
            samples[target].append(Sample(face["head_pose"]["yaw"], face["head_pose"]["pitch"],
                                          gaze.get("h"), gaze.get("v")))
        announce(f"  {target}: {len(samples[target])} readings")
    return fit(samples)
