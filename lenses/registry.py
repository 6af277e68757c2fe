"""Registries: which lens an id names."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from .errors import DuplicateLensError, UnknownLensError
from .lens import Lens

__all__ = ["Registry"]


class Registry:
    """A mutable id -> Lens table. ``Registry()`` is empty.

    >>> from lenses import lens
    >>> r = Registry()
    >>> @lens("demo.id")
    ... def ident(draft, params):
    ...     yield draft.payload
    >>> r.register(ident)
    <Lens 'demo.id' v1 Convert batch=inherit>
    >>> r.get("demo.id") is ident
    True
    """

    def __init__(self, lenses: tuple[Lens, ...] = ()):
        self._lenses: dict[str, Lens] = {}
        for one in lenses:
            self.register(one)

    def register(self, lens: Lens) -> Lens:
        """Add a lens (returned, so this works as a decorator too)."""
        if not isinstance(lens, Lens):
            raise TypeError(f"register takes a Lens (made with @lens), got {type(lens).__name__}")
        held = self._lenses.get(lens.id)
        if held is not None and held != lens:
            raise DuplicateLensError(f"another lens already has id {lens.id!r}: {held!r}")
        self._lenses[lens.id] = lens
        return lens

    def get(self, lens_id: str) -> Lens:
        """The lens with that id, or ``UnknownLensError`` naming the nearest known id.

        >>> from lenses import default_registry
        >>> default_registry.get("text.uper")
        Traceback (most recent call last):
        ...
        lenses.errors.UnknownLensError: no lens 'text.uper' (did you mean 'text.upper'?); known: ...
        """
        try:
            return self._lenses[lens_id]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(lens_id), sorted(self._lenses), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(self._lenses))
            raise UnknownLensError(f"no lens {lens_id!r}{hint}; known: {known}", lens_id=lens_id,
                                   suggestion=close[0] if close else None) from None

    def copy(self) -> Registry:
        """A new registry with the same lenses, e.g. ``default_registry.copy()`` to add your own."""
        return Registry(tuple(self._lenses.values()))

    def __contains__(self, lens_id: object) -> bool:
        return lens_id in self._lenses

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._lenses))

    def __len__(self) -> int:
        return len(self._lenses)

    def __repr__(self) -> str:
        return f"Registry({sorted(self._lenses)})"
