"""The HTTP door to work sessions: a thin FastAPI layer over ``SessionManager``.

Optional extra ``http`` (``pip install -e ".[http]"``: FastAPI, uvicorn).
Nothing is decided here: every rule (one active session per user, who may
end what, which ids are safe) is the manager's, and this module only maps
its answers to HTTP, as seed 001 (A3CP session_manager) locks them:

- ``ActiveSessionExists`` (start while one is active): 409
- ``SessionAlreadyClosed`` (ending a closed session): 409 (the seed's older table said 400)
- ``SessionDamaged`` (the user's active journal is damaged): 409
- ``SessionNotFound``: 404; ``SessionUserMismatch``: 403
- 400, not FastAPI's default 422: a malformed body, an unknown field, a
  client-supplied ``timestamp`` / ``source`` / ``record_id``, a missing or
  empty ``performer_id``, ids that could escape the root
  (``InvalidSessionArgument``)
- a journal the server cannot read (``JournalError``): 500

A refused request records nothing. Routes:

- ``POST /session_manager/sessions.start`` ``{user_id, performer_id}`` → the start event
- ``POST /session_manager/sessions.end`` ``{user_id, session_id, performer_id}`` → the end
  event (``performer_id="system"`` is a system closure)
- ``GET /session_manager/users/{user_id}/sessions`` → the user's sessions, damaged ones included
- ``GET /session_manager/users/{user_id}/sessions/{session_id}`` → that session's records

Several server processes may share one root (``draftlens serve --workers N``):
the manager's on-disk lock keeps one active session per user among them.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import attrs
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from drafts.errors import (
    ActiveSessionExists,
    InvalidSessionArgument,
    JournalError,
    SessionAlreadyClosed,
    SessionDamaged,
    SessionError,
    SessionInUse,
    SessionNotFound,
    SessionUserMismatch,
)
from drafts.sessions import SessionEvent, SessionInfo, SessionManager

__all__ = ["ROOT_ENV", "STATUS_OF", "SessionEndInput", "SessionEventOutput", "SessionStartInput", "app_from_env",
           "create_app"]

ROOT_ENV = "DRAFTLENS_ROOT"

# Most specific first: the first matching class decides.
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (SessionNotFound, 404),
    (SessionUserMismatch, 403),
    (ActiveSessionExists, 409),
    (SessionAlreadyClosed, 409),
    (SessionDamaged, 409),
    (SessionInUse, 409),
    (InvalidSessionArgument, 400),
    (SessionError, 400),
    (JournalError, 500),
)

# Fields only the server may set: naming them in a request is refused with this reason.
_SERVER_FIELDS = {
    "timestamp": "timestamp is made by the server (UTC, ms, Z); a client may not supply it",
    "source": "source is always 'session_manager', set by the server; a client may not supply it",
    "record_id": "record_id is made by the server (a fresh UUIDv4); a client may not supply it",
    "event": "event is set by the route (sessions.start / sessions.end); a client may not supply it",
}


class SessionStartInput(BaseModel):
    """Body of ``sessions.start``; any other field is refused (400)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: str
    performer_id: str


class SessionEndInput(BaseModel):
    """Body of ``sessions.end``; any other field is refused (400)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: str
    session_id: str
    performer_id: str


class SessionEventOutput(BaseModel):
    """A session boundary event as returned: mirrors ``drafts.sessions.SessionEvent``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: Literal["session_manager"]
    event: Literal["start", "end"]
    user_id: str
    session_id: str
    timestamp: str
    record_id: str
    performer_id: str

    @classmethod
    def of(cls, event: SessionEvent) -> SessionEventOutput:
        return cls.model_validate(attrs.asdict(event))


class SessionDamage(BaseModel):
    line: int | None
    problem: str


class SessionSummary(BaseModel):
    session_id: str
    status: Literal["active", "closed", "damaged"]
    closed: bool
    started: SessionEventOutput | None
    ended: SessionEventOutput | None
    damage: SessionDamage | None

    @classmethod
    def of(cls, info: SessionInfo) -> SessionSummary:
        damage = None
        if info.damage is not None:
            damage = SessionDamage(line=info.damage_line, problem=getattr(info.damage, "problem", str(info.damage)))
        return cls(session_id=info.session_id, status=info.status, closed=info.closed,
                   started=SessionEventOutput.of(info.started) if info.started else None,
                   ended=SessionEventOutput.of(info.ended) if info.ended else None, damage=damage)


class SessionRecords(BaseModel):
    user_id: str
    session_id: str
    records: list[dict[str, Any]]
    torn_tail: bool


def _problem(status: int, error: str, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "detail": detail})


def _validation_detail(exc: RequestValidationError) -> list[str]:
    details = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = location[-1] if location else ""
        if error.get("type") == "extra_forbidden" and field in _SERVER_FIELDS:
            details.append(_SERVER_FIELDS[field])
        elif error.get("type") == "extra_forbidden":
            details.append(f"unknown field {field!r}")
        elif error.get("type") == "json_invalid":
            details.append(f"the body is not valid JSON: {error.get('ctx', {}).get('error', error.get('msg'))} "
                           f"at character {location[0] if location else '?'}")
        elif error.get("type") == "missing":
            details.append(f"{field} is required")
        else:
            details.append(f"{'.'.join(location) or 'body'}: {error.get('msg')}")
    return details


def create_app(root: str | os.PathLike) -> FastAPI:
    """The FastAPI app serving the work sessions under ``root`` (see the module docstring)."""
    manager = SessionManager(root)
    app = FastAPI(title="draftlens session manager", version="1")
    app.state.manager = manager

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(400, "invalid request", _validation_detail(exc))

    @app.exception_handler(SessionError)
    @app.exception_handler(JournalError)
    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        for kind, status in STATUS_OF:
            if isinstance(exc, kind):
                return _problem(status, type(exc).__name__, str(exc))
        raise exc  # pragma: no cover - STATUS_OF ends with both roots

    @app.post("/session_manager/sessions.start", response_model=SessionEventOutput)
    def start(body: SessionStartInput) -> SessionEventOutput:
        return SessionEventOutput.of(manager.start(body.user_id, body.performer_id))

    @app.post("/session_manager/sessions.end", response_model=SessionEventOutput)
    def end(body: SessionEndInput) -> SessionEventOutput:
        return SessionEventOutput.of(manager.end(body.user_id, body.session_id, body.performer_id))

    @app.get("/session_manager/users/{user_id}/sessions", response_model=list[SessionSummary])
    def sessions(user_id: str) -> list[SessionSummary]:
        return [SessionSummary.of(info) for info in manager.sessions(user_id)]

    @app.get("/session_manager/users/{user_id}/sessions/{session_id}", response_model=SessionRecords)
    def session(user_id: str, session_id: str) -> SessionRecords:
        readout = manager.read(user_id, session_id)  # SessionNotFound (404) or SessionUserMismatch (403)
        return SessionRecords(user_id=user_id, session_id=session_id, records=list(readout.records),
                              torn_tail=readout.torn_tail)

    return app


def app_from_env() -> FastAPI:
    """``create_app`` of the root named by ``$DRAFTLENS_ROOT``: the factory each
    ``draftlens serve --workers N`` process imports."""
    root = os.environ.get(ROOT_ENV)
    if not root:
        raise RuntimeError(f"set {ROOT_ENV} to the journal root (draftlens serve does)")
    return create_app(root)
