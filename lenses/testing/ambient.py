"""Ambient inputs a lens may not read: two pinned worlds that differ in clock, seed, TZ and environment.

``_ambient(0, lens)`` pins the clock (``time``, ``datetime``), the ``random``
seed and the environment; ``_ambient(1, lens)`` pins them to other values.
Two runs in world 0 are comparable (a difference is nondeterminism); a
difference between worlds 0 and 1 breaks ``no-ambient-inputs``.
"""

from __future__ import annotations

import datetime
import os
import random
import secrets
import time
from collections.abc import MutableMapping
from contextlib import contextmanager
from typing import Any

from ..lens import Lens

_REAL = {
    "time": time.time,
    "time_ns": time.time_ns,
    "localtime": time.localtime,
    "gmtime": time.gmtime,
    "ctime": time.ctime,
    "asctime": time.asctime,
    "strftime": time.strftime,
    "datetime": datetime.datetime,
    "date": datetime.date,
}


_CLOCKS = (1_700_000_000.25, 1_734_567_890.75)  # 2023-11-14 and 2024-12-19, at other times of day


_SEEDS = (0, 987_654_321)


_EXTRA_ENV = f"DRAFTLENS_CHECK_{secrets.token_hex(4).upper()}"


_now = [_CLOCKS[0]]


class _DelegatingMeta(type):
    """Keeps ``isinstance(real_datetime, datetime.datetime)`` true while the class is pinned."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__mro__[1])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__mro__[1])


class _PinnedDatetime(datetime.datetime, metaclass=_DelegatingMeta):
    @classmethod
    def now(cls, tz=None):
        return _REAL["datetime"].fromtimestamp(_now[0], tz)

    @classmethod
    def today(cls):
        return _REAL["datetime"].fromtimestamp(_now[0])

    @classmethod
    def utcnow(cls):
        return _REAL["datetime"].fromtimestamp(_now[0], datetime.UTC).replace(tzinfo=None)


class _PinnedDate(datetime.date, metaclass=_DelegatingMeta):
    @classmethod
    def today(cls):
        return _REAL["date"].fromtimestamp(_now[0])


def _pinned_time_functions() -> dict[str, Any]:
    def with_now(real):
        return lambda t=None: real(_now[0] if t is None else t)

    return {
        "time": lambda: _now[0],
        "time_ns": lambda: int(_now[0] * 1_000_000_000),
        "localtime": with_now(_REAL["localtime"]),
        "gmtime": with_now(_REAL["gmtime"]),
        "ctime": with_now(_REAL["ctime"]),
        "asctime": lambda t=None: _REAL["asctime"](_REAL["localtime"](_now[0]) if t is None else t),
        "strftime": lambda fmt, t=None: _REAL["strftime"](fmt, _REAL["localtime"](_now[0]) if t is None else t),
    }


_PINNED = _pinned_time_functions()


def _other_tz() -> str:
    return "DLW+11" if os.environ.get("TZ") == "DLT-13:45" else "DLT-13:45"


@contextmanager
def _ambient(which: int, lens: Lens):
    """Run with ambient world ``which``: 0 is pinned, 1 differs in clock, seed, TZ and environment.

    Both are pinned (not left as they are) so that two runs in world 0 are
    comparable: a difference between them is nondeterminism, a difference
    between worlds 0 and 1 is an ambient input. Names the lens's module
    bound itself (``from time import time``) are pinned too.
    """
    _now[0] = _CLOCKS[which]
    random_state = random.getstate()
    random.seed(_SEEDS[which])
    saved: list[tuple[Any, str, Any]] = []

    def put(owner: Any, name: str, value: Any) -> None:
        if isinstance(owner, MutableMapping):
            saved.append((owner, name, owner.get(name, _MISSING)))
            owner[name] = value
        else:
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

    fn_globals = getattr(lens.fn, "__globals__", {})
    real_by_id = {id(v): k for k, v in _REAL.items()}
    env = {_EXTRA_ENV: "1", "TZ": _other_tz()} if which else {}
    try:
        for name, value in _PINNED.items():
            put(time, name, value)
        put(datetime, "datetime", _PinnedDatetime)
        put(datetime, "date", _PinnedDate)
        for name, value in list(fn_globals.items()):
            real = real_by_id.get(id(value))
            if real is not None and value is _REAL[real]:
                put(fn_globals, name, _PINNED.get(real) or {"datetime": _PinnedDatetime, "date": _PinnedDate}[real])
        for name, value in env.items():
            put(os.environ, name, value)
        if env and hasattr(time, "tzset"):
            time.tzset()
        yield
    finally:
        for owner, name, value in reversed(saved):
            if isinstance(owner, MutableMapping):
                if value is _MISSING:
                    owner.pop(name, None)
                else:
                    owner[name] = value
            else:
                setattr(owner, name, value)
        if env and hasattr(time, "tzset"):
            time.tzset()
        random.setstate(random_state)


_MISSING = object()
