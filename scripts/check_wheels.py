"""Does emocast's base install resolve as wheels only on the boards it is sold for?

    python scripts/check_wheels.py              # the three boards below; exit 1 if any fails
    python scripts/check_wheels.py --strict     # also the dependencies known to be source-only

For each board: the project's own wheel is built, its base requirements are read from the wheel's
metadata with their markers evaluated for that board (linux aarch64, its Python), and ``pip download
--only-binary=:all:`` resolves them for the board's platform tags (manylinux up to its glibc), into
an empty folder whose size is the download. A requirement with no wheel for a board fails the check,
as it would fail (or compile for an hour) on the board itself.

KNOWN_SOURCE_ONLY lists what is source-only today and why; it is left out (and reported) unless
``--strict``: the check exists so that nothing new joins it silently.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
BOARDS = {  # name: (Python, glibc minor version of the OS)
    "Raspberry Pi OS Bookworm 64-bit": ("3.11", 36),
    "Raspberry Pi OS Trixie 64-bit": ("3.13", 41),
    "Jetson, Ubuntu 22.04 (JetPack 6)": ("3.10", 35),
}
KNOWN_SOURCE_ONLY: dict[str, str] = {
    # none: dlib's 68-point model (face-recognition-models, a 100 MB source package)
    # moved to the optional [dlib] extra when Face Mesh became the default landmark model
}
LIMIT_MB = 150.0


def build_wheel(into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(into)],
                   check=True, capture_output=True)
    return next(into.glob("emocast-*.whl"))


def base_requirements(wheel: Path, python: str) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    env = {**default_environment(), "platform_machine": "aarch64", "sys_platform": "linux",
           "platform_system": "Linux", "python_version": python, "python_full_version": f"{python}.0",
           "implementation_name": "cpython", "extra": ""}
    out = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate(env):
                out.append(req)
    return out


def platforms(glibc_minor: int) -> list[str]:
    return ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, glibc_minor + 1)]


def check(board: str, python: str, glibc: int, wheel: Path, strict: bool) -> bool:
    reqs = base_requirements(wheel, python)
    skipped = [r for r in reqs if r.name in KNOWN_SOURCE_ONLY and not strict]
    wanted = [str(r) for r in reqs if r not in skipped]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python,
               "--implementation", "cp", "-d", tmp]
        for p in platforms(glibc):
            cmd += ["--platform", p]
        res = subprocess.run(cmd + wanted, capture_output=True, text=True)
        size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
    ok = res.returncode == 0 and size <= LIMIT_MB
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR")]
    print(f"{board} (Python {python}, glibc 2.{glibc}): " + (f"{size:.0f} MB of wheels" if res.returncode == 0
                                                            else "; ".join(errors)[:400]))
    if res.returncode == 0 and size > LIMIT_MB:
        print(f"  over the {LIMIT_MB:.0f} MB limit")
    for r in skipped:
        print(f"  left out: {r.name} ({KNOWN_SOURCE_ONLY[r.name]})")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strict", action="store_true", help="do not leave out KNOWN_SOURCE_ONLY")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        results = [check(board, py, glibc, wheel, args.strict) for board, (py, glibc) in BOARDS.items()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
