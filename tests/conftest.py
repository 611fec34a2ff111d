"""Shared fixtures: a real Mosquitto on a free loopback port, a recording subscriber, clips, the
shipped model. The helpers they use live in ``tests/support.py``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Broker, Recorder, free_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    b = Broker(tmp_path, free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps sessions across its own restarts (a hub's queued messages survive them)."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    b = Broker(tmp_path, free_port(), persistent=True)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    """The hub's database, once on SQLite and once on a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        yield str(tmp_path / "hub.sqlite")
    else:
        from tests.hub_support import pg_database

        with pg_database() as url:
            yield url


@pytest.fixture
def recorder_factory():
    made: list[Recorder] = []

    def make(port: int, topic: str = "emocast/#") -> Recorder:
        r = Recorder(port, topic)
        r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory) -> Path:
    """The demo clip (a portrait, motion, empty stretches), written fresh for the test session."""
    from emocast.device.perception.demo_clip import write_clip

    return write_clip(tmp_path_factory.mktemp("clips") / "demo.avi")


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> Path:
    """5.6 s: a face, 2.6 s of nobody (the face goes absent), the face again."""
    from emocast.device.perception.demo_clip import Segment, write_clip

    segments = (Segment(2.0, True, 0.6, 0.4, 0.6), Segment(2.6, False), Segment(1.5, True, 0.7, 0.5, 0.5))
    return write_clip(tmp_path_factory.mktemp("svc") / "short.avi", segments=segments)


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    from emocast.device.perception.emotion import default_model_path

    path = default_model_path()
    assert path.is_file(), f"the shipped model is missing: {path}"
    return path



FOLDERS = ("anger", "fear", "happiness", "sadness", "surprise", "neutral")  # the data's own names


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory) -> Path:
    """A data set as people bring one: train/ and test/ with class folders named as data sets name them,
    neutral included (random faces, each class a little darker on the left)."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        for c, name in enumerate(FOLDERS):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                face = rng.integers(0, 255, (48, 48)).astype(np.uint8)
                face[:, : 8 * (c + 1)] //= 3  # each class a little different
                cv2.imwrite(str(folder / f"{i}.png"), face)
    return root

# The two tiers are the two folders: `tests/unit` (in-process, synthetic inputs, SQLite files at most)
# and `tests/integration` (a real broker, PostgreSQL, a browser, the service or the CLI as a process, the
# clips and FER2013 of ../shared, training and converting models). Each test is marked from its folder
# (`pytest -m unit` is the quick pass; `bash scripts/test.sh` runs both), and a unit test that asks for a
# part of the integration tier, or starts a process, fails: the folder cannot drift from what a test does.
INTEGRATION_FIXTURES = {"broker", "mosquitto", "recorder_factory", "browser", "phone", "school"}
UNIT = Path(__file__).parent / "unit"


def _asks_for_a_service(item: pytest.Item) -> str | None:
    """The integration part a test item asks for, or None."""
    used = INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))
    if used:
        return f"the fixture {sorted(used)[0]!r}"
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        return "a PostgreSQL database"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT in Path(item.path).parents:
            needs = _asks_for_a_service(item)
            if needs is not None:
                raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {needs}: it belongs in "
                                        "tests/integration")
            item.add_marker(pytest.mark.unit)
        else:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In tests/unit, starting a process fails the test, naming the command."""
    if UNIT not in Path(request.node.path).parents:
        return
    import subprocess

    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"a unit test starts no process (it ran {args!r}): it belongs in tests/integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
