"""Plan sessions: the frozen intent of a recompute, before anything runs.

The first of a recompute's three stages (plan → ``derived.schedule`` →
``derived.assemble``); it imports neither of the others.

``plan_session(store)`` resolves every lens instance (lens, params, input,
batching, frames) and names the jobs a recompute will run: one per frame of a
batch, one per non-batched call, and one *expanding* job for an instance whose
frames are another instance's outputs (it expands into per-frame jobs when
executed). Ids are hashes of what the plan is made of (store content, lens ids
and versions, caps): no clock, no randomness, no memo. The only field that
depends on the memo is each job's ``decision`` (``run`` or ``reused``), made
here and nowhere else.
"""

from __future__ import annotations

from collections import deque
from functools import cached_property
from typing import Any

import attrs
from pyrsistent import PMap, thaw

from drafts.canonical import canonical_bytes, freeze_with_canon
from drafts.carrier import carrier_frames
from drafts.draft import Draft, make_draft
from drafts.store import OutputOf, Store
from lenses import default_registry
from lenses.errors import ParamsError, UnknownLensError
from lenses.lens import Lens
from lenses.params import resolve_params
from lenses.registry import Registry
from lenses.result import FAILED, ExecutionResult

from .caps import Caps
from .claims import Claims, media_source_paths, who
from .diagnostics import DerivedWarning
from .evaluate import CallOutcome
from .ids import digest
from .order import evaluation_order, is_batched
from .reuse import reusable

__all__ = [
    "BatchPlanSession",
    "SessionId",
    "SessionJob",
    "SessionJobId",
    "plan_session",
    "CHUNK_FRAMES",
]

CHUNK_FRAMES = 256
"""Frames per chunk: the unit executors ship and the memo caches whole."""


