"""The hub's web application: FastAPI with the routers of ``routes.py`` (the OpenAPI document is served
at /openapi.json; FastAPI's /docs and /redoc pages are off, as they load their scripts from a CDN).

Listening beyond loopback requires a token (``[web] token_file``), checked on every request as a
Bearer token or as the password of HTTP Basic auth (so a browser simply asks). A request that fails
on the database answers 503 and makes every worker reconnect.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from emocast import __version__

from .routes import HubState, StorePool, lectures, pages, status

log = logging.getLogger(__name__)


def create_app(db_url: str, token: str = "", ingest_stats: Callable[[], dict[str, Any]] | None = None,
               default_bin_s: float = 60.0) -> FastAPI:
    app = FastAPI(title="emocast hub", version=__version__, docs_url=None, redoc_url=None,
                  description="Attention and emotion of a room, per lecture, from emocast kiosks' events.")
    state = app.state.hub = HubState(StorePool(db_url), token, ingest_stats, default_bin_s)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """The token, when one is set; and a request that fails on the database answers 503, with
        the workers' connections dropped so the next requests reconnect (a restarted PostgreSQL
        closes them for good)."""
        if state.token and not authorised(request, state.token):
            return Response("a token is required", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="emocast hub"'})
        try:
            return await call_next(request)
        except Exception as exc:  # sqlite3.Error, psycopg.Error: the database, not the request
            state.stores.reset()
            log.warning("%s %s failed on the database: %s: %s", request.method, request.url.path,
                        type(exc).__name__, exc)
            return JSONResponse({"detail": f"the database failed: {type(exc).__name__}"}, status_code=503)

    for router in (status, lectures, pages):
        app.include_router(router)
    return app


def authorised(request: Request, token: str) -> bool:
    """The request carries ``token`` as a Bearer token or as HTTP Basic's password (compared in
    constant time)."""
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
