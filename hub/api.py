"""The hub's REST API and its web pages (FastAPI: the OpenAPI document is served at /openapi.json;
FastAPI's /docs and /redoc pages are off, as they load their scripts from a CDN).

Every page and script is served by the hub itself from ``hub/web/`` (no CDN: a school's network may
have no internet). Listening beyond loopback requires a token (``[web] token_file``), checked on
every request as a Bearer token or as the password of HTTP Basic auth (so a browser simply asks).
Each worker thread keeps its own database connection; ingest writes through another.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hmac
import io
import logging
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from emocast import __version__

from .store import Store
from .timeline import PRESENT_STATES, lecture_timeline

log = logging.getLogger(__name__)
WEB = resources.files("emocast.hub").joinpath("web")
CSV_FIELDS = ["t", "start", "length_s", "faces", "face_time_s", *[f"{s}_share" for s in PRESENT_STATES],
              "absent_share", "blinks_per_min", "devices"]


class LectureIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    devices: list[str] = Field(default_factory=list)
    start: float | None = Field(default=None, description="epoch seconds; default now")
    end: float | None = Field(default=None, description="epoch seconds, for a lecture already over (imports)")
    video_offset_s: float = Field(default=0.0, ge=0, description="the lecture's start, in seconds of its video")


def create_app(db_url: str, token: str = "", ingest_stats: Callable[[], dict[str, Any]] | None = None,
               default_bin_s: float = 60.0) -> FastAPI:
    app = FastAPI(title="emocast hub", version=__version__, docs_url=None, redoc_url=None,
                  description="Attention and emotion of a room, per lecture, from emocast kiosks' events.")
    local = threading.local()
    generation = [0]  # bumped when a request fails on the database: every worker reconnects

    def store() -> Store:
        s = getattr(local, "store", None)
        if s is None or getattr(local, "generation", None) != generation[0]:
            if s is not None:
                with contextlib.suppress(Exception):  # a broken connection may not close cleanly
                    s.close()
            s = local.store = Store(db_url)
            local.generation = generation[0]
        return s

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """The token, when one is set; and a request that fails on the database answers 503, with
        the workers' connections dropped so the next requests reconnect (a restarted PostgreSQL
        closes them for good)."""
        if token and not _authorised(request, token):
            return Response("a token is required", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="emocast hub"'})
        try:
            return await call_next(request)
        except Exception as exc:  # sqlite3.Error, psycopg.Error: the database, not the request
            generation[0] += 1
            log.warning("%s %s failed on the database: %s: %s", request.method, request.url.path,
                        type(exc).__name__, exc)
            return JSONResponse({"detail": f"the database failed: {type(exc).__name__}"}, status_code=503)

    # -- API --------------------------------------------------------------------------------------
    @app.get("/api/health")
    def health() -> dict[str, Any]:
        s = store()
        return {"ok": True, "version": __version__, "database": s.dialect, "schema_version": s.schema_version(),
                "ingest": ingest_stats() if ingest_stats else None, "time": time.time()}

    @app.get("/api/devices")
    def devices() -> list[dict[str, Any]]:
        return store().devices()

    @app.get("/api/rejects")
    def rejects() -> list[dict[str, Any]]:
        return store().rejects()

    @app.get("/api/lectures")
    def lectures() -> list[dict[str, Any]]:
        return store().lectures()

    @app.post("/api/lectures", status_code=201)
    def create_lecture(body: LectureIn) -> dict[str, Any]:
        if body.end is not None and body.start is not None and body.end <= body.start:
            raise HTTPException(422, "end must be after start")
        return store().create_lecture(body.title, body.devices, body.start, body.video_offset_s, body.end)

    @app.get("/api/lectures/{lecture_id}")
    def get_lecture(lecture_id: str) -> dict[str, Any]:
        return _lecture_or_404(store(), lecture_id)

    @app.post("/api/lectures/{lecture_id}/stop")
    def stop_lecture(lecture_id: str) -> dict[str, Any]:
        _lecture_or_404(store(), lecture_id)
        lecture = store().stop_lecture(lecture_id)
        assert lecture is not None
        return lecture

    @app.get("/api/lectures/{lecture_id}/timeline")
    def timeline(lecture_id: str, bin_s: float = Query(default_bin_s, ge=1, le=86400),
                 per_device: bool = False) -> dict[str, Any]:
        s = store()
        return lecture_timeline(s, _lecture_or_404(s, lecture_id), bin_s, time.time(), per_device)

    @app.get("/api/lectures/{lecture_id}/export.csv", response_class=PlainTextResponse)
    def export_csv(lecture_id: str, bin_s: float = Query(default_bin_s, ge=1, le=86400)) -> Response:
        s = store()
        lecture = _lecture_or_404(s, lecture_id)
        data = lecture_timeline(s, lecture, bin_s, time.time())
        labels = sorted({k for b in data["bins"] for k in b["emotion_shares"]})
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_FIELDS + [f"emotion_{k}" for k in labels])
        for b in data["bins"]:
            writer.writerow([_csv(b[f]) for f in CSV_FIELDS] + [_csv(b["emotion_shares"].get(k)) for k in labels])
        name = f"emocast-lecture-{lecture_id}.csv"
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/lectures/{lecture_id}/export.json")
    def export_json(lecture_id: str, bin_s: float = Query(default_bin_s, ge=1, le=86400)) -> JSONResponse:
        s = store()
        data = lecture_timeline(s, _lecture_or_404(s, lecture_id), bin_s, time.time(), per_device=True)
        return JSONResponse(data, headers={
            "Content-Disposition": f'attachment; filename="emocast-lecture-{lecture_id}.json"'})

    # -- pages ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    @app.get("/lectures/{lecture_id}", include_in_schema=False)
    def page(lecture_id: str | None = None) -> FileResponse:
        return FileResponse(str(WEB.joinpath("index.html")), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in {"app.js", "chart.js", "style.css"}:
            raise HTTPException(404)
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(str(WEB.joinpath(name)), media_type=media)

    return app


def _lecture_or_404(s: Store, lecture_id: str) -> dict[str, Any]:
    lecture = s.lecture(lecture_id)
    if lecture is None:
        raise HTTPException(404, f"no lecture {lecture_id}")
    return lecture


def _csv(value: Any) -> Any:
    return "" if value is None else value


def _authorised(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip(), token)
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password, token)
    return False
