"""The hub's web application: FastAPI with the routers of ``routes.py`` (the OpenAPI document is served
at /openapi.json; FastAPI's /docs and /redoc pages are off, as they load their scripts from a CDN).

Listening beyond loopback requires a token (``[web] token_file``), checked on every request as a
Bearer token or as the password of HTTP Basic auth (so a browser simply asks), in constant time. Only
the configured host names are served, changes must come from the hub's own page, and every answer
carries a strict Content-Security-Policy. A request that fails on the database answers 503 (its
connection is its own and closed with it: the next request opens a fresh one); any other failure is
a 500 with its traceback in the log.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from emocast import __version__

from .config import HubConfig
from .feed import ChangeFeed
from .privacy import Privacy
from .routes import WEB, HubState, compare, lectures, pages, status
from .store import Store, database_error_types

log = logging.getLogger(__name__)


SECURITY_HEADERS = {
    # every script and style is the hub's own file; nothing inline, nothing framed, no other origin
    # (media from blob: the lecture video a teacher opens from their own computer, never uploaded)
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CHANGES = ("POST", "PUT", "PATCH", "DELETE")
MAX_BODY = 64 * 1024  # bytes of a request body: a lecture is a title and a few device ids


def create_app(cfg: HubConfig, ingest_stats: Callable[[], dict[str, Any]] | None = None,
               feed: ChangeFeed | None = None) -> FastAPI:
    """The hub's web side from its parsed config. ``ingest_stats``: the running ingest's health;
    ``feed``: what this process's ingest commits, for live pages' streams (one of its own without
    ingest: streams then learn of changes from the database alone)."""
    db_url, allowed_hosts = cfg.db_url(), cfg.hosts()
    app = FastAPI(title="emocast hub", version=__version__, docs_url=None, redoc_url=None,
                  description="Attention and emotion of a room, per lecture, from emocast kiosks' events.")
    Store(db_url).close()  # the schema migrated once, here: a request's connection never migrates
    state = app.state.hub = HubState(db_url, cfg.token(), ingest_stats, cfg.web.default_bin_s, cfg.web.max_bins,
                                     Privacy.of(cfg.privacy), cfg.web.video_dir, feed or ChangeFeed())
    database_errors = database_error_types()

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Refuse what a hostile page or client could send (``refusal``); then the token, when one is
        set; a request that fails on the database answers 503, one that fails otherwise 500 (a bug,
        logged with its traceback). Every answer carries the security headers."""
        response = refusal(request, allowed_hosts)
        if response is None and state.token and not authorised(request, state.token):
            response = Response("a token is required", status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="emocast hub"'})
        if response is None:
            try:
                response = await call_next(request)
            except database_errors as exc:  # the database, not the request: it may answer the next one
                log.warning("%s %s failed on the database: %s: %s", request.method, request.url.path[:200],
                            type(exc).__name__, exc)
                response = JSONResponse({"detail": f"the database failed: {type(exc).__name__}"}, status_code=503)
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path[:200])
                response = JSONResponse({"detail": "internal error (in the hub's log)"}, status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming where and why, without echoing the input back (it may be what could not be
        encoded: an unpaired surrogate)."""
        errors = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def not_found_page(request: Request, exc: StarletteHTTPException) -> Response:
        """A person who follows a wrong link gets the page (which says, in words, that there is no such
        page), not the API's JSON; API clients keep the JSON."""
        wants_page = not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")
        if exc.status_code == 404 and wants_page:
            return FileResponse(str(WEB.joinpath("index.html")), status_code=404, media_type="text/html")
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    for router in (status, lectures, compare, pages):
        app.include_router(router)
    return app


def host_name(value: str) -> str:
    """``host[:port]`` or ``[v6]:port`` as the bare lower-case host."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def refusal(request: Request, allowed_hosts: frozenset[str]) -> Response | None:
    """Why a request is refused before anything reads it, or None: a Host the hub is not reached by
    (DNS rebinding), a change from another origin or without a JSON body type (CSRF: a cross-site form
    cannot send one), a body over ``MAX_BODY`` or of unknown length."""
    host = host_name(request.headers.get("host", ""))
    if host not in allowed_hosts:
        return Response(f"host {host[:60]!r} is not served here ([web] allowed_hosts)", status_code=421)
    if request.method not in CHANGES:
        return None
    origin = request.headers.get("origin")
    if origin is not None and host_name(origin.partition("://")[2]) != host:
        return Response("a change from another origin is refused", status_code=403)
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return Response("a change from another site is refused", status_code=403)
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
        return Response("a change needs Content-Type: application/json", status_code=415)
    length = request.headers.get("content-length")
    if length is None and request.headers.get("transfer-encoding"):
        return Response("a body needs its Content-Length", status_code=411)
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return Response(f"a body of at most {MAX_BODY} bytes", status_code=413)
    return None


def authorised(request: Request, token: str) -> bool:
    """The request carries ``token`` as a Bearer token or as HTTP Basic's password (compared in
    constant time)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    expected = token.encode()
    if scheme.lower() == "bearer":  # compared as bytes: a header of any bytes is a wrong token, not an error
        return hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), expected)
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).partition(b":")
        except ValueError:
            return False
        return hmac.compare_digest(password, expected)
    return False
