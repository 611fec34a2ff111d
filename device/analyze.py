"""``emocast analyze``: what the device would see in a recorded video or a photo, as records.

Educators asked for a timeline of attention and emotion across a lecture recording. This runs the
very Analyzer the service runs (same detection, tracking, landmarks, rules, emotion sampling), on
media time, every frame read in order; only the source (a file, not a camera) and the sink (JSON
lines, CSV, a PNG timeline, not MQTT) differ. The records stay on the machine that runs it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from emocast.contract.events import AttentionChange, Event, utc_timestamp
from emocast.core.errors import EmocastError, ExitCode

from .config import Config, with_overrides
from .perception.attention import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY
from .perception.capture import Frame, SourceError, VideoCaptureSource
from .perception.detectors import make_detector
from .perception.emotion import EmotionModel
from .perception.face_reading import FaceReader
from .perception.pipeline import Analyzer
from .recording_date import recorded_at

log = logging.getLogger(__name__)

PHOTO_MIN_SIDE = 240  # smaller photos (tight face crops) are enlarged so detector and landmarks have detail
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CSV_COLUMNS = ["t", "frame", "track", "box_x", "box_y", "box_w", "box_h", "yaw", "pitch", "roll", "eye_openness",
               "ear", "eyes_closed", "gaze_h", "gaze_v", "attention", "reason", "emotion", "confidence"]
EMOTION_COLUMNS = ("emotion", "confidence")  # left out of the CSV when emotion is off


class MediaError(EmocastError):
    """The file cannot be read as a video or a photo."""

    exit_code = ExitCode.SOURCE


@dataclass
class AnalysisResult:
    records: int = 0
    frames: int = 0
    frames_expected: int = 0
    events: list[Event] = dataclasses.field(default_factory=list)
    truncated: bool = False


def is_photo(path: Path) -> bool:
    return path.suffix.lower() in PHOTO_SUFFIXES


def photo_config(cfg: Config) -> Config:
    """A single photo: a face counts at its first detection. Everything else is the config's, as for
    a video (the detector, its width, the smallest face), so a photo is read as the device would."""
    return with_overrides(cfg, "faces", min_hits=1)


def prepare_photo(frame: Frame) -> tuple[Frame, float, int]:
    """Enlarge a small photo and give it a border: tight face crops (ID photos, data sets) leave the
    Haar detector no context around the face and it misses most of them (34 of 60 found unpadded,
    60 of 60 padded, on 200x200 aligned faces). Returns the frame, its scale and the border."""
    image = frame.image
    scale = max(1.0, PHOTO_MIN_SIDE / min(image.shape[:2]))
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    pad = int(0.25 * max(image.shape[:2]))
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return dataclasses.replace(frame, image=image), scale, pad


def _centre_inside(box: list[int], shape: tuple[int, ...]) -> bool:
    x, y, w, h = box
    return 0 <= x + w / 2 < shape[1] and 0 <= y + h / 2 < shape[0]


def frames_of(path: Path) -> tuple[Iterator[Frame], int, float]:
    """Frames of a video (or the one frame of a photo) on media time, the expected count and the
    media's length in seconds (0 for a photo, or a video whose header gives no frame count).

    Videos are read through the service's own ``VideoCaptureSource`` (same opening checks, same
    frame-rate sanity, same early-end warning)."""
    if is_photo(path):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise MediaError(f"{path}: cannot read it as a photo (missing, not an image, or corrupt)")
        return iter([Frame(image=image, index=0, t=0.0, wall=0.0)]), 1, 0.0
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    source = VideoCaptureSource(str(path))
    try:
        source.open()
    except SourceError as exc:
        raise MediaError(str(exc)) from None

    def gen() -> Iterator[Frame]:
        index = 0
        try:
            while (image := source.read()) is not None:
                yield Frame(image=image, index=index, t=index / source.fps, wall=0.0)
                index += 1
        finally:
            source.close()

    length = source.frame_count / source.fps if source.frame_count > 0 and source.fps > 0 else 0.0
    return gen(), source.frame_count, length


def analyze(path: Path, cfg: Config, model: EmotionModel | None, sink, progress: bool = True,
            reader: FaceReader | None = None, on_frame=None) -> AnalysisResult:
    """Run the Analyzer over every frame of ``path``; ``sink(record)`` gets each face record.
    ``reader`` lets a caller that analyses many photos load the landmark model once. ``on_frame(image,
    t, records)`` sees each frame of a video with its records (``--annotate``)."""
    from tqdm import tqdm

    photo = is_photo(path)
    frames, expected, length = frames_of(path)
    about = media_fields(path, length)  # on the first record only: what the hub's import dates a lecture by
    result = AnalysisResult(frames_expected=expected)
    analyzer: Analyzer | None = None
    bar = tqdm(total=expected or None, unit="frame", desc=path.name, disable=not progress or expected <= 1,
               file=sys.stderr)
    scale, pad = 1.0, 0
    original_shape: tuple[int, ...] = (0, 0)
    for frame in frames:
        if photo:
            original_shape = frame.image.shape[:2]
            frame, scale, pad = prepare_photo(frame)
            cfg = photo_config(cfg)
        if analyzer is None:
            # a photo is one frame: a second worker would only load its models
            analyzer = Analyzer(cfg, make_detector(cfg.faces.detector), model, reader=reader,
                                threads=1 if photo else cfg.threads)
        result.events.extend(analyzer.process(frame))
        records = analyzer.records(frame)
        if on_frame is not None:
            on_frame(frame.image, frame.t, records)
        for record in records:
            if photo:  # boxes in the photo's own pixels
                x, y, w, h = record["box"]
                record["box"] = [int(round((x - pad) / scale)), int(round((y - pad) / scale)),
                                 int(round(w / scale)), int(round(h / scale))]
                if not _centre_inside(record["box"], original_shape):
                    continue  # a "face" made of the replicated border: not in the photo
            if about:
                record.update(about)
                about = {}
            sink(record)
            result.records += 1
        result.frames += 1
        bar.update(1)
    bar.close()
    if analyzer is not None:
        analyzer.close()
    if expected > 1 and result.frames < expected * 0.98:
        result.truncated = True
        log.warning("%s: read %d of the %d frames its header announces: truncated or damaged; the records "
                    "cover the part that could be read", path, result.frames, expected)
    if result.frames == 0:
        raise MediaError(f"{path}: no frame could be read")
    return result


def media_fields(path: Path, length_s: float) -> dict[str, Any]:
    """What the first record says of the media as a whole: its length (``media_s``) and, where the
    container carries it, when it was recorded (``recorded``, UTC); `emocast hub import` places and
    dates the lecture by them."""
    out: dict[str, Any] = {}
    if length_s > 0:
        out["media_s"] = round(length_s, 3)
    when = recorded_at(path)
    if when is not None:
        out["recorded"] = utc_timestamp(when)
    return out


class RecordWriter:
    """JSON lines (stdout or a file), optionally a CSV beside them, and what the plot needs."""

    def __init__(self, jsonl: IO[str] | None, csv_file: IO[str] | None, keep: bool, emotion: bool = True) -> None:
        self.jsonl = jsonl
        self.csv = csv.writer(csv_file) if csv_file is not None else None
        self.columns = CSV_COLUMNS if emotion else [c for c in CSV_COLUMNS if c not in EMOTION_COLUMNS]
        if self.csv is not None:
            self.csv.writerow(self.columns)
        self.kept: list[dict[str, Any]] = []  # only with keep (for the plot)
        self.keep = keep

    def __call__(self, rec: dict[str, Any]) -> None:
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(rec, separators=(",", ":")) + "\n")
        if self.csv is not None:
            self.csv.writerow(csv_row(rec)[:len(self.columns)])  # the emotion columns come last
        if self.keep:
            self.kept.append(rec)


def csv_row(rec: dict[str, Any]) -> list[Any]:
    pose = rec["head_pose"] or {}
    gaze = rec["gaze"] or {}
    probs = rec.get("probs") or {}
    emotion = rec.get("emotion")
    x, y, w, h = rec["box"]
    return [rec["t"], rec["frame"], rec["track"], x, y, w, h, pose.get("yaw"), pose.get("pitch"), pose.get("roll"),
            rec["eye_openness"], rec["ear"], rec["eyes_closed"], gaze.get("h"), gaze.get("v"), rec["attention"],
            rec["reason"], emotion, probs.get(emotion) if emotion else None]


MIN_READINGS_PER_BIN = 3  # fewer called emotions in a bin of the plot: no share drawn (one reading is not 100%)


@dataclass
class PlotData:
    """What ``plot_timeline`` draws, worked out apart from drawing it (and tested so)."""

    faces: list[int]  # the records' track numbers, in order of first appearance: drawn as faces 1..n
    bars: dict[int, list[tuple[float, float, str]]]  # per face (1..n): (start, length, state), absence included
    bins: np.ndarray  # the emotion panel's bin edges, seconds
    shares: np.ndarray  # (labels, bins): share of attentive readings called each emotion; NaN where too few


def plot_data(records: list[dict[str, Any]], labels: tuple[str, ...]) -> PlotData:
    """Faces numbered by first appearance; each face's records as bars of its state, and the gaps in
    its presence (longer than three frames' spacing) as ``absent``; emotion shares per bin of the
    readings taken while attentive, as the service counts them (its smoothed, called emotion),
    left empty where fewer than ``MIN_READINGS_PER_BIN`` readings fall."""
    times = sorted({r["t"] for r in records})
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
    faces: list[int] = []
    for r in sorted(records, key=lambda r: r["t"]):
        if r["track"] not in faces:
            faces.append(r["track"])
    bars: dict[int, list[tuple[float, float, str]]] = {}
    for n, track in enumerate(faces, 1):
        mine = sorted((r for r in records if r["track"] == track), key=lambda r: r["t"])
        out = bars.setdefault(n, [])
        for a, b in zip(mine, [*mine[1:], None], strict=True):
            out.append((a["t"], step, a["attention"] or ABSENT))
            if b is not None and b["t"] - a["t"] > 3 * step:
                out.append((a["t"] + step, b["t"] - a["t"] - step, ABSENT))
    t_end = (times[-1] if times else 0.0) + step
    edges = np.linspace(0.0, t_end, min(40, max(1, int(t_end / max(5 * step, 1e-3)))) + 1)  # 5+ frames a bin
    counts = np.zeros((len(labels), len(edges) - 1))
    for r in records:
        if r["attention"] == ATTENTIVE and r.get("emotion") in labels:
            b = min(len(edges) - 2, int(np.searchsorted(edges, r["t"], side="right") - 1))
            counts[labels.index(r["emotion"]), b] += 1
    totals = counts.sum(axis=0)
    shares = np.where(totals >= MIN_READINGS_PER_BIN, counts / np.maximum(totals, 1), np.nan)
    return PlotData(faces, bars, edges, shares)


def plot_timeline(records: list[dict[str, Any]], labels: tuple[str, ...], title: str, out: Path) -> None:
    """Attention per face over time (top) and the room's emotion shares over time (bottom, when emotion
    is on), in the hub's palette, legends beside the axes (they cover no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from emocast.contract.palette import emotion_colours, state_colour

    data = plot_data(records, labels)
    panels = 2 if labels else 1
    fig, axes = plt.subplots(panels, 1, figsize=(12, 3 + 3 * panels), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [1, 1.2][:panels]})
    ax1 = axes[0][0]
    for n, bars in data.bars.items():
        for start, length, state in bars:
            ax1.broken_barh([(start, length)], (n - 0.4, 0.8), color=state_colour(state),
                            hatch="//" if state == ABSENT else None, edgecolor="white" if state == ABSENT else None)
    ax1.set_yticks(range(1, len(data.faces) + 1), [f"face {n}" for n in range(1, len(data.faces) + 1)])
    ax1.invert_yaxis()
    ax1.set_title(f"{title}: attention per face (faces numbered as they appeared)")
    ax1.legend(handles=[Patch(color=state_colour(s), label=s.replace("_", " "))
                        for s in (ATTENTIVE, LOOKING_AWAY, EYES_CLOSED, ABSENT)],
               loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)
    if labels:
        ax2 = axes[1][0]
        colours = emotion_colours(labels)
        centres = (data.bins[:-1] + data.bins[1:]) / 2
        if np.isfinite(data.shares).any():
            ax2.stackplot(centres, np.nan_to_num(data.shares), labels=labels, colors=[colours[k] for k in labels],
                          alpha=0.9)
            ax2.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)
        else:
            ax2.text(0.5, 0.5, f"fewer than {MIN_READINGS_PER_BIN} emotion readings of an attentive face in any bin",
                     ha="center", va="center", transform=ax2.transAxes)
        ax2.set(ylim=(0, 1), ylabel="share of readings", title="emotion of attentive faces (smoothed, called)")
    axes[-1][0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def summarize(records: list[dict[str, Any]] | None, result: AnalysisResult) -> str:
    changes = Counter(str(ev.state) for ev in result.events if isinstance(ev, AttentionChange))
    parts = [f"{result.frames} frames, {result.records} face records"]
    if records:
        states = Counter(r["attention"] for r in records)
        total = sum(states.values())
        parts.append("attention " + ", ".join(f"{s} {n / total:.0%}" for s, n in states.most_common()))
    parts.append("state changes " + (", ".join(f"{s} {n}" for s, n in changes.most_common()) or "none"))
    return "; ".join(parts)
