"""Lenses: named, versioned pure functions, their registry, and the built-ins."""

from .builtins import format_text, pick_fields, rename_fields, source_values, split_list, upper_text
from .errors import DuplicateLensError, LensError, ParamsError, UnknownLensError
from .lens import Lens, Output, lens
from .media import MEDIA_LENSES
from .registry import Registry

default_registry = Registry(
    (source_values, pick_fields, rename_fields, split_list, format_text, upper_text, *MEDIA_LENSES)
)
"""The built-in lenses (pure ones and the FFmpeg media lenses); used when a call gets no registry."""

__all__ = [
    "DuplicateLensError",
    "Lens",
    "LensError",
    "Output",
    "ParamsError",
    "Registry",
    "UnknownLensError",
    "default_registry",
    "lens",
]
