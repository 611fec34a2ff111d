"""A 1080p "classroom" made of real clips: a 5x5 grid, each cell a clip from ../shared/media/videos.

No recording of a real classroom can be shared, so the room is assembled from the talking-head and
crowd clips: each clip fills cells in turn, mirrored on alternate rows and started at a different
offset, so neighbouring cells never show the same face doing the same thing at the same moment. The
crowd clip's cells crop the band its walkers' faces cross. Faces come out 60-120 pixels tall, as
students' faces do from a camera at the front of a room. The mosaic is written once to a video file
(cached) and played like a camera: benchmarks and tests read it through the same source class.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 1920, 1080
GRID = 5
CELL_W, CELL_H = FRAME_W // GRID, FRAME_H // GRID  # 384 x 216
FPS = 30.0
# the part of each clip a cell shows (x0, y0, x1, y1 as shares of the clip's frame): the face and some room
CROPS = {
    "facenet_pytorch_crowd_multiface.mp4": (0.25, 0.55, 0.6, 0.8),
}
DEFAULT_CROP = (0.0, 0.0, 1.0, 1.0)


def clip_names(videos: Path) -> list[str]:
    return sorted(p.name for p in videos.glob("*.mp4"))


def _read_all(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    if not frames:
        raise RuntimeError(f"{path}: no frames could be read")
    return frames, float(fps)


def _fit(img: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """The crop of ``img`` letterboxed into one cell (aspect kept, grey bars)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = int(crop[0] * w), int(crop[1] * h), int(crop[2] * w), int(crop[3] * h)
    part = img[y0:y1, x0:x1]
    scale = min(CELL_W / part.shape[1], CELL_H / part.shape[0])
    pw, ph = max(1, int(part.shape[1] * scale)), max(1, int(part.shape[0] * scale))
    small = cv2.resize(part, (pw, ph), interpolation=cv2.INTER_AREA)
    cell = np.full((CELL_H, CELL_W, 3), 96, np.uint8)
    ox, oy = (CELL_W - pw) // 2, (CELL_H - ph) // 2
    cell[oy:oy + ph, ox:ox + pw] = small
    return cell


def mosaic_path(videos: Path, seconds: float, cache: Path) -> Path:
    names = clip_names(videos)
    key = hashlib.sha256(repr((names, seconds, GRID, FPS, CROPS, 3)).encode()).hexdigest()[:12]
    return cache / f"classroom_{GRID}x{GRID}_{int(seconds)}s_{key}.mp4"


def build(videos: Path, seconds: float = 12.0, cache: Path | None = None) -> Path:
    """The mosaic video (made once, then reused from ``cache``): ``seconds`` long at 30 fps."""
    cache = cache or Path.home() / ".cache" / "emocast"
    cache.mkdir(parents=True, exist_ok=True)
    out = mosaic_path(videos, seconds, cache)
    if out.is_file() and out.stat().st_size > 0:
        return out
    names = clip_names(videos)
    if not names:
        raise RuntimeError(f"{videos}: no .mp4 clips to build a classroom from")
    clips = {n: _read_all(videos / n) for n in names}
    tmp = out.with_suffix(".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise RuntimeError(f"{tmp}: OpenCV cannot write an mp4v video here")
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    for i in range(int(seconds * FPS)):
        t = i / FPS
        for cell in range(GRID * GRID):
            r, c = divmod(cell, GRID)
            name = names[(c + 2 * r) % len(names)]  # each row shifted: no column of one clip
            frames, fps = clips[name]
            offset = 0.77 * cell  # seconds into the clip this cell starts at
            img = frames[int((t + offset) * fps) % len(frames)]
            if (cell // GRID) % 2:
                img = img[:, ::-1]
            frame[r * CELL_H:(r + 1) * CELL_H, c * CELL_W:(c + 1) * CELL_W] = _fit(img, CROPS.get(name, DEFAULT_CROP))
        writer.write(frame)
    writer.release()
    tmp.replace(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "media"
                    / "videos", help="the clips the room is made of")
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--cache", type=Path, help="where the mosaic is written (default: ~/.cache/emocast)")
    args = ap.parse_args()
    print(build(args.videos, args.seconds, args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
