"""Workspace: the REPL-facing, reactive holder of the latest store.

Every change makes a new store version, recomputes incrementally (one Memo for
the workspace's life) and tells subscribers. Earlier versions stay available:
``undo`` / ``redo`` move between them. Params are checked eagerly here (a bad
one raises), unlike ``recompute_derived`` which turns it into a warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from drafts import Draft, Store, make_draft, pack_drafts
from drafts.history import History, Version, change_label
from drafts.journal import replay_history, store_event
from drafts.sessions import SessionManager
from drafts.store import freeze_params
from lenses import default_registry
from lenses.errors import ParamsError
from lenses.params import resolve_params
from lenses.registry import Registry

from .caps import Caps
from .memo import Memo
from .recompute import recompute_derived
from .sessionlenses import origin_fields
from .state import DerivedState

__all__ = ["Workspace", "Version"]

CACHE_NAME = "cache.sqlite"


class Workspace:
    """Holds the latest store; every change recomputes and notifies.

    >>> ws = Workspace()
    >>> words = ws.pack([{"text": "a"}, {"text": "b"}])
    >>> ws.apply("up", "text.upper", words)
    >>> [d.payload["text"] for d in ws.derived.outputs("up")]
    ['A', 'B']
    >>> ws.undo(); list(ws.store.lens_instances)
    []
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        registry: Registry | None = None,
        caps: Caps | None = None,
        executor: Any = None,
        recorder: Any = None,
        history: History | None = None,
        memo: Memo | None = None,
    ):
        self.registry = registry or default_registry
        self.caps = caps or Caps()
        self.executor = executor
        self._memo = memo if memo is not None else Memo()
        self._fingerprints = None  # the durable source-fingerprint cache this workspace installed, if any
        self._owns_memo = False  # close() closes only a memo the workspace opened itself
        self._recorder = recorder
        self._history = history or History(store)
        self._subscribers: list[Callable[[DerivedState], None]] = []
        self._closed = False
        self._derived = self._recompute()

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        user_id: str,
        performer_id: str,
        **options: Any,
    ) -> Workspace:
        """A journaled workspace: resumes the user's active session, or starts one.

        Every change is appended to ``<root>/users/<user_id>/sessions/<id>.jsonl``
        (and fsync'd) before it takes effect; ``close()`` ends the session.
        Evaluations are cached in ``<root>/users/<user_id>/cache.sqlite``
        (``Memo.open``; pass ``memo=`` to choose another), so a resumed
        session runs only what changed.
        """
        manager = SessionManager(root)
        session_id = manager.active_session(user_id)
        if session_id is None:
            session_id = manager.start(user_id, performer_id).session_id
            history = History()
        else:
            history = replay_history(manager.journal(user_id, session_id))
        journal = _SessionJournal(manager, user_id, session_id, performer_id)
        owned = "memo" not in options
        if owned:  # the user's evaluation cache: a resumed session reuses verified work
            options["memo"] = Memo.open(os.path.join(os.fspath(root), "users", user_id, CACHE_NAME))
        try:
            workspace = cls(recorder=journal, history=history, **options)
        except BaseException:
            if owned:
                options["memo"].close()
            raise
        workspace._owns_memo = owned
        workspace._fingerprints = _install_fingerprints(options["memo"])
        return workspace

    @property
    def session_id(self) -> str | None:
        """The journaled session this workspace writes to (None in memory)."""
        return getattr(self._recorder, "session_id", None)

    # -- reading -------------------------------------------------------------------
    @property
    def store(self) -> Store:
        return self._history.current.store

    @property
    def derived(self) -> DerivedState:
        return self._derived

    @property
    def history(self) -> tuple[Version, ...]:
        """Every version so far (those after an undo stay until the next change)."""
        return self._history.versions

    @property
    def version(self) -> int:
        return self._history.current.number

    def subscribe(self, callback: Callable[[DerivedState], None]) -> Callable[[], None]:
        """Call ``callback(derived_state)`` after every change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- changes ------------------------------------------------------------------------
    def add(self, payload: Any, meta: Mapping[str, Any] | None = None) -> Draft:
        """Make a draft, add it to the store and return it."""
        draft = make_draft(payload, meta)
        self._change(self.store.add_draft(draft), "add_draft", {"draft": draft})
        return draft

    def pack(self, frames: Iterable[Any], meta: Mapping[str, Any] | None = None) -> Draft:
        """Pack frames into a packDrafts carrier, add it and return it."""
        carrier = pack_drafts(list(frames), meta)
        self._change(self.store.add_draft(carrier), "add_draft", {"draft": carrier})
        return carrier

    def apply(self, instance_id: str, lens_id: str, input: Any, params: Any = None) -> None:  # noqa: A002
        """Add a lens instance; unknown lens and bad params raise here and change nothing."""
        self._check_params(lens_id, params, instance_id)
        source = input.id if isinstance(input, Draft) else input
        store = self.store.add_lens_instance(instance_id, lens_id, source, params)
        frozen = store.lens_instances[instance_id].params
        # A lens of the user's own: the journal says which module, so `sessions replay` can import it.
        origin = origin_fields(self.registry, lens_id) if self._recorder is not None else {}
        self._change(store, "add_lens_instance",
                     {"instance_id": instance_id, "lens_id": lens_id, "input": source, "params": frozen, **origin})

    def set_params(self, instance_id: str, params: Any) -> None:
        instance = self.store.lens_instances.get(instance_id)
        if instance is not None:
            self._check_params(instance.lens_id, params, instance_id)
        store = self.store.set_params(instance_id, params)
        frozen = store.lens_instances[instance_id].params
        self._change(store, "set_params", {"instance_id": instance_id, "params": frozen})

    def remove(self, instance_id: str) -> None:
        """Remove a lens instance (one no other instance reads)."""
        store = self.store.remove_lens_instance(instance_id)
        self._change(store, "remove_lens_instance", {"instance_id": instance_id})

    def undo(self) -> None:
        self._move(self._history.undo_target(), "undo")

    def redo(self) -> None:
        self._move(self._history.redo_target(), "redo")

    def close(self) -> None:
        """End the workspace (and its journaled session, if any). Further changes raise."""
        if self._closed:
            return
        if self._recorder is not None:
            self._recorder.close()
        if self._fingerprints is not None:
            from drafts.media import use_fingerprint_cache

            use_fingerprint_cache(None)
        if self._owns_memo:
            self._memo.close()
        self._closed = True

    # -- machinery -----------------------------------------------------------------------
    def _check_params(self, lens_id: str, params: Any, instance_id: str) -> None:
        """The engine's own check (``lenses.params.resolve_params``), raised here instead of warned."""
        lens = self.registry.get(lens_id)
        try:
            resolve_params(lens, freeze_params(params, f"instance {instance_id!r}"))
        except ParamsError as exc:
            raise ParamsError(f"instance {instance_id!r}: {exc}", lens_id=exc.lens_id, path=exc.path,
                              problem=exc.problem) from None

    def _change(self, store: Store, op: str, fields: dict) -> None:
        self._guard()
        if store is self.store:
            return
        if self._recorder is not None:
            self._recorder.record(op, fields)  # journal first: state changes only after the append succeeded
        self._history.push(change_label(op, fields), store)
        self._publish()

    def _move(self, target: Version, what: str) -> None:
        self._guard()
        if self._recorder is not None:
            self._recorder.record(what, {"to_version": target.number})
        self._history.move_to(target.number)
        self._publish()

    def _guard(self) -> None:
        if self._closed:
            raise RuntimeError("this workspace is closed")

    def _recompute(self) -> DerivedState:
        return recompute_derived(self.store, registry=self.registry, caps=self.caps, executor=self.executor,
                                 memo=self._memo)

    def _publish(self) -> None:
        self._derived = self._recompute()
        for callback in list(self._subscribers):
            callback(self._derived)

    # -- display ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        instances = ", ".join(
            f"{i}: {len(self._derived.outputs(i))}" for i in self._derived.instance_ids
        )
        return (f"Workspace(version={self.version}, drafts={len(self.store.drafts)}, outputs={{{instances}}}, "
                f"warnings={len(self._derived.warnings)})")

    def _repr_html_(self) -> str:
        return f"<div><b>Workspace</b> version {self.version}</div>" + self._derived._repr_html_()


def _install_fingerprints(memo: Memo) -> object | None:
    """Let ``media_draft`` use the memo's durable store for source fingerprints, unless one is in use."""
    from drafts.media import use_fingerprint_cache

    if memo.durable is None:
        return None
    previous = use_fingerprint_cache(memo.durable)
    if previous is not None:  # the command's (or another workspace's) stays in charge
        use_fingerprint_cache(previous)
        return None
    return memo.durable


class _SessionJournal:
    """Where a journaled Workspace sends its changes: the session's recorder."""

    def __init__(self, manager: SessionManager, user_id: str, session_id: str, performer_id: str):
        self.manager = manager
        self.user_id = user_id
        self.session_id = session_id
        self.performer_id = performer_id

    def record(self, op: str, fields: dict) -> None:
        event = store_event(op, fields, user_id=self.user_id, session_id=self.session_id,
                            performer_id=self.performer_id)
        self.manager.recorder.append(self.user_id, self.session_id, event)

    def close(self) -> None:
        self.manager.end(self.user_id, self.session_id, self.performer_id)

