"""The hub's web side as a hostile page or client would try it: another site's Host name (DNS
rebinding), a change posted from another origin or as a plain form (CSRF), framing, huge bodies,
lectures dated 1970 or spanning years, timelines of millions of bins; and tokens that would switch
authentication off. The app runs for real (FastAPI's TestClient) on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


from fastapi.testclient import TestClient  # noqa: E402

from tests.hub_support import LOCAL, hub_app  # noqa: E402

JSON = {"Content-Type": "application/json"}


def live_lecture(client) -> str:
    res = client.post("/api/lectures", json={"title": "Live", "devices": ["k1"]})
    assert res.status_code == 201, res.text
    return res.json()["id"]


@pytest.fixture
def client(db_url):
    return TestClient(hub_app(db_url, max_bins=5000), base_url=LOCAL)


def test_a_change_from_another_origin_or_as_a_form_is_refused(client):
    lid = live_lecture(client)
    stop = f"/api/lectures/{lid}/stop"
    assert client.post(stop, json={}, headers={"Origin": "http://attacker.example"}).status_code == 403
    assert client.post(stop, json={}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    form = client.post(stop, data={"x": "1"})  # what a cross-site <form> can send
    assert form.status_code == 415
    assert client.get(f"/api/lectures/{lid}").json()["live"] is True  # none of them stopped it
    same = client.post(stop, json={}, headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200 and same.json()["live"] is False


def test_every_answer_carries_the_security_headers(client):
    for res in (client.get("/"), client.get("/api/health"), client.get("/static/nope.js"),
                client.post("/api/lectures", content="x", headers={"Content-Type": "text/plain"})):
        csp = res.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert res.headers["x-frame-options"] == "DENY" and res.headers["x-content-type-options"] == "nosniff"


def test_bodies_titles_spans_and_bins_are_bounded(client):
    assert client.post("/api/lectures", json={"title": "x" * 201}).status_code == 422
    huge = client.post("/api/lectures", content=b'{"title": "' + b"x" * 70_000 + b'"}', headers=JSON)
    assert huge.status_code == 413
    assert client.post("/api/lectures", json={"title": "1970", "start": 0}).status_code == 422
    assert client.post("/api/lectures", json={"title": "t", "devices": ["d" * 129]}).status_code == 422
    many = [f"k{i}" for i in range(501)]
    assert client.post("/api/lectures", json={"title": "t", "devices": many}).status_code == 422
    now = time.time()
    years = client.post("/api/lectures", json={"title": "years", "start": now - 86400 * 800, "end": now})
    assert years.status_code == 422 and "at most 7 days" in years.text
    week = client.post("/api/lectures", json={"title": "week", "start": now - 86400 * 7, "end": now}).json()
    refused = client.get(f"/api/lectures/{week['id']}/timeline", params={"bin_s": 1})
    assert refused.status_code == 422 and "bin_s=121" in refused.text  # 604,800 s in at most 5000 bins
    t0 = time.perf_counter()
    fits = client.get(f"/api/lectures/{week['id']}/timeline", params={"bin_s": 121})
    assert fits.status_code == 200 and len(fits.json()["bins"]) <= 5000
    assert time.perf_counter() - t0 < 60  # a sweep over segments: seconds at most even on a slow machine
