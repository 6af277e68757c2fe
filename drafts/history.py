"""Store versions with undo/redo: one implementation for Workspace and journal replay.

Version numbers only grow (a change after an undo gets a new number and drops
the redo branch), so a journal can name the version an undo/redo moved to.
"""

from __future__ import annotations

import bisect
from typing import Any

import attrs

from .carrier import is_packed_carrier
from .store import Store

__all__ = ["History", "Version", "change_label"]


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


@attrs.frozen
class Version:
    """One store version and the change that made it."""

    number: int
    change: str
    store: Store


class History:
    def __init__(self, store: Store | None = None):
        self._versions: list[Version] = [Version(0, "start", store or Store.empty())]
        self._position = 0

    @property
    def current(self) -> Version:
        return self._versions[self._position]

    @property
    def versions(self) -> tuple[Version, ...]:
        return tuple(self._versions)

    def push(self, change: str, store: Store) -> Version:
        number = self._versions[-1].number + 1
        del self._versions[self._position + 1:]
        self._versions.append(Version(number, change, store))
        self._position = len(self._versions) - 1
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
            return self._versions[position]
        first, last = self._versions[0].number, self._versions[-1].number
        raise IndexError(f"no version {number} (have {len(self._versions)} versions, {first}..{last})")


def _number(version: Version) -> int:
    return version.number
