"""The test-suite's hypothesis strategies: re-exported from ``lenses.testing`` (one source of truth).

``stores()`` here also uses the test-only lenses of ``tests/lenses_for_tests.py``
(pass ``registry=tests.lenses_for_tests.registry()`` to recompute its stores).
"""

from __future__ import annotations

from hypothesis import strategies as st

from lenses.testing import carriers, drafts, frames, json_values, keys, object_drafts, scalars
from lenses.testing import stores as _stores

__all__ = ["TEST_LENS_PARAMS", "carriers", "drafts", "frames", "json_values", "keys", "object_drafts", "scalars",
           "stores"]

TEST_LENS_PARAMS = {
    "text.upper": {},
    "test.repeat": st.builds(lambda times: {"times": times}, st.integers(0, 3)),
    "test.flaky": {},
    "list.split": {"field": "items"},
}
"""Lens ids (built-in and test-only) the suite's random stores apply, with their params."""


def stores(max_instances: int = 5, lens_ids=TEST_LENS_PARAMS, **bounds):
    """``lenses.testing.stores`` over the built-in and test-only lenses."""
    return _stores(max_instances=max_instances, lens_ids=lens_ids, **bounds)
