"""The lens contract's rules, by id, and the two ways a check ends without a report.

``RULES`` lists the ids in the order ``check_lens`` reports them (see
``lenses.testing`` for what each rule says). ``LensContractError`` names the
rule a lens broke; ``LensCheckError`` says why a lens cannot be checked as asked.
Where each rule is observed: ``calls`` (``valid-outputs``, and the outcomes
``deterministic`` compares), ``mutation`` (``immutable-input``), ``ambient``
(``no-ambient-inputs``), ``fresh`` (``deterministic`` in a fresh process), and
``checker`` (``map-only``, against the engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import LensError

RULES = ("deterministic", "immutable-input", "valid-outputs", "map-only", "no-ambient-inputs")
"""The ids of the contract's rules, in the order ``check_lens`` reports them."""


class LensContractError(AssertionError):
    """A lens broke a rule of the contract.

    ``rule`` is one of ``RULES``; ``counterexample`` is a dict with the
    (shrunk) ``params`` and ``input`` (or ``frames``) and what was observed.
    An ``AssertionError``, so pytest shows it as a test failure.
    """

    def __init__(self, rule: str, message: str, counterexample: Mapping[str, Any] | None = None):
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.counterexample = dict(counterexample or {})


class LensCheckError(LensError, ValueError):
    """``check_lens`` cannot check this lens as asked (say why and what to pass)."""
