"""Monitor: sees plan sessions and derived states, indexes them, changes nothing."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["Monitor"]


class Monitor:
    """Pass as ``monitor=`` to ``plan_session`` / ``recompute_derived``.

    It records what it is shown: ``sessions`` (``SessionId`` -> session) and
    ``states`` (``SessionId`` -> the derived states computed from that plan,
    oldest first). Both are read-only views; sessions and states are immutable
    values, so there is nothing a monitor could annotate or feed back.
    """

    def __init__(self) -> None:
        self._sessions: dict[Any, Any] = {}
        self._states: dict[Any, tuple] = {}

    def observe_session(self, session: Any) -> None:
        self._sessions.setdefault(session.session_id, session)

    def observe_state(self, state: Any) -> None:
        sid = state.plan.session_id
        self._states[sid] = (*self._states.get(sid, ()), state)

    @property
    def sessions(self) -> MappingProxyType:
        return MappingProxyType(self._sessions)

    @property
    def states(self) -> MappingProxyType:
        return MappingProxyType(self._states)

    def __repr__(self) -> str:
        return f"Monitor(sessions={len(self._sessions)})"
