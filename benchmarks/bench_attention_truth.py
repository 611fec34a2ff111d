"""Attention against people: `emocast analyze` at the defaults scored on clips a person labelled.

    python benchmarks/bench_attention_truth.py                   # needs ../shared/media
    python benchmarks/bench_attention_truth.py --config other.toml --plot truth.png

Reads ``../shared/media/attention_labels.json`` (or ``--labels``, the same format: what a person calls
each moment of each clip) and analyses each clip named there from ``--media``/videos at the defaults
(emotion off: it does not change attention), then prints, without asserting anything:
- per clip: per-frame agreement, the attentive share the device held against the labelled share;
- over all clips: agreement, recall and precision per state, the confusion (rows: what the person
  called it; columns: what the device held);
- ``--plot``: a PNG with each clip's labels above the device's states over time.
The scoring rule is ``emocast.device.attention_truth``'s, written down in docs/benchmarks.md before any
default was chosen by it. ``--config FILE`` scores another configuration (a config file's sections).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from emocast.device import config as cfgmod  # noqa: E402
from emocast.device.analyze import analyze  # noqa: E402
from emocast.device.attention_truth import (  # noqa: E402
    STATES,
    ClipLabels,
    ClipScore,
    Totals,
    device_states,
    dwell_of,
    load_labels,
    score_clip,
)
from emocast.device.config import Config, with_overrides  # noqa: E402
from emocast.device.perception.face_reading import FaceReader  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
COLOURS = {"attentive": "#2a9d8f", "looking_away": "#e9c46a", "eyes_closed": "#6d597a", "absent": "#bbbbbb",
           "unsure": "#ffffff"}


def device_run(clip: Path, labels: ClipLabels, cfg: Config, reader: FaceReader) -> list[str]:
    records: list[dict] = []
    analyze(clip, cfg, None, records.append, progress=False, reader=reader)
    return device_states(records, labels.fps, labels.frames, cfg.attention.absent_s)


def fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def report(scores: list[ClipScore]) -> None:
    print(f"{'clip':<40} {'frames':>6} {'agree':>6} {'attentive share: people / device':>34}")
    for s in scores:
        print(f"{s.name[:40]:<40} {s.scored:>6} {fmt(s.agreement):>6} {fmt(s.labelled_share):>17} / "
              f"{fmt(s.device_share)}")
    total = Totals(scores)
    print(f"\nall clips: agreement {fmt(total.agreement)}, attentive share off by {fmt(total.share_error)} "
          "on average")
    for state in STATES:
        print(f"  {state:<13} recall {fmt(total.recall(state))}   precision {fmt(total.precision(state))}")
    conf = total.confusion
    print("\nconfusion (frames; rows: people, columns: device)")
    print(" " * 14 + "".join(f"{s[:12]:>13}" for s in STATES))
    for truth in STATES:
        print(f"{truth[:13]:<14}" + "".join(f"{conf[(truth, got)]:>13}" for got in STATES))


def plot(path: Path, runs: list[tuple[ClipLabels, list[str]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 1.3 * len(runs) + 0.8), squeeze=False)
    for ax, (labels, states) in zip(axes[:, 0], runs, strict=True):
        for iv in labels.intervals:
            ax.barh(1, iv.end - iv.start, left=iv.start, color=COLOURS[iv.state], edgecolor="none")
        start = 0
        for i in range(1, len(states) + 1):
            if i == len(states) or states[i] != states[start]:
                ax.barh(0, (i - start) / labels.fps, left=start / labels.fps, color=COLOURS[states[start]],
                        edgecolor="none")
                start = i
        ax.set_yticks([0, 1], ["device", "people"])
        ax.set_title(labels.name, fontsize=9, loc="left")
        ax.set_xlim(0, labels.frames / labels.fps)
    axes[-1, 0].set_xlabel("seconds")
    fig.legend(handles=[Patch(color=c, label=s) for s, c in COLOURS.items() if s != "unsure"],
               loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=MEDIA / "attention_labels.json")
    ap.add_argument("--media", type=Path, default=MEDIA, help="folder with videos/ holding the labelled clips")
    ap.add_argument("--config", type=Path, help="a config file to score instead of the defaults")
    ap.add_argument("--plot", type=Path, help="write a PNG of labels and device states over time")
    args = ap.parse_args()
    if not args.labels.is_file():
        print(f"{args.labels}: no label file (../shared/media holds attention_labels.json)", file=sys.stderr)
        return 1
    labels = load_labels(args.labels)
    cfg = with_overrides(cfgmod.load(args.config), "emotion", emotion_hz=0.0)
    reader = FaceReader(cfg.attention.focal_px, cfg.attention.gaze, landmarks=cfg.attention.landmarks,
                        eyes=cfg.attention.eyes)
    print(f"configuration: {args.config or 'defaults'}")
    scores, runs = [], []
    for name, clip_labels in labels.items():
        clip = args.media / "videos" / name
        if not clip.is_file():
            print(f"{clip}: missing, not scored", file=sys.stderr)
            continue
        states = device_run(clip, clip_labels, cfg, reader)
        scores.append(score_clip(clip_labels, states, dwell_of(cfg.attention)))
        runs.append((clip_labels, states))
    report(scores)
    if args.plot:
        plot(args.plot, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
