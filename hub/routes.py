"""The hub's REST API and pages as FastAPI routers, each route taking what it needs as a dependency:
a database connection of the request's own (``store``: opened for it, closed after it, never shared
with another request or thread) and the hub's settings (``HubState``).

Every page and script is served by the hub itself from ``hub/web/`` (no CDN: a school's network may
have no internet)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from emocast import __version__
from emocast.contract.events import PRESENT_STATES
from emocast.contract.palette import palette

from .feed import ChangeFeed
from .payloads import clean_text, video_name_problem
from .privacy import Privacy
from .store import Store
from .timeline import LOOKBACK_S, MAX_LECTURE_S, auto_bin_s, lecture_timeline

WEB = resources.files("emocast.hub").joinpath("web")
CSV_FIELDS = ["t", "start", "length_s", "faces", "face_time_s", *[f"{s}_share" for s in PRESENT_STATES],
              "absent_share", "blinks_per_min", "devices", "devices_withheld", "withheld"]
STATIC = {"app.js", "chart.js", "dom.js", "style.css", "favicon.svg"}
MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@dataclass
class HubState:
    """What the routes read of the running hub (``app.state.hub``)."""

    db_url: str
    token: str = ""
    ingest_stats: Callable[[], dict[str, Any]] | None = None
    default_bin_s: float = 0.0  # 0: sized to each lecture (timeline.auto_bin_s)
    max_bins: int = 5000
    privacy: Privacy = field(default_factory=Privacy)  # [privacy]
    video_dir: str = ""  # [web] video_dir
    feed: ChangeFeed = field(default_factory=ChangeFeed)  # what ingest commits, for live pages' streams
    started: float = field(default_factory=time.time)
    timelines: dict[tuple, tuple[float, dict[str, Any]]] = field(default_factory=dict)  # view -> (began, data)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def timeline_lock(self, lecture_id: str) -> threading.Lock:
        """The lock of one lecture's timeline computations."""
        with self._locks_guard:
            if len(self._locks) > 10_000:  # lectures come and go; their locks need not stay
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(lecture_id, threading.Lock())


def hub_state(request: Request) -> HubState:
    return request.app.state.hub


@contextlib.contextmanager
def connection(db_url: str) -> Iterator[Store]:
    """A connection of one request's (or one stream look's) own, closed after it (the schema was
    migrated at the hub's start)."""
    s = Store(db_url, migrate=False)
    try:
        yield s
    finally:
        with contextlib.suppress(Exception):  # a connection the database dropped may not close cleanly
            s.close()


def store(state: Annotated[HubState, Depends(hub_state)]) -> Iterator[Store]:
    """The request's own connection. FastAPI may run this and the endpoint on different worker
    threads; the connection is used by one of them at a time and belongs to no thread, so no other
    request can touch or close it."""
    with connection(state.db_url) as s:
        yield s


StoreDep = Annotated[Store, Depends(store)]
StateDep = Annotated[HubState, Depends(hub_state)]
BinS = Annotated[float | None, Query(ge=1, le=86400, description="bin length in seconds; default [web] "
                                                                  "default_bin_s, else sized to the lecture")]


EPOCH_MIN, EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000-01-01 .. 2100-01-01


def _printable(text: str) -> str:
    if not clean_text(text):
        raise ValueError("control characters, unpaired surrogates and bidirectional overrides are refused")
    return text


Printable = AfterValidator(_printable)
DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=128), Printable]
LECTURE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what create_lecture makes (12 hex digits), and room to spare


class LectureIn(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=200), Printable]
    devices: list[DeviceId] = Field(default_factory=list, max_length=500)
    start: float | None = Field(default=None, ge=EPOCH_MIN, le=EPOCH_MAX, description="epoch seconds; default now")
    end: float | None = Field(default=None, ge=EPOCH_MIN, le=EPOCH_MAX,
                              description="epoch seconds, for a lecture already over (imports)")
    video_offset_s: float = Field(default=0.0, ge=0, le=MAX_LECTURE_S,
                                  description="the lecture's start, in seconds of its video")
    video: Annotated[str, Printable] | None = Field(default=None, max_length=200, pattern=r"^[^/\\]+$",
                                                    description="the lecture video's file name in the hub's "
                                                                "[web] video_dir")


