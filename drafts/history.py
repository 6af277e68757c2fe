"""Store versions with undo/redo: one implementation for Workspace and journal replay.

Version numbers only grow (a change after an undo gets a new number and drops
the redo branch), so a journal can name the version an undo/redo moved to.

Memory and time stay linear in the number of versions (issue 17): a version
keeps the change that made it (``op`` and its fields), and only every
``CHECKPOINT_EVERY``-th version, and the current one, keep a whole ``Store``.
Any other version's store is rebuilt on demand by re-applying at most that
many changes to the nearest kept one (store operations are pure, so the
result is the very store that was there). Keeping every store instead made
each full garbage collection walk every store's draft-order vector: a
quadratic cost that made a 100k-event journal take 15 minutes to replay.

>>> from drafts import make_draft
>>> h = History()
>>> a, b = make_draft({"n": 1}), make_draft({"n": 2})
>>> _ = h.push("add a", h.current.store.add_draft(a), "add_draft", {"draft": a})
>>> _ = h.push("add b", h.current.store.add_draft(b), "add_draft", {"draft": b})
>>> h.move_to(1).store.drafts.keys() == {a.id}
True
"""

from __future__ import annotations

import bisect
from typing import Any

from .carrier import is_packed_carrier
from .errors import StoreError
from .store import Store

__all__ = ["CHECKPOINT_EVERY", "RECENT_KEPT", "History", "Version", "apply_change", "change_label"]

# A kept store every this many versions: rebuilding any version re-applies at
# most this many changes (a few ms), and 100k versions keep ~400 stores.
CHECKPOINT_EVERY = 256
# The last few current versions keep their stores too, so undo/redo near the
# present (the usual case) rebuilds nothing.
RECENT_KEPT = 8


def change_label(op: str, fields: dict[str, Any]) -> str:
    """A version's label, from the store event that made it: the same live and after replay."""
    if op == "add_draft":
        draft = fields["draft"]
        return f"{'pack' if is_packed_carrier(draft) else 'add'} {draft.id[:12]}"
    if op == "add_lens_instance":
        return f"apply {fields['instance_id']} ({fields['lens_id']})"
    if op == "remove_lens_instance":
        return f"remove {fields['instance_id']}"
    if op == "remove_draft":
        return f"remove_draft {fields['draft_id'][:12]}"
    return f"{op} {fields['instance_id']}"


def apply_change(store: Store, op: str, fields: dict[str, Any]) -> Store:
    """Apply one store operation, named as in the journal, with decoded ``fields``.

    ``add_draft`` {draft}; ``add_lens_instance`` {instance_id, lens_id,
    input, params}; ``set_params`` {instance_id, params};
    ``remove_lens_instance`` {instance_id}; ``remove_draft`` {draft_id}.
    Raises what the Store operation raises (StoreError, DraftError).
    """
    if op == "add_draft":
        return store.add_draft(fields["draft"])
    if op == "add_lens_instance":
        return store.add_lens_instance(fields["instance_id"], fields["lens_id"], fields["input"], fields["params"])
    if op == "set_params":
        return store.set_params(fields["instance_id"], fields["params"])
    if op == "remove_lens_instance":
        return store.remove_lens_instance(fields["instance_id"])
    if op == "remove_draft":
        return store.remove_draft(fields["draft_id"])
    raise StoreError(f"unknown store operation {op!r}")


class _Step:
    """How to get one version's store: kept whole, or one change applied to the previous step's."""

    __slots__ = ("parent", "op", "fields", "kept", "depth")

    def __init__(self, parent: _Step | None, op: str | None, fields: dict | None, kept: Store | None):
        self.parent = parent
        self.op = op
        self.fields = fields
        self.kept = kept
        self.depth = 0 if kept is not None else parent.depth + 1

    def store(self) -> Store:
        pending = []
        step = self
        while step.kept is None:
            pending.append(step)
            step = step.parent
        store = step.kept
        for step in reversed(pending):
            store = apply_change(store, step.op, step.fields)
        return store


class Version:
    """One store version and the change that made it: ``number``, ``change`` (a label), ``store``."""

    __slots__ = ("number", "change", "_step")

    def __init__(self, number: int, change: str, step: _Step):
        self.number = number
        self.change = change
        self._step = step

    @property
    def store(self) -> Store:
        """The version's store (rebuilt from the nearest kept one if it is not kept)."""
        return self._step.store()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.number, self.change) == (other.number, other.change) and (
            self._step is other._step or self.store == other.store
        )

    def __hash__(self) -> int:
        return hash((self.number, self.change))

    def __repr__(self) -> str:
        return f"Version(number={self.number}, change={self.change!r})"


class History:
    """The versions a store went through, and which one is current (undo/redo move it)."""

    def __init__(self, store: Store | None = None, checkpoint_every: int = CHECKPOINT_EVERY,
                 recent_kept: int = RECENT_KEPT):
        self._every = checkpoint_every
        self._recent_kept = recent_kept
        self._versions: list[Version] = [Version(0, "start", _Step(None, None, None, store or Store.empty()))]
        self._position = 0
        self._recent: list[_Step] = [self._versions[0]._step]  # recently current: they keep their stores

    @property
    def current(self) -> Version:
        return self._versions[self._position]

    @property
    def versions(self) -> tuple[Version, ...]:
        return tuple(self._versions)

    def push(self, change: str, store: Store, op: str | None = None, fields: dict | None = None) -> Version:
        """Make ``store`` the new current version, dropping any redo branch.

        ``op`` / ``fields`` name the store operation that turned the current
        store into ``store``; without them the store is kept whole.
        """
        number = self._versions[-1].number + 1
        del self._versions[self._position + 1:]
        parent = self._versions[-1]._step
        keep = op is None or parent.depth + 1 >= self._every
        step = _Step(parent, op, fields, store if keep else None)
        self._versions.append(Version(number, change, step))
        self._position = len(self._versions) - 1
        self._make_hot(step, store)
        return self._versions[-1]

    def undo_target(self) -> Version:
        if self._position == 0:
            raise IndexError("nothing to undo")
        return self._versions[self._position - 1]

    def redo_target(self) -> Version:
        if self._position == len(self._versions) - 1:
            raise IndexError("nothing to redo")
        return self._versions[self._position + 1]

    def move_to(self, number: int) -> Version:
        """Make version ``number`` current (IndexError if there is none). Version numbers
        grow along the list, so this is a binary search: replaying n undo/redo moves is
        O(n log n), not O(n²)."""
        position = bisect.bisect_left(self._versions, number, key=_number)
        if position < len(self._versions) and self._versions[position].number == number:
            self._position = position
            version = self._versions[position]
            self._make_hot(version._step, version.store)
            return version
        first, last = self._versions[0].number, self._versions[-1].number
        raise IndexError(f"no version {number} (have {len(self._versions)} versions, {first}..{last})")

    def _make_hot(self, step: _Step, store: Store) -> None:
        if step.kept is None:
            step.kept = store
        if step in self._recent:
            self._recent.remove(step)
        self._recent.append(step)
        if len(self._recent) > self._recent_kept:
            old = self._recent.pop(0)
            if old.depth != 0:
                old.kept = None  # it was kept only while recent; checkpoints (depth 0) stay


def _number(version: Version) -> int:
    return version.number
