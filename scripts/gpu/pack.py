"""Pack what a lent GPU machine needs to train the emotion model into ``.gpu/`` (git-ignored).

The device tool carries at most 64 MiB a call, the repository's tracked files included, and nothing
can be downloaded there. FER2013's train and validation archives are 71 MB as shipped; LZMA over
rows differenced with the row above (a delta filter of one row's width) packs the images to 78% of
their raw size, and lossless formats do no better (PNG 85-90%, WebP 78-80%; near-lossless JPEG q95
80%, so lossy gains too little to be worth changing the faces). A stratified-by-chance 2,000 of
PublicTest's 3,589 faces travel (``--val-limit``): they pick the best epoch there; the full split
scores the model back here. Keras and the two packages it needs that the device image lacks (namex,
optree) travel as wheels for its Python 3.12.

The train split goes in chunks of 4,000 faces, and the chunks are dealt into as few parts
(``.gpu/part1``, ``.gpu/part2``, ...) as keep each call under the limit beside the repository as it
is now: once the repository holds a float checkpoint or two (9 MB for MobileNetV2 w1.0), one call can
no longer carry everything. Part 1 holds the wheels, the validation faces and ``manifest.json`` (the
chunks that make the train split). A warm machine keeps what an earlier call unpacked, so the parts
go in calls made back to back (the machine is given back after its idle time), the last one
training. Run here, from the repository root:

    python scripts/gpu/pack.py --data ../shared/data/fer2013

It prints the calls to make: with one part, `carry: [".gpu"]` and `bash scripts/gpu/sweep.sh ...`;
with two, first `carry: [".gpu/part1"]` and `bash scripts/gpu/setup.sh`, then `carry: [".gpu/part2"]`
and the training command. On the machine ``setup.sh`` calls ``unpack`` (below), which joins the
train split once every chunk has arrived and otherwise names the part still missing (exit 3).
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

WHEELS = ("keras==3.15.1", "namex", "optree")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
LIMIT = 64 * 2**20  # the device tool's limit on what one call carries
MARGIN = 2**20  # files added or edited between packing and the call
CHUNK = 4000  # train faces a chunk
MISSING = 3  # unpack's exit code while a part has not arrived


def pack_images(images: np.ndarray, labels: np.ndarray, dst: Path) -> int:
    """Faces (N, H, W) uint8 and their labels into one LZMA file; returns its size."""
    header = np.array([images.shape[0], images.shape[1], images.shape[2]], np.int64).tobytes()
    filters = [{"id": lzma.FILTER_DELTA, "dist": int(images.shape[2])}, {"id": lzma.FILTER_LZMA2, "preset": 9}]
    blob = lzma.compress(header + labels.astype(np.uint8).tobytes() + images.astype(np.uint8).tobytes(),
                         filters=filters)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(blob)
    return len(blob)


def pack_split(src: Path, dst: Path, limit: int = 0) -> int:
    """A split's ``.npz``, or a chance-picked ``limit`` of its faces (in their order), into ``dst``."""
    data = np.load(src)
    images, labels = data["images"], data["labels"]
    if limit and limit < len(labels):
        keep = np.sort(np.random.default_rng(0).permutation(len(labels))[:limit])
        images, labels = images[keep], labels[keep]
    return pack_images(images, labels, dst)