def lecture_or_404(s: Store, lecture_id: str) -> dict[str, Any]:
    """The lecture, or 404; an id that no lecture can have is 404 without asking the database."""
    if not LECTURE_ID.fullmatch(lecture_id):
        raise HTTPException(404, "no such lecture")
    lecture = s.lecture(lecture_id)
    if lecture is None:
        raise HTTPException(404, f"no lecture {lecture_id}")
    return lecture


status = APIRouter(prefix="/api", tags=["status"])


@status.get("/health")
def health(s: StoreDep, state: StateDep) -> JSONResponse:
    """``ok`` false, with ``problems`` naming why, when ingest is not doing its job (see
    ``Ingest.health``); 503 then, so a probe or the unit's watchdog needs no JSON to tell. A database
    that fails this very query answers 503 through the app's guard. ``warnings``: losses a restart
    cannot mend (``ok`` stays true: the hub itself is working)."""
    ingest = state.ingest_stats() if state.ingest_stats else None
    problems = list(ingest.get("problems", [])) if ingest else []
    warnings = list(ingest.get("warnings", [])) if ingest else []
    body = {"ok": not problems, "problems": problems, "warnings": warnings, "version": __version__,
            "database": s.dialect,
            "privacy": state.privacy.as_dict(),
            "schema_version": s.schema_version(), "ingest": ingest, "time": time.time()}
    return JSONResponse(body, status_code=503 if problems else 200)


@status.get("/devices")
def devices(s: StoreDep, state: StateDep) -> list[dict[str, Any]]:
    """Every device, as ``[privacy]`` lets it be shown (``Privacy.device``)."""
    return [state.privacy.device(d) for d in s.devices()]


@status.get("/rejects")
def rejects(s: StoreDep) -> list[dict[str, Any]]:
    return s.rejects()


lectures = APIRouter(prefix="/api/lectures", tags=["lectures"])
compare = APIRouter(prefix="/api", tags=["lectures"])
MAX_COMPARED = 8
TIMELINE_KEEP_S = 60.0  # a computed view is kept this long for the requests that waited for it


@compare.get("/compare")
def compare_lectures(s: StoreDep, state: StateDep, ids: Annotated[str, Query(max_length=400)],
                     bin_s: BinS = None) -> dict[str, Any]:
    """Several lectures on one time axis, the lecture video's (the same lesson taught to three
    classes, this week against last): each one's bins and moments, at one bin length (the longest
    lecture's automatic one unless asked)."""
    wanted = [i for i in ids.split(",") if i]
    if len(wanted) > MAX_COMPARED:
        raise HTTPException(422, f"ids: at most {MAX_COMPARED} lectures")
    if len(set(wanted)) < len(wanted):
        raise HTTPException(422, "ids: a lecture named twice")
    chosen = [lecture_or_404(s, i) for i in wanted]
    if not chosen:
        raise HTTPException(422, "ids: name one or more lectures, comma-separated")
    longest = max(chosen, key=lambda lec: (lec["end"] or time.time()) - lec["start"])
    bin_s = checked_bin_s(longest, bin_s, state)
    out = []
    for lec in chosen:
        data = shown_timeline(s, state, lec, bin_s)
        out.append({"lecture": lec, "bins": [{k: b.get(k) for k in ("t", "faces", "attentive_share", "withheld")}
                                             for b in data["bins"]], "moments": data["moments"]})
    return {"bin_s": bin_s, "lectures": out}


@lectures.get("")
def list_lectures(s: StoreDep) -> list[dict[str, Any]]:
    return s.lectures()


@lectures.post("", status_code=201)
def create_lecture(body: LectureIn, s: StoreDep) -> dict[str, Any]:
    now = time.time()
    start = body.start if body.start is not None else now
    if start > now + 86400:
        raise HTTPException(422, "start is more than a day ahead")
    if body.end is not None and body.end <= start:
        raise HTTPException(422, "end must be after start")
    if body.end is None and not body.devices:
        raise HTTPException(422, "devices: a live lecture needs the kiosks in its room (none would give it no data)")
    if body.end is not None and body.end - start > MAX_LECTURE_S:
        raise HTTPException(422, f"a lecture spans at most {MAX_LECTURE_S / 86400:g} days")
    problem = body.video is not None and video_name_problem(body.video)
    if problem:
        raise HTTPException(422, problem)
    return s.create_lecture(body.title, body.devices, start, body.video_offset_s, body.end, body.video)


