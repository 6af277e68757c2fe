"""Memo: the evaluation cache that makes recompute incremental.

Two layers, both keyed by content and never by time or position alone:

- calls: ``(lens id, version, code fingerprint, resolved params, input draft
  id, output limit[, instance id, batch id, frame index][, engine])`` ->
  ``CallOutcome`` — everything that can change a call's outcome
  (``derived.plan.call_key``);
- chunks: one instance's assembled drafts for a run of frames, keyed by the
  batch id, the code fingerprint, the chunk's first frame, the per-frame cap,
  the ids of its frames and which of them are inline — so an unchanged chunk
  of 256 frames costs one lookup.

It also remembers the last code fingerprint it saw for each ``(lens id,
version)``: when a lens's code changes but its version does not, nothing
computed by the old code is reused and the recompute warns
``lensCodeChanged`` (the one warning that depends on the memo's history).

``Memo()`` lives in memory. ``Memo.open(path)`` is the same memo backed by a
durable SQLite store (``derived.durable``): a call another process already
made is read from it, a call made here is written to it. The store is an
evaluation cache only: chunks, carriers and derived state stay in memory.

Bounded: ``max_calls`` entries that the latest recompute did not use are kept
at most (oldest dropped first); the entries it used — its working set, itself
bounded by the caps — are always kept, since they are what the next
recompute needs. Chunks and carriers keep only what the latest recompute used.

A memo never changes what is computed, only whether it is computed again.
Only the engine writes to it, after results come back, never during a job.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["Memo", "DEFAULT_MAX_CALLS"]

DEFAULT_MAX_CALLS = 10_000
"""Unused call entries a memo keeps (an undo or two of a 1,000-frame instance)."""


class Memo:
    """Pass the same Memo to successive ``recompute_derived`` calls.

    ``max_calls`` (default ``DEFAULT_MAX_CALLS``) bounds the entries the latest
    recompute did not use; ``None`` keeps everything. ``clear()`` forgets what
    is in memory. Raises ValueError for a bound that is not an int >= 0.
    """

    def __init__(self, max_calls: int | None = DEFAULT_MAX_CALLS, *, durable: Any = None):
        if max_calls is not None and (type(max_calls) is not int or max_calls < 0):
            raise ValueError(f"max_calls must be an int >= 0 or None, got {max_calls!r}")
        self._calls: dict[Any, Any] = {}
        self._live: set[Any] = set()
        self._absent: set[Any] = set()  # keys the durable store was asked for and does not hold
        self._chunks: dict[Any, Any] = {}
        self._chunk_calls: dict[Any, tuple] = {}
        self._carriers: dict[tuple[str, ...], Any] = {}
        self._lens_code: dict[tuple[str, str], str] = {}
        self.max_calls = max_calls
        self.durable = durable
        self.calls_made = 0  # outcomes put since this memo was made: calls that actually ran
        self.ran: dict[str, int] = {}  # per lens instance: calls the latest recompute ran (not reused)

    @classmethod
    def open(cls, path: str | os.PathLike, max_calls: int | None = DEFAULT_MAX_CALLS) -> Memo:
        """A memo backed by the SQLite evaluation store at ``path`` (made if missing).

        Raises ``derived.durable.StoreError`` naming the file if it cannot be
        used. ``close()`` it when done (a ``with`` block does).

        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d, Memo.open(os.path.join(d, "cache.sqlite")) as memo:
        ...     memo.durable.generation
        1
        """
        from .durable import DurableStore

        return cls(max_calls, durable=DurableStore(path))

    # -- lens code ---------------------------------------------------------------
    def lens_code(self, key: tuple[str, str]) -> str | None:
        """The code fingerprint last recorded for ``(lens id, version)``, or None."""
        return self._lens_code.get(key)

    def record_lens_code(self, seen: dict[tuple[str, str], str]) -> None:
        self._lens_code.update(seen)

    # -- calls -----------------------------------------------------------------
    def get_call(self, key: Any) -> Any:
        outcome = self._calls.get(key)
        if outcome is None and self.durable is not None and key not in self._absent:
            outcome = self.durable.get_calls([key]).get(key)
            if outcome is not None:
                self._calls[key] = outcome
        if outcome is not None:
            self._live.add(key)
        return outcome

    def prefetch(self, keys: list[Any]) -> None:
        """Read the entries of ``keys`` that are not in memory from the durable store at once."""
        if self.durable is None:
            return
        calls = self._calls
        missing = [k for k in keys if k is not None and k not in calls]
        if missing:
            found = self.durable.get_calls(missing)
            calls.update(found)
            self._absent.update(k for k in missing if k not in found)

    def put_call(self, key: Any, outcome: Any, lens_id: str = "") -> None:
        self._calls[key] = outcome
        self._absent.discard(key)
        self._live.add(key)
        self.calls_made += 1
        if self.durable is not None:
            self.durable.put_call(key, outcome, lens_id)

    def _trim(self) -> None:
        """Drop the oldest entries the latest recompute did not use, down to ``max_calls`` of them."""
        calls, live = self._calls, self._live
        if self.max_calls is not None:
            excess = len(calls) - len(live & calls.keys()) - self.max_calls
            if excess > 0:
                for key in [k for k in calls if k not in live][:excess]:
                    del calls[key]
        self._live = set()
        self._absent = set()

    # -- chunks ------------------------------------------------------------------
    def get_chunk(self, key: Any) -> Any:
        chunk = self._chunks.get(key)
        if chunk is not None:
            self._live.update(self._chunk_calls.get(key, ()))
        return chunk

    def put_chunk(self, key: Any, chunk: Any, call_keys: tuple = ()) -> None:
        self._chunks[key] = chunk
        self._chunk_calls[key] = call_keys

    def replace_chunks(self, live: dict[Any, Any]) -> None:
        """End of a recompute: keep only the chunks it used, bound the calls, commit to disk."""
        self._chunks = live
        self._chunk_calls = {k: v for k, v in self._chunk_calls.items() if k in live}
        self._trim()
        if self.durable is not None:
            self.durable.flush()

    # -- packed upstream outputs ---------------------------------------------------------
    def carrier_for(self, ids: tuple[str, ...], make) -> Any:
        carrier = self._carriers.get(ids)
        if carrier is None:
            carrier = make()
            self._carriers[ids] = carrier
        return carrier

    def replace_carriers(self, live: dict[tuple[str, ...], Any]) -> None:
        self._carriers = live

    def clear(self) -> None:
        """Forget what is in memory (a durable store keeps its entries; ``draftlens cache prune`` trims it)."""
        self._calls.clear()
        self._live.clear()
        self._absent.clear()
        self._chunks.clear()
        self._chunk_calls.clear()
        self._carriers.clear()
        self._lens_code.clear()

    def close(self) -> None:
        """Commit and close the durable store, if any (a memory memo has nothing to close)."""
        if self.durable is not None:
            self.durable.close()

    def __enter__(self) -> Memo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        where = f", durable={self.durable.path!r}" if self.durable is not None else ""
        return f"Memo(calls={len(self._calls)}, chunks={len(self._chunks)}{where})"
