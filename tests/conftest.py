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


# The two tiers, marked at collection from what a test uses, never by hand: `integration` for a test
# that starts a broker, a PostgreSQL database, a browser or a process of its own (the service, the hub,
# the CLI in a subprocess), reads the real clips, photos or FER2013 of ../shared, or trains or converts
# a model; `unit` for the rest (in-process, synthetic inputs, SQLite files at most). `pytest -m unit`
# is the quick pass; `bash scripts/test.sh` runs both.
INTEGRATION_FIXTURES = {"broker", "mosquitto", "recorder_factory", "browser", "phone", "school", "shipped_model"}
INTEGRATION_MARKERS = {"mqtt", "e2e", "slow"}
INTEGRATION_CALLS = ("subprocess", "Popen", "HubProcess(", "run_device(", "run_cli(", "_service(", "pg_database(",
                     "running_hub(", "Broker(", "train(", "quantize", "convert", "keras", "fit(", "evaluate(")
SHARED = "../shared"  # what a skip reason names when a test reads the shared data


def _starts_something(item: pytest.Item) -> bool:
    import inspect

    if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    markers = list(item.iter_markers())
    if INTEGRATION_MARKERS & {m.name for m in markers}:
        return True
    if any(m.name == "skipif" and SHARED in str(m.kwargs.get("reason", "")) for m in markers):
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        return True
    try:
        source = inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return False
    return any(call in source for call in INTEGRATION_CALLS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration if _starts_something(item) else pytest.mark.unit)
