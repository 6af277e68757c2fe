"""The journal: record format, durability rules, torn tails, damage named by line, replay."""

import json
import os
import pickle
import re
import threading
import uuid
import warnings
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drafts import OutputOf, Store, StoreError, make_draft, pack_drafts
from drafts.errors import (
    InvalidSessionArgument,
    JournalCorrupt,
    JournalError,
    RecordTooLarge,
    SessionAlreadyClosed,
)
from drafts.journal import (
    Recorder,
    TornTailWarning,
    apply_event,
    check_id_scheme,
    journal_path,
    read_boundaries,
    read_journal,
    replay,
    replay_history,
    store_event,
    utc_timestamp,
)
from drafts.sessions import SessionManager
from tests import strategies as ts

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ENVELOPE = {"kind", "user_id", "session_id", "performer_id", "timestamp", "record_id"}


class Journal:
    """One started session and helpers to append store events to it."""

    def __init__(self, root, user_id="u", performer_id="p", **recorder_options):
        self.manager = SessionManager(root)
        self.user_id = user_id
        self.performer_id = performer_id
        self.session_id = self.manager.start(user_id, performer_id).session_id
        self.recorder = Recorder(root, **recorder_options)
        self.path = self.manager.journal(user_id, self.session_id)

    def event(self, op, **fields):
        return store_event(op, fields, user_id=self.user_id, session_id=self.session_id,
                           performer_id=self.performer_id)

    def append(self, op, **fields):
        self.recorder.append(self.user_id, self.session_id, self.event(op, **fields))

    def lines(self):
        return self.path.read_bytes().split(b"\n")


def _three_drafts(tmp_path):
    j = Journal(tmp_path)
    for i in range(3):
        j.append("add_draft", draft=make_draft({"i": i}))
    return j


# -- record format ------------------------------------------------------------------------------


def test_timestamps_are_utc_iso_milliseconds_z():
    assert TS.fullmatch(utc_timestamp())


def test_each_record_is_one_sorted_json_line_with_the_envelope(tmp_path):
    j = Journal(tmp_path)
    d = make_draft({"b": 1, "a": [1, 2]})
    j.append("add_draft", draft=d)
    j.append("add_lens_instance", instance_id="i", lens_id="text.upper", input=d, params={"k": 1})
    raw = j.path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 3
    for line in raw.splitlines():
        record = orjson.loads(line)
        assert orjson.dumps(record, option=orjson.OPT_SORT_KEYS) == line
        assert ENVELOPE <= set(record)
        assert record["user_id"] == "u" and record["session_id"] == j.session_id
        assert TS.fullmatch(record["timestamp"]) and uuid.UUID(record["record_id"]).version == 4
    start, add, apply = (orjson.loads(line) for line in raw.splitlines())
    assert start["kind"] == "session" and start["event"] == "start" and start["source"] == "session_manager"
    assert set(add) == ENVELOPE | {"op", "draft"} and add["op"] == "add_draft" and add["performer_id"] == "p"
    assert add["draft"] == orjson.loads(d.to_json())
    assert apply["input"] == {"draft": d.id} and apply["params"] == {"k": 1}
    assert replay(j.path) == Store.empty().add_draft(d).add_lens_instance("i", "text.upper", d.id, {"k": 1})


def test_store_events_encode_inputs_and_params_canonically():
    meta = dict(user_id="u", session_id="s", performer_id="p")
    nested = make_draft({"x": 1})
    cases = [
        ({"input": None}, None),
        ({"input": "abc"}, {"draft": "abc"}),
        ({"input": nested}, {"draft": nested.id}),
        ({"input": OutputOf("up")}, {"outputOf": "up"}),
    ]
    for fields, encoded in cases:
        record = store_event("add_lens_instance", {"instance_id": "i", "lens_id": "l", **fields}, **meta)
        assert record["input"] == encoded and record["params"] == {}
    record = store_event("set_params", {"instance_id": "i", "params": {"$k": [nested], "b": 2}}, **meta)
    # '$' keys escaped and nested drafts embedded whole, exactly as in Draft.to_json.
    assert record["params"] == {"$$k": [{"$draft": orjson.loads(nested.to_json())}], "b": 2}
    assert store_event("undo", {"to_version": 3}, **meta)["to_version"] == 3


