"""Registries: which lens an id names."""

from __future__ import annotations

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
        try:
            return self._lenses[lens_id]
        except KeyError:
            raise UnknownLensError(f"no lens {lens_id!r} in this registry (known: {sorted(self._lenses)})") from None

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
