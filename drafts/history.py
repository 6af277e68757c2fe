"""Store versions with undo/redo: one implementation for Workspace and journal replay.

Version numbers only grow (a change after an undo gets a new number and drops
the redo branch), so a journal can name the version an undo/redo moved to.
"""

from __future__ import annotations

import attrs

from .store import Store

__all__ = ["History", "Version"]


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
        for position, version in enumerate(self._versions):
            if version.number == number:
                self._position = position
                return version
        raise IndexError(f"no version {number} (have {[v.number for v in self._versions]})")
