"""Where extraction runs: an executor takes file paths and yields ``(path, row)`` as files finish.

The scan and the watcher only ever call ``Executor.run``; an engine plugs in by implementing it
and, to be chosen by name (``imgindex scan --executor NAME``), by adding a factory to EXECUTORS,
which builds it from the command's ExecutorSettings. Today: ``inline`` (this process),
``processes`` (a local process pool, the default; imgindex/executors/local.py) and ``dask`` (the
workers of a Dask distributed cluster; imgindex/executors/cluster.py). Each executor owns its
interrupt handling: a Ctrl-C stops the work it started and reaches the caller as
KeyboardInterrupt, with every batch already written kept. An executor holding resources between
runs (a cluster's client) has a ``close()``; whoever made the executor calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ..extract import MAX_PIXELS
from .cluster import DaskCluster
from .local import MAX_CHUNK, Inline, ProcessPool, Result, chunk_size, default_workers, extract_one, pool_context

__all__ = [
    "DEFAULT_EXECUTOR",
    "EXECUTORS",
    "MAX_CHUNK",
    "DaskCluster",
    "Executor",
    "ExecutorSettings",
    "Inline",
    "ProcessPool",
    "Result",
    "chunk_size",
    "closing_executor",
    "default_workers",
    "executor_name",
    "extract_one",
    "make_executor",
    "pool_context",
]


class Executor(Protocol):
    """Runs extract() over paths; yields each result as soon as it is ready, in any order."""

    def run(self, paths: Sequence[str]) -> Iterator[Result]: ...


@dataclass(frozen=True)
class ExecutorSettings:
    """What a command says about where extraction runs; each executor takes what applies to it."""

    workers: int | None = None  # local worker processes [default: CPUs]
    max_pixels: int = MAX_PIXELS  # most pixels decoded per image
    scheduler: str | None = None  # a Dask scheduler's address (tcp://host:8786)


# name -> factory(settings) -> Executor
EXECUTORS: dict[str, Callable[[ExecutorSettings], Executor]] = {
    "processes": lambda s: ProcessPool(s.workers, s.max_pixels),
    "inline": lambda s: Inline(s.max_pixels),
    "dask": lambda s: DaskCluster(s.scheduler, s.workers, s.max_pixels),
}
DEFAULT_EXECUTOR = "processes"
CLUSTER_EXECUTOR = "dask"  # the one a scheduler address implies


def executor_name(name: str | None, scheduler: str | None) -> str:
    """The executor to use: ``name``, or the cluster's when only a scheduler is given. ValueError
    when both are given and disagree."""
    if scheduler and name not in (None, CLUSTER_EXECUTOR):
        raise ValueError(
            f"a scheduler address runs extraction on a Dask cluster, not with --executor {name}: "
            f"leave out --executor (or give --executor {CLUSTER_EXECUTOR}), or drop the scheduler"
        )
    if scheduler:
        return CLUSTER_EXECUTOR
    return name or DEFAULT_EXECUTOR


def make_executor(
    name: str = DEFAULT_EXECUTOR,
    workers: int | None = None,
    max_pixels: int = MAX_PIXELS,
    scheduler: str | None = None,
) -> Executor:
    """The executor registered under ``name``, for ``workers`` workers where it has any, decoding at
    most ``max_pixels`` pixels per image; ``scheduler``: a Dask scheduler's address."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise ValueError(f"no executor {name!r}; known: {', '.join(EXECUTORS)}") from None
    return factory(ExecutorSettings(workers, max_pixels, scheduler))


@contextmanager
def closing_executor(executor: Executor, owned: bool = True) -> Iterator[Executor]:
    """``executor``, closed on the way out when it has a ``close()`` and ``owned`` (made here)."""
    try:
        yield executor
    finally:
        close: Any = getattr(executor, "close", None)
        if owned and close is not None:
            close()