@pytest.mark.parametrize(
    ("op", "fields", "message"),
    [
        ("explode", {}, "unknown store event 'explode'"),
        ("add_draft", {}, r"missing \['draft'\]"),
        ("add_draft", {"draft": make_draft(1), "extra": 1}, r"unexpected \['extra'\]"),
        ("add_draft", {"draft": {"id": "x"}}, "draft must be a Draft"),
        ("add_lens_instance", {"instance_id": "i", "lens_id": "l", "input": 3}, "input must be a draft id"),
        ("add_lens_instance", {"instance_id": "", "lens_id": "l", "input": None}, "instance_id must be a non-empty str"),
        ("set_params", {"instance_id": "i", "params": {"x": float("nan")}}, r"params\['x'\]: nan is not allowed"),
        ("set_params", {"instance_id": "i", "params": [1]}, "params must be a mapping"),
        ("undo", {"to_version": -1}, "to_version must be an int >= 0"),
    ],
)
def test_store_event_refuses_bad_operations(op, fields, message):
    with pytest.raises(JournalError, match=message):
        store_event(op, fields, user_id="u", session_id="s", performer_id="p")


@pytest.mark.parametrize(("who", "value"), [("user_id", "../x"), ("session_id", ""), ("performer_id", " ")])
def test_store_event_refuses_bad_envelope_ids(who, value):
    meta = dict(user_id="u", session_id="s", performer_id="p") | {who: value}
    with pytest.raises(JournalError, match=who):
        store_event("remove_draft", {"draft_id": "d"}, **meta)


# -- writing rules ----------------------------------------------------------------------------


def test_a_record_over_the_size_limit_is_refused_and_nothing_is_written(tmp_path):
    j = Journal(tmp_path, max_record_bytes=2048)
    before = j.path.read_bytes()
    with pytest.raises(RecordTooLarge) as info:
        j.append("add_draft", draft=make_draft({"text": "x" * 5000}))
    error = info.value
    assert isinstance(error, JournalError) and isinstance(error, ValueError)
    assert error.limit == 2048 and error.size > 5000
    assert f"is {error.size} bytes, over the journal's limit of 2048 bytes" in str(error)
    assert j.path.read_bytes() == before
    j.append("add_draft", draft=make_draft({"text": "x" * 100}))  # small ones still go in


def test_the_default_limit_is_one_mebibyte(tmp_path):
    j = Journal(tmp_path)
    assert j.recorder.max_record_bytes == 1 << 20
    with pytest.raises(RecordTooLarge, match="limit of 1048576 bytes"):
        j.append("add_draft", draft=make_draft("x" * (1 << 20)))
    with pytest.raises(JournalError, match="max_record_bytes must be an int >= 1024"):
        Recorder(tmp_path, max_record_bytes=10)


def _bad_records(j):
    good = j.event("remove_draft", draft_id="d")
    return [
        ("not a mapping", ["x"], "must be a mapping"),
        ("unknown kind", good | {"kind": "other"}, "unknown record kind 'other'"),
        ("unknown op", good | {"op": "fly"}, "unknown store op 'fly'"),
        ("extra key", good | {"note": 1}, r"unexpected \['note'\]"),
        ("missing key", {k: v for k, v in good.items() if k != "timestamp"}, r"missing \['timestamp'\]"),
        ("bad timestamp", good | {"timestamp": "2026-01-01 10:00"}, "is not UTC ISO 8601"),
        ("bad record id", good | {"record_id": "1"}, "is not a UUIDv4"),
        ("other session", good | {"session_id": "sess_other"}, "not this journal's"),
        ("bad source", {**j.manager._event("end", "u", j.session_id, "p").to_record(), "source": "x"},
         "source must be 'session_manager'"),
    ]


def test_malformed_records_are_refused_and_nothing_is_written(tmp_path):
    j = Journal(tmp_path)
    before = j.path.read_bytes()
    for name, record, message in _bad_records(j):
        with pytest.raises(JournalError, match=message):
            j.recorder.append("u", j.session_id, record)
        assert j.path.read_bytes() == before, name


def test_framing_first_the_start_one_start_nothing_after_the_end(tmp_path):
    j = Journal(tmp_path)
    other = "sess_" + "0" * 32
    record = store_event("remove_draft", {"draft_id": "d"}, user_id="u", session_id=other, performer_id="p")
    with pytest.raises(JournalError, match="a journal begins with its session's start event"):
        j.recorder.append("u", other, record)
    assert not journal_path(tmp_path, "u", other).exists()
    again = j.manager._event("start", "u", j.session_id, "p").to_record()
    with pytest.raises(JournalError, match="already has its start event"):
        j.recorder.append("u", j.session_id, again)
    j.manager.end("u", j.session_id, "p")
    before = j.path.read_bytes()
    with pytest.raises(SessionAlreadyClosed, match="has ended"):
        j.append("add_draft", draft=make_draft(1))
    assert j.path.read_bytes() == before


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "x\x00", "../../etc", "é" * 150, 5, None])
def test_ids_that_could_escape_the_journal_root_are_refused(tmp_path, bad):
    for args in ((bad, "s"), ("u", bad)):
        with pytest.raises(InvalidSessionArgument) as info:
            journal_path(tmp_path, *args)
        assert isinstance(info.value, ValueError)
        with pytest.raises(InvalidSessionArgument):
            Recorder(tmp_path).append(*args, {})
    assert list(tmp_path.iterdir()) == []


