"""The README is a landing page and the manual lives in docs/; reference tables there are checked
against the code they describe, and the product speaks about itself, never about who built it when."""

from __future__ import annotations

import re
from pathlib import Path

from emocast.core.errors import ExitCode
from tests.support import REPO

NARRATION = re.compile(r"\bsessions? \d+|\bissue \d+\b|\bthis\s+(session|machine)\b", re.I)

def _table_rows(text: str, header: str) -> dict[int, str]:
    """The rows of the markdown table that follows ``header``, keyed by their first cell's number."""
    rows: dict[int, str] = {}
    lines = text[text.index(header):].splitlines()[1:]
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].isdigit():
            rows[int(cells[0])] = cells[1]
    return rows


DOCS = REPO / "docs"


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def test_the_readme_is_a_landing_page_that_links_every_manual_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) < 16 * 1024
    for page in ("kiosk", "hub", "mqtt", "model-engineer", "benchmarks", "boards", "layout"):
        assert f"(docs/{page}.md)" in readme and (DOCS / f"{page}.md").is_file()
    # the two commands come first, the test command as CI runs it
    assert readme.index("pip install '.[hub,plot]'") < readme.index("bash scripts/test.sh")
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_links_between_pages_point_at_files_that_exist():
    for page in _pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_every_test_or_benchmark_a_page_names_exists():
    """A page that says where something is tested or measured names a file that is there."""
    for page in _pages():
        for named in re.findall(r"`((?:tests|benchmarks)/[\w/]+\.py)", page.read_text()):
            assert (REPO / named).is_file(), f"{page.name} names {named}, which does not exist"


def test_the_exit_code_tables_match_the_code():
    kiosk = _table_rows((DOCS / "kiosk.md").read_text(), "| code | meaning |")
    codes = {int(c): c.name for c in ExitCode}
    device_codes = {c for c in codes if c <= ExitCode.CALIBRATION}
    assert set(kiosk) == device_codes, f"docs/kiosk.md lists {sorted(kiosk)}, the code has {sorted(device_codes)}"
    for code, meaning in kiosk.items():
        assert meaning, f"exit code {code} has no meaning in docs/kiosk.md"
    hub = (DOCS / "hub.md").read_text()
    for code in sorted(set(codes) - device_codes):
        assert re.search(rf"\b{code} [a-z]", hub), f"the hub's exit code {code} is not in docs/hub.md"
    assert all(c.description for c in ExitCode)


def test_no_page_or_source_narrates_who_built_what_when():
    folders = ("emocast", "device", "convert", "hub", "benchmarks", "scripts", "models", "checkpoints")
    kinds = (".py", ".sh", ".md", ".json", ".toml")
    sources = [p for folder in folders for p in (REPO / folder).rglob("*") if p.suffix in kinds]
    found = []
    for path in [*_pages(), *sources]:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if NARRATION.search(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:90]}")
    assert not found, "narration belongs in git history:\n" + "\n".join(found)
