"""Executors: where chunks of lens calls run. They change speed, never results.

Every executor maps one top-level function over chunk tasks and hands results
back in task order, whatever order workers finish in. None retries: a chunk
whose worker dies is a failed chunk, reported as such for each of its calls.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable, Sequence
from typing import Any

from .signals import Terminated, kill_children, raise_on_signals

__all__ = ["SerialExecutor", "ProcessExecutor", "DaskExecutor", "ChunkFailed"]


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
    try:
        return fn(task)
    except Terminated as exc:  # the job's finally blocks ran: its temporary file is gone
        kill_children()  # and no FFmpeg it started outlives it, even one started as the signal landed
        os._exit(exc.exit_code)


class ProcessExecutor:
    """Runs chunks in ``max_workers`` local processes.

    Lenses reach workers by reference (module and name), so they must be
    importable there. Use it as a context manager, or call ``close()``.
    If the caller is interrupted while chunks run (Ctrl-C, or ``Terminated``
    from a SIGTERM/SIGHUP), every worker is sent SIGTERM: each stops its job
    the same clean way (FFmpeg killed, temporary files removed) and exits.
    """

    def __init__(self, max_workers: int | None = None):
        if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
            raise ValueError(f"max_workers must be an int >= 1 or None, got {max_workers!r}")
        self.max_workers = max_workers
        self._pool: cf.ProcessPoolExecutor | None = None

    @property
    def parallelism(self) -> int:
        import os

        return self.max_workers or os.cpu_count() or 1

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.max_workers, initializer=raise_on_signals)
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
            except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable task: that chunk fails
                out[index] = ChunkFailed(f"{type(exc).__name__}: {exc}")
            on_done(index)
        if broken:  # a broken pool cannot be used again
            self.close()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

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


def _no_scheduler_retries(dask_scheduler: Any) -> int:
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = 0
    return previous


class DaskExecutor:
    """Runs chunks on a Dask cluster (``pip install "draftlens[dask]"``).

    ``client_or_address`` is a ``distributed.Client`` or a scheduler address.
    Dask would re-run a task whose worker died (``allowed-failures``); that is
    an implicit retry, so the scheduler is set to 0 allowed failures when this
    executor connects, and a lost worker becomes a failed chunk.
    """

    def __init__(self, client_or_address: Any):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError('DaskExecutor needs the dask extra: pip install "draftlens[dask]"') from exc
        self._owns_client = not isinstance(client_or_address, Client)
        self.client = Client(client_or_address) if self._owns_client else client_or_address
        self.client.run_on_scheduler(_no_scheduler_retries)

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
        for future in as_completed(futures):
            index = position[future.key]
            try:
                out[index] = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: that chunk fails
                out[index] = ChunkFailed(f"{type(exc).__name__}: {exc}")
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
