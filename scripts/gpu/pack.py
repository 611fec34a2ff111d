"""Pack what a lent GPU machine needs to train the emotion model into ``.gpu/`` (git-ignored).

The device tool carries at most 64 MiB of ignored files a call and nothing can be downloaded there.
FER2013's train and validation archives are 71 MB as shipped, so the images are re-packed with
LZMA (about 60 MB); Keras and the two packages it needs that the device image lacks (namex, optree)
travel as wheels for its Python 3.12. Run here, from the repository root:

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

WHEELS = ("keras==3.15.0", "namex", "optree")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pack_split(src: Path, dst: Path) -> int:
    data = np.load(src)
    images, labels = data["images"], data["labels"]
    header = np.array([images.shape[0], images.shape[1], images.shape[2]], np.int64).tobytes()
    blob = lzma.compress(header + labels.astype(np.uint8).tobytes() + images.astype(np.uint8).tobytes(), preset=6)
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
    args = ap.parse_args()
    args.out.mkdir(exist_ok=True)
    total = 0
    for split in ("train", "public_test"):
        total += pack_split(args.data / f"{split}.npz", args.out / f"{split}.xz")
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
