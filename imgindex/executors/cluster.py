"""Extraction on the workers of a Dask distributed cluster (``pip install 'imgindex[dask]'``).

The paths are sent as they are: every worker must read them at the same location (a shared file
system mounted at the same path) and run the same imgindex. Both are checked before the first
task (every worker reads the first path and says which extractor it runs) and on every result (a
file the workers cannot find but this machine can stops the scan with a message saying so).

Files go out in chunks, a bounded number in flight, and the rows stream back as chunks finish,
into the one SQLite writer of the caller. A worker that dies costs its chunks a retry elsewhere
(Dask reschedules them); a chunk whose worker dies three times is reported. When the caller stops
early (an error, a Ctrl-C), the chunks still queued are cancelled.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

from ..extract import EXTRACTOR, MAX_PIXELS, VANISHED, extract
from .local import Result, chunk_size, default_workers

CONNECT_SECONDS = 10.0  # to reach the scheduler
WORKERS_SECONDS = 60.0  # for a first worker to join a scheduler that has none
IN_FLIGHT_PER_THREAD = 3  # chunks submitted ahead of the results, per worker thread


class ClusterError(RuntimeError):
    """The cluster cannot do the work as asked; the message says what to change."""


def extract_chunk(paths: Sequence[str], max_pixels: int) -> list[Result]:
    """A worker's task: the rows of a few files."""
    return [(path, extract(path, max_pixels)) for path in paths]


def worker_facts(path: str) -> dict[str, Any]:
    """What a worker says before it gets work: its extractor and whether it reads ``path``."""
    from .. import __version__

    return {"extractor": EXTRACTOR, "version": __version__, "reads": os.access(path, os.R_OK)}


class DaskCluster:
    """Extraction on a Dask cluster: the scheduler at ``scheduler`` (``tcp://host:8786``), or, when
    none is given, a cluster of ``workers`` local worker processes started for the first run and
    stopped by ``close()``. The client stays connected between runs (the watcher's batches)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None, max_pixels: int = MAX_PIXELS) -> None:
        self.scheduler = scheduler
        self.local_workers = workers
        self.max_pixels = max_pixels
        self._client: Any = None
        self._cluster: Any = None

    @property
    def workers(self) -> int:
        """Worker threads of the cluster (once connected), else the local workers asked for."""
        if self._client is not None:
            return sum(self._client.nthreads().values())
        return self.local_workers or 0

    def run(self, paths: Sequence[str]) -> Iterator[Result]:
        if not paths:
            return iter(())
        client = self.connect()
        check_workers(client, paths[0], self.scheduler)
        return self._stream(client, list(paths))

    def connect(self) -> Any:
        if self._client is None:
            distributed = _distributed()
            if self.scheduler is None:
                self._cluster = _local_cluster(distributed, self.local_workers or default_workers())
                self._client = distributed.Client(self._cluster)
            else:
                self._client = _connected(distributed, self.scheduler)
        return self._client

    def close(self) -> None:
        for part in (self._client, self._cluster):
            if part is not None:
                part.close()
        self._client = self._cluster = None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stream(self, client: Any, paths: list[str]) -> Iterator[Result]:
        distributed = _distributed()
        threads = max(1, sum(client.nthreads().values()))
        size = chunk_size(len(paths), threads)
        chunks = iter([paths[i : i + size] for i in range(0, len(paths), size)])

        def submit(chunk: list[str]) -> Any:
            return client.submit(extract_chunk, chunk, self.max_pixels, pure=False)

        futures = [submit(chunk) for _, chunk in zip(range(IN_FLIGHT_PER_THREAD * threads), chunks)]
        finished = distributed.as_completed(futures, with_results=True)
        try:
            for _, results in _reported(finished, distributed):
                for path, row in results:
                    check_read(path, row)
                    yield path, row
                chunk = next(chunks, None)
                if chunk is not None:
                    finished.add(submit(chunk))
        finally:
            client.cancel(list(finished.futures))


def _reported(finished: Any, distributed: Any) -> Iterator[tuple[Any, Any]]:
    """The finished chunks; a chunk that killed its workers again and again becomes a ClusterError."""
    try:
        yield from finished
    except distributed.KilledWorker as exc:
        raise ClusterError(
            f"a chunk of files was retried on several workers and each one died ({exc}); what was indexed is "
            "kept: look at the workers' logs (memory limits?), then run the same command again"
        ) from None


def check_workers(client: Any, path: str, scheduler: str | None) -> None:
    """Stop before any task when a worker cannot read ``path`` or runs another extractor."""
    where = f"the cluster at {scheduler}" if scheduler else "the local cluster"
    try:
        facts = client.run(worker_facts, path)
    except Exception as exc:  # noqa: BLE001 -- a worker without imgindex fails here, in any way
        raise ClusterError(
            f"the workers of {where} cannot run imgindex ({type(exc).__name__}: {exc}): install the same "
            "imgindex on every worker"
        ) from None
    for worker, said in sorted(facts.items()):
        if said["extractor"] != EXTRACTOR:
            raise ClusterError(
                f"worker {worker} runs imgindex {said['version']} (extractor {said['extractor']}), this machine "
                f"extractor {EXTRACTOR}: install the same imgindex on every worker"
            )
        if not said["reads"] and os.access(path, os.R_OK):
            raise ClusterError(cannot_read(path, worker))


def check_read(path: str, row: dict[str, Any]) -> None:
    """A row saying a file is gone, of a file this machine still reads, means the worker sees
    another file system."""
    if row.get("error") == VANISHED and os.path.exists(path):
        raise ClusterError(cannot_read(path, "a worker"))


def cannot_read(path: str, worker: str) -> str:
    return (
        f"{worker} cannot read {path}, which this machine reads: the workers must see the dataset at the same "
        "path (a shared file system mounted at the same location); what was indexed is kept"
    )


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("a Dask cluster needs the distributed package: pip install 'imgindex[dask]'") from None
    return distributed


def _connected(distributed: Any, scheduler: str) -> Any:
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}): start one with `dask scheduler` and "
            f"workers with `dask worker {scheduler}`, or give its address"
        ) from None
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except TimeoutError:
        client.close()
        raise ClusterError(
            f"no worker joined the scheduler at {scheduler} in {WORKERS_SECONDS:.0f} s: start some with "
            f"`dask worker {scheduler}`"
        ) from None
    return client


def _local_cluster(distributed: Any, workers: int) -> Any:
    """One single-threaded worker process per CPU asked for (extraction holds the GIL in parts),
    each leaving Ctrl-C to this process (see dask_setup)."""
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        preload=[__name__],
    )


def dask_setup(worker: Any) -> None:
    """Run by the local cluster's worker processes as they start (a Dask preload): a Ctrl-C, which
    reaches every process of the terminal's group, is this process's to handle; it stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