def read_packed(src: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = lzma.decompress(src.read_bytes())
    n, h, w = np.frombuffer(raw[:24], np.int64)
    labels = np.frombuffer(raw[24:24 + n], np.uint8)
    images = np.frombuffer(raw[24 + n:], np.uint8).reshape(n, h, w)
    return images, labels


def unpack_split(src: Path, dst: Path) -> None:
    """The inverse, on the device: an .npz the converter reads like the shipped one."""
    images, labels = read_packed(src)
    np.savez(dst, images=images, labels=labels)


def repository_bytes(repo: Path) -> int:
    """What travels with every call besides the carried paths: tracked files and untracked ones git
    does not ignore."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return sum((repo / name).stat().st_size for name in out.decode().split("\0")
               if name and (repo / name).is_file())


def deal(sizes: dict[str, int], first: list[str], room: int) -> list[list[str]]:
    """Names into parts of at most ``room`` bytes, in order, the ``first`` ones in part 1 (first fit:
    the chunks are alike, so nothing cleverer saves a part)."""
    parts: list[list[str]] = [list(first)]
    used = [sum(sizes[n] for n in first)]
    if used[0] > room:
        raise SystemExit(f"the wheels and validation faces alone ({used[0] / 2**20:.1f} MiB) leave no room "
                         f"beside the repository ({room / 2**20:.1f} MiB free a call); try --val-limit")
    for name in sizes:
        if name in first:
            continue
        if sizes[name] > room:
            raise SystemExit(f"{name} ({sizes[name] / 2**20:.1f} MiB) cannot travel in any call "
                             f"({room / 2**20:.1f} MiB free beside the repository)")
        for i, size in enumerate(used):
            if size + sizes[name] <= room:
                parts[i].append(name)
                used[i] += sizes[name]
                break
        else:
            parts.append([name])
            used.append(sizes[name])
    return parts


def pack(data: Path, out: Path, room: int, val_limit: int = 2000, wheels: bool = True) -> list[Path]:
    """Everything the device needs into ``out/partK``; returns the part folders."""
    staging = out / "staging"
    shutil.rmtree(out, ignore_errors=True)
    staging.mkdir(parents=True)
    sizes: dict[str, int] = {}
    first = ["public_test.xz", "manifest.json"]
    sizes["public_test.xz"] = pack_split(data / "public_test.npz", staging / "public_test.xz", val_limit)
    train = np.load(data / "train.npz")
    images, labels = train["images"], train["labels"]
    chunks = []
    for start in range(0, len(labels), CHUNK):
        name = f"train_{start // CHUNK:02d}.xz"
        sizes[name] = pack_images(images[start:start + CHUNK], labels[start:start + CHUNK], staging / name)
        chunks.append(name)
    val_faces = len(np.load(data / "public_test.npz")["labels"])
    manifest = {"train_chunks": chunks, "train_faces": int(len(labels)),
                "val_faces": min(val_limit, val_faces) if val_limit else val_faces}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    sizes["manifest.json"] = (staging / "manifest.json").stat().st_size
    if wheels:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(staging / "whl")]
        for p in PLATFORMS:
            cmd += ["--platform", p]
        subprocess.run(cmd + list(WHEELS), check=True)
        sizes["whl"] = sum(f.stat().st_size for f in (staging / "whl").glob("*.whl"))
        first.insert(0, "whl")
    folders = []
    for k, names in enumerate(deal(sizes, first, room), start=1):  # the chunks in their order
        folder = out / f"part{k}"
        folder.mkdir()
        for name in names:
            (staging / name).rename(folder / name)
        folders.append(folder)
    shutil.rmtree(staging)
    return folders


def unpack(gpu: Path) -> int:
    """On the device: the validation faces into ``gpu/fer`` at once, the train split once every chunk
    has arrived (a warm machine keeps the parts earlier calls carried). 0 when ``gpu/fer`` holds both
    splits, ``MISSING`` (after naming what is missing) when a part has still to come."""
    fer = gpu / "fer"
    fer.mkdir(parents=True, exist_ok=True)
    manifests = sorted(gpu.glob("part*/manifest.json"))
    if not manifests:
        print(f"{gpu}: no part1/manifest.json here; carry .gpu/part1 (made by scripts/gpu/pack.py) first")
        return MISSING
    manifest = json.loads(manifests[0].read_text())
    if not (fer / "public_test.npz").exists():
        unpack_split(manifests[0].parent / "public_test.xz", fer / "public_test.npz")
    if (fer / "train.npz").exists():
        return 0
    here = {packed.name: packed for packed in gpu.glob("part*/train_*.xz")}
    missing = [c for c in manifest["train_chunks"] if c not in here]
    if missing:
        print(f"train split: {len(missing)} of {len(manifest['train_chunks'])} chunks still to come "
              f"({', '.join(missing)}); carry the part that holds them in the next call")
        return MISSING
    chunks = [read_packed(here[c]) for c in manifest["train_chunks"]]
    images = np.concatenate([c[0] for c in chunks])
    labels = np.concatenate([c[1] for c in chunks])
    if len(labels) != manifest["train_faces"]:
        print(f"train split: {len(labels)} faces joined, the manifest says {manifest['train_faces']}")
        return MISSING
    np.savez(fer / "train.npz", images=images, labels=labels)
    print(f"{fer}: train {len(labels)} faces, validation {manifest['val_faces']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    ap.add_argument("--out", type=Path, default=Path(".gpu"))
    ap.add_argument("--no-wheels", action="store_true")
    ap.add_argument("--val-limit", type=int, default=2000, help="validation faces to carry (0: all)")
    ap.add_argument("--unpack", type=Path, metavar="GPU_DIR", help="on the device: unpack what has arrived")
    args = ap.parse_args()
    if args.unpack:
        return unpack(args.unpack)
    repo = Path(__file__).resolve().parents[2]
    tree = repository_bytes(repo)
    room = LIMIT - tree - MARGIN
    folders = pack(args.data, args.out, room, args.val_limit, wheels=not args.no_wheels)
    print(f"repository {tree / 2**20:.1f} MiB travels with each call; {room / 2**20:.1f} MiB left for a part")
    for folder in folders:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"  {folder}: {size / 2**20:.1f} MiB")
    if len(folders) == 1:
        print('one call: carry [".gpu"], command `bash scripts/gpu/sweep.sh SECONDS RUNS_FILE`')
    else:
        for folder in folders[:-1]:
            print(f'call: carry ["{folder}"], command `bash scripts/gpu/setup.sh` (unpacks it)')
        print(f'then at once (a machine left idle is given back): carry ["{folders[-1]}"], '
              "command `bash scripts/gpu/sweep.sh SECONDS RUNS_FILE`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
