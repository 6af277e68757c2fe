"""Property-based testing for lenses: hypothesis strategies and ``check_lens``.

This package needs hypothesis (a test dependency); ``import lenses`` does not
import it.
"""

from .checker import (
    BUILTIN_LENS_PARAMS,
    RULES,
    LensCheckError,
    LensCheckReport,
    LensContractError,
    carriers,
    check_lens,
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
