"""Naming templates: deterministic tokens give a file's stem, never a path.

A template is ``str.format`` text over a fixed set of tokens — ``{source_name}``,
``{source_ext}``, ``{index}``, ``{codec}``, ``{resolution}`` (no date or time
tokens). It gives the *stem*; the container's extension is appended. The
rendered name is one path component inside the output directory, whatever
the token values are:

>>> final_path("/out", render_stem("{source_name}_{index:03d}", {"source_name": "a", "index": 7}), "mov")
'/out/a_007.mov'
>>> render_stem("{source_name}", {"source_name": "../../etc/passwd"})
Traceback (most recent call last):
...
lenses.media.errors.NamingError: the name '../../etc/passwd' holds '/': a naming template gives a file name inside the output directory, not a path
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Mapping

from .errors import NamingError, SpecError

__all__ = ["TOKENS", "check_template", "render_stem", "final_path", "source_tokens"]

TOKENS = ("source_name", "source_ext", "index", "codec", "resolution")
_INDEX_SPEC = re.compile(r"^0?[1-9]?d?$")  # {index}, {index:03d}, {index:4}
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
_MAX_NAME_BYTES = 255
PARTIAL_MARK = ".partial"


def check_template(template: object, allowed: Iterable[str] = TOKENS) -> None:
    """Raise SpecError unless ``template`` is a usable naming template."""
    allowed = tuple(allowed)
    if not isinstance(template, str) or not template:
        raise SpecError(f"naming_template must be a non-empty str, got {template!r}")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SpecError(f"naming_template {template!r} is not a valid template: {exc} (write a literal brace as {{{{ or }}}})") from None
    for literal, name, spec, conversion in parts:
        bad = _FORBIDDEN.search(literal)
        if bad:
            raise SpecError(
                f"naming_template {template!r} holds {bad.group()!r}: it names a file inside output_directory, "
                "never a directory or a path (put directories in output_directory)"
            )
        if name is None:
            continue
        if name not in allowed:
            raise SpecError(f"naming_template {template!r}: unknown token {{{name}}}; allowed: {['{' + t + '}' for t in allowed]}")
        if conversion is not None:
            raise SpecError(f"naming_template {template!r}: token {{{name}}} takes no !{conversion} conversion")
        if spec and not (name == "index" and _INDEX_SPEC.match(spec)):
            raise SpecError(
                f"naming_template {template!r}: token {{{name}}} has format spec {spec!r}; "
                "only {index} takes one, a zero-padded width such as {index:03d}"
            )


def render_stem(template: str, tokens: Mapping[str, object]) -> str:
    """The stem a template gives for these token values, or NamingError.

    The stem must be one file name: non-empty, not ``.``/``..``, no ``/``,
    ``\\`` or control characters, short enough for the file system, and not
    ending in ``.partial`` (that suffix marks files being written).
    """
    try:
        stem = template.format_map(dict(tokens))
    except (KeyError, ValueError, IndexError) as exc:
        raise NamingError(f"naming_template {template!r} cannot be rendered: {exc}") from None
    bad = _FORBIDDEN.search(stem)
    if bad:
        what = "'/'" if bad.group() == "/" else repr(bad.group())
        raise NamingError(
            f"the name {stem!r} holds {what}: a naming template gives a file name inside the output directory, not a path"
        )
    if stem.strip(".") == "" or stem.strip() == "":
        raise NamingError(f"naming_template {template!r} renders to {stem!r}, which is not a usable file name")
    if stem.endswith(PARTIAL_MARK):
        raise NamingError(f"the name {stem!r} ends in {PARTIAL_MARK!r}, the suffix reserved for files being written")
    # room for the temporary name drafts.files makes: ".<stem>.<16 hex>.partial.<ext>"
    if len((stem + "..0123456789abcdef.partial.xxxx").encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        raise NamingError(f"the name {stem[:40]!r}… is longer than {_MAX_NAME_BYTES - 32} bytes")
    return stem


def final_path(output_directory: str, stem: str, extension: str) -> str:
    """``<output_directory>/<stem>.<extension>``, checked to sit directly inside the directory."""
    directory = os.path.normpath(output_directory)
    path = os.path.join(directory, f"{stem}.{extension}")
    if os.path.dirname(path) != directory or os.path.normpath(path) != path:
        raise NamingError(f"{path!r} is not a file directly inside {directory!r}")
    return path


def source_tokens(source_path: str) -> dict[str, str]:
    """``{source_name}`` and ``{source_ext}`` of a source file (extension without the dot)."""
    name, ext = os.path.splitext(os.path.basename(source_path))
    return {"source_name": name, "source_ext": ext[1:]}