def _fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name descriptors")
def test_one_write_on_an_append_descriptor_then_fsync_of_file_and_new_directory(tmp_path, monkeypatch):
    import fcntl

    calls = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd, data):
        calls.append(("write", _fd_path(fd), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND), len(data)))
        return real_write(fd, data)

    def fsync(fd):
        calls.append(("fsync", _fd_path(fd)))
        return real_fsync(fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    j = Journal(tmp_path)
    path, sessions = str(j.path), str(j.path.parent)
    assert [c for c in calls if c[0] == "write"] == [("write", path, True, len(j.path.read_bytes()))]
    # The new file's directory entry is made durable, then the record itself.
    write = next(i for i, c in enumerate(calls) if c[0] == "write")
    assert calls.index(("fsync", sessions)) < write < calls.index(("fsync", path))
    calls.clear()
    j.append("add_draft", draft=make_draft(1))
    assert [c[:3] for c in calls] == [("write", path, True), ("fsync", path)]  # no dir fsync: not created


def test_a_short_write_or_failed_fsync_leaves_nothing_behind(tmp_path, monkeypatch):
    j = Journal(tmp_path)
    before = j.path.read_bytes()
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError, match="short write"):
        j.append("add_draft", draft=make_draft(1))
    assert j.path.read_bytes() == before
    monkeypatch.setattr(os, "write", real_write)
    failures = iter([OSError("EIO")])

    def fsync(fd):
        error = next(failures, None)
        if error:
            raise error
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="EIO"):
        j.append("add_draft", draft=make_draft(2))
    assert j.path.read_bytes() == before


def test_appends_from_many_threads_stay_whole_lines(tmp_path):
    j = Journal(tmp_path)

    def work(k):
        rec = Recorder(tmp_path)
        for i in range(15):
            rec.append("u", j.session_id, j.event("add_draft", draft=make_draft({"k": k, "i": i, "pad": "x" * 3000})))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_journal(j.path).records
    assert len(records) == 1 + 8 * 15
    assert len(replay(j.path).drafts) == 8 * 15


# -- torn tails ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b'{"kind":"store","op":"add_dr', b"{", json.dumps({"complete": "but no newline"}).encode()])
def test_a_torn_last_line_is_reported_and_ignored_never_misread(tmp_path, tail):
    j = _three_drafts(tmp_path)
    with open(j.path, "ab") as fh:
        fh.write(tail)
    with pytest.warns(TornTailWarning, match=rf"s?\.jsonl:5: ignored a torn last line of {len(tail)} bytes"):
        readout = read_journal(j.path)
    assert readout.torn_tail and readout.torn_bytes == len(tail) and readout.torn_line == 5
    assert len(readout.records) == 4
    with pytest.warns(TornTailWarning):
        assert len(replay(j.path).drafts) == 3


