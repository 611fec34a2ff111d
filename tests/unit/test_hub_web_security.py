"""The hub's web side as a hostile page or client would try it: another site's Host name (DNS
rebinding), a change posted from another origin or as a plain form (CSRF), framing, huge bodies,
lectures dated 1970 or spanning years, timelines of millions of bins; and tokens that would switch
authentication off. The app runs for real (FastAPI's TestClient) on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from fastapi.testclient import TestClient  # noqa: E402

from emocast.core.settings import ConfigError  # noqa: E402
from emocast.hub import config as hubconfig  # noqa: E402
from tests.hub_support import (
    LOCAL,  # noqa: E402
    hub_app,  # noqa: E402
)


def test_only_the_hubs_own_host_names_are_served(tmp_path):
    app = hub_app(str(tmp_path / "hub.sqlite"), allowed_hosts="hub.school.lan")
    assert TestClient(app, base_url=LOCAL).get("/api/health").status_code == 200
    assert TestClient(app, base_url="http://hub.school.lan:8080").get("/").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example").get("/api/devices")
    assert rebound.status_code == 421 and "attacker.example" in rebound.text


def test_tokens_that_would_switch_authentication_off_are_refused(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"token_file .*empty: the file is empty"):
        hubconfig.load(None, {"web": {"listen": "10.0.0.5:8080", "token_file": str(empty)}})
    with pytest.raises(ConfigError, match=r"empty: the file is empty"):  # on loopback too: it was meant to guard
        hubconfig.load(None, {"web": {"token_file": str(empty)}})
    short = tmp_path / "short"
    short.write_text("x")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match=r"a token of 1 characters; use 16 or more"):
        hubconfig.load(None, {"web": {"listen": "10.0.0.5:8080", "token_file": str(short)}})
    with pytest.raises(ConfigError, match=r"\[web\] token: a token of 6 characters"):
        hubconfig.load(None, {"web": {"token": "s3cret"}})
    shared = tmp_path / "shared"
    shared.write_text("a-long-enough-token-0123")
    shared.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="emocast.hub.config"):
        hubconfig.load(None, {"web": {"listen": "10.0.0.5:8080", "token_file": str(shared)}})
    assert "readable by other users (mode 644)" in caplog.text
    with pytest.raises(ConfigError, match=r"takes any address: set \[web\] allowed_hosts"):
        hubconfig.load(None, {"web": {"listen": "0.0.0.0:8080", "token_file": str(shared)}})
    cfg = hubconfig.load(None, {"web": {"listen": "0.0.0.0:8080", "token_file": str(shared),
                                        "allowed_hosts": "hub.school.lan, 10.0.0.5"}})
    assert cfg.hosts() == {"127.0.0.1", "localhost", "::1", "hub.school.lan", "10.0.0.5"}


def test_a_token_is_compared_whole(tmp_path):
    app = TestClient(hub_app(str(tmp_path / "hub.sqlite"), token="a-long-enough-token-0123"), base_url=LOCAL)
    assert app.get("/api/health", headers={"Authorization": "Bearer a-long-enough-token-0123"}).status_code == 200
    for wrong in ("a", "a-long-enough-token-012", "a-long-enough-token-01234", ""):
        assert app.get("/api/health", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401


def test_a_lecture_video_is_a_file_name_in_the_video_folder_and_nothing_else(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.webm").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 2000)
    (tmp_path / "secret.txt").write_text("not for the web")
    client = TestClient(hub_app(str(tmp_path / "hub.sqlite"), video_dir=str(videos)), base_url=LOCAL)
    for bad in ("../secret.txt", "/etc/passwd", "..", ".hidden"):
        assert client.post("/api/lectures", json={"title": "t", "video": bad}).status_code == 422, bad
    ok = client.post("/api/lectures", json={"title": "t", "devices": ["k1"], "video": "a.webm"}).json()
    got = client.get(f"/api/lectures/{ok['id']}/video", headers={"Range": "bytes=0-99"})
    assert got.status_code == 206 and len(got.content) == 100  # ranges: the page can seek
    missing = client.post("/api/lectures", json={"title": "t", "devices": ["k1"], "video": "gone.webm"}).json()
    assert client.get(f"/api/lectures/{missing['id']}/video").status_code == 404
    none = client.post("/api/lectures", json={"title": "t", "devices": ["k1"]}).json()
    assert client.get(f"/api/lectures/{none['id']}/video").status_code == 404