def checked_bin_s(lecture: dict[str, Any], bin_s: float | None, state: HubState) -> float:
    """The bin asked for, else ``[web] default_bin_s``, else one sized to the lecture's length
    (``auto_bin_s``), when the lecture (a live one up to now) needs no more than ``[web] max_bins`` of
    them; else 422 naming the shortest bin that fits."""
    end = lecture["end"] if lecture["end"] is not None else max(lecture["start"], time.time())
    span = min(MAX_LECTURE_S, end - lecture["start"])
    bin_s = bin_s or state.default_bin_s or auto_bin_s(span)
    if span / bin_s > state.max_bins:
        shortest = math.ceil(span / state.max_bins)
        raise HTTPException(422, f"{span / bin_s:.0f} bins of {bin_s:g} s; at most {state.max_bins}: "
                                 f"ask for bin_s={shortest:g} or more")
    return bin_s


def shown_timeline(s: Store, state: HubState, lecture: dict[str, Any], bin_s: float | None,
                   per_device: bool = False) -> dict[str, Any]:
    """A lecture's timeline as the page, the exports and the comparison show it: at a bin length that
    fits ``[web] max_bins`` (``checked_bin_s``), up to now, as ``[privacy]`` allows. One computation per
    lecture at a time: a request that waited for another's computation shares its result when that
    began after the request arrived (so it is as fresh as asked), so a burst of pages costs at most two
    computations, not one each."""
    bin_s = checked_bin_s(lecture, bin_s, state)
    key = (lecture["id"], bin_s, per_device, lecture["end"])
    arrived = time.monotonic()
    with state.timeline_lock(lecture["id"]):
        cached = state.timelines.get(key)
        if cached is not None and cached[0] >= arrived:
            return cached[1]
        began = time.monotonic()
        data = lecture_timeline(s, lecture, bin_s, time.time(), per_device, state.privacy)
        state.timelines[key] = (began, data)
        for old in [k for k, (at, _) in state.timelines.items() if time.monotonic() - at >= TIMELINE_KEEP_S]:
            state.timelines.pop(old, None)
        return data


@lectures.get("/{lecture_id}")
def get_lecture(lecture_id: str, s: StoreDep) -> dict[str, Any]:
    return lecture_or_404(s, lecture_id)


@lectures.post("/{lecture_id}/stop")
def stop_lecture(lecture_id: str, s: StoreDep, state: StateDep) -> dict[str, Any]:
    lecture_or_404(s, lecture_id)
    lecture = s.stop_lecture(lecture_id)
    assert lecture is not None
    state.feed.end(lecture_id)  # its pages' streams say so at once
    return lecture


@lectures.get("/{lecture_id}/timeline")
def timeline(lecture_id: str, s: StoreDep, state: StateDep, bin_s: BinS = None,
             per_device: bool = False) -> dict[str, Any]:
    return shown_timeline(s, state, lecture_or_404(s, lecture_id), bin_s, per_device)


def _csv(value: Any) -> Any:
    return "" if value is None else value


@lectures.get("/{lecture_id}/video")
@lectures.head("/{lecture_id}/video", include_in_schema=False)  # a player asks for the size first
def video(lecture_id: str, s: StoreDep, state: StateDep) -> FileResponse:
    """The lecture's video from ``[web] video_dir`` (byte ranges served, so the page can seek): only a
    plain file name inside that folder, never a path out of it."""
    lecture = lecture_or_404(s, lecture_id)
    name = lecture.get("video")
    if not name or not state.video_dir:
        raise HTTPException(404, "no video for this lecture")
    folder = Path(state.video_dir).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        raise HTTPException(404, f"{name}: not in the hub's video folder")
    return FileResponse(path)


STREAM_CHECK_S = 0.5  # how often a live page's stream looks at what ingest committed (memory, no query)
STREAM_DB_CHECK_S = 10.0  # and asks the database (another writer; a lecture stopped elsewhere)
STREAM_MAX_S = 300.0  # then it ends, and the browser's EventSource reconnects (no stream outlives a stop)


