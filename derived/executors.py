"""Executors: where chunks of lens calls run. They change speed, never results.

Every executor maps one top-level function over chunk tasks and hands results
back in task order, whatever order workers finish in. None retries: a chunk
whose worker dies is a failed chunk, reported as such for each of its calls.

An executor that is not ``in_process`` ships lenses by reference (module,
name and code fingerprint, see ``lenses.lens``); the engine calls its
``will_run(lens)``, if it has one, before shipping a lens.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from .evaluate import describe_exception
from .signals import STOP_SIGNALS, Terminated, kill_children, stop_with_parent

__all__ = ["SerialExecutor", "ProcessExecutor", "DaskExecutor", "ChunkFailed"]

# The GC thresholds of this process before any recompute tuned them: what workers run with.
_WORKER_GC_THRESHOLDS = gc.get_threshold()


def _worker_starts(parent: int | None = None) -> None:
    """In each new worker process: the cyclic GC on, with ordinary thresholds; stop signals clean up.

    A worker forked while a recompute runs would otherwise keep that
    recompute's deferred full collections (``derived.recompute``) for life.
    """
    gc.enable()
    gc.set_threshold(*_WORKER_GC_THRESHOLDS)
    for signum in STOP_SIGNALS:  # SIGTERM/SIGHUP stop the worker's job cleanly (``derived.signals``)
        signal.signal(signum, _worker_stop)
    stop_with_parent(parent)  # a parent killed outright (SIGKILL, OOM) must not leave workers encoding


_busy = False  # a worker is inside a task (set by _in_worker)


_STOP_GRACE_S = 10


def _worker_stop(signum: int, _frame: Any) -> None:
    """In a worker: inside a task, unwind it (FFmpeg killed, temporary file removed); idle, just exit quietly.

    Unwinding has ``_STOP_GRACE_S`` seconds: SIGALRM (whose default action
    ends the process) makes sure a worker whose parent is gone never lingers.
    """
    if _busy:
        if hasattr(signal, "alarm"):
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(_STOP_GRACE_S)
        raise Terminated(signum)
    kill_children()
    os._exit(128 + signum)


class ChunkFailed:
    """Marks a chunk whose worker failed (crashed, was killed, vanished)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"ChunkFailed({self.reason!r})"