def test_the_next_append_removes_a_torn_tail(tmp_path):
    j = _three_drafts(tmp_path)
    with open(j.path, "ab") as fh:
        fh.write(b'{"kind":"sto')
    with pytest.warns(TornTailWarning, match="removed a torn last line of 12 bytes"):
        j.append("add_draft", draft=make_draft({"i": 3}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        readout = read_journal(j.path)
    assert not readout.torn_tail and len(readout.records) == 5


def test_a_journal_whose_only_line_is_torn_has_no_session(tmp_path):
    path = journal_path(tmp_path, "u", "s")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"kind":"session","ev')
    with pytest.warns(TornTailWarning):
        assert read_journal(path).records == ()
    assert read_boundaries(path).start is None
    with pytest.warns(TornTailWarning):
        assert replay(path) == Store.empty()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_cutting_a_journal_anywhere_keeps_exactly_the_lines_that_ended(tmp_path, data):
    path = tmp_path / "cut" / "users/u/sessions/s.jsonl"
    if not path.exists():
        j = Journal(tmp_path / "cut")
        for i in range(4):
            j.append("add_draft", draft=make_draft({"i": i, "pad": "y" * i * 7}))
        j.path.rename(path.parent / "full")
    full = (path.parent / "full").read_bytes()
    cut = data.draw(st.integers(0, len(full)))
    path.write_bytes(full[:cut])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        readout = read_journal(path)
    ended = full[:cut].count(b"\n")
    assert len(readout.records) == ended
    assert [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in readout.records] == full.split(b"\n")[:ended]
    torn = cut != (full[:cut].rfind(b"\n") + 1)
    assert readout.torn_tail == torn == bool(caught)


# -- damage is refused, naming the line ---------------------------------------------------------


def _tamper_payload(line):
    record = orjson.loads(line)
    record["draft"]["payload"]["i"] = 7  # the id still says 2
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def _set(index, value):
    return lambda lines: lines.__setitem__(index, value(lines[index]) if callable(value) else value)


@pytest.mark.parametrize(
    ("damage", "line", "message"),
    [
        (_set(2, b"{not json"), 3, "not valid JSON"),
        (_set(2, b""), 3, "not valid JSON"),
        (_set(3, b"[1, 2]"), 4, "must be a JSON object"),
        (_set(3, b'{"kind":"store","op":"add_dr'), 4, "not valid JSON"),  # complete last line, not valid
        (_set(1, b'{"kind":"weird"}'), 2, "unknown record kind 'weird'"),
        (_set(1, lambda raw: raw.replace(b'"op":"add_draft"', b'"op":"explode"')), 2, "unknown store op 'explode'"),
        (_set(3, _tamper_payload), 4, "does not match the content"),
        (_set(2, lambda raw: raw.replace(b'"draft":{', b'"draft":{"x":1,')), 3, "add_draft does not apply"),
        (_set(0, lambda raw: raw.replace(b'"event":"start"', b'"event":"end"')), 1, "must be its session's start"),
        (lambda lines: lines.insert(0, lines[1]), 1, "must be its session's start"),
        (lambda lines: lines.insert(2, lines[0]), 3, "a second start event"),
        (_set(2, lambda raw: raw.replace(b'"user_id":"u"', b'"user_id":"v"')), 3, "user_id 'v' differs"),
    ],
)
def test_other_damage_is_refused_naming_file_and_line(tmp_path, damage, line, message):
    j = _three_drafts(tmp_path)
    lines = j.lines()
    damage(lines)
    j.path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=message) as info:
        replay(j.path)
    assert info.value.line == line and info.value.path == str(j.path)
    assert str(info.value).startswith(f"{j.path}:{line}: ")
    assert isinstance(info.value, ValueError)


def test_an_event_that_does_not_apply_is_refused_naming_its_line(tmp_path):
    j = _three_drafts(tmp_path)
    j.append("remove_lens_instance", instance_id="ghost")
    with pytest.raises(JournalCorrupt, match=r":5: remove_lens_instance does not apply: unknown lens instance 'ghost'"):
        replay(j.path)


def test_a_record_after_the_end_is_refused(tmp_path):
    j = _three_drafts(tmp_path)
    extra = j.lines()[1]
    j.manager.end("u", j.session_id, "p")
    with open(j.path, "ab") as fh:
        fh.write(extra + b"\n")
    with pytest.raises(JournalCorrupt, match=r":6: a record after the session's end event on line 5"):
        read_journal(j.path)


def test_the_recorder_refuses_to_append_after_a_damaged_last_line(tmp_path):
    j = _three_drafts(tmp_path)
    with open(j.path, "ab") as fh:
        fh.write(b"{oops}\n")
    before = j.path.read_bytes()
    with pytest.raises(JournalCorrupt, match=r":5: not valid JSON"):
        j.append("add_draft", draft=make_draft("z"))
    assert j.path.read_bytes() == before


def test_errors_pickle_with_their_details():
    for error in (JournalCorrupt("/x.jsonl", 3, "bad"), RecordTooLarge(10, 5, "record")):
        again = pickle.loads(pickle.dumps(error))
        assert str(again) == str(error) and vars(again) == vars(error)


# -- apply_event ----------------------------------------------------------------------------------


def test_apply_event_refuses_what_is_not_a_store_event(tmp_path):
    j = Journal(tmp_path)
    start = read_journal(j.path).records[0]
    with pytest.raises(JournalError, match="not a store event"):
        apply_event(Store.empty(), start)
    with pytest.raises(JournalError, match="replay it with replay_history"):
        apply_event(Store.empty(), j.event("undo", to_version=0))
    with pytest.raises(JournalError, match="unknown store op 'fly'"):
        apply_event(Store.empty(), j.event("remove_draft", draft_id="d") | {"op": "fly"})
    with pytest.raises(StoreError, match="unknown draft"):
        apply_event(Store.empty(), j.event("remove_draft", draft_id="d"))


def test_replay_history_follows_undo_and_redo(tmp_path):
    j = Journal(tmp_path)
    a, b = make_draft("a"), make_draft("b")
    j.append("add_draft", draft=a)  # version 1
    j.append("add_draft", draft=b)  # version 2
    j.append("undo", to_version=1)
    j.append("add_draft", draft=a)  # no change: no version
    j.append("redo", to_version=2)
    history = replay_history(j.path)
    assert [v.number for v in history.versions] == [0, 1, 2]
    assert history.current.number == 2 and list(replay(j.path).drafts) == [a.id, b.id]
    j.append("undo", to_version=9)
    with pytest.raises(JournalCorrupt, match=r":7: undo does not apply: no version 9"):
        replay(j.path)


def test_read_boundaries_reads_start_and_end_only(tmp_path):
    j = _three_drafts(tmp_path)
    bounds = read_boundaries(j.path)
    assert bounds.start == check_id_scheme(read_journal(j.path).records[0], j.path) and bounds.end is None
    end = j.manager.end("u", j.session_id, "p")
    assert read_boundaries(j.path).end == end.to_record()
    assert read_boundaries(tmp_path / "missing.jsonl").start is None


# -- properties ------------------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["add_draft", "add_lens_instance", "set_params", "remove_lens_instance", "remove_draft"]),
        st.integers(0, 7),
        ts.json_values(6),
    ),
    min_size=1,
    max_size=14,
)


