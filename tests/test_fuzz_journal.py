"""Issue 17 item 8: fuzzed drafts and journals give only the documented errors.

``draft_from_json`` may raise only DraftError; reading or replaying a journal
only JournalError (JournalCorrupt, naming the line; UnsafeJournalPath), with a
TornTailWarning for a torn last line; ``draftlens sessions show/list/replay``
only exit 0 or 2 with a message. Bounded: the Hypothesis profile's example
count (60 in CI), small inputs.
"""

import json
import tempfile
import warnings
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from derived.command.cli import main
from drafts import Draft, DraftError, draft_from_json, make_draft
from drafts.draft import MAX_NESTING
from drafts.errors import JournalCorrupt, JournalError
from drafts.journal import read_boundaries, read_journal, replay, replay_history
from drafts.sessions import SessionManager

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _nested(depth, leaf="[]"):
    return "[" * depth + leaf + "]" * depth


def _draft_or_draft_error(text):
    try:
        return draft_from_json(text)
    except DraftError:
        return None


# -- draft_from_json ------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_NESTING - 2, MAX_NESTING, 300, 500, 1000, 1023, 1100])
def test_draft_from_json_of_deep_nesting_is_a_draft_error_naming_the_limit(depth):
    # The failing input: 500 deep gave RecursionError.
    text = '{"id": "x", "meta": {}, "payload": ' + _nested(depth) + "}"
    with pytest.raises(DraftError) as refused:
        draft_from_json(text)
    if MAX_NESTING < depth < 1000:
        assert f"nested more than {MAX_NESTING} levels deep" in str(refused.value)


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_draft_from_json_of_any_bytes_gives_a_draft_or_a_draft_error(data):
    _draft_or_draft_error(data)


@given(JSON)
def test_draft_from_json_of_any_json_gives_a_draft_or_a_draft_error(value):
    _draft_or_draft_error(json.dumps(value))


@given(st.sampled_from(["id", "payload", "meta"]), JSON, st.integers(0, 400))
def test_draft_from_json_of_a_tampered_document_gives_a_draft_or_a_draft_error(key, value, depth):
    document = orjson.loads(make_draft({"text": "hi", "n": [1, 2]}, {"m": 1}).to_json())
    document[key] = value if depth < 200 else json.loads(_nested(depth))
    result = _draft_or_draft_error(json.dumps(document))
    assert result is None or type(result) is Draft


# -- journals -------------------------------------------------------------------------------------

def _journal(root):
    manager = SessionManager(root)
    session_id = manager.start("ana", "ana").session_id
    from drafts.journal import Recorder, store_event

    d = make_draft({"text": "x", "n": [1, {"k": True}]})
    for op, fields in [("add_draft", {"draft": d}),
                       ("add_lens_instance", {"instance_id": "up", "lens_id": "text.upper", "input": d.id,
                                              "params": {"a": [1, 2]}}),
                       ("set_params", {"instance_id": "up", "params": {"a": 3}}),
                       ("undo", {"to_version": 2}), ("redo", {"to_version": 3})]:
        Recorder(root).append("ana", session_id, store_event(op, fields, user_id="ana", session_id=session_id,
                                                             performer_id="ana"))
    return session_id, manager.journal("ana", session_id)


def _read_everything(root, session_id, path):
    """Every reader of a journal: each may raise only a JournalError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a TornTailWarning is the documented report of a torn tail
        for reader in (read_journal, replay, replay_history, read_boundaries):
            try:
                reader(path)
            except JournalError:
                pass
        SessionManager(root).sessions("ana")  # never raises for damage: lists it
        for action in ("show", "replay"):
            assert main(["sessions", action, session_id, "--user", "ana", "--root", str(root)]) in (0, 2)
        assert main(["sessions", "list", "--user", "ana", "--root", str(root)]) == 0


def test_a_record_whose_op_is_a_list_is_journal_corrupt_everywhere(tmp_path, capsys):
    # The failing input: "op": [] gave TypeError out of replay and `draftlens sessions show`.
    session_id, path = _journal(tmp_path)
    lines = path.read_bytes().split(b"\n")
    record = json.loads(lines[2])
    record["op"] = []
    lines[2] = json.dumps(record).encode()
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=r":3: unknown store op \[\]"):
        replay(path)
    assert main(["sessions", "show", session_id, "--user", "ana", "--root", str(tmp_path)]) == 2
    assert "unknown store op []" in capsys.readouterr().err


def test_a_record_nested_too_deep_is_journal_corrupt(tmp_path):
    session_id, path = _journal(tmp_path)
    lines = path.read_bytes().split(b"\n")
    record = json.loads(lines[3])  # set_params
    record["params"] = {"deep": json.loads(_nested(900))}
    lines[3] = json.dumps(record).encode()
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=":4: set_params does not apply: params: nested more than 255"):
        replay(path)


FIELDS = ["kind", "op", "user_id", "session_id", "performer_id", "timestamp", "record_id", "draft", "instance_id",
          "lens_id", "input", "params", "to_version", "event", "source", "extra"]


@given(line=st.integers(1, 6), field=st.sampled_from(FIELDS), value=JSON, delete=st.booleans())
def test_a_journal_with_any_field_of_any_record_changed_gives_only_journal_errors(line, field, value, delete):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        session_id, path = _journal(root)
        lines = path.read_bytes().split(b"\n")
        record = json.loads(lines[line - 1])
        if delete:
            record.pop(field, None)
        else:
            record[field] = value
        lines[line - 1] = json.dumps(record).encode()
        path.write_bytes(b"\n".join(lines))
        _read_everything(root, session_id, path)


@given(line=st.integers(1, 7), junk=st.binary(max_size=40), cut=st.integers(0, 400))
def test_a_journal_with_a_line_replaced_or_cut_gives_only_journal_errors(line, junk, cut):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        session_id, path = _journal(root)
        lines = path.read_bytes().split(b"\n")
        lines[line - 1] = junk.replace(b"\n", b" ")
        data = b"\n".join(lines)
        path.write_bytes(data[: len(data) - cut] if cut < len(data) else data)
        _read_everything(root, session_id, path)