def task_size(items: int, parallelism: int, most: int) -> int:
    """Calls per task: at most ``most``, and small enough that every worker gets ~4 tasks."""
    if parallelism <= 1:
        return most
    return max(1, min(most, -(-items // (parallelism * 4))))


class SerialExecutor:
    """Runs every chunk in this process, in order (the default)."""

    parallelism = 1
    in_process = True

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], on_done: Callable[[int], None]) -> list:
        out = []
        for index, task in enumerate(tasks):
            out.append(fn(task))
            on_done(index)
        return out

    def __repr__(self) -> str:
        return "SerialExecutor()"


def _in_worker(fn: Callable[[Any], Any], task: Any) -> Any:
    """Run one task in a worker; a SIGTERM/SIGHUP ends the worker once the task has cleaned up."""
    global _busy
    _busy = True
    try:
        return fn(task)
    except Terminated as exc:  # the job's finally blocks ran: its temporary file is gone
        kill_children()  # and no FFmpeg it started outlives it, even one started as the signal landed
        os._exit(exc.exit_code)
    finally:
        _busy = False


class ProcessExecutor:
    """Runs chunks in ``max_workers`` local processes.

    Lenses reach workers by reference (module and name), so they must be
    importable there. Workers keep the modules they imported; when a lens's
    code fingerprint or version changes (a module edited and reloaded),
    ``will_run`` replaces the workers, so a pool never runs stale code. Use it as a context
    manager, or call ``close()``. If the caller is interrupted while chunks
    run (Ctrl-C, or ``Terminated`` from a SIGTERM/SIGHUP), every worker is
    sent SIGTERM: each stops its job the same clean way (FFmpeg killed,
    temporary files removed) and exits.
    """

    in_process = False

    def __init__(self, max_workers: int | None = None):
        if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
            raise ValueError(f"max_workers must be an int >= 1 or None, got {max_workers!r}")
        self.max_workers = max_workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self._shipped: dict[tuple[str, str], tuple[str, str, str]] = {}

    def will_run(self, lens: Any) -> None:
        """Before ``lens`` is shipped: new workers if they may hold other code under its name."""
        where = (lens.fn.__module__, lens.fn.__qualname__)
        identity = (lens.id, lens.version, lens.code_fingerprint)
        if self._shipped.get(where, identity) != identity:
            self.close()
        self._shipped[where] = identity

    @property
    def parallelism(self) -> int:
        import os

        return self.max_workers or os.cpu_count() or 1

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.max_workers, initializer=_worker_starts,
                                                 initargs=(os.getpid(),))
        return self._pool

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], on_done: Callable[[int], None]) -> list:
        pool = self._get_pool()
        try:
            return self._collect(pool, fn, tasks, on_done)
        except BaseException:  # interrupted: stop the workers' jobs cleanly, not after they finish
            self.terminate()
            raise

    def _collect(self, pool: cf.ProcessPoolExecutor, fn: Callable[[Any], Any], tasks: Sequence[Any],
                 on_done: Callable[[int], None]) -> list:
        futures = {pool.submit(_in_worker, fn, task): index for index, task in enumerate(tasks)}
        out: list = [None] * len(tasks)
        broken = False
        for future in cf.as_completed(futures):
            index = futures[future]
            try:
                out[index] = future.result()
            except cf.process.BrokenProcessPool as exc:
                broken = True
                out[index] = ChunkFailed(f"worker process died: {exc}")
            except (KeyboardInterrupt, Terminated):
                raise
            except BaseException as exc:  # noqa: BLE001 - e.g. an unpicklable task: that chunk fails
                out[index] = ChunkFailed(describe_exception(exc))
            on_done(index)
        if broken:  # a broken pool cannot be used again
            self.close()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._shipped.clear()

    def terminate(self, grace_s: float = 30.0) -> None:
        """Stop every worker now: SIGTERM (each cleans up its job and exits), then SIGKILL after ``grace_s``."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(grace_s)
            if process.is_alive():
                process.kill()
                process.join()
        pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_workers={self.max_workers})"


def _times_lost(keys: list, dask_scheduler: Any = None) -> dict:
    """On the scheduler: how often each task's worker died while running it (``TaskState.suspicious``)."""
    tasks = dask_scheduler.tasks
    return {key: tasks[key].suspicious for key in keys if key in tasks and tasks[key].suspicious}


class DaskExecutor:
    """Runs chunks on a Dask cluster (``pip install "draftlens[dask]"``).

    ``client_or_address`` is a ``distributed.Client`` or a scheduler address
    (then this executor opens its own client, never made the default, and
    closes it in ``close()``). The scheduler and client are used as given:
    nothing in them is changed. Dask may re-run a task whose worker died
    (the scheduler's ``allowed-failures``); draftlens never retries (seed
    002: no implicit retries), so a chunk whose worker was lost while running
    it is FAILED (execution) even if a re-run finished: every call in it gets
    the failure, never the re-run's outputs.
    """

    in_process = False

    def __init__(self, client_or_address: Any):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError('DaskExecutor needs the dask extra: pip install "draftlens[dask]"') from exc
        self._owns_client = not isinstance(client_or_address, Client)
        if self._owns_client:
            self.client = Client(client_or_address, set_as_default=False)
        else:
            self.client = client_or_address

    @property
    def parallelism(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], on_done: Callable[[int], None]) -> list:
        from distributed import as_completed

        if not tasks:
            return []
        futures = self.client.map(fn, list(tasks), pure=False, retries=0)
        position = {f.key: i for i, f in enumerate(futures)}
        out: list = [None] * len(tasks)
        finished = []
        for future in as_completed(futures):
            index = position[future.key]
            try:
                out[index] = future.result()
                finished.append(index)
            except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: that chunk fails
                out[index] = ChunkFailed(describe_exception(exc))
                on_done(index)
        # Asked while this map still holds the futures, so the scheduler still knows them.
        lost = self.client.run_on_scheduler(_times_lost, [futures[i].key for i in finished]) if finished else {}
        for index in finished:
            times = lost.get(futures[index].key)
            if times:
                out[index] = ChunkFailed(
                    f"ran more than once: its worker died {times} time(s) while running it and Dask ran it again "
                    "(the scheduler's allowed-failures); draftlens does not retry, so the re-run is not used"
                )
            on_done(index)
        return out

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address if self.client.scheduler else '?'})"
