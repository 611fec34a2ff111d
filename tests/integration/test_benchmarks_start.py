"""Every benchmark script starts: each runs as a process and prints its usage."""

from __future__ import annotations

from tests.support import REPO


def test_every_benchmark_starts():
    """Benchmarks run by hand, not in CI; each must at least import and print its usage, so a moved
    helper (tests.support) cannot leave one broken until someone needs its numbers."""
    import subprocess
    import sys

    for script in sorted((REPO / "benchmarks").glob("*.py")):
        done = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"{script.name}: {done.stderr[-2000:]}"
        assert "usage" in done.stdout.lower(), script.name
