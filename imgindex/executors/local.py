"""Extraction on this machine: ``inline`` in this process, ``processes`` in a local pool."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from multiprocessing import resource_tracker
from typing import Any

from ..extract import MAX_PIXELS, extract

Result = tuple[str, dict[str, Any]]  # (path, the row extract() made of it)
MAX_CHUNK = 32


def extract_one(path: str, max_pixels: int = MAX_PIXELS) -> Result:
    return path, extract(path, max_pixels)


class Inline:
    """Extraction in this process, one file after another; images decoding to more than
    ``max_pixels`` pixels are refused (an error row)."""

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def run(self, paths: Sequence[str]) -> Iterator[Result]:
        return map(partial(extract_one, max_pixels=self.max_pixels), paths)


class ProcessPool:
    """A pool of local worker processes (fork where it is safe), for work large enough to pay for
    starting them; smaller work runs inline. A worker decodes at most ``max_pixels`` pixels of an
    image, which bounds its memory."""

    def __init__(self, workers: int | None = None, max_pixels: int = MAX_PIXELS) -> None:
        self.workers = workers or default_workers()
        self.max_pixels = max_pixels

    def run(self, paths: Sequence[str]) -> Iterator[Result]:
        if self.workers <= 1 or len(paths) < 4 * self.workers:
            yield from Inline(self.max_pixels).run(paths)
            return
        task = partial(extract_one, max_pixels=self.max_pixels)
        with _started_pool(self.workers) as pool:
            yield from pool.imap_unordered(task, paths, chunksize=chunk_size(len(paths), self.workers))


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def chunk_size(jobs: int, workers: int) -> int:
    """Files handed to a worker at a time: large enough that passing them costs little, small
    enough that every worker gets work to the end and progress moves."""
    return max(1, min(MAX_CHUNK, jobs // (workers * 16)))


@contextmanager
def _started_pool(workers: int) -> Iterator[Any]:
    context = pool_context()
    if context.get_start_method() != "fork":
        resource_tracker.ensure_running()  # it unblocks signals itself, so it must start first
    with _interrupts_held():  # processes started now inherit the blocked SIGINT
        pool = context.Pool(workers, initializer=_ignore_interrupts)
    with pool:  # leaving it (a Ctrl-C included) terminates the workers
        yield pool


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C (SIGINT to the whole process group) to the main process, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT while worker processes start, so a Ctrl-C cannot kill one half-started;
    this process gets it as soon as they are up."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (one thread, so no lock can be held); forkserver or spawn otherwise."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
