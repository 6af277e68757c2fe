"""The meta the engine writes on lens outputs: named from spliced bytes, frozen when first read.

Every output draft of a recompute carries ``meta["provenance"] = {"lensId",
"lensVersion", "lensInstanceId"}`` and, in a batch, ``meta["batch"] =
{"kind": "mapFrames", "batchId", "frameIndex", "frameSourceDraftId",
"variantIndex"}`` (shared/DESIGN.md, "Every output draft records where it
came from" and "Batch evaluation of a carrier"). All of it is the same for
every output of an instance except three figures.

``EngineMeta`` holds, per instance, the canonical bytes around those three
figures (``drafts.canonical``: sorted keys, no spaces, strings as orjson
writes them), so an output's canonical ``[payload, meta]`` is its payload's
bytes spliced with them: byte for byte what ``make_draft(payload, meta)``
encodes, hence the same id (a property test pins it). A batched output keeps
a *recipe* instead of three frozen maps until its ``meta`` is first read:
``((lensId, lensVersion, lensInstanceId, batchId), frameIndex,
frameSourceDraftId, variantIndex)``, tuples of strings and ints, which the
cyclic GC stops tracking (``Draft.meta`` turns it into the frozen map,
once). Outputs of a non-batched call share one frozen ``{"provenance": ...}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from pyrsistent import PMap

from .canonical import _pmap_from_pairs

__all__ = ["EngineMeta", "meta_of_recipe", "RECIPE_DEPTH"]

RECIPE_DEPTH = 2
"""Levels of a recipe's meta map (meta -> batch/provenance -> strings and ints)."""

_OPTS = orjson.OPT_SORT_KEYS


def meta_of_recipe(recipe: tuple) -> PMap:
    """The frozen meta a recipe stands for (a new map each call; ``Draft.meta`` keeps the first)."""
    (lens_id, lens_version, instance_id, batch_id), frame_index, source_id, variant = recipe
    provenance = _pmap_from_pairs((("lensId", lens_id), ("lensVersion", lens_version), ("lensInstanceId", instance_id)))
    batch = _pmap_from_pairs((
        ("kind", "mapFrames"), ("batchId", batch_id), ("frameIndex", frame_index),
        ("frameSourceDraftId", source_id), ("variantIndex", variant),
    ))
    return _pmap_from_pairs((("provenance", provenance), ("batch", batch)))


class EngineMeta:
    """Per instance: its provenance (frozen once) and the canonical bytes of its engine meta.

    ``batch_id`` is None for a non-batched instance. ``spliceable`` is False
    when a name cannot be encoded (a lone surrogate): callers then take the
    general path, which reports that output as ``make_draft`` would.
    """

    __slots__ = ("key", "provenance_plain", "provenance", "single_meta", "spliceable", "batch_parts", "_single")

    def __init__(self, lens_id: str, lens_version: str, instance_id: str, batch_id: str | None = None):
        plain = {"lensId": lens_id, "lensVersion": lens_version, "lensInstanceId": instance_id}
        self.provenance_plain = plain
        self.provenance = _pmap_from_pairs(tuple(plain.items()))
        self.single_meta = _pmap_from_pairs((("provenance", self.provenance),))
        self.key = (lens_id, lens_version, instance_id, batch_id)
        try:
            provenance = orjson.dumps(plain, option=_OPTS)
            batch = orjson.dumps(batch_id)
        except orjson.JSONEncodeError:
            self.spliceable = False
            self._single = b""
            self.batch_parts = ()
            return
        self.spliceable = True
        # [payload,{"provenance":{...}}]: what follows a non-batched output's payload
        self._single = b',{"provenance":' + provenance + b"}]"
        # [payload,{"batch":{"batchId":B,"frameIndex":F,"frameSourceDraftId":S,"kind":"mapFrames",
        # "variantIndex":V},"provenance":{...}}]: the parts between payload, F, S and V
        self.batch_parts = (
            b',{"batch":{"batchId":' + batch + b',"frameIndex":',
            b',"frameSourceDraftId":',
            b',"kind":"mapFrames","variantIndex":',
            b'},"provenance":' + provenance + b"}]",
        )

    def single_bytes(self) -> bytes:
        """What follows a non-batched output's payload bytes in its canonical ``[payload, meta]``."""
        return self._single

    def batch_plain(self, frame_index: int, source_id: str | None, variant: int) -> dict[str, Any]:
        """The plain ``meta["batch"]`` of one output (for the general path)."""
        return {"kind": "mapFrames", "batchId": self.key[3], "frameIndex": frame_index,
                "frameSourceDraftId": source_id, "variantIndex": variant}
