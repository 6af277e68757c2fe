"""Ambient inputs a lens may not read: two pinned worlds that differ in everything around the call.

``_ambient(0, lens)`` pins the clock (``time``, ``datetime``) and the
``random`` seed, and leaves the environment and working directory as they
are; ``_ambient(1, lens)`` pins the clock and seed to other values and runs
the call in another world: another ``TZ``, a fresh empty working directory
(``os.getcwd()``, ``PWD``, relative paths), and a changed copy of the whole
environment — every variable gets another value, and ``HOME``, ``USER``,
``LOGNAME``, ``LANG``, ``LC_ALL`` and one random ``DRAFTLENS_CHECK_*`` are set
if they were not. Left as they are, so that a lens can still import and run
programs (FFmpeg): ``PATH`` and the variables of the loader, the Python
interpreter, virtual environments, temporary folders and imageio-ffmpeg
(``_KEPT_ENV``); relative ``sys.path`` entries are made absolute for the call,
so imports resolve as before the working directory changed.

Two runs in world 0 are comparable (a difference is nondeterminism); a
difference between worlds 0 and 1 breaks ``no-ambient-inputs``.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import secrets
import sys
import tempfile
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


_KEPT_ENV = re.compile(
    r"PATH|PATHEXT|PYTHON\w*|VIRTUAL_ENV|CONDA_\w+|LD_\w+|DYLD_\w+|SYSTEMROOT|SYSTEMDRIVE|COMSPEC|WINDIR"
    r"|TMPDIR|TEMP|TMP|IMAGEIO_\w+",
    re.IGNORECASE,
)
"""Environment variables world 1 leaves as they are: what imports, the loader and programs need."""


_SET_ENV = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL")
"""Set in world 1 when they are not in the environment (a lens reading them with a default must see a change)."""


_CHANGED = "draftlens-check"


def _changed_environment(cwd: str) -> dict[str, str]:
    """World 1's environment: every variable but ``_KEPT_ENV`` changed, ``_SET_ENV`` added, ``PWD`` = ``cwd``."""
    env = {}
    for name, value in os.environ.items():
        env[name] = value if _KEPT_ENV.fullmatch(name) else f"{value}-{_CHANGED}" if value else _CHANGED
    for name in _SET_ENV:
        env.setdefault(name, _CHANGED)
    env[_EXTRA_ENV] = "1"
    env["TZ"] = _other_tz()
    env["PWD"] = cwd
    return env


def _world_difference() -> str:
    """What world 1 changes, for ``no-ambient-inputs`` messages."""
    return (f"TZ={_other_tz()!r}, a fresh working directory, and every environment variable (HOME, USER, LANG, "
            "PWD, ...; all but PATH and those of the loader, Python and temporary folders) changed or added")


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
    """Run with ambient world ``which``: 0 is pinned, 1 differs in clock, seed, TZ, environment and cwd.

    Both pin the clock and seed (not left as they are) so that two runs in
    world 0 are comparable: a difference between them is nondeterminism, a
    difference between worlds 0 and 1 is an ambient input. Names the lens's
    module bound itself (``from time import time``) are pinned too. World 1
    restores the environment, the working directory and ``sys.path`` on the
    way out, whatever the lens did to them.
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
    try:
        for name, value in _PINNED.items():
            put(time, name, value)
        put(datetime, "datetime", _PinnedDatetime)
        put(datetime, "date", _PinnedDate)
        for name, value in list(fn_globals.items()):
            real = real_by_id.get(id(value))
            if real is not None and value is _REAL[real]:
                put(fn_globals, name, _PINNED.get(real) or {"datetime": _PinnedDatetime, "date": _PinnedDate}[real])
        if which:
            with _elsewhere():
                yield
        else:
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
        random.setstate(random_state)


@contextmanager
def _elsewhere():
    """World 1's surroundings: a fresh empty working directory and a changed environment (then restored)."""
    cwd = os.getcwd()
    env = dict(os.environ)
    path = list(sys.path)
    with tempfile.TemporaryDirectory(prefix="draftlens-check-cwd-") as elsewhere:
        try:
            sys.path[:] = [os.path.abspath(p or os.curdir) if not os.path.isabs(p or os.curdir) else p for p in path]
            _replace_environment(_changed_environment(elsewhere))
            os.chdir(elsewhere)
            if hasattr(time, "tzset"):
                time.tzset()
            yield
        finally:
            os.chdir(cwd)
            _replace_environment(env)
            sys.path[:] = path
            if hasattr(time, "tzset"):
                time.tzset()


def _replace_environment(env: dict[str, str]) -> None:
    """Make ``os.environ`` (and so the C environment, subprocesses) exactly ``env``."""
    for name in [n for n in os.environ if n not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


_MISSING = object()
