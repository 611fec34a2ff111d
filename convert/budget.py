"""The kiosk's budget for a model, which the converter checks before it leaves a file: a face read in at
most ``MAX_FACE_MS`` on one thread of the converting machine, and a file of at most ``MAX_MB``. At the
limit a kiosk's three faces read twice a second take a tenth of a core here, about half of one on a board
four to five times slower; the shipped models take 0.6-2 ms (docs/model-engineer.md). A classroom's
device lowers its reading rate to what its frame budget allows, whatever the model."""

from __future__ import annotations

from pathlib import Path

MAX_FACE_MS = 15.0
MAX_MB = 32.0


def check_budget(model_path: Path, out_path: Path, latency_ms: float | None, max_face_ms: float,
                  max_mb: float) -> None:
    """Refuse (``ModelSourceError``; ``quantize.nothing_left_on_failure`` takes the file back) a file a kiosk
    cannot afford: over ``max_mb``, or over ``max_face_ms`` a face
    on one thread of the converting machine at best (``latency_ms``, the scoring's median, where it is
    under the budget, spares the measurement)."""
    from .errors import ModelSourceError

    size_mb = out_path.stat().st_size / 1e6
    problem = ""
    if size_mb > max_mb:
        problem = f"{size_mb:.2f} MB, over the kiosk's budget of {max_mb:g} MB (--max-mb)"
    elif latency_ms is None or latency_ms > max_face_ms:
        # the median of a loaded machine can be many times the model's cost: a file is refused only when
        # its best time, the cost with nothing else running, is over the budget too
        import numpy as np

        from ..device.perception.emotion import EmotionModel
        from .evaluate import per_face_latency_ms

        best = per_face_latency_ms(EmotionModel(out_path, threads=1), np.full((48, 48), 128, np.uint8), repeats=50,
                                   best=True)
        if best > max_face_ms:
            problem = (f"{best:.2f} ms a face on one thread at best, over the kiosk's budget of {max_face_ms:g} ms "
                       "(--max-face-ms)")
    if problem:
        raise ModelSourceError(f"{model_path}: the converted model is {problem}: nothing written")
