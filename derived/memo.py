"""Memo: the evaluation cache that makes recompute incremental.

Two layers, both keyed by content and never by time or position alone:

- calls: ``(lens id, version, code fingerprint, resolved params, input draft
  id[, frame index])`` -> ``CallOutcome`` — the contract's key plus the lens's
  code fingerprint; two instances with the same lens and params share their calls;
- chunks: one instance's assembled drafts for a run of frames, keyed by the
  batch id, the code fingerprint, the chunk's first frame, the per-frame cap
  and the ids of its frames — so an unchanged chunk of 256 frames costs one lookup.

It also remembers the last code fingerprint it saw for each ``(lens id,
version)``: when a lens's code changes but its version does not, nothing
computed by the old code is reused and the recompute warns
``lensCodeChanged`` (the one warning that depends on the memo's history).

A memo never changes what is computed, only whether it is computed again.
Only the engine writes to it, after results come back, never during a job.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Memo"]


class Memo:
    """Pass the same Memo to successive ``recompute_derived`` calls.

    ``max_calls`` bounds the call layer (oldest entries go first); ``None`` keeps
    everything. ``clear()`` forgets all.
    """

    def __init__(self, max_calls: int | None = None):
        if max_calls is not None and (type(max_calls) is not int or max_calls < 1):
            raise ValueError(f"max_calls must be an int >= 1 or None, got {max_calls!r}")
        self._calls: dict[Any, Any] = {}
        self._chunks: dict[Any, Any] = {}
        self._carriers: dict[tuple[str, ...], Any] = {}
        self._lens_code: dict[tuple[str, str], str] = {}
        self.max_calls = max_calls

    # -- lens code ---------------------------------------------------------------
    def lens_code(self, key: tuple[str, str]) -> str | None:
        """The code fingerprint last recorded for ``(lens id, version)``, or None."""
        return self._lens_code.get(key)

    def record_lens_code(self, seen: dict[tuple[str, str], str]) -> None:
        self._lens_code.update(seen)

    # -- calls -----------------------------------------------------------------
    def get_call(self, key: Any) -> Any:
        return self._calls.get(key)

    def put_call(self, key: Any, outcome: Any) -> None:
        calls = self._calls
        calls[key] = outcome
        if self.max_calls is not None:
            while len(calls) > self.max_calls:
                del calls[next(iter(calls))]  # dicts keep insertion order: oldest first

    # -- chunks ------------------------------------------------------------------
    def get_chunk(self, key: Any) -> Any:
        return self._chunks.get(key)

    def put_chunk(self, key: Any, chunk: Any) -> None:
        self._chunks[key] = chunk

    def replace_chunks(self, live: dict[Any, Any]) -> None:
        """Keep only the chunks the latest recompute used (they are what comes next)."""
        self._chunks = live

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
        self._calls.clear()
        self._chunks.clear()
        self._carriers.clear()
        self._lens_code.clear()

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        return f"Memo(calls={len(self._calls)}, chunks={len(self._chunks)})"
