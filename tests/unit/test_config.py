from __future__ import annotations

from pathlib import Path

import pytest

from emocast.device import config as cfgmod
from emocast.device.config import ConfigError
from tests.support import REPO

EXAMPLE = REPO / "systemd" / "emocast.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "emocast.toml"
    p.write_text(text)
    return p


def test_defaults_are_valid():
    cfg = cfgmod.load(None)
    assert cfg.source.uri == "demo"
    assert cfg.emotion.emotion_hz == 2.0
    assert cfg.mqtt.prefix == "emocast"
    assert cfg.device_id  # host name when unset


def test_example_config_shipped_for_systemd_is_valid():
    cfg = cfgmod.load(EXAMPLE)
    assert cfg.origin == str(EXAMPLE)
    assert cfg.faces.detector == cfgmod.Config().faces.detector


def test_unknown_key_names_file_section_and_key(tmp_path):
    p = write(tmp_path, "[faces]\ndetect_hzz = 5\n")
    with pytest.raises(ConfigError) as err:
        cfgmod.load(p)
    msg = str(err.value)
    assert str(p) in msg and "[faces] detect_hzz" in msg and "unknown key" in msg


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[camera\]"):
        cfgmod.load(write(tmp_path, "[camera]\nx = 1\n"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[faces]\ndetect_hz = "fast"\n', "[faces] detect_hz: expected a number, got str"),
        ("[source]\nloop = 1\n", "[source] loop: expected true or false"),
        ("[faces]\nmin_hits = 2.5\n", "[faces] min_hits: expected an integer"),
        ('[faces]\ndetector = "cnn"\n', "[faces] detector: 'cnn' is not a detector"),
        ("[emotion]\nsmoothing = 1.5\n", "[emotion] smoothing: 1.5 is above the maximum"),
        ("[faces]\ndetect_hz = 0\n", "[faces] detect_hz: 0.0 is below the minimum"),
        ('[mqtt]\nurl = "http://x"\n', "[mqtt] url: broker URL must start with mqtt://"),
        ('[mqtt]\nprefix = "a/#"\n', "[mqtt] prefix"),
        ("faces = 3\n", "[faces] must be a table"),
    ],
)
def test_wrong_types_and_values_name_the_key(tmp_path, text, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfgmod.load(p)
    assert fragment in str(err.value)
    assert str(p) in str(err.value)


def test_bool_is_not_accepted_as_a_number(tmp_path):
    with pytest.raises(ConfigError, match="expected a number, got bool"):
        cfgmod.load(write(tmp_path, "[faces]\ndetect_hz = true\n"))


def test_integers_are_accepted_for_floats(tmp_path):
    cfg = cfgmod.load(write(tmp_path, "[faces]\ndetect_hz = 5\n"))
    assert cfg.faces.detect_hz == 5.0 and isinstance(cfg.faces.detect_hz, float)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        cfgmod.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        cfgmod.load(write(tmp_path, "[faces\n"))


def test_overrides_are_checked_like_file_values():
    cfg = cfgmod.with_overrides(cfgmod.load(None), "mqtt", url="mqtts://u:p%40ss@broker.local")
    b = cfgmod.parse_broker_url(cfg.mqtt.url)
    assert (b.host, b.port, b.tls, b.username, b.password) == ("broker.local", 8883, True, "u", "p@ss")
    assert "p@ss" not in b.redacted()
    with pytest.raises(ConfigError, match="command line"):
        cfgmod.with_overrides(cfg, "faces", detect_hz="x")
    with pytest.raises(ConfigError, match=r"^command line: \[mqtt\] url"):
        cfgmod.with_overrides(cfg, "mqtt", url="http://x")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mqtt://localhost", ("localhost", 1883, False)),
        ("mqtt://10.0.0.5:1884", ("10.0.0.5", 1884, False)),
        ("mqtts://hub.example", ("hub.example", 8883, True)),
    ],
)
def test_broker_urls(url, expected):
    b = cfgmod.parse_broker_url(url)
    assert (b.host, b.port, b.tls) == expected


def test_bad_broker_urls():
    for url in ("mqtt://", "mqtt://host:99999", "ws://host"):
        with pytest.raises(ConfigError):
            cfgmod.parse_broker_url(url)


def test_password_and_password_file_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="exclusive"):
        cfgmod.load(write(tmp_path, '[mqtt]\npassword = "a"\npassword_file = "/etc/x"\n'))


def test_digest_ignores_the_password_and_tracks_settings():
    a = cfgmod.load(None)
    b = cfgmod.with_overrides(a, "mqtt", password="secret")
    c = cfgmod.with_overrides(a, "faces", detect_hz=3.0)
    assert a.digest() == b.digest()
    assert a.digest() != c.digest()


def test_state_dir_prefers_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert cfgmod.default_state_dir() == tmp_path / "state"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert cfgmod.default_state_dir() == tmp_path / "xdg" / "emocast"


def test_the_example_config_lists_every_key_with_its_real_default():
    """systemd/emocast.toml is what operators copy: it must not drift from the code's defaults."""
    import dataclasses

    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    example = tomllib.loads(EXAMPLE.read_text())
    defaults = cfgmod.Config()
    for section in cfgmod.SECTIONS:
        table = example.get(section, {})
        for field in dataclasses.fields(getattr(defaults, section)):
            assert field.name in table, f"[{section}] {field.name} is missing from {EXAMPLE}"
            assert table[field.name] == getattr(getattr(defaults, section), field.name), \
                f"[{section}] {field.name} in {EXAMPLE} is not the default"
        assert set(table) <= {f.name for f in dataclasses.fields(getattr(defaults, section))}