@attrs.frozen(repr=False)
class SessionId:
    """Opaque id of one plan session; equal for equal plans in any process."""

    _token: str

    def __str__(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return f"SessionId({self._token[:12]}…)"


@attrs.frozen(repr=False, cache_hash=True)  # ids key every job map: hash once, not per lookup
class SessionJobId:
    """Opaque id of one job, meaningful only inside its session."""

    _token: str

    def __str__(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return f"SessionJobId({self._token[:12]}…)"


def job_id_for(session_id: SessionId, instance_id: str, frame: int | str | None) -> SessionJobId:
    """``frame``: a frame index, None for a non-batched call, "*" for an expanding job."""
    return SessionJobId(digest("job", str(session_id), instance_id, frame))


@attrs.frozen
class SessionJob:
    """One intended job. ``decision`` is left out of equality (it depends on the memo)."""

    job_id: SessionJobId
    job_type: str
    lens_instance_id: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: PMap
    depends_on: tuple[SessionJobId, ...]
    decision: str = attrs.field(eq=False)
    frame_index: int | None = None
    expands: bool = False
    command: tuple[str, ...] = ()
    problem: str | None = None  # a validation failure known before anything runs (the job will not run)


@attrs.frozen
class InstancePlan:
    """Everything resolved about one instance (internal to derived)."""

    instance_id: str
    lens_id: str
    lens: Lens | None
    job_type: str
    params: Any
    params_data: PMap
    params_key: bytes
    batch_id: str | None
    problem: DerivedWarning | None
    source: Any  # None | draft id | OutputOf
    input_draft: Draft | None
    batched: bool
    expanding: bool
    frames: Any  # FramePlan | None


@attrs.frozen
class FramePlan:
    """The evaluated frames of a batch and what the memo already knows of them."""

    total: int
    drafts: tuple[Draft, ...]
    source_ids: tuple[str | None, ...]
    malformed: bool
    call_keys: tuple[Any, ...]
    chunk_keys: tuple[Any, ...]
    cached_chunks: tuple[Any, ...]  # per chunk: the cached chunk, or None
    cached_calls: tuple[Any, ...]  # per frame: a reusable CallOutcome, or None
    described: tuple[Any, ...]  # per frame: describe() dict or None


def call_key(lens: Lens, params_key: bytes, draft: Draft | None, context: tuple, described: Any,
             limit: int) -> tuple:
    """The memo key of one call: everything that can change its outcome.

    Lens id and version, resolved params, input draft id, and the output
    ``limit`` the call is read to (a truncated outcome and its overflow flag
    belong to that limit); for a lens that reads its ``FrameContext``, the
    whole context ``(instance id, batch id, frame index)`` — two instances of
    it may give different outputs; for a media lens, the engine. The lens's
    code fingerprint too, so the memo never hands out results of other code
    under the same version label (see ``lensCodeChanged``).
    """
    key = (lens.id, lens.version, lens.code_fingerprint, params_key, draft.id if draft is not None else None, limit)
    if lens.takes_context:
        key += context
    if described is not None:
        key += (described.get("engine"),)
    return key


def _canon(value: Any) -> Any:
    return freeze_with_canon(value, "params", Draft)[1]


def _describe(lens: Lens, draft: Draft, params: Any, context: tuple) -> Any:
    if lens.describe is None:
        return None
    from lenses.lens import FrameContext

    try:
        return lens.describe(draft, params, FrameContext(*context)) if lens.takes_context else lens.describe(draft, params)
    except Exception as exc:  # noqa: BLE001 - a describe error is a validation failure of that frame
        from .evaluate import describe_exception

        return {"error": describe_exception(exc)}


class Planner:
    """Resolves instances and frames; shared by plan_session and recompute."""

    def __init__(self, store: Store, registry: Registry, caps: Caps, memo: Any, force: bool = False):
        self.store = store
        self.registry = registry
        self.caps = caps
        self.memo = memo
        # force: decide "run" for every job; results still go into the memo.
        self.lookup = None if force else memo
        self._claims: Claims | None = None

    @property
    def claims(self) -> Claims:
        """Every media job's final path so far, and the store's media sources (made on first use)."""
        if self._claims is None:
            self._claims = Claims(media_source_paths(self.store.drafts.values()))
        return self._claims

    def claim(self, jobs: list[tuple[str, int | None, Any]]) -> dict[int, dict]:
        """Check ``(instance id, frame index, described)`` jobs against every claim so far.

        Returns ``{position: described with an error}`` for the jobs that may not write.
        """
        named = [(who(instance_id, frame), path, position)
                 for position, (instance_id, frame, info) in enumerate(jobs)
                 if info and "error" not in info for path in info.get("outputs", ())]
        errors = self.claims.check([(name, path) for name, path, _ in named])
        marked: dict[int, dict] = {}
        for index, message in errors.items():
            position = named[index][2]
            shown = {key: value for key, value in jobs[position][2].items() if key != "outputs"}
            marked.setdefault(position, {**shown, "error": message})
        return marked

    def resolve(self, instance_id: str, failed_upstream: set[str]) -> InstancePlan:
        inst = self.store.lens_instances[instance_id]
        base = dict(instance_id=instance_id, lens_id=inst.lens_id, source=inst.input)

        def problem(code: str, message: str, lens=None, job_type="Convert", **details) -> InstancePlan:
            warning = DerivedWarning(code, message, instance_id, None, None, details)
            return InstancePlan(**base, lens=lens, job_type=job_type, params=None, params_data=inst.params,
                                params_key=canonical_bytes(_canon(inst.params)), batch_id=None, problem=warning,
                                input_draft=None, batched=False, expanding=False, frames=None)

        try:
            lens = self.registry.get(inst.lens_id)
        except UnknownLensError as exc:
            return problem("unknownLens", str(exc), lens_id=inst.lens_id)
        try:
            params, resolved = resolve_params(lens, inst.params)
        except ParamsError as exc:
            return problem("invalidParams", str(exc), lens=lens, job_type=lens.job_type)
        frozen, canon = freeze_with_canon(resolved, "params", Draft)
        params_key = canonical_bytes(canon)
        batch_id = digest("batch", instance_id, lens.id, lens.version, canon)
        common = dict(**base, lens=lens, job_type=lens.job_type, params=params, params_data=frozen,
                      params_key=params_key, batch_id=batch_id, problem=None)
        source = inst.input
        if isinstance(source, OutputOf):
            upstream = source.instance_id
            if upstream in failed_upstream or upstream not in self.store.lens_instances:
                return problem(
                    "missingInput",
                    f"input OutputOf({upstream!r}) has no derived outputs (that instance failed or is unknown)",
                    lens=lens, job_type=lens.job_type, upstream=upstream,
                )
            batched = lens.batch_behavior != "disable"  # the packed outputs are a packDrafts carrier
            return InstancePlan(**common, input_draft=None, batched=batched, expanding=True, frames=None)
        if source is None:
            return InstancePlan(**common, input_draft=None, batched=False, expanding=False, frames=None)
        draft = self.store.drafts.get(source)
        if draft is None:
            return problem("missingInput", f"input draft {source!r} is not in the store", lens=lens,
                           job_type=lens.job_type, input=str(source))
        if not is_batched(lens, draft):
            return InstancePlan(**common, input_draft=draft, batched=False, expanding=False, frames=None)
        plan = InstancePlan(**common, input_draft=draft, batched=True, expanding=False, frames=None)
        return attrs.evolve(plan, frames=self.frames(plan, draft, claim=False))

    def frames(self, plan: InstancePlan, carrier: Draft, claim: bool = True) -> FramePlan:
        """Plan the frames of a carrier: which exist, which the memo already holds.

        ``claim``: check the frames' output paths against every claim so far
        now (an instance expanded at run time); plan time checks all
        instances at once instead (``build_plan``).
        """
        values = carrier_frames(carrier)
        malformed = values is None
        values = () if values is None else values
        total = len(values)
        evaluated = min(total, self.caps.max_frames_evaluated)
        fp = self.frames_from(plan, values[:evaluated] if evaluated < total else values, 0, claim)
        return attrs.evolve(fp, total=total, malformed=malformed)

    def frames_from(self, plan: InstancePlan, values, offset: int = 0, claim: bool = True) -> FramePlan:
        """Plan the frames ``offset, offset + 1, ...`` of a batch, given their values (drafts or inline JSON).

        ``offset`` is a multiple of ``CHUNK_FRAMES``, so a batch planned block
        by block (as its upstream frames finish, ``derived.schedule``) gets the
        same chunk keys as one planned whole. ``total`` is the block's length.
        """
        lens = plan.lens
        frames = list(values)
        evaluated = len(frames)
        source_ids = [f.id if type(f) is Draft else None for f in frames]
        drafts = [f if type(f) is Draft else make_draft(f) for f in frames]
        described: list[Any] = [None] * evaluated
        if lens.describe is not None:
            described = [_describe(lens, d, plan.params, (plan.instance_id, plan.batch_id, offset + i))
                         for i, d in enumerate(drafts)]
            if claim:
                marked = self.claim([(plan.instance_id, offset + i, info) for i, info in enumerate(described)])
                for index, info in marked.items():
                    described[index] = info
        memo = self.lookup
        cap = self.caps.max_drafts_emitted_per_frame
        use_chunks = memo is not None and lens.describe is None
        chunk_keys, cached_chunks = [], []
        for start in range(0, evaluated, CHUNK_FRAMES):
            ids = tuple([d.id for d in drafts[start:start + CHUNK_FRAMES]])
            # Inline frames and Draft frames of equal content share ids but not frameSourceDraftId.
            inline = tuple([i for i, s in enumerate(source_ids[start:start + CHUNK_FRAMES]) if s is None])
            key = (plan.batch_id, lens.code_fingerprint, offset + start, cap, ids, inline)
            chunk_keys.append(key)
            cached_chunks.append(memo.get_chunk(key) if use_chunks else None)
        # Keys and lookups only with a memo, and only for frames whose chunk it does not hold whole.
        call_keys: list[Any] = [None] * evaluated
        cached_calls: list[Any] = [None] * evaluated
        for chunk_no, start in enumerate(range(0, evaluated, CHUNK_FRAMES)):
            if cached_chunks[chunk_no] is not None or self.memo is None:
                continue
            end = min(start + CHUNK_FRAMES, evaluated)
            for index in range(start, end):
                call_keys[index] = call_key(lens, plan.params_key, drafts[index],
                                            (plan.instance_id, plan.batch_id, offset + index), described[index], cap)
            if memo is not None:
                memo.prefetch(call_keys[start:end])
                for index in range(start, end):
                    outcome = memo.get_call(call_keys[index])
                    if reusable(lens, outcome, drafts[index]):
                        cached_calls[index] = outcome
        return FramePlan(
            total=evaluated, drafts=tuple(drafts), source_ids=tuple(source_ids), malformed=False,
            call_keys=tuple(call_keys), chunk_keys=tuple(chunk_keys), cached_chunks=tuple(cached_chunks),
            cached_calls=tuple(cached_calls), described=tuple(described),
        )

    def single_call(self, plan: InstancePlan, draft: Draft | None, claim: bool = True) -> tuple[Any, Any, Any]:
        """``(call key, reusable cached outcome or None, describe dict or None)`` of a non-batched call."""
        described = _describe(plan.lens, draft, plan.params, (plan.instance_id, None, None)) if draft else None
        if claim and described:
            described = self.claim([(plan.instance_id, None, described)]).get(0, described)
        key = call_key(plan.lens, plan.params_key, draft, (plan.instance_id, None, None), described,
                       self.caps.max_total_drafts_per_recompute)
        cached = self.lookup.get_call(key) if self.lookup is not None else None
        return key, (cached if reusable(plan.lens, cached, draft) else None), described


def describe_failure(described: Any, engine_default: str = "") -> CallOutcome | None:
    """A validation failure found at plan time, as the outcome of that job (it never runs)."""
    if not described or "error" not in described:
        return None
    result = ExecutionResult(
        job_id=None, status=FAILED, failure_class="validation", command=tuple(described.get("argv", ())),
        engine=described.get("engine", engine_default), exit_code=None, message=described["error"],
    )
    return CallOutcome(error_code="executionFailed", error=f"validation failure: {described['error']}", result=result)


@attrs.frozen(slots=False, eq=False, repr=False)
class BatchPlanSession:
    """The immutable intent of one recompute: jobs, inputs, params, dependencies.

    Build one with ``plan_session(store)``; nothing here runs, schedules or
    changes. ``topological_order`` is a logical order, not a schedule.
    """

    session_id: SessionId
    _instances: tuple[InstancePlan, ...]
    _decisions: Any  # instance id -> tuple of decisions (per frame) or a single decision

    @cached_property
    def _jobs(self) -> dict[SessionJobId, SessionJob]:
        jobs: dict[SessionJobId, SessionJob] = {}
        last_jobs: dict[str, tuple[SessionJobId, ...]] = {}
        for ip in self._instances:
            if ip.problem is not None:
                last_jobs[ip.instance_id] = ()
                continue
            decisions = self._decisions[ip.instance_id]
            mine: list[SessionJobId] = []
            if ip.expanding:
                upstream = ip.source.instance_id
                jid = job_id_for(self.session_id, ip.instance_id, "*")
                jobs[jid] = SessionJob(jid, ip.job_type, ip.instance_id, (f"OutputOf({upstream})",), (),
                                       ip.params_data, last_jobs.get(upstream, ()), "run", None, True)
                mine.append(jid)
            elif ip.batched:
                fp = ip.frames
                for index, draft in enumerate(fp.drafts):
                    jid = job_id_for(self.session_id, ip.instance_id, index)
                    info = fp.described[index] or {}
                    jobs[jid] = SessionJob(jid, ip.job_type, ip.instance_id, (draft.id,),
                                           tuple(info.get("outputs", ())), ip.params_data, (), decisions[index],
                                           index, False, tuple(info.get("argv", ())), info.get("error"))
                    mine.append(jid)
            else:
                jid = job_id_for(self.session_id, ip.instance_id, None)
                inputs = (ip.input_draft.id,) if ip.input_draft is not None else ()
                info = decisions[1] or {}
                jobs[jid] = SessionJob(jid, ip.job_type, ip.instance_id, inputs, tuple(info.get("outputs", ())),
                                       ip.params_data, (), decisions[0], None, False, tuple(info.get("argv", ())),
                                       info.get("error"))
                mine.append(jid)
            last_jobs[ip.instance_id] = tuple(mine)
        return jobs

    @property
    def job_ids(self) -> tuple[SessionJobId, ...]:
        return tuple(self._jobs)

    def job(self, job_id: SessionJobId) -> SessionJob:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job {job_id!r} in session {self.session_id!r}") from None

    @property
    def jobs(self) -> tuple[SessionJob, ...]:
        return tuple(self._jobs.values())

    @property
    def job_count(self) -> int:
        return len(self._jobs)

    @cached_property
    def topological_order(self) -> tuple[SessionJobId, ...]:
        """Every job after the jobs it depends on (Kahn's algorithm, ties in plan order)."""
        jobs = self._jobs
        waiting = {jid: len(job.depends_on) for jid, job in jobs.items()}
        dependents: dict[SessionJobId, list[SessionJobId]] = {}
        for jid, job in jobs.items():
            for dep in job.depends_on:
                dependents.setdefault(dep, []).append(jid)
        ready = deque(jid for jid in jobs if waiting[jid] == 0)  # FIFO: ties keep plan order
        order: list[SessionJobId] = []
        while ready:
            jid = ready.popleft()
            order.append(jid)
            for nxt in dependents.get(jid, ()):
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        return tuple(order)

    @property
    def is_dag(self) -> bool:
        """True iff every job can be ordered after its dependencies (no cycle, no dangling edge)."""
        jobs = self._jobs
        if any(dep not in jobs for job in jobs.values() for dep in job.depends_on):
            return False
        return len(self.topological_order) == len(jobs)

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return tuple(ip.instance_id for ip in self._instances)

    @property
    def problems(self) -> tuple[DerivedWarning, ...]:
        """Instances that will not run (unknown lens, bad params, missing input)."""
        return tuple(ip.problem for ip in self._instances if ip.problem is not None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchPlanSession):
            return NotImplemented
        return self.session_id == other.session_id and self.jobs == other.jobs

    def __hash__(self) -> int:
        return hash(self.session_id)

    def __repr__(self) -> str:
        return f"BatchPlanSession({self.session_id!r}, instances={list(self.instance_ids)})"

    def summary(self) -> list[dict]:
        """Per instance: lens, job count, how many run and how many are reused (for people and the CLI)."""
        rows = []
        for ip in self._instances:
            jobs = [j for j in self.jobs if j.lens_instance_id == ip.instance_id]
            rows.append({
                "instance": ip.instance_id, "lens": ip.lens_id, "jobs": len(jobs),
                "run": sum(j.decision == "run" for j in jobs), "reused": sum(j.decision == "reused" for j in jobs),
                "expands": any(j.expands for j in jobs),
                "problem": None if ip.problem is None else f"{ip.problem.code}: {ip.problem.message}",
            })
        return rows


def frame_decisions(fp: FramePlan) -> tuple[str, ...]:
    """Per frame: "reused" if its chunk or its call is in the memo, else "run"."""
    out: list[str] = []
    evaluated = len(fp.drafts)
    for chunk_no, start in enumerate(range(0, evaluated, CHUNK_FRAMES)):
        end = min(start + CHUNK_FRAMES, evaluated)
        if fp.cached_chunks[chunk_no] is not None:
            out.extend(["reused"] * (end - start))
        else:
            out.extend("run" if fp.cached_calls[i] is None else "reused" for i in range(start, end))
    return tuple(out)


def _session_token(instances: list[InstancePlan], caps: Caps) -> SessionId:
    parts = []
    for ip in instances:
        source = ip.source
        ref = ["outputOf", source.instance_id] if isinstance(source, OutputOf) else ["draft", source]
        version = ip.lens.version if ip.lens is not None else None
        parts.append([ip.instance_id, ip.lens_id, version, ip.params_key.decode(), ref])
    return SessionId(digest("session", parts, caps.to_data()))


def _claim_outputs(planner: Planner, instances: list[InstancePlan], singles: dict[str, Any]) -> list[InstancePlan]:
    """Check every output path the plan knows, across all instances at once; mark the jobs that may not write.

    A marked job fails validation and never runs, so no cached outcome may stand in for it.
    """
    jobs: list[tuple[str, int | None, Any]] = []
    for ip in instances:
        if ip.problem is not None or ip.expanding:
            continue
        if ip.batched:
            if ip.lens.describe is not None:  # a pure lens's frames write nothing
                jobs.extend((ip.instance_id, i, info) for i, info in enumerate(ip.frames.described))
        else:
            jobs.append((ip.instance_id, None, singles[ip.instance_id][2]))
    if not any(info for _, _, info in jobs):
        return instances
    marked = planner.claim(jobs)
    if not marked:
        return instances
    by_instance: dict[str, dict[int | None, dict]] = {}
    for position, info in marked.items():
        instance_id, frame, _ = jobs[position]
        by_instance.setdefault(instance_id, {})[frame] = info
    out = []
    for ip in instances:
        changed = by_instance.get(ip.instance_id)
        if changed and ip.batched:
            described, cached = list(ip.frames.described), list(ip.frames.cached_calls)
            for frame, info in changed.items():
                described[frame], cached[frame] = info, None
            chunks = tuple(None if any(f // CHUNK_FRAMES == n for f in changed) else c
                           for n, c in enumerate(ip.frames.cached_chunks))
            ip = attrs.evolve(ip, frames=attrs.evolve(ip.frames, described=tuple(described),
                                                      cached_calls=tuple(cached), cached_chunks=chunks))
        elif changed:
            key, _, _ = singles[ip.instance_id]
            singles[ip.instance_id] = (key, None, changed[None])
        out.append(ip)
    return out


def build_plan(
    store: Store, registry: Registry, caps: Caps, memo: Any, force: bool = False
) -> tuple[BatchPlanSession, Planner, list]:
    """The session plus what recompute needs to carry it out (internal)."""
    planner = Planner(store, registry, caps, memo, force)
    failed: set[str] = set()
    instances: list[InstancePlan] = []
    decisions: dict[str, Any] = {}
    singles: dict[str, Any] = {}
    for instance_id in evaluation_order(store):
        ip = planner.resolve(instance_id, failed)
        instances.append(ip)
        if ip.problem is not None:
            failed.add(instance_id)
            continue
        if not ip.expanding and not ip.batched:
            singles[instance_id] = planner.single_call(ip, ip.input_draft, claim=False)
    instances = _claim_outputs(planner, instances, singles)
    for ip in instances:
        if ip.problem is not None:
            continue
        if ip.expanding:
            decisions[ip.instance_id] = ("run",)
        elif ip.batched:
            decisions[ip.instance_id] = frame_decisions(ip.frames)
        else:
            _, cached, described = singles[ip.instance_id]
            decisions[ip.instance_id] = ("reused" if cached is not None else "run", described)
    session = BatchPlanSession(_session_token(instances, caps), tuple(instances), decisions)
    return session, planner, [instances, singles]


def plan_session(
    store: Store,
    *,
    registry: Registry | None = None,
    caps: Caps | None = None,
    memo: Any = None,
    monitor: Any = None,
    force: bool = False,
) -> BatchPlanSession:
    """What ``recompute_derived(store, ...)`` would do, without doing it.

    With ``force`` every job is decided ``run`` whatever the memo holds.

    >>> from drafts import Store, make_draft, pack_drafts
    >>> c = pack_drafts([make_draft({"text": t}) for t in "ab"])
    >>> s = plan_session(Store.empty().add_draft(c).add_lens_instance("up", "text.upper", c.id))
    >>> s.job_count, s.is_dag, [s.job(j).frame_index for j in s.topological_order]
    (2, True, [0, 1])
    """
    session, _, _ = build_plan(store, default_registry if registry is None else registry, caps or Caps(), memo, force)
    if monitor is not None:
        monitor.observe_session(session)
    return session


_ = thaw
