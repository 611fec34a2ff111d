"""Pack what a lent GPU machine needs to train the emotion model into ``.gpu/`` (git-ignored).

The device tool carries at most 64 MiB a call, the repository (about 7 MB) included, and nothing
can be downloaded there. FER2013's train and validation archives are 71 MB as shipped; LZMA over
rows differenced with the row above (a delta filter of one row's width) packs the images to 78% of
their raw size, and lossless formats do no better (PNG 85%, WebP 78-80%). That is still too much with
the whole validation split, so a stratified-by-chance 2,000 of its 3,589 faces travel (``--val-limit``):
they pick the best epoch there; the full split scores the model back here. Keras and the two
packages it needs that the device image lacks (namex, optree) travel as wheels for its Python 3.12.
Run here, from the repository root:

    python scripts/gpu/pack.py --data ../shared/data/fer2013

then, with the device tool, `carry: [".gpu"]` and `bash scripts/gpu/train.sh RUN EPOCHS [ARGS...]`.
"""

from __future__ import annotations

import argparse
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np

WHEELS = ("keras==3.15.1", "namex", "optree")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pack_split(src: Path, dst: Path, limit: int = 0) -> int:
    data = np.load(src)
    images, labels = data["images"], data["labels"]
    if limit and limit < len(labels):
        keep = np.sort(np.random.default_rng(0).permutation(len(labels))[:limit])
        images, labels = images[keep], labels[keep]
    header = np.array([images.shape[0], images.shape[1], images.shape[2]], np.int64).tobytes()
    filters = [{"id": lzma.FILTER_DELTA, "dist": int(images.shape[2])}, {"id": lzma.FILTER_LZMA2, "preset": 9}]
    blob = lzma.compress(header + labels.astype(np.uint8).tobytes() + images.astype(np.uint8).tobytes(),
                         filters=filters)
    dst.write_bytes(blob)
    return len(blob)


def unpack_split(src: Path, dst: Path) -> None:
    """The inverse, on the device: an .npz the converter reads like the shipped one."""
    raw = lzma.decompress(src.read_bytes())
    n, h, w = np.frombuffer(raw[:24], np.int64)
    labels = np.frombuffer(raw[24:24 + n], np.uint8)
    images = np.frombuffer(raw[24 + n:], np.uint8).reshape(n, h, w)
    np.savez(dst, images=images, labels=labels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    ap.add_argument("--out", type=Path, default=Path(".gpu"))
    ap.add_argument("--no-wheels", action="store_true")
    ap.add_argument("--val-limit", type=int, default=2000, help="validation faces to carry (0: all)")
    args = ap.parse_args()
    args.out.mkdir(exist_ok=True)
    total = 0
    total += pack_split(args.data / "train.npz", args.out / "train.xz")
    total += pack_split(args.data / "public_test.npz", args.out / "public_test.xz", args.val_limit)
    if not args.no_wheels:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(args.out / "whl")]
        for p in PLATFORMS:
            cmd += ["--platform", p]
        subprocess.run(cmd + list(WHEELS), check=True)
        total += sum(f.stat().st_size for f in (args.out / "whl").glob("*.whl"))
    print(f"{args.out}: {total / 2**20:.1f} MiB to carry (limit 64 MiB a call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
