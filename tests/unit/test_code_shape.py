"""The house stays easy to find one's way in: no function over 70 lines (none exempt: a part's
argument builder is split by subcommand), no import cycle between the package's modules, the hub
imports nothing from the device (what it shares with it is the contract and the core), and the contract
and the core import none of the parts."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

MAX_LINES = 70


PACKAGES = {"emocast": "emocast", "emocast.device": "device", "emocast.convert": "convert", "emocast.hub": "hub"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, at any depth of its code (a function-level import is a
    dependency too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for c in candidates:
            while c and c not in known:
                c = c.rpartition(".")[0]
            if c and c != name:
                out.add(c)
    return out


def test_no_function_is_over_seventy_lines():
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "split these by responsibility:\n" + "\n".join(long)


def test_the_hub_imports_nothing_from_the_device():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("emocast.hub"):
            device = {m for m in _imports(name, path, set(modules)) if m.startswith("emocast.device")}
            assert not device, f"{name} imports {sorted(device)} from the device (the contract is emocast.contract)"


def test_the_hubs_privacy_rules_live_in_one_module():
    """Every path that stores or shows something asks ``hub/privacy.py``: no other hub module reads the
    ``[privacy]`` switches or strips emotion itself (binning takes the ``min_faces`` it is handed)."""
    import re

    decides = re.compile(r"privacy\.emotion\b|cfg\.privacy\.min_faces|EMOTION_FIELDS|without_emotion|\bwithheld=")
    for path in sorted((REPO / "hub").glob("*.py")):
        if path.name in ("privacy.py", "config.py"):
            continue
        found = decides.findall(path.read_text())
        assert not found, f"hub/{path.name} decides on [privacy] itself ({sorted(set(found))}): ask hub/privacy.py"


def test_the_analysis_imports_nothing_from_the_service_above_it():
    """Rooms look down only: perception (frames in, state changes out) takes its settings, its
    interpreter, its demo clip from itself, the contract and the core; no part imports the command line."""
    modules = _modules()
    for name, path in modules.items():
        found = _imports(name, path, set(modules))
        if name.startswith("emocast.device.perception"):
            up = {m for m in found if m.startswith("emocast.device") and not m.startswith("emocast.device.perception")}
            assert not up, f"{name} imports {sorted(up)} from the device above it"
        if name != "emocast.cli" and not name.startswith("emocast.__"):
            assert "emocast.cli" not in found, f"{name} imports the command line"


def test_no_import_cycle_between_modules():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    cycles = set()

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        for dep in graph.get(node, ()):
            if dep in stack:
                cycle = stack[stack.index(dep):]
                if all(not m.endswith(("emocast", "emocast.device", "emocast.hub", "emocast.convert")) for m in cycle):
                    cycles.add(" -> ".join([*cycle, dep]))
            elif dep not in done:
                done.add(dep)
                visit(dep, [*stack, dep], done)

    for name in graph:
        visit(name, [name], set())
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


def test_the_contract_and_the_core_import_none_of_the_parts():
    modules = _modules()
    parts = ("emocast.device", "emocast.hub", "emocast.convert", "emocast.cli")
    for name, path in modules.items():
        if name.startswith(("emocast.contract", "emocast.core")):
            found = {m for m in _imports(name, path, set(modules)) if m.startswith(parts)}
            assert not found, f"{name} imports {sorted(found)}: the contract and the core sit below every part"