def _params(value):
    return value if isinstance(value, dict) else {"value": value}


@st.composite
def store_histories(draw):
    """Random store operations applied directly; returns the (op, fields) that changed the store."""
    store = Store.empty()
    events = []
    pool = draw(st.lists(st.one_of(ts.drafts(6), ts.carriers(max_frames=3)), min_size=1, max_size=4))
    store = store.add_draft(pool[0])
    events.append(("add_draft", {"draft": pool[0]}))
    for op, k, value in draw(OPS):
        drafts, instances = list(store.drafts), list(store.lens_instances)
        if op == "add_draft":
            fields = {"draft": pool[k % len(pool)] if k < 4 else pack_drafts([pool[0], value])}
        elif op == "add_lens_instance":
            choices = [None, *drafts, *(OutputOf(i) for i in instances)]
            source = choices[k % len(choices)]
            params = _params(value) if k % 3 else {"nested": pool[0], "$k": value}
            fields = {"instance_id": f"i{k}", "lens_id": "lens.x", "input": source, "params": params}
        elif op == "set_params" and instances:
            fields = {"instance_id": instances[k % len(instances)], "params": _params(value)}
        elif op == "remove_lens_instance" and instances:
            fields = {"instance_id": instances[k % len(instances)]}
        elif op == "remove_draft" and drafts:
            fields = {"draft_id": drafts[k % len(drafts)]}
        else:
            continue
        method = getattr(store, op)
        try:
            changed = method(*fields.values())
        except StoreError:
            continue
        if changed is not store:
            store = changed
            events.append((op, fields))
    return store, events


def _write(root, events):
    j = Journal(root)
    for op, fields in events:
        j.append(op, **fields)
    return j


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=store_histories())
def test_replay_of_a_journal_equals_the_store_built_directly(tmp_path_factory, history):
    store, events = history
    j = _write(tmp_path_factory.mktemp("j"), events)
    replayed = replay(j.path)
    assert replayed == store
    assert list(replayed.drafts) == list(store.drafts)
    assert list(replayed.lens_instances.items()) == list(store.lens_instances.items())


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=store_histories(), stamps=st.data())
def test_timestamps_and_record_ids_never_influence_the_replayed_store(tmp_path_factory, history, stamps):
    store, events = history
    j = _write(tmp_path_factory.mktemp("t"), events)
    records = list(read_journal(j.path).records)
    for record in records:
        moment = stamps.draw(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
        record["timestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        record["record_id"] = str(uuid.UUID(int=stamps.draw(st.integers(0, 2**128 - 1)), version=4))
    j.path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records))
    assert replay(j.path) == store


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=store_histories())
def test_every_record_has_its_own_record_id(tmp_path_factory, history):
    _, events = history
    j = _write(tmp_path_factory.mktemp("r"), events)
    j.manager.end("u", j.session_id, "p")
    ids = [r["record_id"] for r in read_journal(j.path).records]
    assert len(ids) == len(events) + 2 == len(set(ids))
