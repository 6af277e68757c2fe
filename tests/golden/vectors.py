"""Golden vectors of the canonical form: the values, and how the file stores them.

``tests/golden/canonical.json`` holds, per value, its canonical bytes and the
id of ``make_draft(value)``, as this draftlens wrote them when the canonical
form became the project's own (issue 14). The test reads them and never
writes them: a change in any id is a test failure, not a silent upgrade.
``python -m tests.golden.vectors`` rewrites the file; do that only when
adding vectors, and check with ``git diff`` that no existing line changed.

Values are stored tagged (``["f", float.hex()]`` for a float ...), so reading
the file involves no float parsing or formatting by any JSON library.
"""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILE = HERE / "canonical.json"


def tag(value: Any) -> Any:
    from drafts import Draft

    if value is None:
        return ["n"]
    if type(value) is bool:
        return ["b", value]
    if type(value) is int:
        return ["i", str(value)]
    if type(value) is float:
        return ["f", value.hex()]
    if type(value) is str:
        return ["s", value]
    if type(value) is list:
        return ["l", [tag(v) for v in value]]
    if type(value) is dict:
        return ["d", [[k, tag(v)] for k, v in value.items()]]
    if type(value) is Draft:
        from pyrsistent import thaw

        return ["draft", tag(thaw(value.payload)), tag(thaw(value.meta))]
    raise TypeError(type(value).__name__)


def untag(data: Any) -> Any:
    from drafts import make_draft

    kind = data[0]
    if kind == "n":
        return None
    if kind == "b":
        return bool(data[1])
    if kind == "i":
        return int(data[1])
    if kind == "f":
        return float.fromhex(data[1])
    if kind == "s":
        return data[1]
    if kind == "l":
        return [untag(v) for v in data[1]]
    if kind == "d":
        return {k: untag(v) for k, v in data[1]}
    if kind == "draft":
        return make_draft(untag(data[1]), untag(data[2]))
    raise ValueError(f"unknown tag {kind!r}")


def _floats() -> list[float]:
    out = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.30000000000000004, 1.5, 2.5, 100.0, 1e-7, 123.456, 3.141592653589793,
           2.718281828459045, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
           1.7976931348623157e308, -1.7976931348623157e308, 9007199254740992.0, 9007199254740993.0,
           9999999999999998.0, 1e16, 1.0000000000000002e16, 12345678901234567890.0, 1e21, 1e22, 1e23,
           0.00001, 0.000015, 0.0000123, 9.99e-6, 1e-6, 0.0001, 0.001, 1e15, 1e15 + 0.5, 123456789012345.6,
           1 / 3, 2 / 3, 1e100, 1e-100, 6.02214076e23, 1.602176634e-19, 4.35, 0.5, 0.25, 1e300, 1.5e300]
    out += [10.0**e for e in range(-20, 24)]
    out += [-(10.0**e) * 1.5 for e in range(-8, 20, 3)]
    out += [2.0**e for e in range(-1074, 1024, 61)]
    rng = random.Random(14)
    while len(out) < 260:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            out.append(x)
    return out


def values() -> list[Any]:
    from drafts import make_draft

    scalars: list[Any] = [None, True, False, 0, 1, -1, 42, 2**53, 2**63 - 1, -(2**63), 10**18]
    strings = ["", "a", "hello world", '"quoted"', "back\\slash", "\n\t\r\b\f", "\x00\x01\x1f\x7f",
               "é", "日本語", "😀", "\u2028\u2029", "\ufeff", "$draft", "$$x", "a/b", "<script>"]
    nested = [
        [], {}, [1, 2.0, "3"], {"b": 1, "a": 2}, {"z": {"y": [1.5, {"x": None}]}},
        {"\uffff": 1, "😀": 2, "é": 3, "a": 4, "A": 5, "": 6, "$k": 7, "$draft": 8},
        {"n": 1, "f": 1.0, "t": True}, [0.0, -0.0], {"big": 1e16, "small": 1e-7, "mid": 0.00001},
        [[[[[[1]]]]]], {"clips": [{"path": "/a.mov", "size": 12, "fps": 23.976}]},
    ]
    inner = make_draft({"text": "hi", "w": 0.5}, {"tag": "x"})
    drafts_ = [inner, {"frame": inner, "n": 1e16}, [inner, make_draft([1.0, 2])]]
    return [*scalars, *_floats(), *strings, *nested, *drafts_]


def build() -> list[dict]:
    from drafts import Draft, make_draft
    from drafts.canonical import canonical_bytes, freeze_with_canon

    rows = []
    for value in values():
        canon = freeze_with_canon(value, "payload", Draft)[1]
        rows.append({
            "value": tag(value),
            "canonical": canonical_bytes(canon).decode("utf-8"),
            "id": make_draft(value).id,
        })
    return rows


def load() -> list[dict]:
    return json.loads(FILE.read_text(encoding="utf-8"))


if __name__ == "__main__":  # pragma: no cover - run by hand
    FILE.write_text(json.dumps(build(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {FILE}")
