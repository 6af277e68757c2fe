"""The authoritative store: drafts and lens instances, immutable and persistent.

Every operation returns a new ``Store`` that shares structure with the old one;
a refused operation raises ``StoreError`` and the old store is untouched (it
cannot be otherwise: nothing in a store can be changed in place).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
from pyrsistent import PMap, PVector, pmap, pvector

from .canonical import canonical_bytes, freeze_with_canon, thaw_canon
from .draft import Draft
from .errors import DraftError, StoreError

__all__ = ["Store", "LensInstance", "OutputOf", "OrderedView", "InstanceInput", "freeze_params"]


@attrs.frozen
class OutputOf:
    """Input that is the packed outputs of another lens instance, in derived order."""

    instance_id: str = attrs.field(validator=attrs.validators.instance_of(str))


InstanceInput = str | OutputOf | None


def canonical_params(params: PMap) -> bytes:
    """The canonical bytes of frozen params: what equality of instances (and stores) compares.

    ``PMap`` equality is Python's, where ``1 == True == 1.0`` and ``0.0 ==
    -0.0``; the canonical form tells them apart, as derived state does.
    """
    return canonical_bytes(thaw_canon(params, embed_drafts=False))


@attrs.frozen
class LensInstance:
    """One application of a lens, with explicit params, to one input.

    ``input`` is a draft id, ``OutputOf(instance_id)``, or None for a source
    instance (its lens is called once with ``draft=None``). ``params`` is
    frozen JSON-like data; it is checked against the lens only when derived
    state is computed, because the store knows no lenses. Two instances are
    equal when their params have the same canonical form (``canonical_params``).
    """

    instance_id: str
    lens_id: str
    input: InstanceInput
    params: PMap = attrs.field(default=pmap(), eq=canonical_params)


class OrderedView(Mapping):
    """A read-only mapping that iterates in insertion order (never PMap order)."""

    __slots__ = ("_map", "_order")

    def __init__(self, mapping: PMap, order: PVector):
        self._map = mapping
        self._order = order

    def __getitem__(self, key: str) -> Any:
        return self._map[key]

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._order)!r})"


def freeze_params(params: Any, where: str) -> PMap:
    """Params (a mapping or an attrs instance) as frozen JSON-like data."""
    if params is None:
        return pmap()
    if attrs.has(type(params)):
        params = attrs.asdict(params, recurse=True)
    if not isinstance(params, Mapping):
        raise StoreError(f"{where}: params must be a mapping or an attrs instance, got {type(params).__name__}")
    try:
        frozen, _ = freeze_with_canon(params, "params", Draft)
    except DraftError as exc:
        raise StoreError(f"{where}: {exc}") from None
    return frozen


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise StoreError(f"{what} must be a non-empty str, got {value!r}")
    return value


@attrs.frozen(eq=False, repr=False)
class Store:
    """Immutable authoritative state: drafts by id, lens instances in insertion order.

    >>> from drafts import make_draft
    >>> s0 = Store.empty()
    >>> d = make_draft({"text": "hello"})
    >>> s1 = s0.add_draft(d).add_lens_instance("up", "text.upper", d.id)
    >>> len(s0.drafts), len(s1.drafts), list(s1.lens_instances)
    (0, 1, ['up'])
    """

    _drafts: PMap = pmap()
    _draft_order: PVector = pvector()
    _instances: PMap = pmap()
    _instance_order: PVector = pvector()

    @classmethod
    def empty(cls) -> Store:
        return _EMPTY_STORE

    # -- reading ---------------------------------------------------------------
    @property
    def drafts(self) -> Mapping[str, Draft]:
        """Draft id -> Draft, in the order the drafts were added."""
        return OrderedView(self._drafts, self._draft_order)

    @property
    def lens_instances(self) -> Mapping[str, LensInstance]:
        """Instance id -> LensInstance, in insertion order."""
        return OrderedView(self._instances, self._instance_order)

    def dependents_of(self, instance_id: str) -> tuple[str, ...]:
        """Instances whose input is ``OutputOf(instance_id)``, in insertion order."""
        return tuple(
            i for i in self._instance_order
            if self._instances[i].input == OutputOf(instance_id)
        )

    # -- operations -------------------------------------------------------------
    def add_draft(self, draft: Draft) -> Store:
        """Add a draft (adding one that is already there changes nothing)."""
        if type(draft) is not Draft:
            raise StoreError(f"add_draft takes a Draft (made by make_draft), got {type(draft).__name__}")
        if draft.id in self._drafts:
            return self
        return attrs.evolve(
            self,
            drafts=self._drafts.set(draft.id, draft),
            draft_order=self._draft_order.append(draft.id),
        )

    def remove_draft(self, draft_id: str) -> Store:
        """Remove a draft no lens instance reads."""
        if draft_id not in self._drafts:
            raise StoreError(f"unknown draft {draft_id!r}")
        users = [i for i in self._instance_order if self._instances[i].input == draft_id]
        if users:
            raise StoreError(f"draft {draft_id!r} is the input of lens instance(s) {users}; remove them first")
        return attrs.evolve(
            self,
            drafts=self._drafts.remove(draft_id),
            draft_order=pvector(d for d in self._draft_order if d != draft_id),
        )

    def add_lens_instance(
        self,
        instance_id: str,
        lens_id: str,
        input: InstanceInput | Draft,  # noqa: A002 - the contract's name
        params: Any = None,
    ) -> Store:
        """Apply lens ``lens_id`` with ``params`` to ``input`` as ``instance_id``."""
        _check_id(instance_id, "instance_id")
        _check_id(lens_id, "lens_id")
        if instance_id in self._instances:
            raise StoreError(f"lens instance {instance_id!r} already exists")
        resolved = self._check_input(instance_id, input)
        instance = LensInstance(instance_id, lens_id, resolved, freeze_params(params, f"instance {instance_id!r}"))
        return attrs.evolve(
            self,
            instances=self._instances.set(instance_id, instance),
            instance_order=self._instance_order.append(instance_id),
        )

    def set_params(self, instance_id: str, params: Any) -> Store:
        """Replace an instance's params (its place in the order is kept)."""
        instance = self._instance(instance_id)
        frozen = freeze_params(params, f"instance {instance_id!r}")
        return attrs.evolve(self, instances=self._instances.set(instance_id, attrs.evolve(instance, params=frozen)))

    def remove_lens_instance(self, instance_id: str) -> Store:
        """Remove an instance no other instance reads."""
        self._instance(instance_id)
        dependents = self.dependents_of(instance_id)
        if dependents:
            raise StoreError(
                f"lens instance {instance_id!r} feeds {list(dependents)} through OutputOf; remove those first"
            )
        return attrs.evolve(
            self,
            instances=self._instances.remove(instance_id),
            instance_order=pvector(i for i in self._instance_order if i != instance_id),
        )

    # -- helpers ----------------------------------------------------------------
    def _instance(self, instance_id: str) -> LensInstance:
        try:
            return self._instances[instance_id]
        except (KeyError, TypeError):
            raise StoreError(f"unknown lens instance {instance_id!r}") from None

    def _check_input(self, instance_id: str, input: Any) -> InstanceInput:  # noqa: A002
        if input is None:
            return None
        if type(input) is Draft:
            input = input.id  # noqa: A001
        if isinstance(input, str):
            if input not in self._drafts:
                raise StoreError(
                    f"instance {instance_id!r}: input draft {input!r} is not in the store (add_draft it first)"
                )
            return input
        if isinstance(input, OutputOf):
            if input.instance_id == instance_id:
                raise StoreError(f"instance {instance_id!r}: OutputOf({instance_id!r}) would be a cycle")
            if input.instance_id not in self._instances:
                raise StoreError(f"instance {instance_id!r}: OutputOf names unknown instance {input.instance_id!r}")
            return input
        raise StoreError(
            f"instance {instance_id!r}: input must be a draft id, a Draft, OutputOf(...) or None, "
            f"got {type(input).__name__}"
        )

    # -- value semantics ----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Equal stores give equal derived state: same draft ids, same instances in the
        same order, params compared by canonical form (``1``, ``True`` and ``1.0`` differ)."""
        if not isinstance(other, Store):
            return NotImplemented
        if self is other:
            return True
        return self._drafts.keys() == other._drafts.keys() and list(self.lens_instances.items()) == list(
            other.lens_instances.items()
        )

    def __hash__(self) -> int:
        return hash((frozenset(self._drafts), tuple(self._instance_order)))

    def __repr__(self) -> str:
        return f"Store(drafts={len(self._drafts)}, lens_instances={list(self._instance_order)!r})"


_EMPTY_STORE = Store()
