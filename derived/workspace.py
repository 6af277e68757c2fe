"""Workspace: the REPL-facing, reactive holder of the latest store.

Every change makes a new store version, recomputes incrementally (one Memo for
the workspace's life) and tells subscribers. Earlier versions stay available:
``undo`` / ``redo`` move between them. Params are checked eagerly here (a bad
one raises), unlike ``recompute_derived`` which turns it into a warning.

A subscriber cannot break a change: the change is committed (and journaled)
before subscribers are told, so every subscriber is called, and one that
raises is logged (logger ``derived.workspace``) and kept in
``subscriber_failures`` instead of making the change raise.

A journaled workspace (``Workspace.open``) is the one writer of its session
(issue 16): see ``SessionManager.resume_or_start``.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from drafts import Draft, Store, make_draft, pack_drafts
from drafts.errors import JournalCorrupt, SessionAlreadyClosed, SessionDamaged
from drafts.history import History, Version, change_label
from drafts.journal import replay_session, store_event
from drafts.sessions import SessionManager, WriterLease
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

__all__ = ["SubscriberFailure", "Workspace", "Version"]

_log = logging.getLogger(__name__)

# How many subscriber failures a workspace keeps (the oldest are dropped first).
MAX_SUBSCRIBER_FAILURES = 100


@attrs.frozen
class SubscriberFailure:
    """A subscriber that raised: on which version, which callback, and the exception (traceback kept)."""

    version: int
    subscriber: Callable[..., Any]
    error: Exception

    def __str__(self) -> str:
        return f"version {self.version}: subscriber {self.subscriber!r} raised {type(self.error).__name__}: {self.error}"

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
        self.registry = default_registry if registry is None else registry
        self.caps = caps or Caps()
        self.executor = executor
        self._memo = memo if memo is not None else Memo()
        self._fingerprints = None  # the durable source-fingerprint cache this workspace installed, if any
        self._owns_memo = False  # close() closes only a memo the workspace opened itself
        self._recorder = recorder
        self._history = history or History(store)
        self._subscribers: list[Callable[[DerivedState], None]] = []
        self._failures: collections.deque[SubscriberFailure] = collections.deque(maxlen=MAX_SUBSCRIBER_FAILURES)
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
        """A journaled workspace: resumes the user's active session, or starts one (atomically).

        Every change is appended to ``<root>/users/<user_id>/sessions/<id>.jsonl``
        (and fsync'd) before it takes effect; ``close()`` ends the session,
        ``detach()`` leaves it active for the next open.

        One writer per session, across threads and processes: while this
        workspace is open, a second ``open`` for the user raises
        SessionInUse naming this one's performer, host and pid (it does not
        open read-only). If the process holding it dies, even by SIGKILL,
        the kernel drops its lock and the next ``open`` resumes the session
        with every acknowledged change. SessionDamaged if the active
        session's journal is damaged (it names the file and line and how to
        set the journal aside); InvalidSessionArgument for a bad id.
        Evaluations are cached in ``<root>/users/<user_id>/cache.sqlite``
        (``Memo.open``; pass ``memo=`` to choose another), so a resumed
        session runs only what changed.
        """
        manager = SessionManager(root)
        lease = manager.resume_or_start(user_id, performer_id)
        owned = "memo" not in options
        try:
            if lease.started:
                history = History()
            else:
                try:
                    history = replay_session(root, user_id, lease.session_id)
                except JournalCorrupt as exc:
                    raise SessionDamaged(user_id, lease.session_id, exc.path, exc.line, exc.problem) from None
            journal = _SessionJournal(manager, lease)
            if owned:  # the user's evaluation cache: a resumed session reuses verified work
                options["memo"] = Memo.open(os.path.join(os.fspath(root), "users", user_id, CACHE_NAME))
            try:
                workspace = cls(recorder=journal, history=history, **options)
            except BaseException:
                if owned:
                    options["memo"].close()
                raise
        except BaseException:
            lease.release()
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

    @property
    def subscriber_failures(self) -> tuple[SubscriberFailure, ...]:
        """Subscribers that raised, oldest first (the last MAX_SUBSCRIBER_FAILURES are kept)."""
        return tuple(self._failures)

    def subscribe(self, callback: Callable[[DerivedState], None]) -> Callable[[], None]:
        """Call ``callback(derived_state)`` after every change; returns an unsubscribe function.

        Subscribers are called in the order they subscribed, each one even if
        an earlier one raised. An ``Exception`` from a subscriber is logged
        and kept in ``subscriber_failures``; the change it was told about
        stands and the call that made it returns normally.
        """
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
        """End the workspace (and its journaled session, if any). Further changes raise.

        A journaled workspace gives up its session's writer lease even if
        ending the session fails (the error is raised).
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._recorder is not None:
                try:
                    self._recorder.close()
                finally:
                    release = getattr(self._recorder, "release", None)
                    if release is not None:
                        release()
        finally:
            self._release_caches()

    def _release_caches(self) -> None:
        """Uninstall the fingerprint cache this workspace installed and close a memo it opened."""
        if self._fingerprints is not None:
            from drafts.media import use_fingerprint_cache

            use_fingerprint_cache(None)
            self._fingerprints = None
        if self._owns_memo:
            self._owns_memo = False
            self._memo.close()

    def detach(self) -> None:
        """Stop writing without ending the session: it stays active, and the next
        ``Workspace.open`` for the user resumes it (as after this process exits).
        Further changes here raise."""
        if self._closed:
            return
        self._closed = True
        release = getattr(self._recorder, "release", None)
        try:
            if release is not None:
                release()
        finally:
            self._release_caches()

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
        self._history.push(change_label(op, fields), store, op, fields)
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
            try:
                callback(self._derived)
            except Exception as exc:  # noqa: BLE001 - kept and logged: a subscriber cannot undo a committed change
                failure = SubscriberFailure(self.version, callback, exc)
                self._failures.append(failure)
                _log.error("%s", failure, exc_info=exc)

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
    """Where a journaled Workspace sends its changes: the session's recorder, under its writer lease."""

    def __init__(self, manager: SessionManager, lease: WriterLease):
        self.manager = manager
        self.lease = lease
        self.user_id = lease.user_id
        self.session_id = lease.session_id
        self.performer_id = lease.performer_id

    def record(self, op: str, fields: dict) -> None:
        if not self.lease.held:
            raise RuntimeError(f"this workspace gave up session {self.session_id!r}; open the workspace again")
        event = store_event(op, fields, user_id=self.user_id, session_id=self.session_id,
                            performer_id=self.performer_id)
        self.manager.recorder.append(self.user_id, self.session_id, event)

    def close(self) -> None:
        try:
            self.manager.end(self.user_id, self.session_id, self.performer_id)
        except SessionAlreadyClosed:
            pass  # ended already (e.g. closed by the system): what close() asks for is done

    def release(self) -> None:
        self.lease.release()