@lectures.get("/{lecture_id}/stream")
async def stream(lecture_id: str, request: Request, state: StateDep) -> StreamingResponse:
    """Server-Sent Events for a live lecture's page: ``changed`` whenever an event of its devices is
    stored, ``ended`` when the lecture stops; the page fetches the timeline then (no polling). Told by
    this process's ingest (``feed``), checked against the database every ``STREAM_DB_CHECK_S``; at most
    ``[web] max_streams`` at once (503 past them: the browser retries)."""
    def first() -> dict[str, Any]:
        with connection(state.db_url) as s:
            return lecture_or_404(s, lecture_id)

    lecture = await run_in_threadpool(first)
    devices = lecture["devices"]

    def look() -> tuple[tuple[int, float], bool]:
        """(the devices' change mark, whether the lecture has ended), on a connection of its own."""
        with connection(state.db_url) as s:
            current = s.lecture(lecture_id)
            ended = current is None or current["end"] is not None
            return s.change_mark(devices, lecture["start"] - LOOKBACK_S), ended

    feed = state.feed
    if not feed.open():
        raise HTTPException(503, f"{feed.max_streams} live pages are open ([web] max_streams)",
                            headers={"Retry-After": "30"})

    async def events():
        try:
            fed, stored, next_look = feed.mark(devices), None, 0.0
            deadline = time.monotonic() + STREAM_MAX_S
            yield "retry: 3000\n\n"
            while time.monotonic() < deadline and not await request.is_disconnected():
                mark = feed.mark(devices)
                changed, ended, fed = mark != fed, feed.ended(lecture_id), mark
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + STREAM_DB_CHECK_S
                    try:
                        now, ended_here = await run_in_threadpool(look)
                    except Exception:  # the database: end this stream; the browser reconnects
                        return
                    changed, ended = changed or (stored is not None and now != stored), ended or ended_here
                    stored = now
                if ended:
                    yield "event: ended\ndata: {}\n\n"
                    return
                if changed:
                    yield f"event: changed\ndata: {json.dumps({'events': stored[0] if stored else 0})}\n\n"
                await asyncio.sleep(STREAM_CHECK_S)
        finally:
            feed.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@lectures.get("/{lecture_id}/export.csv", response_class=PlainTextResponse)
def export_csv(lecture_id: str, s: StoreDep, state: StateDep, bin_s: BinS = None) -> Response:
    data = shown_timeline(s, state, lecture_or_404(s, lecture_id), bin_s)
    labels = sorted({k for b in data["bins"] for k in b.get("emotion_shares", {})})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS + [f"emotion_{k}" for k in labels])
    for b in data["bins"]:
        writer.writerow([_csv(b.get(f)) for f in CSV_FIELDS] + [_csv(b["emotion_shares"].get(k)) for k in labels])
    name = f"emocast-lecture-{lecture_id}.csv"
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@lectures.get("/{lecture_id}/export.json")
def export_json(lecture_id: str, s: StoreDep, state: StateDep, bin_s: BinS = None) -> JSONResponse:
    data = shown_timeline(s, state, lecture_or_404(s, lecture_id), bin_s, per_device=True)
    return JSONResponse(data, headers={
        "Content-Disposition": f'attachment; filename="emocast-lecture-{lecture_id}.json"'})


pages = APIRouter(include_in_schema=False)


@pages.get("/")
@pages.get("/devices")
@pages.get("/compare")
@pages.get("/lectures/{lecture_id}")
def page(lecture_id: str | None = None) -> FileResponse:
    return FileResponse(str(WEB.joinpath("index.html")), media_type="text/html")


@pages.get("/static/palette.json")
def palette_file() -> JSONResponse:
    """The states' and emotions' colours, shared with ``emocast analyze --plot``."""
    return JSONResponse(palette())


@pages.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in STATIC:
        raise HTTPException(404)
    return FileResponse(str(WEB.joinpath(name)), media_type=MEDIA_TYPES[Path(name).suffix])


@pages.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask for it whatever the page says: the same icon, not a 404 in every console."""
    return FileResponse(str(WEB.joinpath("favicon.svg")), media_type="image/svg+xml")
