"""Property-based testing for lenses: hypothesis strategies and ``check_lens``.

Strategies for drafts, carriers and stores (the ones draftlens' own test-suite
uses), and ``check_lens(lens)``, which runs the lens contract as property tests
and names the rule a lens breaks:

- ``deterministic``: the same input and params give the same outputs, on an
  equal but separately built input and in a fresh Python process;
- ``immutable-input``: the lens never changes (or tries to change, even in a
  ``try`` that catches the error) its input;
- ``valid-outputs``: it returns an iterable of JSON-like payloads or
  ``Output(payload, meta)`` that ``make_draft`` accepts;
- ``map-only``: evaluating a ``packDrafts`` carrier equals concatenating the
  lens's outputs for each frame (a lens never loops over frames itself);
- ``no-ambient-inputs``: outputs do not change with the clock, the random
  seed, ``TZ``, the working directory or the environment variables.

Modules: ``strategies`` (the hypothesis strategies), ``checker``
(``check_lens`` and its report), ``rules`` (the rule ids and the errors that
name them) and what the rules observe: ``calls`` (one call, as the engine
makes it), ``mutation`` (changes to the input, and attempts seen by tracing the call),
``ambient`` (the clock, the seed, the environment and the working directory,
pinned or changed), ``fresh`` (a re-run in a fresh process).
Their underscore names are private to this package; the names below are the
public ones.

This package needs hypothesis (a test dependency); ``import lenses`` does not
import it.

>>> from lenses.builtins import upper_text
>>> check_lens(upper_text, max_examples=10).rules
('deterministic', 'immutable-input', 'valid-outputs', 'map-only', 'no-ambient-inputs')
"""

from .checker import LensCheckReport, check_lens
from .rules import RULES, LensCheckError, LensContractError
from .strategies import (
    BUILTIN_LENS_PARAMS,
    carriers,
    drafts,
    frames,
    json_values,
    keys,
    object_drafts,
    scalars,
    stores,
)

__all__ = [
    "BUILTIN_LENS_PARAMS",
    "RULES",
    "LensCheckError",
    "LensCheckReport",
    "LensContractError",
    "carriers",
    "check_lens",
    "drafts",
    "frames",
    "json_values",
    "keys",
    "object_drafts",
    "scalars",
    "stores",
]
